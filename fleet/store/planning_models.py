"""Master data the restocking planner needs and telemetry does not carry.

Products, planogram slots, depots, vans and machine sites are typed in by operators (or
imported from their files, see :mod:`fleet.planning.masterdata`), not reported by
machines. Money is integer minor units with its currency; times of day are minutes since
local midnight (the planning day's clock), so "24:00" is 1440.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Text
from sqlmodel import Field, SQLModel

from fleet.store.models import table


class ProductRow(SQLModel, table=True):
    __tablename__ = "products"

    sku: str = Field(primary_key=True, max_length=64)
    name: str = ""
    case_quantity: int = 1
    pack_rule: str = Field(default="unit", max_length=16)  # unit / half_case / case
    shelf_life_days: int | None = None
    unit_cost: int | None = Field(default=None, sa_type=BigInteger)
    unit_margin: int = Field(default=0, sa_type=BigInteger)
    currency: str = Field(max_length=3)


class PlanogramSlotRow(SQLModel, table=True):
    """One selection of a machine; a machine's rows are replaced together on import."""

    __tablename__ = "planogram_slots"

    machine_id: str = Field(primary_key=True, max_length=64)
    selection: str = Field(primary_key=True, max_length=8)
    sku: str = Field(max_length=64)
    capacity: int
    par: int
    threshold: int | None = None  # reorder point in units, for operators' reports
    core: bool = False


class DepotRow(SQLModel, table=True):
    __tablename__ = "depots"

    id: str = Field(primary_key=True, max_length=64)
    name: str = ""
    lat: float
    lon: float
    open_min: int = 0
    close_min: int = 24 * 60


class VanRow(SQLModel, table=True):
    __tablename__ = "vans"
    __table_args__ = (Index("ix_vans_depot", "depot_id"),)

    id: str = Field(primary_key=True, max_length=64)
    depot_id: str = Field(max_length=64)
    capacity: int
    capacity_unit: str = Field(default="units", max_length=8)  # units / cases
    shift_start_min: int
    shift_end_min: int
    cost_per_km: int = Field(default=0, sa_type=BigInteger)
    fixed_cost: int = Field(default=0, sa_type=BigInteger)
    currency: str = Field(max_length=3)


class MachineSiteRow(SQLModel, table=True):
    __tablename__ = "machine_sites"
    __table_args__ = (Index("ix_machine_sites_route", "route_id"),)

    machine_id: str = Field(primary_key=True, max_length=64)
    name: str = ""
    lat: float
    lon: float
    access_start_min: int = 0
    access_end_min: int = 24 * 60
    service_fixed_min: float = 10.0
    service_per_unit_s: float = 4.0
    location_id: str | None = Field(default=None, max_length=64)  # store / account location
    route_id: str | None = Field(default=None, max_length=64)
    has_telemetry: bool = True
    score_weights: str | None = Field(default=None, sa_type=Text)  # JSON: ScoringWeights overrides


products = table(ProductRow)
planogram_slots = table(PlanogramSlotRow)
depots = table(DepotRow)
vans = table(VanRow)
machine_sites = table(MachineSiteRow)
