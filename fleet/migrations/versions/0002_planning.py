"""Restocking master data: products, planogram slots, depots, vans, machine sites.

Written from fleet.store.planning_models, on its own branch from 0001: runs on SQLite and
PostgreSQL.

Revision ID: 0002_planning
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0002_planning"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "products",
        sa.Column("sku", text(length=64), nullable=False),
        sa.Column("name", text(), nullable=False),
        sa.Column("case_quantity", sa.Integer(), nullable=False),
        sa.Column("pack_rule", text(length=16), nullable=False),
        sa.Column("shelf_life_days", sa.Integer(), nullable=True),
        sa.Column("unit_cost", sa.BigInteger(), nullable=True),
        sa.Column("unit_margin", sa.BigInteger(), nullable=False),
        sa.Column("currency", text(length=3), nullable=False),
        sa.PrimaryKeyConstraint("sku"),
    )
    op.create_table(
        "planogram_slots",
        sa.Column("machine_id", text(length=64), nullable=False),
        sa.Column("selection", text(length=8), nullable=False),
        sa.Column("sku", text(length=64), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("par", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=True),
        sa.Column("core", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("machine_id", "selection"),
    )
    op.create_table(
        "depots",
        sa.Column("id", text(length=64), nullable=False),
        sa.Column("name", text(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("open_min", sa.Integer(), nullable=False),
        sa.Column("close_min", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "vans",
        sa.Column("id", text(length=64), nullable=False),
        sa.Column("depot_id", text(length=64), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("capacity_unit", text(length=8), nullable=False),
        sa.Column("shift_start_min", sa.Integer(), nullable=False),
        sa.Column("shift_end_min", sa.Integer(), nullable=False),
        sa.Column("cost_per_km", sa.BigInteger(), nullable=False),
        sa.Column("fixed_cost", sa.BigInteger(), nullable=False),
        sa.Column("currency", text(length=3), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("vans", schema=None) as batch_op:
        batch_op.create_index("ix_vans_depot", ["depot_id"], unique=False)
    op.create_table(
        "machine_sites",
        sa.Column("machine_id", text(length=64), nullable=False),
        sa.Column("name", text(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("access_start_min", sa.Integer(), nullable=False),
        sa.Column("access_end_min", sa.Integer(), nullable=False),
        sa.Column("service_fixed_min", sa.Float(), nullable=False),
        sa.Column("service_per_unit_s", sa.Float(), nullable=False),
        sa.Column("location_id", text(length=64), nullable=True),
        sa.Column("route_id", text(length=64), nullable=True),
        sa.Column("has_telemetry", sa.Boolean(), nullable=False),
        sa.Column("score_weights", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("machine_id"),
    )
    with op.batch_alter_table("machine_sites", schema=None) as batch_op:
        batch_op.create_index("ix_machine_sites_route", ["route_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("machine_sites", schema=None) as batch_op:
        batch_op.drop_index("ix_machine_sites_route")
    op.drop_table("machine_sites")
    with op.batch_alter_table("vans", schema=None) as batch_op:
        batch_op.drop_index("ix_vans_depot")
    op.drop_table("vans")
    op.drop_table("depots")
    op.drop_table("planogram_slots")
    op.drop_table("products")
