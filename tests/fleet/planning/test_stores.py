"""A store's units are one stop: grouping, windows and riders on their own, then whole day
plans where a store's units must come out on one van, once, back to back."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fleet.planning.model import (
    Depot,
    LatLon,
    MachineSite,
    PackRule,
    PlanningError,
    PlanogramSlot,
    Product,
    SaleRecord,
    StockObservation,
    TimeWindow,
    Van,
)
from fleet.planning.plan import FleetSnapshot, PlanSettings, plan_day
from fleet.planning.scoring import ScoringWeights
from fleet.planning.stores import StoreStop, UnitVisit, group_stops, store_window
from tests.fleet.planning.route_check import check_day_plan, check_routes, check_stores


def unit(
    mid: str,
    window: tuple[int, int] = (0, 86_400),
    service: int = 600,
    load: int = 5,
    *,
    rider: bool = False,
    required: bool = False,
) -> UnitVisit:
    return UnitVisit(mid, (load, 0), service, *window, required=required, prize=100, rider=rider)


def any_van(demand: tuple[int, ...]) -> bool:
    return demand[0] <= 100


# --- grouping ------------------------------------------------------------------------


def test_the_window_lets_every_unit_start_inside_its_own_hours() -> None:
    a = unit("a", (500, 1000), service=600)
    b = unit("b", (0, 400), service=300)
    [stop] = group_stops({"st": [a, b]}, any_van).stops
    assert stop.machines == ("b", "a")  # the one closing first goes first
    assert stop.offsets == (0, 300)
    assert stop.window == (200, 400)
    for start in stop.window:  # both ends keep each unit inside its own window
        for u, offset in zip(stop.units, stop.offsets, strict=True):
            assert u.tw_early <= start + offset <= u.tw_late
    assert stop.service_s == 900
    assert stop.demand == (10, 0)


def test_hours_that_never_meet_have_no_window() -> None:
    assert store_window([unit("a", (0, 100)), unit("b", (5_000, 6_000))]) is None
    with pytest.raises(PlanningError, match="do not overlap"):
        _ = StoreStop("st", "st", (unit("a", (0, 100)), unit("b", (5_000, 6_000)))).window


def test_riders_join_the_store_visit_and_only_the_store_decides() -> None:
    core = unit("core", required=True)
    soon = unit("soon", rider=True)
    grouping = group_stops({"st": [soon, core], "solo": [unit("solo", rider=True)]}, any_van)
    by_id = {s.stop_id: s for s in grouping.stops}
    assert set(by_id["st"].machines) == {"core", "soon"}
    assert by_id["st"].required
    assert by_id["st"].prize == 100  # the rider's prize; the required unit's is moot
    # A store of riders only is a may-go stop of its own, all riders together.
    assert by_id["solo"].machines == ("solo",)
    assert not by_id["solo"].required
    assert grouping.left_out == ()
    assert grouping.notes == ()


def test_a_rider_that_would_break_the_window_or_the_load_is_left_out_with_a_reason() -> None:
    core = unit("core", (0, 100), service=600)
    late = unit("late", (200, 300), rider=True)
    heavy = unit("heavy", load=99, rider=True)
    grouping = group_stops({"st": [core, late, heavy]}, any_van)
    [stop] = grouping.stops
    assert stop.machines == ("core",)
    assert {lo.machine_id for lo in grouping.left_out} == {"late", "heavy"}
    assert all("store st" in lo.reason for lo in grouping.left_out)


def test_core_units_that_cannot_share_a_visit_are_split_and_noted() -> None:
    early = unit("early", (0, 3_600), required=True)
    late = unit("late", (50_000, 54_000), required=True)
    grouping = group_stops({"st": [late, early]}, any_van)
    assert [(s.stop_id, s.machines) for s in grouping.stops] == [
        ("st", ("early",)),
        ("st#2", ("late",)),
    ]
    [note] = grouping.notes
    assert note.startswith("store st is served as 2 stops")
    assert "access hours leave no common time" in note


def test_a_store_too_big_for_one_van_is_split_by_load() -> None:
    units = [unit(f"u{k}", load=40, required=True) for k in range(3)]
    grouping = group_stops({"st": units}, any_van)
    assert [len(s.units) for s in grouping.stops] == [2, 1]
    assert "more than one van carries" in grouping.notes[0]


def test_a_split_part_may_not_take_another_location_id() -> None:
    units = [unit("a", (0, 10), required=True), unit("b", (9_000, 9_010), required=True)]
    with pytest.raises(PlanningError, match="'st#2' is already a location id"):
        group_stops({"st": units}, any_van, taken=frozenset({"st", "st#2"}))


# --- whole day plans -----------------------------------------------------------------

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = date(2024, 3, 6)
NOW = datetime(2024, 3, 5, 18, tzinfo=TZ)
COLA = Product("cola", case_quantity=24, pack_rule=PackRule.CASE, unit_margin=4_000)
CHIPS = Product("chips", case_quantity=12, unit_margin=3_000)
STORE = LatLon(10.79, 106.72)
# machine -> (location id, where, units sold per day per selection, stock now)
MACHINES = {
    "st-busy": ("st", STORE, 12, 0),  # sold out: chosen on its own
    "st-soon": ("st", STORE, 4, 6),  # fine tomorrow, empty in two days: a may-go
    "st-quiet": ("st", STORE, 0, 30),  # nothing to do: stays out
    "lone": ("", LatLon(10.76, 106.69), 12, 0),
    "far": ("", LatLon(10.74, 106.73), 12, 0),
}
# st-soon counts only sell-outs and lost sales, so "due in two days" is crisp.
SOON = ScoringWeights(depletion_points=0.0, days_since_visit_points=0.0, min_score=15.0)
SETTINGS = PlanSettings(tz=TZ, time_limit_s=0.5, overrides={"st-soon": SOON})


def store_fleet() -> FleetSnapshot:
    slots, sites, sales, obs = [], [], [], []
    for mid, (location, where, per_day, stock) in MACHINES.items():
        sites.append(MachineSite(mid, where, TimeWindow(6 * 60, 20 * 60), location_id=location))
        for selection, sku in (("A1", "cola"), ("B1", "chips")):
            slots.append(PlanogramSlot(mid, selection, sku, 40, 36))
            obs.append(StockObservation(mid, selection, NOW - timedelta(hours=1), stock))
            for day in range(-28, 0):
                for k in range(per_day):
                    at = NOW.replace(hour=8) + timedelta(days=day, hours=10 * k / per_day)
                    sales.append(SaleRecord(mid, selection, at))
    return FleetSnapshot(
        products=(COLA, CHIPS),
        slots=tuple(slots),
        sites=tuple(sites),
        depot=Depot("wh", LatLon(10.77, 106.70)),
        vans=(Van("v1", 400, cost_per_km=5_000), Van("v2", 400, cost_per_km=5_000)),
        sales=tuple(sales),
        observations=tuple(obs),
    )


@pytest.fixture(scope="module")
def store_plan():  # type: ignore[no-untyped-def]
    return plan_day(DAY, store_fleet(), NOW, SETTINGS)


def _served(plan) -> dict[str, tuple[str, int]]:  # type: ignore[no-untyped-def]
    return {s.machine_id: (v.van_id, k) for v in plan.vans for k, s in enumerate(v.stops)}


def test_a_store_is_one_router_stop_with_its_due_soon_unit(store_plan) -> None:  # type: ignore[no-untyped-def]
    soon = store_plan.score_of("st-soon")
    assert "due_soon" in {r.code for r in soon.reasons}
    [stop] = [s for s in store_plan.stops if s.location_id == "st"]
    assert set(stop.machines) == {"st-busy", "st-soon"}
    assert "store_ride_along" in {r.code for r in soon.reasons}
    assert not store_plan.score_of("st-quiet").chosen
    [node] = [s for s in store_plan.problem.stops if s.stop_id == "st"]
    assert node.service == sum(u.service_s for u in stop.units)
    assert node.demand == stop.demand


def test_the_store_units_ride_one_van_back_to_back(store_plan) -> None:  # type: ignore[no-untyped-def]
    served = _served(store_plan)
    (van_a, at_a), (van_b, at_b) = served["st-busy"], served["st-soon"]
    assert van_a == van_b
    assert abs(at_a - at_b) == 1
    sheet = next(v for v in store_plan.vans if v.van_id == van_a)
    first, second = sorted((sheet.stops[at_a], sheet.stops[at_b]), key=lambda s: s.arrival)
    assert second.arrival == second.service_start == first.departure  # no driving between
    assert {first.location_id, second.location_id} == {"st"}
    assert "st-quiet" not in served


def test_the_independent_checkers_accept_the_store_plan(store_plan) -> None:  # type: ignore[no-untyped-def]
    assert store_plan.feasible, store_plan.problems
    assert check_routes(store_plan.problem, store_plan.routing) == []
    assert check_day_plan(store_plan, store_fleet(), SETTINGS, NOW) == []


def test_the_store_checker_catches_a_store_served_apart(store_plan) -> None:  # type: ignore[no-untyped-def]
    """Moving one unit of the store to the end of its van must be caught."""
    served = _served(store_plan)
    van_id, _ = served["st-busy"]
    sheet = next(v for v in store_plan.vans if v.van_id == van_id)
    other = [s for s in sheet.stops if s.location_id != "st"]
    if not other:  # the van serves only the store: give it another van's stop
        other = [s for v in store_plan.vans if v.van_id != van_id for s in v.stops][:1]
    store = [s for s in sheet.stops if s.location_id == "st"]
    apart = replace(sheet, stops=(store[0], *other, *store[1:]))
    broken = replace(store_plan, vans=(apart,))
    problems = check_stores(broken, store_fleet())
    assert any("not one right after another" in p for p in problems)


def test_a_store_whose_hours_never_meet_is_split_with_a_note() -> None:
    fleet = store_fleet()
    sites = tuple(
        replace(s, access=TimeWindow(7 * 60, 8 * 60))
        if s.machine_id == "st-busy"
        else replace(s, access=TimeWindow(15 * 60, 16 * 60))
        if s.machine_id == "st-soon"
        else s
        for s in fleet.sites
    )
    fleet = replace(fleet, sites=sites)
    must = frozenset({"st-busy", "st-soon"})
    cfg = replace(SETTINGS, must_visit=must)
    plan = plan_day(DAY, fleet, NOW, cfg)
    [note] = [n for n in plan.notes if n.startswith("store st ")]
    assert "no common time" in note
    assert {s.stop_id for s in plan.stops if s.location_id == "st"} == {"st", "st#2"}
    assert must <= set(_served(plan))
    assert check_day_plan(plan, fleet, cfg, NOW) == []


def test_units_without_a_location_stay_stops_of_their_own() -> None:
    fleet = store_fleet()
    fleet = replace(fleet, sites=tuple(replace(s, location_id="") for s in fleet.sites))
    plan = plan_day(DAY, fleet, NOW, SETTINGS)
    assert all(len(s.units) == 1 for s in plan.stops)
    assert all(s.stop_id == s.machines[0] for s in plan.stops)
    assert check_day_plan(plan, fleet, SETTINGS, NOW) == []
