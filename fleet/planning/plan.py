"""Plan one day: stock estimates -> forecasts -> scores -> visits -> pick lists -> routes.

Plain inputs in (a FleetSnapshot the caller fills from wherever the data lives), a
DayPlan out: every machine's decision with its reasons, one load sheet per van (ordered
stops, arrival times, what to load for each machine, warehouse totals by product), and
the stops that could not be planned with the reason. The units of a store (machines
whose sites share a location id) are routed as one stop and listed one after another on
one van (stores.py).

Clock: `now` is when the plan is made (data after it is ignored); the planned day's
times are minutes/seconds since its local midnight in `settings.tz`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TypeVar
from zoneinfo import ZoneInfo

from fleet.planning.distances import TravelMatrix
from fleet.planning.forecast import DemandForecast, ForecastSettings, forecast_selection
from fleet.planning.model import (
    CapacityUnit,
    CashLevel,
    Depot,
    DexReading,
    MachineSite,
    PlanningError,
    PlanogramSlot,
    Product,
    Reason,
    SaleRecord,
    StockAdjustment,
    StockObservation,
    Van,
)
from fleet.planning.picklists import MachinePickList, ProductTotal, machine_pick_list, van_totals
from fleet.planning.routing import (
    DroppedStop,
    Infeasibility,
    ProgressCallback,
    RoutingProblem,
    RoutingResult,
    solve_routes,
)
from fleet.planning.scoring import (
    MachineOutlook,
    MachineScore,
    ScoringWeights,
    SlotOutlook,
    pull_forward,
    select_visits,
)
from fleet.planning.stock_estimate import (
    DexInterval,
    Interval,
    StockEstimate,
    dex_intervals,
    estimate_stock,
    spread_dex_sales,
    stockout_intervals,
)
from fleet.planning.store_routing import carries, routing_problem, unit_visit, vehicle_specs
from fleet.planning.stores import (
    StoreStop,
    UnitVisit,
    group_stops,
    location_of,
    ride_along,
    unit_dropped,
    unit_problems,
)

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    products: tuple[Product, ...]
    slots: tuple[PlanogramSlot, ...]
    sites: tuple[MachineSite, ...]
    depot: Depot
    vans: tuple[Van, ...]
    sales: tuple[SaleRecord, ...] = ()
    observations: tuple[StockObservation, ...] = ()
    adjustments: tuple[StockAdjustment, ...] = ()
    dex_reads: tuple[DexReading, ...] = ()
    cash: tuple[CashLevel, ...] = ()
    last_visits: Mapping[str, datetime] = field(default_factory=dict)
    matrix: TravelMatrix | None = None  # ids: depot id and machine ids; else estimated


@dataclass(frozen=True, slots=True)
class PlanSettings:
    tz: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    history_days: int = 56
    next_visit_gap_days: float = 1.0  # a skipped machine waits at least this long
    weights: ScoringWeights = field(default_factory=ScoringWeights)
    overrides: Mapping[str, ScoringWeights] = field(default_factory=dict)
    must_visit: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    road_factor: float = 1.3
    speed_kmh: float = 30.0
    time_limit_s: float = 10.0
    seed: int = 0


@dataclass(frozen=True, slots=True)
class StopSheet:
    machine_id: str
    arrival: datetime
    service_start: datetime
    departure: datetime
    picks: MachinePickList
    reasons: tuple[Reason, ...]
    location_id: str = ""  # the store it stands in (its own id when alone)


@dataclass(frozen=True, slots=True)
class VanSheet:
    van_id: str
    depart: datetime
    back: datetime
    distance_m: int
    cost: int  # minor units: distance cost + fixed cost
    stops: tuple[StopSheet, ...]
    totals: tuple[ProductTotal, ...]
    load_units: int


@dataclass(frozen=True, slots=True)
class DayPlan:
    day: date
    made_at: datetime
    scores: tuple[MachineScore, ...]  # every machine, chosen or not, with reasons
    vans: tuple[VanSheet, ...]
    dropped: tuple[DroppedStop, ...]  # chosen but not routed, with the reason
    problems: tuple[Infeasibility, ...]
    feasible: bool
    routing: RoutingResult | None = None
    notes: tuple[str, ...] = ()  # stores split over several stops, and why
    stops: tuple[StoreStop, ...] = ()  # the router's nodes: which units shared a visit
    locations: Mapping[str, str] = field(default_factory=dict)  # machine -> location id
    problem: RoutingProblem | None = None  # what the router was asked (for checks, replays)

    def score_of(self, machine_id: str) -> MachineScore:
        return next(s for s in self.scores if s.machine_id == machine_id)


@dataclass(frozen=True, slots=True)
class _SlotState:
    slot: PlanogramSlot
    estimate: StockEstimate
    forecast: DemandForecast


_T = TypeVar("_T", SaleRecord, StockObservation, StockAdjustment, DexInterval)


def _group(items: Sequence[_T]) -> dict[Key, list[_T]]:
    out: dict[Key, list[_T]] = {}
    for item in items:
        out.setdefault((item.machine_id, item.selection), []).append(item)
    return out


def plan_day(
    day: date,
    fleet: FleetSnapshot,
    now: datetime,
    settings: PlanSettings | None = None,
    progress: ProgressCallback | None = None,
) -> DayPlan:
    cfg = settings or PlanSettings()
    if now.tzinfo is None:
        raise PlanningError("plan: `now` must be timezone-aware")
    products = {p.sku: p for p in fleet.products}
    sites = {s.machine_id: s for s in fleet.sites}
    _validate(fleet, products, sites)
    day_start = datetime.combine(day, time(0), tzinfo=cfg.tz)
    if day_start + timedelta(days=1) <= now:
        raise PlanningError(f"plan: {day} is already over at {now:%Y-%m-%d %H:%M}")

    states = _slot_states(fleet, sites, now, cfg)
    arrival_guess = {
        m: _arrival_guess(site, fleet.vans, day_start, now) for m, site in sites.items()
    }
    outlooks = _outlooks(fleet, states, products, arrival_guess, now=now, cfg=cfg)
    scores = select_visits(outlooks, cfg.weights, cfg.overrides, cfg.must_visit, cfg.skip)
    if cfg.weights.may_go_days > 0:
        # Score again as of a few days later: machines due by then may go today.
        ahead = timedelta(days=cfg.weights.may_go_days)
        later_arrival = {m: at + ahead for m, at in arrival_guess.items()}
        later = _outlooks(fleet, states, products, later_arrival, now=now, cfg=cfg, ahead=ahead)
        soon = select_visits(later, cfg.weights, cfg.overrides, (), cfg.skip)
        scores = pull_forward(scores, soon, cfg.weights, cfg.overrides)
    chosen = [s for s in scores if s.chosen]
    by_machine = _by_machine(states)
    guess_picks = {
        s.machine_id: _picks(by_machine[s.machine_id], products, arrival_guess[s.machine_id])
        for s in chosen
    }
    not_before = max(0, int((now - day_start).total_seconds()))
    # The solver works in "metres driven by the cheapest van": costs near one unit per
    # metre keep its bounded feasibility penalties meaningful (see routing.py).
    per_km = max(1, min(v.cost_per_km for v in fleet.vans))
    vehicles = vehicle_specs(fleet.vans, not_before=not_before, per_km=per_km)
    units: dict[str, list[UnitVisit]] = {}
    for s in chosen:
        site = sites[s.machine_id]
        units.setdefault(location_of(site), []).append(
            unit_visit(
                s,
                site,
                guess_picks[s.machine_id],
                products=products,
                not_before=not_before,
                per_km=per_km,
            )
        )
    grouping = group_stops(
        units,
        lambda demand: any(carries(v, demand) for v in vehicles),
        taken=frozenset(location_of(site) for site in fleet.sites),
    )
    problem = routing_problem(
        fleet.depot,
        fleet.matrix,
        sites,
        grouping.stops,
        vehicles,
        road_factor=cfg.road_factor,
        speed_kmh=cfg.speed_kmh,
    )
    result = solve_routes(problem, cfg.time_limit_s, seed=cfg.seed, progress=progress)
    scores = ride_along(scores, grouping.stops)
    reasons = {s.machine_id: s.reasons for s in scores}
    vans = _van_sheets(
        result,
        fleet,
        by_machine,
        {stop.stop_id: stop for stop in grouping.stops},
        products=products,
        guess_picks=guess_picks,
        reasons=reasons,
        day_start=day_start,
    )
    return DayPlan(
        day=day,
        made_at=now,
        scores=tuple(scores),
        vans=vans,
        dropped=unit_dropped(result.dropped, grouping),
        problems=unit_problems(result.problems, grouping.stops),
        feasible=result.feasible,
        routing=result,
        notes=grouping.notes,
        stops=grouping.stops,
        locations={m: location_of(site) for m, site in sites.items()},
        problem=problem,
    )


def _validate(
    fleet: FleetSnapshot, products: Mapping[str, Product], sites: Mapping[str, MachineSite]
) -> None:
    for slot in fleet.slots:
        if slot.sku not in products:
            raise PlanningError(f"slot {slot.machine_id}/{slot.selection}: unknown product")
        if slot.machine_id not in sites:
            raise PlanningError(f"slot {slot.machine_id}/{slot.selection}: machine has no site")
    for van in fleet.vans:
        if van.depot_id and van.depot_id != fleet.depot.depot_id:
            raise PlanningError(f"van {van.van_id}: depot {van.depot_id} is not the plan's depot")
    if not fleet.vans:
        raise PlanningError("plan: no vans")


def _slot_states(
    fleet: FleetSnapshot, sites: Mapping[str, MachineSite], now: datetime, cfg: PlanSettings
) -> list[_SlotState]:
    sales = _group([s for s in fleet.sales if s.at <= now])
    obs = _group([o for o in fleet.observations if o.at <= now])
    adj = _group([a for a in fleet.adjustments if a.at <= now])
    dex = _group(dex_intervals(r for r in fleet.dex_reads if r.at <= now))
    hist_start = now - timedelta(days=cfg.history_days)
    out = []
    for slot in fleet.slots:
        key = (slot.machine_id, slot.selection)
        live = sites[slot.machine_id].has_telemetry
        estimate = estimate_stock(
            slot,
            now,
            obs.get(key, []),
            adjustments=adj.get(key, []),
            sales=sales.get(key, []),
            dex=dex.get(key, []),
            telemetry=live,
        )
        # Exposure starts with the slot's first data, not before it existed.
        if live:
            history = sales.get(key, [])
            outs = stockout_intervals(slot, obs.get(key, []), adj.get(key, []), history, now)
            firsts = [r.at for r in history[:1]] + [o.at for o in obs.get(key, [])[:1]]
            end = now
        else:
            # DEX cannot tell when a selection ran dry; unknown intervals are left out.
            intervals = dex.get(key, [])
            history = spread_dex_sales(intervals, cfg.tz)
            outs = [Interval(iv.start, iv.end) for iv in intervals if iv.quantity is None]
            firsts = [iv.start for iv in intervals[:1]]
            end = max((iv.end for iv in intervals), default=now)  # data stops at the last read
        start = max(hist_start, min(firsts, default=hist_start))
        start = min(start, end - timedelta(hours=1))
        fc = forecast_selection(
            slot.machine_id,
            slot.selection,
            history,
            outs,
            history_start=start,
            history_end=end,
            tz=cfg.tz,
            settings=cfg.forecast,
        )
        out.append(_SlotState(slot, estimate, fc))
    return out


def _by_machine(states: Sequence[_SlotState]) -> dict[str, list[_SlotState]]:
    out: dict[str, list[_SlotState]] = {}
    for st in states:
        out.setdefault(st.slot.machine_id, []).append(st)
    return out


def _arrival_guess(
    site: MachineSite, vans: Sequence[Van], day_start: datetime, now: datetime
) -> datetime:
    """Middle of the time the site is open while some van is on shift (before routing)."""
    earliest = max(site.access.start_min, min(v.shift.start_min for v in vans))
    latest = min(site.access.end_min, max(v.shift.end_min for v in vans))
    minute = (earliest + latest) // 2 if latest >= earliest else earliest
    return max(now, day_start + timedelta(minutes=minute))


def _on_hand(state: _SlotState, at: datetime) -> int | None:
    level = state.estimate.level
    if level is None:
        return None
    used = state.forecast.expected_demand(state.estimate.as_of, at)
    return max(0, round(level - used))


def _outlooks(
    fleet: FleetSnapshot,
    states: Sequence[_SlotState],
    products: Mapping[str, Product],
    arrival: Mapping[str, datetime],
    *,
    now: datetime,
    cfg: PlanSettings,
    ahead: timedelta = timedelta(0),
) -> list[MachineOutlook]:
    last_visit = dict(fleet.last_visits)
    for o in fleet.observations:
        if (
            o.source == "visit"
            and o.at <= now
            and o.at > last_visit.get(o.machine_id, o.at - timedelta(1))
        ):
            last_visit[o.machine_id] = o.at
    cash: dict[str, CashLevel] = {}
    for c in fleet.cash:
        if c.at <= now and (c.machine_id not in cash or c.at > cash[c.machine_id].at):
            cash[c.machine_id] = c
    gap = timedelta(days=cfg.next_visit_gap_days)
    out = []
    for machine_id, machine_states in _by_machine(states).items():
        at = arrival[machine_id]
        slots = []
        for st in machine_states:
            on_hand = _on_hand(st, at)
            until = (
                st.forecast.days_until(on_hand, at, cfg.forecast.horizon_days)
                if on_hand is not None
                else None
            )
            slots.append(
                SlotOutlook(
                    slot=st.slot,
                    product=products[st.slot.sku],
                    on_hand_at_visit=on_hand,
                    demand_until_next=st.forecast.expected_demand(at, at + gap),
                    days_to_empty=until,
                )
            )
        visited = last_visit.get(machine_id)
        days = (now + ahead - visited).total_seconds() / 86400 if visited else None
        out.append(MachineOutlook(machine_id, tuple(slots), days, cash.get(machine_id)))
    return out


def _picks(
    states: Sequence[_SlotState], products: Mapping[str, Product], at: datetime
) -> MachinePickList:
    machine_id = states[0].slot.machine_id
    return machine_pick_list(machine_id, [(st.slot, _on_hand(st, at)) for st in states], products)


def _van_sheets(
    result: RoutingResult,
    fleet: FleetSnapshot,
    by_machine: Mapping[str, list[_SlotState]],
    stops: Mapping[str, StoreStop],
    *,
    products: Mapping[str, Product],
    guess_picks: Mapping[str, MachinePickList],
    reasons: Mapping[str, tuple[Reason, ...]],
    day_start: datetime,
) -> tuple[VanSheet, ...]:
    vans = {v.van_id: v for v in fleet.vans}
    sheets = []
    for route in result.routes:
        van = vans[route.vehicle_id]

        def at(seconds: int) -> datetime:
            return day_start + timedelta(seconds=seconds)

        # A store's units one after another: the first on arrival, each next one when
        # the previous is done (the times the router planned the node with).
        served = [
            (stop.location_id, unit, v.arrival if k == 0 else v.service_start + offset,
             v.service_start + offset)
            for v in route.visits
            for stop in (stops[v.stop_id],)
            for k, (unit, offset) in enumerate(zip(stop.units, stop.offsets, strict=True))
        ]  # fmt: skip
        # Re-pick at the routed arrival; keep the loaded plan if that would overfill the van.
        final = {
            unit.machine_id: _picks(by_machine[unit.machine_id], products, at(arrival))
            for _, unit, arrival, _ in served
        }
        if _over(final.values(), van, products):
            final = {unit.machine_id: guess_picks[unit.machine_id] for _, unit, _, _ in served}
        sheet_stops = tuple(
            StopSheet(
                unit.machine_id,
                at(arrival),
                at(start),
                at(start + unit.service_s),
                final[unit.machine_id],
                reasons[unit.machine_id],
                location_id=location_id,
            )
            for location_id, unit, arrival, start in served
        )
        picked = [s.picks for s in sheet_stops]
        sheets.append(
            VanSheet(
                van_id=van.van_id,
                depart=at(route.start),
                back=at(route.end),
                distance_m=route.distance,
                cost=route.distance * van.cost_per_km // 1000 + van.fixed_cost,
                stops=sheet_stops,
                totals=tuple(van_totals(picked, products)),
                load_units=sum(p.units for p in picked),
            )
        )
    return tuple(sheets)


def _over(picks: Iterable[MachinePickList], van: Van, products: Mapping[str, Product]) -> bool:
    lists = list(picks)
    if van.capacity_unit is CapacityUnit.UNITS:
        return sum(p.units for p in lists) > van.capacity
    return sum(p.case_equivalents_milli(products) for p in lists) > van.capacity * 1000
