"""Audit tables: cash counts, settlement rows, import batches, sites, period locks and
adjustments after lock.

Revision ID: 0004_audit
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004_audit"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STR = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "audit_cash_counts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("machine_id", _STR(length=64), nullable=False),
        sa.Column("visit", _STR(length=128), nullable=False),
        sa.Column("counted_at", _TIME(), nullable=False),
        sa.Column("currency", _STR(length=3), nullable=False),
        sa.Column("coins", sa.BigInteger(), nullable=False),
        sa.Column("bills", sa.BigInteger(), nullable=False),
        sa.Column("change_added", sa.BigInteger(), nullable=False),
        sa.Column("refunds_by_hand", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("entered_at", _TIME(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("machine_id", "visit", name="uq_audit_cash_counts_visit"),
    )
    with op.batch_alter_table("audit_cash_counts", schema=None) as batch_op:
        batch_op.create_index("ix_audit_cash_counts_at", ["machine_id", "counted_at"], unique=False)

    op.create_table(
        "audit_settlements",
        sa.Column("id", _ID, nullable=False),
        sa.Column("row_key", _STR(length=128), nullable=False),
        sa.Column("machine_id", _STR(length=64), nullable=False),
        sa.Column("terminal", _STR(length=128), nullable=False),
        sa.Column("at", _TIME(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("currency", _STR(length=3), nullable=False),
        sa.Column("kind", _STR(length=16), nullable=False),
        sa.Column("reference", _STR(length=128), nullable=True),
        sa.Column("original_reference", _STR(length=128), nullable=True),
        sa.Column("settlement_date", sa.Date(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("row_key", name="uq_audit_settlements_row_key"),
    )
    with op.batch_alter_table("audit_settlements", schema=None) as batch_op:
        batch_op.create_index("ix_audit_settlements_at", ["machine_id", "at"], unique=False)

    op.create_table(
        "audit_imports",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", _STR(length=16), nullable=False),
        sa.Column("sha256", _STR(length=64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("imported_at", _TIME(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "sha256", name="uq_audit_imports_file"),
    )
    op.create_table(
        "audit_sites",
        sa.Column("machine_id", _STR(length=64), nullable=False),
        sa.Column("location", _STR(), nullable=False),
        sa.Column("route", _STR(), nullable=False),
        sa.PrimaryKeyConstraint("machine_id"),
    )
    op.create_table(
        "audit_locks",
        sa.Column("period", _STR(length=32), nullable=False),
        sa.Column("locked_at", _TIME(), nullable=False),
        sa.Column("locked_by", _STR(), nullable=False),
        sa.Column("sha256", _STR(length=64), nullable=False),
        sa.Column("report", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("period"),
    )
    op.create_table(
        "audit_adjustments",
        sa.Column("id", _ID, nullable=False),
        sa.Column("period", _STR(length=32), nullable=False),
        sa.Column("machine_id", _STR(length=64), nullable=True),
        sa.Column("category", _STR(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", _STR(length=3), nullable=False),
        sa.Column("ref", sa.Text(), nullable=True),
        sa.Column("recorded_by", _STR(), nullable=False),
        sa.Column("recorded_at", _TIME(), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_adjustments", schema=None) as batch_op:
        batch_op.create_index("ix_audit_adjustments_period", ["period"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_adjustments", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_adjustments_period")
    op.drop_table("audit_adjustments")
    op.drop_table("audit_locks")
    op.drop_table("audit_sites")
    op.drop_table("audit_imports")
    with op.batch_alter_table("audit_settlements", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_settlements_at")
    op.drop_table("audit_settlements")
    with op.batch_alter_table("audit_cash_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_cash_counts_at")
    op.drop_table("audit_cash_counts")
