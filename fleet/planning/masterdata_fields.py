"""The fields of each master-data entity, as operators write them in TOML or CSV files.

One table per entity maps a file field to a table column with a parser. Parsers accept
TOML's typed values and CSV's strings alike (CSV knows no types), and raise `FieldValueError`
with words an operator understands; the caller adds the file, line and field.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import time
from typing import Any
from zoneinfo import available_timezones

from fleet.planning.model import CapacityUnit, PackRule
from fleet.planning.scoring import ScoringWeights
from fleet.store.location_models import LocationKind


class FieldValueError(ValueError):
    """One field's value is wrong; the message says what is expected."""


Parser = Callable[[object], object]
REQUIRED: Any = object()


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str  # in files
    column: str  # in the table
    parse: Parser
    default: Any = REQUIRED
    help: str = ""


@dataclass(frozen=True, slots=True)
class EntitySpec:
    name: str  # TOML array name and CSV file stem
    table: str
    key: tuple[str, ...]  # columns
    fields: tuple[FieldSpec, ...]
    aliases: tuple[str, ...] = ()  # other CSV file stems accepted

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    def key_of(self, row: Mapping[str, object]) -> tuple[str, ...]:
        return tuple(str(row[c]) for c in self.key)


def text(max_length: int | None = None, *, empty_ok: bool = True) -> Parser:
    def parse(value: object) -> str:
        if not isinstance(value, str):
            raise FieldValueError(f"expected text, got {_shown(value)}")
        value = value.strip()
        if not value and not empty_ok:
            raise FieldValueError("must not be empty")
        if max_length is not None and len(value) > max_length:
            raise FieldValueError(f"longer than {max_length} characters")
        return value

    return parse


def integer(low: int | None = None, high: int | None = None) -> Parser:
    def parse(value: object) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise FieldValueError(f"expected a whole number, got {_shown(value)}")
        if low is not None and number < low:
            raise FieldValueError(f"must be at least {low}, got {number}")
        if high is not None and number > high:
            raise FieldValueError(f"must be at most {high}, got {number}")
        return number

    return parse


def decimal(low: float, high: float) -> Parser:
    def parse(value: object) -> float:
        number: float
        if isinstance(value, bool):
            raise FieldValueError(f"expected a number, got {_shown(value)}")
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise FieldValueError(f"expected a number, got {_shown(value)}") from None
        else:
            raise FieldValueError(f"expected a number, got {_shown(value)}")
        if not math.isfinite(number) or not low <= number <= high:
            raise FieldValueError(f"must be between {low:g} and {high:g}, got {number:g}")
        return number

    return parse


_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise FieldValueError(f"expected true or false, got {_shown(value)}")


def choice(options: tuple[str, ...]) -> Parser:
    def parse(value: object) -> str:
        if isinstance(value, str) and value.strip().lower() in options:
            return value.strip().lower()
        raise FieldValueError(f"expected one of {', '.join(options)}, got {_shown(value)}")

    return parse


def clock(value: object) -> int:
    """A time of day as minutes since midnight: "07:30", "24:00" or a TOML local time."""
    if isinstance(value, time):
        return value.hour * 60 + value.minute
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value)
        if match:
            hours, minutes = int(match[1]), int(match[2])
            if minutes < 60 and (hours < 24 or (hours == 24 and minutes == 0)):
                return hours * 60 + minutes
    raise FieldValueError(f'expected a time of day "HH:MM" (00:00..24:00), got {_shown(value)}')


_SHORT = text(64)
_SHORT_REQUIRED = text(64, empty_ok=False)


def optional_id(value: object) -> str | None:
    """A reference to another row by id; blank means none (TOML ``""`` as a CSV empty cell)."""
    parsed = _SHORT(value)
    return parsed if isinstance(parsed, str) and parsed else None


def timezone(value: object) -> str:
    """An IANA time zone name this system knows, such as ``Asia/Ho_Chi_Minh``."""
    name = str(_SHORT_REQUIRED(value))
    if name not in _zones():  # a set lookup: ZoneInfo() would open any file under TZPATH
        raise FieldValueError(
            f"unknown time zone {_shown(name)} (expected a name such as Asia/Ho_Chi_Minh)"
        )
    return name


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def currency(value: object) -> str:
    if isinstance(value, str) and re.fullmatch(r"[A-Z]{3}", value.strip()):
        return value.strip()
    raise FieldValueError(f"expected an ISO 4217 code such as VND or EUR, got {_shown(value)}")


_WEIGHTS = {f.name: f.type for f in fields(ScoringWeights)}


def weights(value: object) -> str | None:
    """Per-machine scoring overrides: a TOML table (or collected `weight.NAME` CSV columns)."""
    if not isinstance(value, Mapping):
        raise FieldValueError(f"expected a table of scoring weights, got {_shown(value)}")
    out: dict[str, object] = {}
    for name, raw in value.items():
        kind = _WEIGHTS.get(str(name))
        if kind is None:
            raise FieldValueError(f"unknown scoring weight {name!r} (known: {', '.join(_WEIGHTS)})")
        try:
            if kind == "bool":
                out[str(name)] = boolean(raw)
            elif kind == "int":
                out[str(name)] = integer(0)(raw)
            else:
                out[str(name)] = decimal(0.0, 1e12)(raw)
        except FieldValueError as exc:
            raise FieldValueError(f"weight {name}: {exc}") from None
    if not out:
        return None
    try:
        ScoringWeights(**out)  # type: ignore[arg-type]
    except ValueError as exc:
        raise FieldValueError(str(exc)) from None
    return json.dumps(out, sort_keys=True)


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


ID = text(64, empty_ok=False)
PACK_RULES = tuple(rule.value for rule in PackRule)
CAPACITY_UNITS = tuple(unit.value for unit in CapacityUnit)
MONEY = integer(0, 10**15)
LOCATION_KINDS = tuple(kind.value for kind in LocationKind)

PRODUCTS = EntitySpec(
    "products",
    "products",
    ("sku",),
    (
        FieldSpec("sku", "sku", ID, help="product code"),
        FieldSpec("name", "name", text(), ""),
        FieldSpec("case_quantity", "case_quantity", integer(1, 10_000), 1),
        FieldSpec("pack_rule", "pack_rule", choice(PACK_RULES), "unit"),
        FieldSpec("shelf_life_days", "shelf_life_days", integer(1, 10_000), None),
        FieldSpec("unit_cost", "unit_cost", MONEY, None),
        FieldSpec("unit_margin", "unit_margin", MONEY, 0),
        FieldSpec("currency", "currency", currency),
    ),
)
PLANOGRAM = EntitySpec(
    "planogram",
    "planogram_slots",
    ("machine_id", "selection"),
    (
        FieldSpec("machine_id", "machine_id", ID),
        FieldSpec("selection", "selection", text(8, empty_ok=False)),
        FieldSpec("sku", "sku", ID),
        FieldSpec("capacity", "capacity", integer(1, 100_000)),
        FieldSpec("par", "par", integer(1, 100_000)),
        FieldSpec("threshold", "threshold", integer(0, 100_000), None),
        FieldSpec("core", "core", boolean, default=False),
    ),
    aliases=("slots", "planogram_slots"),
)
DEPOTS = EntitySpec(
    "depots",
    "depots",
    ("id",),
    (
        FieldSpec("id", "id", ID),
        FieldSpec("name", "name", text(), ""),
        FieldSpec("lat", "lat", decimal(-90.0, 90.0)),
        FieldSpec("lon", "lon", decimal(-180.0, 180.0)),
        FieldSpec("open", "open_min", clock, 0),
        FieldSpec("close", "close_min", clock, 24 * 60),
    ),
)
VANS = EntitySpec(
    "vans",
    "vans",
    ("id",),
    (
        FieldSpec("id", "id", ID),
        FieldSpec("depot", "depot_id", ID),
        FieldSpec("capacity", "capacity", integer(1, 10_000_000)),
        FieldSpec("capacity_unit", "capacity_unit", choice(CAPACITY_UNITS), "units"),
        FieldSpec("shift_start", "shift_start_min", clock),
        FieldSpec("shift_end", "shift_end_min", clock),
        FieldSpec("cost_per_km", "cost_per_km", MONEY, 0),
        FieldSpec("fixed_cost", "fixed_cost", MONEY, 0),
        FieldSpec("currency", "currency", currency),
    ),
)
LOCATIONS = EntitySpec(
    "locations",
    "locations",
    ("id",),
    (
        FieldSpec("id", "id", ID, help="location code; sites name it in location_id"),
        FieldSpec("name", "name", text(), ""),
        FieldSpec("kind", "kind", choice(LOCATION_KINDS), LocationKind.SITE.value),
        FieldSpec("address", "address", text(), ""),
        FieldSpec("lat", "lat", decimal(-90.0, 90.0), None),
        FieldSpec("lon", "lon", decimal(-180.0, 180.0), None),
        FieldSpec("timezone", "timezone", timezone, None),
        FieldSpec("route_id", "route_id", optional_id, None),
    ),
)
SITES = EntitySpec(
    "sites",
    "machine_sites",
    ("machine_id",),
    (
        FieldSpec("machine_id", "machine_id", ID),
        FieldSpec("name", "name", text(), ""),
        FieldSpec("lat", "lat", decimal(-90.0, 90.0)),
        FieldSpec("lon", "lon", decimal(-180.0, 180.0)),
        FieldSpec("access_start", "access_start_min", clock, 0),
        FieldSpec("access_end", "access_end_min", clock, 24 * 60),
        FieldSpec("service_fixed_min", "service_fixed_min", decimal(0.0, 24 * 60.0), 10.0),
        FieldSpec("service_per_unit_s", "service_per_unit_s", decimal(0.0, 3600.0), 4.0),
        FieldSpec("location_id", "location_id", optional_id, None),
        FieldSpec("route_id", "route_id", optional_id, None),
        FieldSpec("has_telemetry", "has_telemetry", boolean, default=True),
        FieldSpec("weights", "score_weights", weights, None),
    ),
    aliases=("machine_sites",),
)
ENTITIES = (PRODUCTS, DEPOTS, VANS, LOCATIONS, SITES, PLANOGRAM)
BY_NAME = {e.name: e for e in ENTITIES}
WEIGHT_PREFIX = "weight."  # CSV column prefix for per-machine scoring weights


def row_checks(entity: EntitySpec, row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules across the fields of one row: (file field, problem)."""
    out: list[tuple[str, str]] = []
    if entity is PLANOGRAM:
        if row["par"] > row["capacity"]:
            out.append(("par", f"par {row['par']} is above capacity {row['capacity']}"))
        threshold = row["threshold"]
        if threshold is not None and threshold >= row["par"]:
            out.append(("threshold", f"threshold {threshold} must be below par {row['par']}"))
    elif entity is DEPOTS and row["close_min"] < row["open_min"]:
        out.append(("close", "closes before it opens"))
    elif entity is VANS and row["shift_end_min"] < row["shift_start_min"]:
        out.append(("shift_end", "shift ends before it starts"))
    elif entity is SITES and row["access_end_min"] < row["access_start_min"]:
        out.append(("access_end", "access ends before it starts"))
    elif entity is LOCATIONS and (row["lat"] is None) != (row["lon"] is None):
        missing = "lon" if row["lon"] is None else "lat"
        out.append((missing, "give lat and lon together, or neither"))
    return out


def file_value(spec: FieldSpec, value: Any) -> Any:
    """A column value as written back to a file (the inverse of the parser)."""
    if value is None:
        return None
    if spec.parse is clock:
        return f"{value // 60:02d}:{value % 60:02d}"
    if spec.parse is weights:
        return json.loads(value)
    return value
