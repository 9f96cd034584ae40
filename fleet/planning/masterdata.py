"""Import and export the restocking master data: products, planogram, depots, vans,
locations and machine sites.

Two file formats, same fields (docs/restocking.md):

- one TOML file per fleet with arrays of tables ``[[products]]``, ``[[planogram]]``,
  ``[[depots]]``, ``[[vans]]``, ``[[locations]]``, ``[[sites]]`` and an optional top-level
  ``currency`` that products and vans inherit;
- CSV files, one per entity, named after it (``products.csv``, ``planogram.csv``, ...),
  header row first; scoring weights of a site go in ``weight.NAME`` columns.

An import is checked whole before anything is written: every bad value is reported with
its file, line and field, references (a slot's product and machine site, a van's depot)
must exist in the files or in the database, and then one transaction writes it.
Products, depots, vans, locations and sites are replaced by key; a machine's planogram is
replaced as a whole by the slots the import lists for it.

A site's ``location_id`` need not name a ``[[locations]]`` row (it then reads as an
implicit location). A location's ``route_id`` is its units' route: a site at it that
names no route takes it (written into the site, so the planner's ``--route`` sees it), and
a site naming another route is refused, since a store's units are visited together.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, select, update

from fleet.planning.masterdata_fields import (
    BY_NAME,
    DEPOTS,
    ENTITIES,
    LOCATIONS,
    PLANOGRAM,
    PRODUCTS,
    REQUIRED,
    SITES,
    VANS,
    WEIGHT_PREFIX,
    EntitySpec,
    FieldValueError,
    file_value,
    row_checks,
)
from fleet.planning.model import PlanningError
from fleet.store.location_models import locations
from fleet.store.planning_models import depots, machine_sites, planogram_slots, products, vans

TABLES: dict[str, Table] = {
    "products": products,
    "planogram": planogram_slots,
    "depots": depots,
    "vans": vans,
    "locations": locations,
    "sites": machine_sites,
}
MAX_REPORTED = 50


class MasterDataError(PlanningError):
    """A master-data file cannot be imported; ``problems`` lists every finding."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        shown = list(self.problems[:MAX_REPORTED])
        more = len(self.problems) - len(shown)
        if more:
            shown.append(f"... and {more} more")
        super().__init__("\n".join(shown))


@dataclass(frozen=True, slots=True)
class Origin:
    file: str
    line: int | None
    entity: str
    index: int  # 1-based position of the row in its file

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.entity} #{self.index}"


@dataclass
class MasterData:
    """Validated rows (table column names) per entity, with where each came from."""

    rows: dict[str, list[tuple[Origin, dict[str, Any]]]] = field(
        default_factory=lambda: {e.name: [] for e in ENTITIES}
    )

    def counts(self) -> dict[str, int]:
        """Rows per entity the files gave (every entity, with 0, when they gave none)."""
        given = {name: len(items) for name, items in self.rows.items() if items}
        return given or dict.fromkeys(self.rows, 0)


# --- reading files ---------------------------------------------------------------------


def read_files(paths: Iterable[Path]) -> MasterData:
    """Parse and check TOML/CSV files (directories: their *.toml and *.csv); raises
    MasterDataError naming every problem."""
    data = MasterData()
    problems: list[str] = []
    files = _expand(paths, problems)
    for path in files:
        try:
            raw = path.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read: {exc}")
            continue
        if path.suffix.lower() == ".toml":
            _read_toml(path, raw, data, problems)
        else:
            _read_csv(path, raw, data, problems)
    if not files and not problems:
        problems.append("no master-data files given")
    _check_duplicates(data, problems)
    if problems:
        raise MasterDataError(problems)
    return data


def _expand(paths: Iterable[Path], problems: list[str]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in {".toml", ".csv"})
        elif not path.exists():
            problems.append(f"{path}: no such file")
        elif path.suffix.lower() not in {".toml", ".csv"}:
            problems.append(f"{path}: expected a .toml or .csv file")
        else:
            out.append(path)
    return out


def _read_toml(path: Path, raw: str, data: MasterData, problems: list[str]) -> None:
    try:
        doc = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
        return
    default_currency = doc.pop("currency", None)
    for key, value in doc.items():
        entity = BY_NAME.get(key)
        if entity is None or not isinstance(value, list):
            known = ", ".join(f"[[{e.name}]]" for e in ENTITIES)
            problems.append(f"{path}: unknown top-level entry {key!r} (expected {known})")
            continue
        lines = _table_lines(raw, key)
        for index, item in enumerate(value, start=1):
            origin = Origin(
                str(path), lines[index - 1] if index <= len(lines) else None, key, index
            )
            if not isinstance(item, dict):
                problems.append(f"{origin}: expected a table of fields")
                continue
            given = item
            if default_currency is not None and entity.field("currency") is not None:
                given = {"currency": default_currency, **item}
            _add_row(entity, origin, given, data, problems)


def _table_lines(raw: str, name: str) -> list[int]:
    """Line numbers of the ``[[name]]`` headers, in order (TOML parsers give none)."""
    pattern = re.compile(rf"^\s*\[\[\s*{re.escape(name)}\s*\]\]")
    return [n for n, line in enumerate(raw.splitlines(), start=1) if pattern.match(line)]


def _read_csv(path: Path, raw: str, data: MasterData, problems: list[str]) -> None:
    stem = path.stem.lower()
    entity = next((e for e in ENTITIES if stem == e.name or stem in e.aliases), None)
    if entity is None:
        names = ", ".join(f"{e.name}.csv" for e in ENTITIES)
        problems.append(f"{path}: cannot tell which entity it holds: name it one of {names}")
        return
    reader = csv.reader(io.StringIO(raw, newline=""))
    header: list[str] | None = None
    index = 0
    ended = 0  # physical line the previous record ended on (quoted cells may span lines)
    for row in reader:
        line, ended = ended + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            continue
        index += 1
        origin = Origin(str(path), line, entity.name, index)
        if len(row) > len(header):
            problems.append(f"{origin}: {len(row)} cells but the header has {len(header)}")
            continue
        item: dict[str, Any] = {}
        for name, cell in zip(header, row, strict=False):
            if not cell.strip():
                continue  # empty cell: the field's default
            if entity is SITES and name.startswith(WEIGHT_PREFIX):
                item.setdefault("weights", {})[name.removeprefix(WEIGHT_PREFIX)] = cell
            else:
                item[name] = cell
        _add_row(entity, origin, item, data, problems)
    if header is None:
        problems.append(f"{path}: empty file (expected a header row)")


def _add_row(
    entity: EntitySpec,
    origin: Origin,
    item: Mapping[str, Any],
    data: MasterData,
    problems: list[str],
) -> None:
    row: dict[str, Any] = {}
    bad = False
    for name in item:
        if entity.field(name) is None:
            known = ", ".join(f.name for f in entity.fields)
            problems.append(f"{origin}: unknown field {name!r} (known: {known})")
            bad = True
    for spec in entity.fields:
        if spec.name not in item:
            if spec.default is REQUIRED:
                problems.append(f"{origin}: field {spec.name}: missing (required)")
                bad = True
            row[spec.column] = spec.default
            continue
        try:
            row[spec.column] = spec.parse(item[spec.name])
        except FieldValueError as exc:
            problems.append(f"{origin}: field {spec.name}: {exc}")
            bad = True
    if bad:
        return
    for name, problem in row_checks(entity, row):
        problems.append(f"{origin}: field {name}: {problem}")
        bad = True
    if not bad:
        data.rows[entity.name].append((origin, row))


def _check_duplicates(data: MasterData, problems: list[str]) -> None:
    for entity in ENTITIES:
        seen: dict[tuple[str, ...], Origin] = {}
        for origin, row in data.rows[entity.name]:
            key = entity.key_of(row)
            if key in seen:
                problems.append(f"{origin}: {'/'.join(key)} is already defined at {seen[key]}")
            else:
                seen[key] = origin


# --- writing to the store --------------------------------------------------------------


def import_master_data(engine: Engine, paths: Iterable[Path]) -> dict[str, int]:
    """Read, check against the files and the database, write in one transaction.

    Returns the rows written per entity."""
    data = read_files(paths)
    with engine.begin() as conn:
        _check_references(conn, data)
        _write(conn, data)
    return data.counts()


def _existing(conn: Connection, column: Any) -> set[str]:
    return {str(v) for v in conn.execute(select(column)).scalars()}


def _check_references(conn: Connection, data: MasterData) -> None:
    def ids(entity: EntitySpec, column: Any) -> set[str]:
        return {row[entity.key[0]] for _, row in data.rows[entity.name]} | _existing(conn, column)

    skus = ids(PRODUCTS, products.c.sku)
    sites = ids(SITES, machine_sites.c.machine_id)
    depot_ids = ids(DEPOTS, depots.c.id)
    problems = []
    for origin, row in data.rows["planogram"]:
        if row["sku"] not in skus:
            problems.append(f"{origin}: field sku: unknown product {row['sku']!r}")
        if row["machine_id"] not in sites:
            problems.append(f"{origin}: field machine_id: {row['machine_id']!r} has no site")
    for origin, row in data.rows["vans"]:
        if row["depot_id"] not in depot_ids:
            problems.append(f"{origin}: field depot: unknown depot {row['depot_id']!r}")
    problems += _route_conflicts(conn, data)
    if problems:
        raise MasterDataError(problems)


def _route_conflicts(conn: Connection, data: MasterData) -> list[str]:
    """Sites whose route differs from their location's, where either is being imported."""
    loc_route: dict[str, str | None] = {
        r.id: r.route_id for r in conn.execute(select(locations.c.id, locations.c.route_id))
    }
    loc_origin: dict[str, Origin] = {}
    for origin, row in data.rows["locations"]:
        loc_route[row["id"]] = row["route_id"]
        loc_origin[row["id"]] = origin
    site_at: dict[str, tuple[str | None, str | None, Origin | None]] = {
        r.machine_id: (r.location_id, r.route_id, None)
        for r in conn.execute(
            select(
                machine_sites.c.machine_id, machine_sites.c.location_id, machine_sites.c.route_id
            )
        )
    }
    for origin, row in data.rows["sites"]:
        site_at[row["machine_id"]] = (row["location_id"], row["route_id"], origin)
    problems = []
    for machine, (location, route, given_at) in sorted(site_at.items()):
        wanted = loc_route.get(location) if location else None
        if route is None or wanted is None or route == wanted:
            continue
        if given_at is not None:
            problems.append(
                f"{given_at}: field route_id: {route!r} differs from route {wanted!r} of its "
                f"location {location!r} (a location's units share one route)"
            )
        elif location in loc_origin:
            problems.append(
                f"{loc_origin[location]}: field route_id: {wanted!r} differs from route "
                f"{route!r} of the stored site {machine!r} (import that site too, with the "
                "same route)"
            )
    return problems


def _write(conn: Connection, data: MasterData) -> None:
    for entity in ENTITIES:
        table = TABLES[entity.name]
        rows = [row for _, row in data.rows[entity.name]]
        if not rows:
            continue
        if entity is PLANOGRAM:
            machines = sorted({row["machine_id"] for row in rows})
            for chunk in _chunks(machines):
                conn.execute(delete(table).where(table.c.machine_id.in_(chunk)))
        else:
            (key,) = entity.key  # every other entity has a one-column key
            for chunk in _chunks([row[key] for row in rows]):
                conn.execute(delete(table).where(table.c[key].in_(chunk)))
        for chunk in _chunks(rows):
            conn.execute(table.insert(), list(chunk))
    _inherit_routes(conn, data)


def _inherit_routes(conn: Connection, data: MasterData) -> None:
    """Sites at a location that has a route, and name none themselves, take its route."""
    touched = {row["id"] for _, row in data.rows["locations"]}
    touched |= {row["location_id"] for _, row in data.rows["sites"] if row["location_id"]}
    if not touched:
        return
    routed = [
        row
        for chunk in _chunks(sorted(touched))
        for row in conn.execute(
            select(locations.c.id, locations.c.route_id).where(
                locations.c.id.in_(chunk), locations.c.route_id.is_not(None)
            )
        )
    ]
    for location_id, route_id in routed:
        conn.execute(
            update(machine_sites)
            .where(machine_sites.c.location_id == location_id, machine_sites.c.route_id.is_(None))
            .values(route_id=route_id)
        )


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- export ----------------------------------------------------------------------------


def export_master_data(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every master-data row in file field names, sorted by key, per entity."""
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for entity in ENTITIES:
            table = TABLES[entity.name]
            query = select(table).order_by(*(table.c[name] for name in entity.key))
            out[entity.name] = [
                {spec.name: file_value(spec, row[spec.column]) for spec in entity.fields}
                for row in conn.execute(query).mappings()
            ]
    return out


def to_toml(dump: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """One TOML document that `read_files` reads back to the same rows."""
    parts = ["# vendfleet restocking master data (vend restock export)"]
    for entity in ENTITIES:
        for row in dump.get(entity.name, ()):
            parts.append(f"\n[[{entity.name}]]")
            for name, value in row.items():
                if value is not None:
                    parts.append(f"{name} = {_toml_value(value)}")
    return "\n".join(parts) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value), ensure_ascii=False)


def write_csvs(dump: Mapping[str, Sequence[Mapping[str, Any]]], folder: Path) -> list[Path]:
    """One CSV per entity in ``folder`` (created), readable by `read_files`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for entity in ENTITIES:
        rows = dump.get(entity.name, ())
        header = [spec.name for spec in entity.fields if spec.name != "weights"]
        weight_names = sorted({k for row in rows for k in (row.get("weights") or {})})
        header += [WEIGHT_PREFIX + k for k in weight_names]
        path = folder / f"{entity.name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row in rows:
                extra = row.get("weights") or {}
                cells = [_csv_cell(row.get(name)) for name in header if "." not in name]
                cells += [_csv_cell(extra.get(k)) for k in weight_names]
                writer.writerow(cells)
        written.append(path)
    return written


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


ENTITY_NAMES = tuple(e.name for e in ENTITIES)
__all__ = [
    "DEPOTS",
    "ENTITY_NAMES",
    "LOCATIONS",
    "PLANOGRAM",
    "PRODUCTS",
    "SITES",
    "VANS",
    "MasterData",
    "MasterDataError",
    "Origin",
    "export_master_data",
    "import_master_data",
    "read_files",
    "to_toml",
    "write_csvs",
]
