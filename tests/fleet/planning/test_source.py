"""FleetSnapshot from the store (SQLite and PostgreSQL): master data through the importer,
telemetry through ingest, and the snapshot checked against what was sent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from fleet.ingest import Ingestor
from fleet.planning.masterdata import import_master_data
from fleet.planning.model import CapacityUnit, PackRule, TimeWindow
from fleet.planning.plan import PlanSettings, plan_day
from fleet.planning.source import SnapshotError, load_snapshot
from tests.fleet.conftest import body, message
from tests.fleet.planning.restock_data import (
    A_BASKET,
    A_CASH_FULL,
    A_LEVEL,
    A_SALES_A1,
    A_SNAPSHOT,
    B_EMPTY,
    B_SALES_A1,
    B_SNAPSHOT,
    B_VISIT,
    D_READS,
    D_SERIAL,
    D_VISIT,
    HOUR,
    NOW,
    fill_store,
)


@pytest.fixture
def filled(engine: Engine, tmp_path: Path) -> Engine:
    fill_store(engine, tmp_path / "master")
    return engine


def test_master_data_arrives_as_planner_inputs(filled: Engine) -> None:
    snap = load_snapshot(filled, NOW)
    fleet = snap.fleet
    cola = next(p for p in fleet.products if p.sku == "cola")
    assert (cola.case_quantity, cola.pack_rule, cola.unit_margin) == (24, PackRule.CASE, 4000)
    assert cola.shelf_life_days == 270
    assert {p.sku for p in fleet.products} == {"cola", "chips"}
    slots = {(s.machine_id, s.selection): s for s in fleet.slots}
    assert len(slots) == 6
    assert (slots["vm-a", "A1"].capacity, slots["vm-a", "A1"].par) == (40, 36)
    assert slots["vm-a", "A1"].core
    assert not slots["vm-d", "B1"].core
    sites = {s.machine_id: s for s in fleet.sites}
    assert sites["vm-a"].access == TimeWindow(7 * 60, 12 * 60)
    assert sites["vm-b"].service_fixed_min == 12.5
    assert sites["vm-b"].access == TimeWindow(0, 24 * 60)
    assert not sites["vm-d"].has_telemetry
    assert sites["vm-a"].has_telemetry
    assert fleet.depot.depot_id == "wh"
    assert fleet.depot.hours == TimeWindow(5 * 60, 22 * 60)
    assert [(v.van_id, v.capacity, v.fixed_cost) for v in fleet.vans] == [
        ("v1", 200, 0),
        ("v2", 200, 50_000),
    ]
    assert all(v.capacity_unit is CapacityUnit.UNITS for v in fleet.vans)
    assert fleet.vans[0].shift == TimeWindow(6 * 60, 18 * 60)
    assert set(snap.overrides) == {"vm-b"}
    assert snap.overrides["vm-b"].min_score == 20
    assert snap.overrides["vm-b"].max_days_between_visits == 7
    assert snap.routes == {"vm-a": "r1", "vm-b": "r1", "vm-d": "r2"}
    assert any("vm-x" in note for note in snap.notes)


def test_levels_alarms_and_visits_become_observations(filled: Engine) -> None:
    fleet = load_snapshot(filled, NOW).fleet
    seen = {(o.machine_id, o.selection, o.at, o.level, o.source) for o in fleet.observations}
    assert seen == {
        ("vm-a", "A1", A_LEVEL, 20, "telemetry"),  # the newest level wins
        ("vm-a", "B1", A_SNAPSHOT, 16, "telemetry"),
        ("vm-b", "A1", B_SNAPSHOT, 3, "telemetry"),
        ("vm-b", "B1", B_SNAPSHOT, 0, "telemetry"),
        ("vm-b", "A1", B_EMPTY, 0, "alarm"),  # empty alarm after the level
        ("vm-d", "A1", D_VISIT, 36, "visit"),  # DEX-only: filled to par at the visit
        ("vm-d", "B1", D_VISIT, 16, "visit"),
    }
    assert fleet.last_visits == {"vm-b": B_VISIT, "vm-d": D_VISIT}
    assert len(fleet.cash) == 1
    cash = fleet.cash[0]
    assert (cash.machine_id, cash.at, cash.cash_box_fill) == ("vm-a", A_CASH_FULL, 1.0)
    assert not cash.tubes_low  # raised and cleared before now


def _units(fleet: object, machine: str, selection: str, after: object = None) -> int:
    return sum(
        s.quantity
        for s in fleet.sales  # type: ignore[attr-defined]
        if (s.machine_id, s.selection) == (machine, selection) and (after is None or s.at > after)
    )


def test_sales_are_counted_once_on_the_right_side_of_each_level(filled: Engine) -> None:
    fleet = load_snapshot(filled, NOW).fleet
    assert all(s.at <= NOW for s in fleet.sales)
    assert _units(fleet, "vm-a", "A1") == len(A_SALES_A1)  # the late sale is left out
    assert _units(fleet, "vm-a", "A1", A_LEVEL) == sum(1 for at in A_SALES_A1 if at > A_LEVEL)
    assert _units(fleet, "vm-a", "A1", A_LEVEL) == 1
    assert _units(fleet, "vm-a", "B1") == 2  # one basket sale of two units
    assert _units(fleet, "vm-b", "A1") == len(B_SALES_A1)
    assert not any(s.machine_id == "vm-x" for s in fleet.sales)
    real = {*A_SALES_A1, A_BASKET, *B_SALES_A1}
    for record in fleet.sales:  # folded per hour, stamped with a real sale's time
        assert record.at in real


def test_dex_reads_of_offline_machines(filled: Engine) -> None:
    fleet = load_snapshot(filled, NOW).fleet
    reads = sorted(fleet.dex_reads, key=lambda r: r.at)
    assert [(r.machine_id, r.at, r.board_id) for r in reads] == [
        ("vm-d", at, D_SERIAL) for at, _, _ in D_READS
    ]
    assert [r.vends for r in reads] == [{"A1": a1, "B1": b1} for _, a1, b1 in D_READS]


def test_an_earlier_now_ignores_later_rows(filled: Engine) -> None:
    earlier = NOW - timedelta(days=3)  # after vm-d's visit, before vm-b's
    fleet = load_snapshot(filled, earlier).fleet
    assert all(s.at <= earlier for s in fleet.sales)
    assert _units(fleet, "vm-a", "A1") == sum(1 for at in A_SALES_A1 if at <= earlier)
    assert fleet.cash == ()
    assert fleet.last_visits == {"vm-d": D_VISIT}
    assert len(fleet.dex_reads) == sum(1 for at, _, _ in D_READS if at <= earlier)
    # Only the latest level is stored, and vm-a/A1's and vm-b's are after `earlier`.
    assert {(o.machine_id, o.selection) for o in fleet.observations} == {
        ("vm-a", "B1"),
        ("vm-d", "A1"),
        ("vm-d", "B1"),
    }


def test_the_snapshot_plans_and_the_sold_out_machine_is_chosen(filled: Engine) -> None:
    snap = load_snapshot(filled, NOW)
    plan = plan_day(
        (NOW + timedelta(days=1)).date(),
        snap.fleet,
        NOW,
        PlanSettings(overrides=snap.overrides, time_limit_s=0.5),
    )
    assert plan.score_of("vm-b").chosen
    assert set(plan.score_of("vm-b").sold_out) == {"A1", "B1"}
    assert plan.score_of("vm-a").decision.value == "required"  # full cash box


def test_query_count_does_not_grow_with_the_fleet(filled: Engine, tmp_path: Path) -> None:
    def queries() -> int:
        count = 0

        def seen(*_: object) -> None:
            nonlocal count
            count += 1

        event.listen(filled, "before_cursor_execute", seen)
        try:
            load_snapshot(filled, NOW)
        finally:
            event.remove(filled, "before_cursor_execute", seen)
        return count

    small = queries()
    sites = "machine_id,lat,lon,has_telemetry\n" + "".join(
        f"vm-{k:03d},10.77,106.7{k:02d},{'true' if k % 2 else 'false'}\n" for k in range(20)
    )
    planogram = "machine_id,selection,sku,capacity,par\n" + "".join(
        f"vm-{k:03d},A1,cola,40,30\n" for k in range(20)
    )
    (tmp_path / "sites.csv").write_text(sites, encoding="utf-8")
    (tmp_path / "planogram.csv").write_text(planogram, encoding="utf-8")
    import_master_data(filled, [tmp_path / "sites.csv", tmp_path / "planogram.csv"])
    sale = body("sale").model_copy(update={"selection": "A1"})
    Ingestor(filled, clock=lambda: NOW).ingest(
        [message(sale, 1, f"vm-{k:03d}", at=NOW - 3 * HOUR) for k in range(20)]
    )
    assert len(load_snapshot(filled, NOW).fleet.sites) == 23
    assert queries() == small


def test_unusable_stores_are_named(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no depots"):
        load_snapshot(engine, NOW)
    fill_store(engine, tmp_path / "master")
    with pytest.raises(SnapshotError, match="asked for 3 vans"):
        load_snapshot(engine, NOW, max_vans=3)
    with pytest.raises(SnapshotError, match="unknown depot"):
        load_snapshot(engine, NOW, depot_id="nowhere")
    with pytest.raises(SnapshotError, match="no machine sites on route"):
        load_snapshot(engine, NOW, routes=["r9"])
    with pytest.raises(SnapshotError, match="timezone-aware"):
        load_snapshot(engine, NOW.replace(tzinfo=None))
    only_r2 = load_snapshot(engine, NOW, routes=["r2"], max_vans=1)
    assert {s.machine_id for s in only_r2.fleet.sites} == {"vm-d"}
    assert [v.van_id for v in only_r2.fleet.vans] == ["v1"]
    depot = tmp_path / "depots.csv"
    depot.write_text("id,lat,lon\nwh2,10.8,106.7\n", encoding="utf-8")
    import_master_data(engine, [depot])
    with pytest.raises(SnapshotError, match=r"several depots \(wh, wh2\)"):
        load_snapshot(engine, NOW)
    with pytest.raises(SnapshotError, match="no vans at depot 'wh2'"):
        load_snapshot(engine, NOW, depot_id="wh2")
