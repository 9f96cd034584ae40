"""Locations and stores on the read side: which machines stand where, and what a store
(several units behind one kiosk or payment front) holds, raises and sells.

`machine_locations` is the one machine -> location mapping the fleet's modules use (the
operator commands, the restocking report, the reconciliation rollups). A machine belongs
to the location its ``machine_sites`` row names. A machine whose site names none is its
own implicit site (location id = machine id), and a location id with no ``locations`` row
is an implicit location too: a ``store`` when several machines share it, else a ``site``.
Machines without a site row are not placed (the caller decides what that means).

Master data (sites, locations) is small and read whole; telemetry (stock, alarms, sales)
is aggregated in the database by a join on ``machine_sites`` and GROUP BY the location,
so a summary costs what its answer needs: sales read ``ix_sales_ts`` for the day asked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Connection, func, literal_column, select

from fleet.queries import AlarmRow, MoneyTotal, NotFoundError, open_alarm, utc
from fleet.store.location_models import LocationKind, locations
from fleet.store.models import alarms, machines, sales, stock_levels
from fleet.store.planning_models import machine_sites


def location_key() -> ColumnElement[str]:
    """The location of a ``machine_sites`` row as SQL: its location id, or the machine's
    own id when it names none (NULL or blank)."""
    # A literal, not a bound parameter: PostgreSQL must see the GROUP BY expression and the
    # selected one as the same text.
    blank: ColumnElement[str] = literal_column("''")
    return func.coalesce(
        func.nullif(machine_sites.c.location_id, blank), machine_sites.c.machine_id
    )


@dataclass(frozen=True, slots=True)
class LocationRef:
    """Where one machine stands. ``declared``: the location has a ``locations`` row."""

    location_id: str
    route_id: str | None  # the site's route, else the location's
    kind: str  # a LocationKind value
    name: str
    declared: bool


@dataclass(frozen=True, slots=True)
class Location:
    id: str
    name: str
    kind: str  # a LocationKind value
    declared: bool
    machines: tuple[str, ...]  # its units, by id
    route_id: str | None  # declared, else the one route its units share (if they agree)
    address: str = ""
    lat: float | None = None  # declared, else where its first unit's site stands
    lon: float | None = None
    timezone: str | None = None  # IANA name; None: the fleet's display time zone


@dataclass(frozen=True, slots=True)
class _Site:
    machine_id: str
    location_id: str
    name: str
    route_id: str | None
    lat: float
    lon: float


def _sites(conn: Connection) -> list[_Site]:
    key = location_key()
    query = select(
        machine_sites.c.machine_id,
        key,
        machine_sites.c.name,
        machine_sites.c.route_id,
        machine_sites.c.lat,
        machine_sites.c.lon,
    ).order_by(machine_sites.c.machine_id)
    return [_Site(*row) for row in conn.execute(query)]


def _implicit_kind(units: int) -> str:
    return (LocationKind.STORE if units > 1 else LocationKind.SITE).value


def list_locations(conn: Connection) -> list[Location]:
    """Every declared location (with or without units) and every implicit one, by id."""
    return _placed(conn)[0]


def _placed(conn: Connection) -> tuple[list[Location], dict[str, _Site]]:
    units: dict[str, list[_Site]] = defaultdict(list)
    by_machine: dict[str, _Site] = {}
    for site in _sites(conn):
        units[site.location_id].append(site)
        by_machine[site.machine_id] = site
    found: dict[str, Location] = {}
    for row in conn.execute(select(locations)):
        found[row.id] = Location(
            id=row.id,
            name=row.name,
            kind=row.kind,
            declared=True,
            machines=tuple(s.machine_id for s in units.get(row.id, ())),
            route_id=row.route_id,
            address=row.address,
            lat=row.lat,
            lon=row.lon,
            timezone=row.timezone,
        )
    for location_id, sites in units.items():
        if location_id in found:
            continue
        routes = {s.route_id for s in sites if s.route_id}
        lone = len(sites) == 1 and sites[0].machine_id == location_id
        found[location_id] = Location(
            id=location_id,
            name=sites[0].name if lone else "",
            kind=_implicit_kind(len(sites)),
            declared=False,
            machines=tuple(s.machine_id for s in sites),
            route_id=routes.pop() if len(routes) == 1 else None,
            lat=sites[0].lat,
            lon=sites[0].lon,
        )
    return [found[key] for key in sorted(found)], by_machine


def get_location(conn: Connection, location_id: str) -> Location:
    for location in list_locations(conn):
        if location.id == location_id:
            return location
    raise NotFoundError(
        f"unknown location {location_id!r}: no [[locations]] row and no machine site names it"
    )


def machine_locations(
    conn: Connection, machine_ids: Collection[str] | None = None
) -> dict[str, LocationRef]:
    """Machine id -> where it stands, for every machine with a site (or those of
    ``machine_ids`` that have one). A unit's route is its site's, else its declared
    location's."""
    wanted = None if machine_ids is None else set(machine_ids)
    found, sites = _placed(conn)
    out: dict[str, LocationRef] = {}
    for location in found:
        for machine_id in location.machines:
            if wanted is not None and machine_id not in wanted:
                continue
            site = sites[machine_id]
            out[machine_id] = LocationRef(
                location_id=location.id,
                # An implicit location's route is only a summary of its units' own.
                route_id=site.route_id or (location.route_id if location.declared else None),
                kind=location.kind,
                name=location.name or (site.name if location.id == machine_id else ""),
                declared=location.declared,
            )
    return out


# --- telemetry rolled up per location -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreSummary:
    location: Location
    online: int  # units whose last status said online
    reported: int  # units the fleet has heard from
    selections: int
    empty: int
    below_par: int
    units_in_stock: int  # sum of the counts the units last reported
    open_alarms: int
    critical_alarms: int
    sales_since: datetime  # local midnight of the location's day (UTC)
    sales: tuple[MoneyTotal, ...] = field(default=())


def day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Midnight of ``now``'s local day in ``zone``, as an aware datetime."""
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    return datetime.combine(now.astimezone(zone).date(), time(), zone)


def _zone(location: Location, default: ZoneInfo) -> ZoneInfo:
    if not location.timezone:
        return default
    try:
        return ZoneInfo(location.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return default  # written around the importer, which checks the name


def _grouped(conn: Connection, query: Any) -> dict[str, tuple[Any, ...]]:
    return {row[0]: tuple(row[1:]) for row in conn.execute(query)}


def store_summaries(
    conn: Connection,
    *,
    now: datetime,
    zone: ZoneInfo,
    only: Iterable[Location] | None = None,
) -> list[StoreSummary]:
    """Every location (or ``only`` these) with its units' stock, open alarms and sales
    since local midnight (in the location's time zone, else ``zone``)."""
    found = list_locations(conn) if only is None else list(only)
    key = location_key()
    on_site = machine_sites.c.machine_id
    scope: list[ColumnElement[bool]] = []
    if only is not None:
        scope.append(on_site.in_(sorted({m for loc in found for m in loc.machines})))
    state = _grouped(
        conn,
        select(key, func.count(), func.count().filter(machines.c.online.is_(True)))
        .select_from(machines.join(machine_sites, on_site == machines.c.id))
        .where(*scope)
        .group_by(key),
    )
    stock = _grouped(
        conn,
        select(
            key,
            func.count(),
            func.count().filter(stock_levels.c.count == 0),
            func.count().filter(stock_levels.c.count < stock_levels.c.par),
            func.coalesce(func.sum(stock_levels.c.count), 0),
        )
        .select_from(stock_levels.join(machine_sites, on_site == stock_levels.c.machine_id))
        .where(*scope)
        .group_by(key),
    )
    alarm = _grouped(
        conn,
        select(key, func.count(), func.count().filter(alarms.c.severity == "critical"))
        .select_from(alarms.join(machine_sites, on_site == alarms.c.machine_id))
        .where(open_alarm(), *scope)
        .group_by(key),
    )
    starts = {loc.id: day_start(now, _zone(loc, zone)) for loc in found}
    sold = _sales_since(conn, starts, scope)
    out = []
    for loc in found:
        seen, online = state.get(loc.id, (0, 0))
        selections, empty, low, units = stock.get(loc.id, (0, 0, 0, 0))
        open_count, critical = alarm.get(loc.id, (0, 0))
        out.append(
            StoreSummary(
                location=loc,
                online=online,
                reported=seen,
                selections=selections,
                empty=empty,
                below_par=low,
                units_in_stock=int(units),
                open_alarms=open_count,
                critical_alarms=critical,
                sales_since=utc(starts[loc.id]) or starts[loc.id],
                sales=sold.get(loc.id, ()),
            )
        )
    return out


def _sales_since(
    conn: Connection, starts: dict[str, datetime], scope: list[ColumnElement[bool]]
) -> dict[str, tuple[MoneyTotal, ...]]:
    """Sales per location since its own start; one query per distinct start (locations
    share a time zone, so that is one or a few)."""
    key = location_key()
    by_start: dict[datetime, set[str]] = defaultdict(set)
    for location_id, start in starts.items():
        by_start[start].add(location_id)
    out: dict[str, list[MoneyTotal]] = defaultdict(list)
    for start, ids in by_start.items():
        query = (
            select(key, sales.c.currency, func.count(), func.coalesce(func.sum(sales.c.price), 0))
            .select_from(
                sales.join(machine_sites, machine_sites.c.machine_id == sales.c.machine_id)
            )
            .where(sales.c.ts >= utc(start), *scope)
            .group_by(key, sales.c.currency)
            .order_by(key, sales.c.currency)
        )
        for location_id, currency, count, total in conn.execute(query):
            if location_id in ids:
                out[location_id].append(MoneyTotal(currency, count, int(total)))
    return {k: tuple(v) for k, v in out.items()}


# --- one store -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitState:
    machine_id: str
    route_id: str | None
    reported: bool  # the fleet has heard from it
    online: bool | None
    last_seen: datetime | None
    selections: int
    empty: int
    below_par: int
    open_alarms: int


@dataclass(frozen=True, slots=True)
class UnitStock:
    """One product in one unit: summed over the unit's selections holding it."""

    machine_id: str
    selections: int
    count: int
    par: int
    capacity: int
    empty: int  # selections at 0


@dataclass(frozen=True, slots=True)
class ProductStock:
    """One product across the store's units, and per unit."""

    product: str
    selections: int
    count: int
    par: int
    capacity: int
    empty: int
    units: tuple[UnitStock, ...]


@dataclass(frozen=True, slots=True)
class UnitSales:
    machine_id: str
    currency: str
    count: int
    total: int  # minor units


@dataclass(frozen=True, slots=True)
class StoreDetail:
    summary: StoreSummary
    units: tuple[UnitState, ...]
    stock: tuple[ProductStock, ...]  # by product
    alarms: tuple[AlarmRow, ...]  # open ones, newest first
    sales_by_unit: tuple[UnitSales, ...]  # since summary.sales_since


def store_detail(
    conn: Connection, location_id: str, *, now: datetime, zone: ZoneInfo
) -> StoreDetail:
    """A location's units, stock per product (across units and per unit), open alarms
    and sales of its local day; NotFoundError for an id nothing names."""
    location = get_location(conn, location_id)
    (summary,) = store_summaries(conn, now=now, zone=zone, only=[location])
    ids = list(location.machines)
    return StoreDetail(
        summary=summary,
        units=tuple(_units(conn, ids)),
        stock=tuple(_product_stock(conn, ids)),
        alarms=tuple(_alarms(conn, ids)),
        sales_by_unit=tuple(_unit_sales(conn, ids, summary.sales_since)),
    )


def _units(conn: Connection, ids: list[str]) -> list[UnitState]:
    if not ids:
        return []
    seen = {r.id: r for r in conn.execute(select(machines).where(machines.c.id.in_(ids)))}
    routes = dict(
        conn.execute(
            select(machine_sites.c.machine_id, machine_sites.c.route_id).where(
                machine_sites.c.machine_id.in_(ids)
            )
        ).all()
    )
    stock = _grouped(
        conn,
        select(
            stock_levels.c.machine_id,
            func.count(),
            func.count().filter(stock_levels.c.count == 0),
            func.count().filter(stock_levels.c.count < stock_levels.c.par),
        )
        .where(stock_levels.c.machine_id.in_(ids))
        .group_by(stock_levels.c.machine_id),
    )
    open_alarms = _grouped(
        conn,
        select(alarms.c.machine_id, func.count())
        .where(alarms.c.machine_id.in_(ids), open_alarm())
        .group_by(alarms.c.machine_id),
    )
    out = []
    for machine_id in ids:
        row = seen.get(machine_id)
        selections, empty, low = stock.get(machine_id, (0, 0, 0))
        out.append(
            UnitState(
                machine_id=machine_id,
                route_id=routes.get(machine_id),
                reported=row is not None,
                online=row.online if row is not None else None,
                last_seen=utc(row.last_seen) if row is not None else None,
                selections=selections,
                empty=empty,
                below_par=low,
                open_alarms=open_alarms.get(machine_id, (0,))[0],
            )
        )
    return out


def _stock_columns() -> tuple[Any, ...]:
    return (
        func.count(),
        func.coalesce(func.sum(stock_levels.c.count), 0),
        func.coalesce(func.sum(stock_levels.c.par), 0),
        func.coalesce(func.sum(stock_levels.c.capacity), 0),
        func.count().filter(stock_levels.c.count == 0),
    )


def _product_stock(conn: Connection, ids: list[str]) -> list[ProductStock]:
    if not ids:
        return []
    mine = stock_levels.c.machine_id.in_(ids)
    product = stock_levels.c.product
    per_unit: dict[str, list[UnitStock]] = defaultdict(list)
    for row in conn.execute(
        select(product, stock_levels.c.machine_id, *_stock_columns())
        .where(mine)
        .group_by(product, stock_levels.c.machine_id)
        .order_by(product, stock_levels.c.machine_id)
    ):
        name, machine_id, selections, count, par, capacity, empty = row
        per_unit[name].append(
            UnitStock(machine_id, selections, int(count), int(par), int(capacity), empty)
        )
    return [
        ProductStock(
            name, selections, int(count), int(par), int(capacity), empty, tuple(per_unit[name])
        )
        for name, selections, count, par, capacity, empty in conn.execute(
            select(product, *_stock_columns()).where(mine).group_by(product).order_by(product)
        )
    ]


def _alarms(conn: Connection, ids: list[str]) -> list[AlarmRow]:
    if not ids:
        return []
    rows = conn.execute(
        select(alarms)
        .where(alarms.c.machine_id.in_(ids), open_alarm())
        .order_by(alarms.c.raised_at.desc(), alarms.c.id.desc())
    )
    return [
        AlarmRow(
            r.id,
            r.machine_id,
            r.code,
            r.severity,
            r.device,
            r.selection,
            r.detail,
            utc(r.raised_at),
            utc(r.cleared_at),
        )
        for r in rows
    ]


def _unit_sales(conn: Connection, ids: list[str], since: datetime) -> list[UnitSales]:
    if not ids:
        return []
    query = (
        select(
            sales.c.machine_id,
            sales.c.currency,
            func.count(),
            func.coalesce(func.sum(sales.c.price), 0),
        )
        .where(sales.c.machine_id.in_(ids), sales.c.ts >= since)
        .group_by(sales.c.machine_id, sales.c.currency)
        .order_by(sales.c.machine_id, sales.c.currency)
    )
    return [UnitSales(m, c, n, int(t)) for m, c, n, t in conn.execute(query)]


__all__ = [
    "Location",
    "LocationRef",
    "ProductStock",
    "StoreDetail",
    "StoreSummary",
    "UnitSales",
    "UnitState",
    "UnitStock",
    "day_start",
    "get_location",
    "list_locations",
    "location_key",
    "machine_locations",
    "store_detail",
    "store_summaries",
]
