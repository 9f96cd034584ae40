"""The e-receipt on each sale: symbol, number, total, VAT, and why it was not queued.

Only adds nullable columns to ``sales`` (created in 0001), so it sits on its own branch
from 0001; existing rows keep NULL (no receipt). Runs on SQLite and PostgreSQL.

Revision ID: 0005_sale_receipts
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0005_sale_receipts"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("receipt_symbol", "receipt_no", "receipt_total", "receipt_vat", "receipt_problem")


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt_symbol", text(length=32), nullable=True))
        batch_op.add_column(sa.Column("receipt_no", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("receipt_total", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("receipt_vat", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("receipt_problem", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sales", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
