"""A FleetSnapshot from the fleet store, as it stood at a given `now`.

Master data (products, planogram, depot, vans, sites with the store each stands in) comes
from the planning tables; history from telemetry: the latest stock level per selection,
sales over the forecast window, service visits, DEX reads for machines without live
telemetry, and open alarms (a full cash box, low change tubes, an empty selection). Rows
after `now` are ignored, so a plan can be re-made as of an earlier moment.

One query per table, whatever the fleet size, and sales are streamed and folded into
hourly records per selection: the forecast only needs the hour, and a bucket never
straddles a stock observation or fill of its selection, so stock estimates see every
sale on the right side of every level they subtract it from.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, and_, func, or_, select

from fleet.planning.model import (
    CapacityUnit,
    CashLevel,
    Depot,
    DexReading,
    LatLon,
    MachineSite,
    PackRule,
    PlanningError,
    PlanogramSlot,
    Product,
    SaleRecord,
    StockAdjustment,
    StockObservation,
    TimeWindow,
    Van,
)
from fleet.planning.plan import FleetSnapshot
from fleet.planning.scoring import ScoringWeights
from fleet.store.models import alarms, cash_movements, dex_reads, machines, sales, service_visits
from fleet.store.models import stock_levels as stock_table
from fleet.store.planning_models import depots, machine_sites, planogram_slots, products, vans
from protocols.telemetry import DexSummary

Key = tuple[str, str]
IN_LIST_LIMIT = 5_000  # beyond this, filter DEX reads in Python instead of an IN list


class SnapshotError(PlanningError):
    """The store cannot give a plannable fleet: no master data, no depot or no vans."""


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    fleet: FleetSnapshot
    overrides: Mapping[str, ScoringWeights]  # per-machine scoring weights from the sites
    notes: tuple[str, ...]  # data the planner could not use, in words
    routes: Mapping[str, str]  # machine id -> route id, where the site names one

    @property
    def machine_ids(self) -> frozenset[str]:
        """Machines the plan can choose: a site and at least one planogram slot."""
        return frozenset(s.machine_id for s in self.fleet.slots)


def load_snapshot(
    engine: Engine,
    now: datetime,
    *,
    depot_id: str | None = None,
    max_vans: int | None = None,
    routes: Collection[str] = (),
    history_days: int = 56,
    weights: ScoringWeights | None = None,
) -> StoreSnapshot:
    """Everything `plan_day` needs, read in one transaction."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise SnapshotError("snapshot: `now` must be timezone-aware")
    if history_days < 1:
        raise SnapshotError("snapshot: history_days must be at least 1")
    if max_vans is not None and max_vans < 1:
        raise SnapshotError("snapshot: at least one van is needed")
    now = now.astimezone(UTC)
    with engine.connect() as conn:
        master = _master(conn, depot_id, max_vans, set(routes), weights or ScoringWeights())
        history = _History(conn, master, now, now - timedelta(days=history_days))
        history.load(report_unknown=not routes)
    fleet = FleetSnapshot(
        products=master.products,
        slots=master.slots,
        sites=master.sites,
        depot=master.depot,
        vans=master.vans,
        sales=tuple(history.sales),
        observations=tuple(history.observations),
        adjustments=tuple(history.adjustments),
        dex_reads=tuple(history.dex),
        cash=tuple(history.cash),
        last_visits=history.last_visits,
    )
    return StoreSnapshot(fleet, master.overrides, tuple(master.notes + history.notes), master.route)


@dataclass
class _Master:
    products: tuple[Product, ...]
    slots: tuple[PlanogramSlot, ...]
    sites: tuple[MachineSite, ...]
    depot: Depot
    vans: tuple[Van, ...]
    overrides: dict[str, ScoringWeights]
    route: dict[str, str]
    notes: list[str]


def _master(
    conn: Connection,
    depot_id: str | None,
    max_vans: int | None,
    routes: set[str],
    base: ScoringWeights,
) -> _Master:
    notes: list[str] = []
    depot = _depot(conn, depot_id)
    van_rows = conn.execute(
        select(vans).where(vans.c.depot_id == depot.depot_id).order_by(vans.c.id)
    ).all()
    if not van_rows:
        raise SnapshotError(f"no vans at depot {depot.depot_id!r}: import vans first")
    if max_vans is not None:
        if max_vans > len(van_rows):
            raise SnapshotError(
                f"asked for {max_vans} vans but depot {depot.depot_id!r} has {len(van_rows)}"
            )
        van_rows = van_rows[:max_vans]
    van_list = tuple(
        Van(
            r.id,
            r.capacity,
            CapacityUnit(r.capacity_unit),
            TimeWindow(r.shift_start_min, r.shift_end_min),
            cost_per_km=r.cost_per_km,
            fixed_cost=r.fixed_cost,
            depot_id=r.depot_id,
        )
        for r in van_rows
    )
    site_rows = conn.execute(select(machine_sites).order_by(machine_sites.c.machine_id)).all()
    if routes:
        site_rows = [r for r in site_rows if r.route_id in routes]
    if not site_rows:
        where = f" on route(s) {', '.join(sorted(routes))}" if routes else ""
        raise SnapshotError(f"no machine sites{where}: import master data first")
    sites, overrides, route = [], {}, {}
    for r in site_rows:
        sites.append(
            MachineSite(
                r.machine_id,
                LatLon(r.lat, r.lon),
                TimeWindow(r.access_start_min, r.access_end_min),
                service_fixed_min=r.service_fixed_min,
                service_per_unit_s=r.service_per_unit_s,
                has_telemetry=r.has_telemetry,
                location_id=(r.location_id or "").strip(),
            )
        )
        if r.score_weights:
            overrides[r.machine_id] = replace(base, **json.loads(r.score_weights))
        if r.route_id:
            route[r.machine_id] = r.route_id
    site_ids = {s.machine_id for s in sites}
    product_list = tuple(
        Product(
            r.sku,
            r.name,
            r.case_quantity,
            PackRule(r.pack_rule),
            r.unit_margin,
            r.shelf_life_days,
        )
        for r in conn.execute(select(products).order_by(products.c.sku))
    )
    skus = {p.sku for p in product_list}
    slots = []
    for r in conn.execute(
        select(planogram_slots).order_by(planogram_slots.c.machine_id, planogram_slots.c.selection)
    ):
        if r.machine_id not in site_ids:
            continue  # another route, or a site deleted since
        if r.sku not in skus:
            notes.append(f"slot {r.machine_id}/{r.selection}: unknown product {r.sku}, left out")
            continue
        slots.append(PlanogramSlot(r.machine_id, r.selection, r.sku, r.capacity, r.par, r.core))
    if not slots:
        raise SnapshotError("no planogram slots for the machine sites: import the planogram")
    bare = sorted(site_ids - {s.machine_id for s in slots})
    if bare:
        notes.append(f"{len(bare)} site(s) without a planogram, not planned: {_few(bare)}")
    return _Master(
        product_list, tuple(slots), tuple(sites), depot, van_list, overrides, route, notes
    )


def _depot(conn: Connection, depot_id: str | None) -> Depot:
    rows = conn.execute(select(depots).order_by(depots.c.id)).all()
    if not rows:
        raise SnapshotError("no depots: import master data first (vend restock import)")
    if depot_id is None:
        if len(rows) > 1:
            names = ", ".join(r.id for r in rows)
            raise SnapshotError(f"several depots ({names}): choose one")
        row = rows[0]
    else:
        found = [r for r in rows if r.id == depot_id]
        if not found:
            raise SnapshotError(f"unknown depot {depot_id!r}")
        row = found[0]
    return Depot(row.id, LatLon(row.lat, row.lon), TimeWindow(row.open_min, row.close_min))


def _few(items: list[str], limit: int = 8) -> str:
    head = ", ".join(items[:limit])
    return head + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class _History:
    """Telemetry rows turned into planner records, one query per table."""

    def __init__(self, conn: Connection, master: _Master, now: datetime, since: datetime) -> None:
        self.conn, self.now, self.since = conn, now, since
        self.slots: dict[Key, PlanogramSlot] = {
            (s.machine_id, s.selection): s for s in master.slots
        }
        self.sites = {s.machine_id: s for s in master.sites}
        self.observations: list[StockObservation] = []
        self.adjustments: list[StockAdjustment] = []
        self.sales: list[SaleRecord] = []
        self.dex: list[DexReading] = []
        self.cash: list[CashLevel] = []
        self.last_visits: dict[str, datetime] = {}
        self.notes: list[str] = []
        self.live_keys: set[Key] = set()  # selections with a telemetry stock level
        self.level_at: dict[Key, datetime] = {}

    def load(self, *, report_unknown: bool) -> None:
        self._stock_levels()
        self._visits()
        self._alarms()
        self._sales()
        self._dex()
        if report_unknown:  # with a route filter, other routes' machines are not unknown
            self._unknown_machines()

    def _stock_levels(self) -> None:
        unplanned: set[str] = set()
        for r in self.conn.execute(
            select(
                stock_table.c.machine_id,
                stock_table.c.selection,
                stock_table.c.count.label("units"),  # Row.count is tuple.count
                stock_table.c.updated_at,
            )
        ):
            key = (r.machine_id, r.selection)
            if key not in self.slots:
                if r.machine_id in self.sites:
                    unplanned.add(f"{r.machine_id}/{r.selection}")
                continue
            self.live_keys.add(key)
            at = _utc(r.updated_at)
            if at <= self.now:
                self.level_at[key] = at
                self.observations.append(
                    StockObservation(*key, at, max(0, r.units), source="telemetry")
                )
        if unplanned:
            names = sorted(unplanned)
            self.notes.append(
                f"{len(names)} selection(s) report stock but have no planogram slot: {_few(names)}"
            )

    def _visits(self) -> None:
        done = func.coalesce(service_visits.c.closed_at, service_visits.c.opened_at)
        for last in self.conn.execute(
            select(service_visits.c.machine_id, func.max(done).label("at"))
            .where(service_visits.c.opened_at <= self.now)
            .group_by(service_visits.c.machine_id)
        ):
            if last.machine_id in self.sites and last.at is not None:
                self.last_visits[last.machine_id] = min(_utc(last.at), self.now)
        # Visit actions only matter where no live stock level exists (fills are already
        # in a live level, counting them again would double them).
        for r in self.conn.execute(
            select(
                service_visits.c.machine_id,
                service_visits.c.opened_at,
                service_visits.c.closed_at,
                service_visits.c.actions,
            ).where(
                and_(
                    service_visits.c.opened_at > self.since, service_visits.c.opened_at <= self.now
                )
            )
        ):
            at = _utc(r.closed_at or r.opened_at)
            if r.machine_id not in self.sites or at > self.now:
                continue
            for action in _json_list(r.actions):
                self._visit_action(r.machine_id, at, action)

    def _visit_action(self, machine_id: str, at: datetime, action: Mapping[str, Any]) -> None:
        key = (machine_id, str(action.get("selection")))
        slot = self.slots.get(key)
        count = action.get("count")
        if slot is None or key in self.live_keys or not isinstance(count, int):
            return
        if action.get("action") == "fill":
            # Route drivers fill to par: the level after a fill visit is taken to be par.
            self.observations.append(StockObservation(*key, at, slot.par, source="visit"))
        elif action.get("action") == "remove" and count > 0:
            self.adjustments.append(StockAdjustment(*key, at, -count, reason="remove"))

    def _alarms(self) -> None:
        emptied: dict[tuple[str, str], datetime] = {}
        for m in self.conn.execute(
            select(
                cash_movements.c.machine_id,
                cash_movements.c.kind,
                func.max(cash_movements.c.ts).label("at"),
            )
            .where(
                and_(
                    cash_movements.c.ts <= self.now,
                    cash_movements.c.kind.in_(("collection", "tube_fill")),
                )
            )
            .group_by(cash_movements.c.machine_id, cash_movements.c.kind)
        ):
            emptied[(m.machine_id, m.kind)] = _utc(m.at)
        cash: dict[str, CashLevel] = {}
        for r in self.conn.execute(
            select(alarms.c.machine_id, alarms.c.code, alarms.c.selection, alarms.c.raised_at)
            .where(
                and_(
                    alarms.c.raised_at <= self.now,
                    or_(alarms.c.cleared_at.is_(None), alarms.c.cleared_at > self.now),
                    alarms.c.code.in_(("cash_box_full", "tubes_low", "empty")),
                )
            )
            .order_by(alarms.c.raised_at)
        ):
            if r.machine_id not in self.sites:
                continue
            at = _utc(r.raised_at)
            if r.code == "empty":
                key = (r.machine_id, r.selection or "")
                if key in self.slots and at > self.level_at.get(key, at - timedelta(seconds=1)):
                    self.observations.append(StockObservation(*key, at, 0, source="alarm"))
                continue
            # A collection or tube fill after the raise settled it even if no clear came.
            settled_by = "collection" if r.code == "cash_box_full" else "tube_fill"
            if at < emptied.get((r.machine_id, settled_by), at):
                continue
            prev = cash.get(r.machine_id) or CashLevel(r.machine_id, at)
            if r.code == "cash_box_full":
                cash[r.machine_id] = replace(prev, at=max(prev.at, at), cash_box_fill=1.0)
            else:
                cash[r.machine_id] = replace(prev, at=max(prev.at, at), tubes_low=True)
        self.cash = list(cash.values())

    def _sales(self) -> None:
        marks: dict[Key, list[datetime]] = defaultdict(list)
        for obs in self.observations:
            marks[(obs.machine_id, obs.selection)].append(obs.at)
        for adj in self.adjustments:
            marks[(adj.machine_id, adj.selection)].append(adj.at)
        for times in marks.values():
            times.sort()
        # (machine, selection, segment between marks, hour) -> [units, latest sale]
        buckets: dict[tuple[str, str, int, int], list[Any]] = {}
        outside = 0
        query = (
            select(sales.c.machine_id, sales.c.selection, sales.c.ts, sales.c.lines)
            .where(and_(sales.c.ts > self.since, sales.c.ts <= self.now))
            .execution_options(stream_results=True, yield_per=5_000)
        )
        for r in self.conn.execute(query):
            if r.machine_id not in self.sites:
                continue
            at = _utc(r.ts)
            for selection, quantity in _sold(r.selection, r.lines):
                key = (r.machine_id, selection)
                if key not in self.slots:
                    outside += 1
                    continue
                segment = bisect.bisect_left(marks.get(key, ()), at)
                bucket = (*key, segment, int(at.timestamp()) // 3600)
                entry = buckets.setdefault(bucket, [0, at])
                entry[0] += quantity
                entry[1] = max(entry[1], at)
        self.sales = [
            SaleRecord(machine, selection, latest, units)
            for (machine, selection, _, _), (units, latest) in buckets.items()
        ]
        if outside:
            self.notes.append(f"{outside} sale(s) of selections without a planogram slot ignored")

    def _dex(self) -> None:
        offline = sorted(m for m, s in self.sites.items() if not s.has_telemetry)
        if not offline:
            return
        where = and_(dex_reads.c.read_at > self.since, dex_reads.c.read_at <= self.now)
        if len(offline) <= IN_LIST_LIMIT:
            where = and_(where, dex_reads.c.machine_id.in_(offline))
        wanted = set(offline)
        bad = 0
        for r in self.conn.execute(
            select(dex_reads.c.machine_id, dex_reads.c.read_at, dex_reads.c.summary).where(where)
        ):
            if r.machine_id not in wanted:
                continue
            try:
                summary = DexSummary.model_validate_json(r.summary)
            except ValidationError:
                bad += 1
                continue
            vends = {s.selection: s.vends for s in summary.selections}
            board = summary.machine_serial or ""
            self.dex.append(DexReading(r.machine_id, _utc(r.read_at), board, vends))
        if bad:
            self.notes.append(f"{bad} DEX read(s) with an unreadable summary ignored")

    def _unknown_machines(self) -> None:
        seen = {str(m) for m in self.conn.execute(select(machines.c.id)).scalars()}
        unknown = sorted(seen - set(self.sites))
        if unknown:
            self.notes.append(
                f"{len(unknown)} machine(s) send telemetry but have no site here: {_few(unknown)}"
            )


def _json_list(raw: str | None) -> list[Mapping[str, Any]]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _sold(selection: str, lines: str | None) -> list[tuple[str, int]]:
    """Units per selection of one sale: a basket's lines, else one unit of the selection."""
    basket = [
        (str(line["selection"]), line["quantity"])
        for line in _json_list(lines)
        if isinstance(line.get("quantity"), int) and line["quantity"] > 0
    ]
    return basket or [(selection, 1)]
