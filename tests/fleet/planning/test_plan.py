"""The whole pipeline on a small hand-made fleet: five machines, two vans."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fleet.planning.model import (
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
    StockObservation,
    TimeWindow,
    Van,
)
from fleet.planning.plan import FleetSnapshot, PlanSettings, plan_day
from fleet.planning.scoring import Decision

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = date(2024, 3, 6)
NOW = datetime(2024, 3, 5, 18, tzinfo=TZ)
VISIT = NOW - timedelta(days=3)
COLA = Product("cola", "Cola 330ml", case_quantity=24, pack_rule=PackRule.CASE, unit_margin=4_000)
CHIPS = Product("chips", "Chips", case_quantity=12, unit_margin=3_000)

# machine -> (lat offset, lon offset, units sold per day per slot, telemetry)
MACHINES = {
    "busy": (0.010, 0.000, 14, True),
    "steady": (0.000, 0.012, 5, True),
    "quiet": (-0.008, 0.004, 0, True),
    "listed": (0.006, -0.010, 0, True),
    "dexonly": (-0.004, -0.006, 8, False),
}
ACCESS = {"busy": TimeWindow(7 * 60, 12 * 60)}


def build() -> FleetSnapshot:
    depot = Depot("wh", LatLon(10.77, 106.70))
    slots, sites, sales, obs, dex = [], [], [], [], []
    for mid, (dlat, dlon, per_day, live) in MACHINES.items():
        loc = LatLon(10.77 + dlat, 106.70 + dlon)
        sites.append(
            MachineSite(mid, loc, ACCESS.get(mid, TimeWindow(6 * 60, 20 * 60)), has_telemetry=live)
        )
        slots += [
            PlanogramSlot(mid, "A1", "cola", 40, 36),
            PlanogramSlot(mid, "B1", "chips", 20, 16),
        ]
        obs += [StockObservation(mid, "A1", VISIT, 36), StockObservation(mid, "B1", VISIT, 16)]
        counter = 0
        for day in range(-28, 0):
            for k in range(per_day):
                at = NOW.replace(hour=9) + timedelta(days=day, hours=8 * k / max(per_day, 1))
                counter += 1
                if live:
                    sales += [SaleRecord(mid, "A1", at), SaleRecord(mid, "B1", at)]
            if not live and day >= -4:
                when = NOW.replace(hour=20) + timedelta(days=day)
                dex.append(DexReading(mid, when, "board-1", {"A1": counter, "B1": counter}))
    return FleetSnapshot(
        products=(COLA, CHIPS),
        slots=tuple(slots),
        sites=tuple(sites),
        depot=depot,
        vans=(
            Van("van-1", 150, shift=TimeWindow(7 * 60, 17 * 60), cost_per_km=5_000),
            Van("van-2", 150, shift=TimeWindow(7 * 60, 17 * 60), cost_per_km=5_000),
        ),
        sales=tuple(sales),
        observations=tuple(obs),
        dex_reads=tuple(dex),
        cash=(CashLevel("steady", NOW, cash_box_fill=0.95),),
    )


@pytest.fixture(scope="module")
def plan():  # type: ignore[no-untyped-def]
    settings = PlanSettings(tz=TZ, must_visit=frozenset({"listed"}), time_limit_s=1.0)
    return plan_day(DAY, build(), NOW, settings)


def test_every_machine_has_a_decision_with_reasons(plan) -> None:  # type: ignore[no-untyped-def]
    decisions = {s.machine_id: s.decision for s in plan.scores}
    assert decisions == {
        "busy": Decision.OPTIONAL,
        "steady": Decision.REQUIRED,  # cash box 95 % full
        "quiet": Decision.REJECTED,
        "listed": Decision.REQUIRED,
        "dexonly": Decision.OPTIONAL,
    }
    assert "sold_out" in {r.code for r in plan.score_of("busy").reasons}
    assert "cash_box_full" in {r.code for r in plan.score_of("steady").reasons}
    assert plan.score_of("listed").reasons[0].code == "must_visit"
    assert "below_threshold" in {r.code for r in plan.score_of("quiet").reasons}
    assert all(s.reasons for s in plan.scores)


def test_chosen_machines_are_routed_inside_windows_and_shifts(plan) -> None:  # type: ignore[no-untyped-def]
    assert plan.feasible, plan.problems
    routed = {stop.machine_id: stop for van in plan.vans for stop in van.stops}
    assert set(routed) == {"busy", "steady", "listed", "dexonly"}
    day_start = datetime(2024, 3, 6, tzinfo=TZ)
    busy = routed["busy"]
    assert day_start + timedelta(hours=7) <= busy.service_start <= day_start + timedelta(hours=12)
    for van in plan.vans:
        assert van.depart >= day_start + timedelta(hours=7)
        assert van.back <= day_start + timedelta(hours=17)
        assert van.load_units <= 150
        times = [s.arrival for s in van.stops]
        assert times == sorted(times)
        assert van.distance_m > 0
        assert van.cost == van.distance_m * 5_000 // 1000


def test_pick_lists_fill_toward_par_by_pack_rule(plan) -> None:  # type: ignore[no-untyped-def]
    for van in plan.vans:
        totals = {t.sku: t.units for t in van.totals}
        summed: dict[str, int] = {}
        for stop in van.stops:
            for line in stop.picks.lines:
                summed[line.sku] = summed.get(line.sku, 0) + line.quantity
                assert (line.on_hand or 0) + line.quantity <= line.capacity
                if line.sku == "cola" and "loose" not in line.note:
                    assert line.quantity % 24 == 0
        assert {k: v for k, v in summed.items() if v} == totals
    busy = next(s for v in plan.vans for s in v.stops if s.machine_id == "busy")
    chips = next(line for line in busy.picks.lines if line.sku == "chips")
    assert chips.on_hand == 0
    assert chips.quantity == 16  # sold out: back to par exactly (unit pack rule)


def test_dex_only_machine_is_estimated_from_counter_deltas(plan) -> None:  # type: ignore[no-untyped-def]
    stop = next(s for v in plan.vans for s in v.stops if s.machine_id == "dexonly")
    cola = next(line for line in stop.picks.lines if line.sku == "cola")
    # 36 at the visit, 8/day for ~3.6 days until the planned arrival: about 7 left.
    assert cola.on_hand is not None
    assert 3 <= cola.on_hand <= 11


def test_impossible_must_visit_is_named_and_the_rest_still_planned() -> None:
    fleet = build()
    far = MachineSite("island", LatLon(10.0, 107.5), TimeWindow(7 * 60, 8 * 60))
    fleet = replace(
        fleet,
        slots=(*fleet.slots, PlanogramSlot("island", "A1", "cola", 40, 36)),
        sites=(*fleet.sites, far),
    )
    settings = PlanSettings(tz=TZ, must_visit=frozenset({"island"}), time_limit_s=0.5)
    plan = plan_day(DAY, fleet, NOW, settings)
    assert not plan.feasible
    [problem] = [p for p in plan.problems if p.stop_id == "island"]
    assert "window closes" in problem.reason
    assert {s.machine_id for v in plan.vans for s in v.stops} >= {"steady", "busy"}


def test_bad_input_is_a_planning_error() -> None:
    fleet = build()
    with pytest.raises(PlanningError, match="already over"):
        plan_day(date(2024, 3, 1), fleet, NOW, PlanSettings(tz=TZ))
    with pytest.raises(PlanningError, match="naive"):
        SaleRecord("m", "A1", datetime(2024, 1, 1))  # noqa: DTZ001
    with pytest.raises(PlanningError, match="par"):
        PlanogramSlot("m", "A1", "cola", 10, 12)
    assert UTC  # the module clock is only ever passed in
