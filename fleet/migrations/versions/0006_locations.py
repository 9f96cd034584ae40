"""Locations (sites, stores, cabinet banks) that machine_sites.location_id names.

Written from fleet.store.location_models, on its own branch from 0002_planning (it gives
meaning to a column of machine_sites): runs on SQLite and PostgreSQL. No foreign key: a
location id without a row stays valid (an implicit location).

Revision ID: 0006_locations
Revises: 0002_planning
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006_locations"
down_revision: str | None = "0002_planning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "locations",
        sa.Column("id", text(length=64), nullable=False),
        sa.Column("name", text(), nullable=False),
        sa.Column("kind", text(length=16), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("timezone", text(length=64), nullable=True),
        sa.Column("route_id", text(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.create_index("ix_locations_route", ["route_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.drop_index("ix_locations_route")
    op.drop_table("locations")
