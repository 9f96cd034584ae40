"""E-receipt transmission queue.

Written from fleet.store.einvoice_models, on its own branch from 0001: runs on SQLite and
PostgreSQL.

Revision ID: 0003_receipts
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003_receipts"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "receipt_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("idempotency_key", text(length=64), nullable=False),
        sa.Column("machine_id", text(length=64), nullable=False),
        sa.Column("series", text(length=32), nullable=False),
        sa.Column("number", text(length=64), nullable=False),
        sa.Column("kind", text(length=16), nullable=False),
        sa.Column("original_id", sa.BigInteger(), nullable=True),
        sa.Column("replaced_by_id", sa.BigInteger(), nullable=True),
        sa.Column("sale_seq", sa.BigInteger(), nullable=True),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("currency", text(length=3), nullable=False),
        sa.Column("issued_at", when(), nullable=False),
        sa.Column("state", text(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", when(), nullable=False),
        sa.Column("lease_until", when(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider", text(length=32), nullable=True),
        sa.Column("provider_ref", text(length=128), nullable=True),
        sa.Column("enqueued_at", when(), nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.Column("accepted_at", when(), nullable=True),
        sa.ForeignKeyConstraint(
            ["original_id"], ["receipt_queue.id"], name="fk_receipt_queue_original"
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by_id"], ["receipt_queue.id"], name="fk_receipt_queue_replaced_by"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key", name="uq_receipt_queue_idempotency_key"),
        sa.UniqueConstraint(
            "machine_id", "series", "number", "kind", name="uq_receipt_queue_receipt"
        ),
    )
    with op.batch_alter_table("receipt_queue", schema=None) as batch_op:
        batch_op.create_index("ix_receipt_queue_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_receipt_queue_original", ["original_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("receipt_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_receipt_queue_original")
        batch_op.drop_index("ix_receipt_queue_due")
    op.drop_table("receipt_queue")
