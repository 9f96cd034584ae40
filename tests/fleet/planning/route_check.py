"""An independent feasibility checker for routes and day plans.

It trusts nothing the solver says about itself: loads are re-added from the stops'
demands, times are replayed from the travel matrix, service times and windows (waiting
where a van is early), and every stop is accounted for exactly once (routed or
dropped). Each check returns a list of violations in words; an empty list means the
routes are feasible.

Stores: machines whose sites share a location id are one visit. The checker works that
out from the sites itself: a store's units must be on one van, one right after another,
each once (unless the plan's notes say the store had to be split); driving is counted to
the store's first unit and from there on, never between its units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from fleet.planning.distances import TravelMatrix, estimated_matrix
from fleet.planning.model import CapacityUnit, MachineSite, Product
from fleet.planning.plan import DayPlan, FleetSnapshot, PlanSettings, VanSheet
from fleet.planning.routing import NO_LIMIT, RoutingProblem, RoutingResult, VehicleSpec


def _vehicles(problem: RoutingProblem) -> dict[str, VehicleSpec]:
    """Vehicle id -> its spec, identical copies named "id#2", "id#3", ..."""
    out = {}
    for v in problem.vehicles:
        out[v.vehicle_id] = v
        for k in range(2, v.count + 1):
            out[f"{v.vehicle_id}#{k}"] = v
    return out


def check_routes(problem: RoutingProblem, result: RoutingResult) -> list[str]:
    m = problem.matrix
    stops = {s.stop_id: s for s in problem.stops}
    vehicles = _vehicles(problem)
    depot = m.index(problem.depot)
    bad: list[str] = []
    seen: list[str] = []
    used: list[str] = []
    for route in result.routes:
        vid = route.vehicle_id
        v = vehicles.get(vid)
        if v is None:
            bad.append(f"route of unknown vehicle {vid}")
            continue
        used.append(vid)
        if not route.visits:
            bad.append(f"{vid}: empty route returned")
        opens = max(v.shift_start, problem.depot_open)
        closes = min(v.shift_end, problem.depot_close)
        if route.start < opens:
            bad.append(f"{vid}: leaves at {route.start}, before its shift/depot opens ({opens})")
        dims = len(v.capacity)
        total = [0] * dims
        for visit in route.visits:
            s = stops.get(visit.stop_id)
            if s is not None:
                total = [a + b for a, b in zip(total, s.demand, strict=True)]
        bad.extend(
            f"{vid}: load {total[d]} > capacity {v.capacity[d]} (dimension {d})"
            for d in range(dims)
            if v.capacity[d] < NO_LIMIT and total[d] > v.capacity[d]
        )
        if list(route.load) != total:
            bad.append(f"{vid}: reports load {list(route.load)}, stops add up to {total}")
        prev, clock, on_board, distance = depot, route.start, list(total), 0
        for visit in route.visits:
            s = stops.get(visit.stop_id)
            if s is None:
                bad.append(f"{vid}: visits unknown stop {visit.stop_id}")
                continue
            seen.append(s.stop_id)
            here = m.index(s.location)
            distance += m.distance_m[prev][here]
            if visit.distance_from_previous != m.distance_m[prev][here]:
                bad.append(f"{vid}/{s.stop_id}: leg distance does not match the matrix")
            earliest = clock + m.duration_s[prev][here]
            if visit.arrival < earliest:
                bad.append(f"{vid}/{s.stop_id}: arrives {visit.arrival}, cannot before {earliest}")
            if visit.service_start < max(visit.arrival, s.tw_early):
                bad.append(f"{vid}/{s.stop_id}: serves before arriving or before its window")
            if visit.service_start > s.tw_late:
                bad.append(f"{vid}/{s.stop_id}: serves at {visit.service_start} > {s.tw_late}")
            if visit.departure != visit.service_start + s.service:
                bad.append(f"{vid}/{s.stop_id}: departure is not start + service time")
            on_board = [a - b for a, b in zip(on_board, s.demand, strict=True)]
            if list(visit.load_after) != on_board:
                bad.append(f"{vid}/{s.stop_id}: load after {visit.load_after} != {on_board}")
            prev, clock = here, visit.departure
        distance += m.distance_m[prev][depot]
        home = clock + m.duration_s[prev][depot]
        if route.end < home:
            bad.append(f"{vid}: back at {route.end}, cannot be before {home}")
        if route.end > closes:
            bad.append(f"{vid}: back at {route.end}, after its shift/depot closes ({closes})")
        if route.distance != distance:
            bad.append(f"{vid}: reports {route.distance} m, the legs add up to {distance} m")
    bad += _accounting(problem, result, seen, used)
    return bad


def _accounting(
    problem: RoutingProblem, result: RoutingResult, seen: list[str], used: list[str]
) -> list[str]:
    bad = []
    if len(used) != len(set(used)):
        bad.append(f"a vehicle drives two routes: {sorted(used)}")
    if len(seen) != len(set(seen)):
        bad.append(f"a stop is visited twice: {sorted(seen)}")
    dropped = [d.stop_id for d in result.dropped]
    every = {s.stop_id for s in problem.stops}
    if sorted(seen + dropped) != sorted(every):
        bad.append("routed + dropped stops are not exactly the problem's stops")
    missing_must = {d.stop_id for d in result.dropped if d.required}
    named = {p.stop_id for p in result.problems}
    if missing_must - named:
        bad.append(f"must-visits left out without a reason: {sorted(missing_must - named)}")
    if missing_must and result.feasible:
        bad.append("result claims feasible with a must-visit left out")
    if result.distance != sum(r.distance for r in result.routes):
        bad.append("total distance is not the sum of the routes")
    return bad


def check_day_plan(
    plan: DayPlan, fleet: FleetSnapshot, settings: PlanSettings, now: datetime
) -> list[str]:
    """A DayPlan against the fleet's own data: windows, shifts, travel, van capacity."""
    products = {p.sku: p for p in fleet.products}
    sites = {s.machine_id: s for s in fleet.sites}
    vans = {v.van_id: v for v in fleet.vans}
    caps = {(s.machine_id, s.selection): s for s in fleet.slots}
    matrix = fleet.matrix or estimated_matrix(
        [(fleet.depot.depot_id, fleet.depot.location)]
        + [(s.machine_id, s.location) for s in fleet.sites],
        settings.road_factor,
        settings.speed_kmh,
    )
    midnight = datetime.combine(plan.day, datetime.min.time(), tzinfo=settings.tz)
    bad: list[str] = []
    seen: list[str] = []
    for sheet in plan.vans:
        van = vans[sheet.van_id]
        shift_start = max(midnight + timedelta(minutes=van.shift.start_min), now)
        if sheet.depart < shift_start:
            bad.append(f"{van.van_id}: departs {sheet.depart:%H:%M} before its shift")
        if sheet.back > max(midnight + timedelta(minutes=van.shift.end_min), now):
            bad.append(f"{van.van_id}: back {sheet.back:%H:%M} after its shift")
        bad += _van_load(sheet.van_id, van.capacity, van.capacity_unit, sheet, products)
        bad += _van_times(sheet, matrix, fleet.depot.depot_id, sites, midnight)
        bad += _store_runs(sheet, sites, plan.notes)
        for stop in sheet.stops:
            seen.append(stop.machine_id)
            for line in stop.picks.lines:
                slot = caps[(line.machine_id, line.selection)]
                known = max(0, min(line.on_hand or 0, slot.capacity))
                if known + line.quantity > slot.capacity:
                    bad.append(f"{line.machine_id}/{line.selection}: fill above capacity")
        totals = {t.sku: t.units for t in sheet.totals}
        summed: dict[str, int] = {}
        for stop in sheet.stops:
            for line in stop.picks.lines:
                if line.quantity:
                    summed[line.sku] = summed.get(line.sku, 0) + line.quantity
        if totals != summed:
            bad.append(f"{van.van_id}: warehouse totals differ from the stops' pick lists")
    if len(seen) != len(set(seen)):
        bad.append("a machine is visited twice in one day")
    return bad + check_stores(plan, fleet)


def _location(site: MachineSite) -> str:
    return site.location_id.strip() or site.machine_id


def check_stores(plan: DayPlan, fleet: FleetSnapshot) -> list[str]:
    """Each store visited once, on one van, its units back to back; a chosen unit of a
    visited store is routed with it or dropped with a reason naming the store."""
    sites = {s.machine_id: s for s in fleet.sites}
    where: dict[str, list[tuple[str, int]]] = {}
    for sheet in plan.vans:
        for k, stop in enumerate(sheet.stops):
            where.setdefault(_location(sites[stop.machine_id]), []).append((sheet.van_id, k))
    split = {loc for loc in where if any(n.startswith(f"store {loc} ") for n in plan.notes)}
    bad = []
    for loc, visits in where.items():
        if loc in split:
            continue
        if len({van for van, _ in visits}) > 1:
            bad.append(f"store {loc}: its units are on several vans {sorted(visits)}")
            continue
        positions = sorted(k for _, k in visits)
        if positions != list(range(positions[0], positions[0] + len(positions))):
            bad.append(f"store {loc}: its units are not one right after another {positions}")
    reasons = {d.stop_id: d.reason for d in plan.dropped}
    routed = {s.machine_id for sheet in plan.vans for s in sheet.stops}
    for score in plan.scores:
        loc = _location(sites[score.machine_id])
        if not score.chosen or loc not in where or score.machine_id in routed:
            continue
        if f"store {loc}" not in reasons.get(score.machine_id, ""):
            bad.append(f"store {loc} is visited without its chosen unit {score.machine_id}")
    return bad


def _store_runs(
    sheet: VanSheet, sites: Mapping[str, MachineSite], notes: Sequence[str]
) -> list[str]:
    """Units of one store on a van follow each other without a gap in time (unless the
    plan's notes say the store had to be split)."""
    bad = []
    for before, after in zip(sheet.stops, sheet.stops[1:], strict=False):
        loc = _location(sites[before.machine_id])
        same = loc == _location(sites[after.machine_id])
        split = any(n.startswith(f"store {loc} ") for n in notes)
        if same and not split and after.service_start != before.departure:
            bad.append(
                f"{sheet.van_id}/{after.machine_id}: not served right after {before.machine_id}"
            )
    return bad


def _van_load(
    van_id: str,
    capacity: int,
    unit: CapacityUnit,
    sheet: VanSheet,
    products: Mapping[str, Product],
) -> list[str]:
    units = sum(stop.picks.units for stop in sheet.stops)
    if units != sheet.load_units:
        return [f"{van_id}: load_units is not the sum of the pick lists"]
    if unit is CapacityUnit.UNITS and units > capacity:
        return [f"{van_id}: loads {units} units > capacity {capacity}"]
    milli = sum(stop.picks.case_equivalents_milli(products) for stop in sheet.stops)
    if unit is CapacityUnit.CASES and milli > capacity * 1000:
        return [f"{van_id}: loads {milli / 1000:.2f} cases > capacity {capacity}"]
    return []


def _van_times(
    sheet: VanSheet,
    matrix: TravelMatrix,
    depot_id: str,
    sites: Mapping[str, MachineSite],
    midnight: datetime,
) -> list[str]:
    bad = []
    prev, clock, store = depot_id, sheet.depart, None
    for stop in sheet.stops:
        mid = stop.machine_id
        if _location(sites[mid]) == store:
            travel = timedelta(0)  # the next unit of the store the van stands at
        else:
            travel = timedelta(seconds=matrix.duration_s[matrix.index(prev)][matrix.index(mid)])
            prev, store = mid, _location(sites[mid])
        if stop.arrival < clock + travel:
            bad.append(f"{sheet.van_id}/{mid}: arrives sooner than the drive allows")
        access = sites[mid].access
        opens = midnight + timedelta(minutes=access.start_min)
        closes = midnight + timedelta(minutes=access.end_min)
        if not opens <= stop.service_start <= closes:
            bad.append(
                f"{sheet.van_id}/{mid}: served at {stop.service_start:%H:%M}, access {access}"
            )
        if stop.service_start < stop.arrival or stop.departure < stop.service_start:
            bad.append(f"{sheet.van_id}/{mid}: times out of order")
        clock = stop.departure
    back = timedelta(seconds=matrix.duration_s[matrix.index(prev)][matrix.index(depot_id)])
    if sheet.back < clock + back:
        bad.append(f"{sheet.van_id}: back at the depot sooner than the drive allows")
    return bad
