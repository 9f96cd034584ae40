"""The human review queue for smart-cabinet sessions.

Written from fleet.store.review_models, on its own branch from 0001: runs on SQLite and
PostgreSQL.

Revision ID: 0007_reviews
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007_reviews"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "review_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("machine_id", text(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", when(), nullable=False),
        sa.Column("session_id", sa.BigInteger(), nullable=False),
        sa.Column("rule", text(length=64), nullable=False),
        sa.Column("outcome", text(length=32), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("currency", text(length=3), nullable=False),
        sa.Column("authorised", sa.BigInteger(), nullable=False),
        sa.Column("charged", sa.BigInteger(), nullable=False),
        sa.Column("due", sa.BigInteger(), nullable=True),
        sa.Column("reader", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", text(length=16), nullable=False),
        sa.Column("resolution", text(length=16), nullable=True),
        sa.Column("resolved_amount", sa.BigInteger(), nullable=True),
        sa.Column("resolved_by", text(length=64), nullable=True),
        sa.Column("resolved_why", sa.Text(), nullable=True),
        sa.Column("resolved_at", when(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("machine_id", "seq", name="uq_review_queue_machine_seq"),
    )
    with op.batch_alter_table("review_queue", schema=None) as batch_op:
        batch_op.create_index("ix_review_queue_session", ["machine_id", "session_id"], unique=False)
        batch_op.create_index("ix_review_queue_state", ["state", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("review_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_review_queue_state")
        batch_op.drop_index("ix_review_queue_session")
    op.drop_table("review_queue")
