"""Properties of pick lists and routes on random small instances.

Pick lists: never above a selection's capacity, whole packs unless the note says why,
within half a pack of the need, warehouse totals that add up. Routes: every route the
solver returns is re-checked by route_check (loads, replayed arrival times, windows,
shifts, each stop once) whatever the solver's own feasibility flag says; day plans are
checked against the fleet's data, including the vans' capacity.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.planning.distances import TravelMatrix
from fleet.planning.model import (
    CapacityUnit,
    Depot,
    LatLon,
    MachineSite,
    PackRule,
    PlanogramSlot,
    Product,
    SaleRecord,
    StockObservation,
    TimeWindow,
    Van,
)
from fleet.planning.picklists import machine_pick_list, pick_line, van_totals
from fleet.planning.plan import FleetSnapshot, PlanSettings, plan_day
from fleet.planning.routing import NO_LIMIT, RoutingProblem, StopSpec, VehicleSpec, solve_routes
from tests.fleet.planning.route_check import check_day_plan, check_routes

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

products = st.builds(
    Product,
    sku=st.sampled_from(["cola", "chips", "gum"]),
    case_quantity=st.integers(1, 48),
    pack_rule=st.sampled_from(list(PackRule)),
)


@st.composite
def slot_and_stock(draw: st.DrawFn) -> tuple[PlanogramSlot, Product, int | None]:
    product = draw(products)
    capacity = draw(st.integers(1, 120))
    par = draw(st.integers(1, capacity))
    on_hand = draw(st.none() | st.integers(0, capacity + 10))
    return PlanogramSlot("m1", "A1", product.sku, capacity, par), product, on_hand


@settings(max_examples=100)
@given(slot_and_stock())
def test_pick_line_never_overfills_and_respects_packs(
    case: tuple[PlanogramSlot, Product, int | None],
) -> None:
    slot, product, on_hand = case
    line = pick_line(slot, product, on_hand)
    known = 0 if on_hand is None else min(on_hand, slot.capacity)
    room = slot.capacity - known
    need = max(0, slot.par - known)
    pack = product.pack_size
    assert 0 <= line.quantity <= room  # never above capacity
    if need == 0:
        assert line.quantity == 0
    elif "loose units" in line.note:
        assert room < pack  # only when not even one pack fits
        assert line.quantity == min(need, room)
    else:
        assert line.quantity % pack == 0  # whole packs
        if "capped" in line.note:
            assert room - line.quantity < pack  # as many packs as fit
        elif known == 0 and 2 * need < pack:
            assert line.quantity == pack  # an empty selection gets one pack
        else:
            assert abs(line.quantity - need) * 2 <= pack  # nearest pack, halves up
    if known == 0:
        assert line.quantity > 0  # an empty selection is never left empty


@settings(max_examples=60)
@given(st.lists(st.lists(slot_and_stock(), min_size=1, max_size=4), min_size=1, max_size=4))
def test_van_totals_add_up_in_cases_and_loose_units(
    machines: list[list[tuple[PlanogramSlot, Product, int | None]]],
) -> None:
    catalogue: dict[str, Product] = {}
    lists = []
    for m, rows in enumerate(machines):
        pairs = []
        for k, (slot, drawn, on_hand) in enumerate(rows):
            product = catalogue.setdefault(drawn.sku, drawn)  # one product per sku
            s = PlanogramSlot(f"m{m}", f"S{k}", product.sku, slot.capacity, slot.par)
            pairs.append((s, on_hand))
        lists.append(machine_pick_list(f"m{m}", pairs, catalogue))
    totals = van_totals(lists, catalogue)
    by_sku: dict[str, int] = {}
    for pl in lists:
        for line in pl.lines:
            by_sku[line.sku] = by_sku.get(line.sku, 0) + line.quantity
    assert {t.sku: t.units for t in totals} == {k: v for k, v in by_sku.items() if v}
    for t in totals:
        case = catalogue[t.sku].case_quantity
        assert t.cases * case + t.loose_units == t.units
        assert 0 <= t.loose_units < case


# --- routes ---------------------------------------------------------------------------


@st.composite
def routing_problems(draw: st.DrawFn) -> RoutingProblem:
    n = draw(st.integers(1, 7))
    points = draw(
        st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=n + 1, max_size=n + 1)
    )
    ids = ("depot", *(f"s{i}" for i in range(n)))
    dist = tuple(tuple(500 * (abs(a[0] - b[0]) + abs(a[1] - b[1])) for b in points) for a in points)
    dur = tuple(tuple(d // 5 for d in row) for row in dist)  # 5 m/s
    matrix = TravelMatrix(ids, dist, dur)
    stops = []
    for i in range(n):
        early = draw(st.integers(0, 20_000))
        stops.append(
            StopSpec(
                stop_id=f"s{i}",
                location=f"s{i}",
                demand=(draw(st.integers(0, 30)), draw(st.integers(0, 3_000))),
                service=draw(st.integers(0, 1_800)),
                tw_early=early,
                tw_late=early + draw(st.integers(0, 20_000)),
                required=draw(st.booleans()),
                prize=draw(st.integers(0, 50_000)),
            )
        )
    vehicles = []
    for v in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, 10_000))
        vehicles.append(
            VehicleSpec(
                vehicle_id=f"v{v}",
                capacity=(draw(st.integers(10, 80)), draw(st.sampled_from([NO_LIMIT, 5_000]))),
                shift_start=start,
                shift_end=start + draw(st.integers(3_600, 40_000)),
                unit_distance_cost=draw(st.integers(1, 3)),
                fixed_cost=draw(st.integers(0, 20_000)),
                count=draw(st.integers(1, 2)),
            )
        )
    return RoutingProblem(matrix, "depot", tuple(vehicles), tuple(stops))


@SLOW
@given(routing_problems(), st.integers(0, 3))
def test_every_returned_route_is_feasible(problem: RoutingProblem, seed: int) -> None:
    result = solve_routes(problem, time_limit_s=0.05, seed=seed)
    assert check_routes(problem, result) == []


# --- whole day plans ------------------------------------------------------------------

NOW = datetime(2024, 3, 5, 20, tzinfo=TZ)
DAY = date(2024, 3, 6)


@st.composite
def fleets(draw: st.DrawFn) -> FleetSnapshot:
    catalogue = (
        Product("cola", case_quantity=24, pack_rule=PackRule.CASE, unit_margin=4_000),
        Product("chips", case_quantity=12, pack_rule=PackRule.HALF_CASE, unit_margin=3_000),
        Product("gum", case_quantity=20, unit_margin=1_500),
    )
    sites, slots, sales, obs = [], [], [], []
    for m in range(draw(st.integers(1, 6))):
        mid = f"m{m}"
        loc = LatLon(10.77 + draw(st.floats(-0.05, 0.05)), 106.7 + draw(st.floats(-0.05, 0.05)))
        opens = draw(st.integers(0, 14)) * 60
        access = TimeWindow(opens, opens + draw(st.integers(2, 12)) * 60)
        sites.append(MachineSite(mid, loc, access))
        last = NOW - timedelta(days=draw(st.integers(1, 10)))
        for k, product in enumerate(draw(st.lists(st.sampled_from(catalogue), min_size=1))):
            cap = draw(st.integers(5, 60))
            slot = PlanogramSlot(mid, f"{k}", product.sku, cap, draw(st.integers(1, cap)))
            slots.append(slot)
            obs.append(StockObservation(mid, slot.selection, last, draw(st.integers(0, cap))))
            per_day = draw(st.integers(0, 8))
            day = last
            while day < NOW and per_day:
                day += timedelta(hours=24 / per_day)
                if day < NOW:
                    sales.append(SaleRecord(mid, slot.selection, day))
    unit = draw(st.sampled_from(list(CapacityUnit)))
    vans = tuple(
        Van(
            f"van{v}",
            draw(st.integers(1, 12) if unit is CapacityUnit.CASES else st.integers(20, 200)),
            capacity_unit=unit,
            shift=TimeWindow(7 * 60, draw(st.integers(9, 18)) * 60),
            cost_per_km=5_000,
        )
        for v in range(draw(st.integers(1, 2)))
    )
    return FleetSnapshot(
        products=catalogue,
        slots=tuple(slots),
        sites=tuple(sites),
        depot=Depot("wh", LatLon(10.77, 106.70)),
        vans=vans,
        sales=tuple(sales),
        observations=tuple(obs),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), st.frozensets(st.sampled_from([f"m{i}" for i in range(6)])))
def test_day_plans_keep_vans_windows_and_shifts(fleet: FleetSnapshot, must: frozenset[str]) -> None:
    known = {s.machine_id for s in fleet.sites}
    cfg = PlanSettings(tz=TZ, must_visit=must & known, time_limit_s=0.05)
    plan = plan_day(DAY, fleet, NOW, cfg)
    assert check_day_plan(plan, fleet, cfg, NOW) == []
    routed = {s.machine_id for v in plan.vans for s in v.stops}
    chosen = {s.machine_id for s in plan.scores if s.chosen}
    assert routed | {d.stop_id for d in plan.dropped} == chosen
    assert must & known <= chosen


def test_the_checker_catches_broken_routes() -> None:
    """route_check must fail on a route that breaks each rule, or the properties prove nothing."""
    ids = ("depot", "a", "b")
    dist = ((0, 1000, 2000), (1000, 0, 1000), (2000, 1000, 0))
    matrix = TravelMatrix(ids, dist, tuple(tuple(d // 10 for d in row) for row in dist))
    stops = (StopSpec("a", "a", (4,), 60, 0, 5_000), StopSpec("b", "b", (4,), 60, 300, 400))
    problem = RoutingProblem(matrix, "depot", (VehicleSpec("v", (10,), 0, 10_000),), stops)
    result = solve_routes(problem, time_limit_s=0.05)
    assert check_routes(problem, result) == []
    [route] = result.routes
    first, second = route.visits

    def broken(**changes: object) -> list[str]:
        return check_routes(problem, replace(result, **changes))  # type: ignore[arg-type]

    early = replace(first, arrival=0, service_start=0, departure=60)
    assert any(
        "cannot before" in p for p in broken(routes=(replace(route, visits=(early, second)),))
    )
    late = replace(second, service_start=401, departure=461)
    assert any("serves at" in p for p in broken(routes=(replace(route, visits=(first, late)),)))
    tight = replace(problem, vehicles=(VehicleSpec("v", (7,), 0, 10_000),))
    assert any("capacity" in p for p in check_routes(tight, result))
    short = replace(problem, vehicles=(VehicleSpec("v", (10,), 0, route.end - 1),))
    assert any("after its shift" in p for p in check_routes(short, result))
    twice = replace(route, visits=(first, second, second))
    assert any("twice" in p for p in broken(routes=(twice,)))
    assert any("exactly" in p for p in broken(routes=()))


# --- stores: several units at one location ---------------------------------------------


@st.composite
def store_fleets(draw: st.DrawFn) -> FleetSnapshot:
    """A random fleet whose machines are spread over a few stores (or stand alone); a
    store's units mostly share coordinates, and their hours may or may not overlap."""
    fleet = draw(fleets())
    places = draw(
        st.lists(
            st.sampled_from(["", "st-a", "st-b"]),
            min_size=len(fleet.sites),
            max_size=len(fleet.sites),
        )
    )
    first: dict[str, MachineSite] = {}
    sites = []
    for site, place in zip(fleet.sites, places, strict=True):
        lead = first.setdefault(place, site) if place else site
        # Mostly the store's spot and hours; now and then a unit across the hall, or
        # one with hours of its own.
        where = lead.location if draw(st.integers(0, 3)) else site.location
        access = lead.access if draw(st.integers(0, 3)) else site.access
        sites.append(replace(site, location_id=place, location=where, access=access))
    return replace(fleet, sites=tuple(sites))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(store_fleets(), st.frozensets(st.sampled_from([f"m{i}" for i in range(6)]), min_size=2))
def test_a_store_is_visited_once_on_one_van_back_to_back(
    fleet: FleetSnapshot, must: frozenset[str]
) -> None:
    known = {s.machine_id for s in fleet.sites}
    cfg = PlanSettings(tz=TZ, must_visit=must & known, time_limit_s=0.05)
    plan = plan_day(DAY, fleet, NOW, cfg)
    assert plan.problem is not None
    assert plan.routing is not None
    assert check_routes(plan.problem, plan.routing) == []
    assert check_day_plan(plan, fleet, cfg, NOW) == []  # includes check_stores
    routed = {s.machine_id for v in plan.vans for s in v.stops}
    chosen = {s.machine_id for s in plan.scores if s.chosen}
    assert routed | {d.stop_id for d in plan.dropped} == chosen
    assert len(plan.dropped) == len({d.stop_id for d in plan.dropped})
    place = {s.machine_id: s.location_id or s.machine_id for s in fleet.sites}
    for stop in plan.stops:
        assert {place[m] for m in stop.machines} == {stop.location_id}
        split = any(n.startswith(f"store {stop.location_id} ") for n in plan.notes)
        parts = [s for s in plan.stops if s.location_id == stop.location_id]
        assert split or len(parts) == 1
