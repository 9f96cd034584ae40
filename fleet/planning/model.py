"""Plain inputs of the restocking planner: products, planograms, sites, vans and history.

Everything here is a frozen dataclass built by the caller (from the fleet database, a
file or a test). Times are timezone-aware datetimes (UTC in storage); the plan's own
clock is "minutes since the start of the planning day", which is what site access
hours and van shifts are expressed in. Money is integer minor units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class PlanningError(ValueError):
    """Bad planner input: the message names the item and what is wrong with it."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PlanningError(message)


def _aware(at: datetime, what: str) -> None:
    _require(at.tzinfo is not None and at.utcoffset() is not None, f"{what}: naive datetime")


class PackRule(StrEnum):
    """How the warehouse hands out a product: loose units, half cases or whole cases."""

    UNIT = "unit"
    HALF_CASE = "half_case"
    CASE = "case"


class CapacityUnit(StrEnum):
    UNITS = "units"
    CASES = "cases"


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str = ""
    case_quantity: int = 1
    pack_rule: PackRule = PackRule.UNIT
    unit_margin: int = 0  # minor units earned per unit sold; values lost sales
    shelf_life_days: int | None = None

    def __post_init__(self) -> None:
        _require(bool(self.sku), "product: empty sku")
        _require(self.case_quantity >= 1, f"product {self.sku}: case_quantity < 1")
        _require(self.unit_margin >= 0, f"product {self.sku}: negative unit_margin")
        _require(
            self.shelf_life_days is None or self.shelf_life_days > 0,
            f"product {self.sku}: shelf_life_days must be positive",
        )

    @property
    def pack_size(self) -> int:
        """Units in the smallest quantity the warehouse picks."""
        if self.pack_rule is PackRule.CASE:
            return self.case_quantity
        if self.pack_rule is PackRule.HALF_CASE:
            return max(1, self.case_quantity // 2)
        return 1


@dataclass(frozen=True, slots=True)
class PlanogramSlot:
    """One selection (column, coil) of a machine and the product it holds."""

    machine_id: str
    selection: str
    sku: str
    capacity: int
    par: int
    core: bool = False  # a core product's sell-out weighs more in scoring

    def __post_init__(self) -> None:
        where = f"slot {self.machine_id}/{self.selection}"
        _require(bool(self.machine_id) and bool(self.selection), f"{where}: empty id")
        _require(self.capacity >= 1, f"{where}: capacity < 1")
        _require(0 < self.par <= self.capacity, f"{where}: par must be in 1..capacity")


@dataclass(frozen=True, slots=True)
class LatLon:
    lat: float
    lon: float

    def __post_init__(self) -> None:
        _require(-90.0 <= self.lat <= 90.0, f"latitude {self.lat} out of range")
        _require(-180.0 <= self.lon <= 180.0, f"longitude {self.lon} out of range")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Minutes since the start of the planning day, closed interval."""

    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        _require(self.start_min >= 0, f"time window starts before the day: {self.start_min}")
        _require(self.end_min >= self.start_min, f"time window ends before it starts: {self}")

    def __str__(self) -> str:
        return f"{_hhmm(self.start_min)}-{_hhmm(self.end_min)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class Depot:
    depot_id: str
    location: LatLon
    hours: TimeWindow = field(default_factory=lambda: TimeWindow(0, 24 * 60))


@dataclass(frozen=True, slots=True)
class Van:
    van_id: str
    capacity: int
    capacity_unit: CapacityUnit = CapacityUnit.UNITS
    shift: TimeWindow = field(default_factory=lambda: TimeWindow(7 * 60, 17 * 60))
    cost_per_km: int = 0  # minor units
    fixed_cost: int = 0  # minor units per van used that day
    depot_id: str = ""  # empty: the plan's only depot

    def __post_init__(self) -> None:
        _require(bool(self.van_id), "van: empty id")
        _require(self.capacity >= 1, f"van {self.van_id}: capacity < 1")
        _require(self.cost_per_km >= 0, f"van {self.van_id}: negative cost_per_km")
        _require(self.fixed_cost >= 0, f"van {self.van_id}: negative fixed_cost")


@dataclass(frozen=True, slots=True)
class MachineSite:
    """Where a machine stands, when it can be reached, and how long a visit takes."""

    machine_id: str
    location: LatLon
    access: TimeWindow = field(default_factory=lambda: TimeWindow(0, 24 * 60))
    service_fixed_min: float = 10.0
    service_per_unit_s: float = 4.0
    has_telemetry: bool = True
    location_id: str = ""  # the store it stands in; empty: a site of its own (stores.py)

    def __post_init__(self) -> None:
        _require(bool(self.machine_id), "site: empty machine id")
        _require(self.service_fixed_min >= 0, f"site {self.machine_id}: negative service time")
        _require(self.service_per_unit_s >= 0, f"site {self.machine_id}: negative service time")

    def service_seconds(self, units: int) -> int:
        return round(self.service_fixed_min * 60 + self.service_per_unit_s * units)


@dataclass(frozen=True, slots=True)
class SaleRecord:
    """Units vended from one selection (a live transaction or an hourly aggregate)."""

    machine_id: str
    selection: str
    at: datetime
    quantity: int = 1

    def __post_init__(self) -> None:
        _aware(self.at, f"sale {self.machine_id}/{self.selection}")
        _require(self.quantity >= 0, f"sale {self.machine_id}/{self.selection}: negative qty")


@dataclass(frozen=True, slots=True)
class StockObservation:
    """A level known at a time: a count or fill-to at a service visit, or a telemetry report."""

    machine_id: str
    selection: str
    at: datetime
    level: int
    source: str = "visit"

    def __post_init__(self) -> None:
        _aware(self.at, f"observation {self.machine_id}/{self.selection}")
        _require(self.level >= 0, f"observation {self.machine_id}/{self.selection}: level < 0")


@dataclass(frozen=True, slots=True)
class StockAdjustment:
    """Units added (fill without a count) or removed (spoils, product change)."""

    machine_id: str
    selection: str
    at: datetime
    delta: int
    reason: str = "fill"

    def __post_init__(self) -> None:
        _aware(self.at, f"adjustment {self.machine_id}/{self.selection}")


@dataclass(frozen=True, slots=True)
class DexReading:
    """Cumulative vend counters per selection from one DEX read (PA2 since-initialisation).

    `board_id` identifies the counting board (serial, EA4 initialisation date or firmware);
    when it changes the counters restart and the read becomes a new baseline. A counter of
    None means the field was empty or held a sentinel.
    """

    machine_id: str
    at: datetime
    board_id: str
    vends: dict[str, int | None]

    def __post_init__(self) -> None:
        _aware(self.at, f"DEX read {self.machine_id}")


@dataclass(frozen=True, slots=True)
class CashLevel:
    """Latest cash state of a machine, as fractions of capacity (0..1) or None if unknown."""

    machine_id: str
    at: datetime
    cash_box_fill: float | None = None
    bill_stacker_fill: float | None = None
    tubes_low: bool = False

    def __post_init__(self) -> None:
        _aware(self.at, f"cash level {self.machine_id}")
        for value in (self.cash_box_fill, self.bill_stacker_fill):
            _require(
                value is None or 0.0 <= value <= 1.5, f"cash level {self.machine_id}: bad fill"
            )


@dataclass(frozen=True, slots=True)
class Reason:
    """One line of "why": a stable code for machines, words and points for people."""

    code: str
    detail: str
    points: float = 0.0

    def __str__(self) -> str:
        return f"{self.detail} (+{self.points:g})" if self.points else self.detail
