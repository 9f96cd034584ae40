"""The plan report's per-store rollup: a store's units are grouped whatever van or stop
each got, their picks summed per product, and a store whose units the routes split is
named. Once through `vend restock plan` on a store filled by the importer and ingest,
once on a hand-made plan whose split is known."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from fleet.locations import LocationRef
from fleet.planning.masterdata import export_master_data, import_master_data, to_toml
from fleet.planning.picklists import MachinePickList, PickLine, ProductTotal
from fleet.planning.plan import DayPlan, StopSheet, VanSheet
from fleet.planning.plan_report import plan_document
from fleet.planning.routing import DroppedStop
from fleet.planning.source import load_snapshot
from fleet.store.db import make_engine
from fleet.store.schema import upgrade
from tests.fleet.planning.restock_data import NOW, PLAN_DAY, fill_store

runner = CliRunner()
STORE_UNITS = ("vm-a", "vm-b")
STORE_TOML = """
[[locations]]
id = "st-1"
name = "Siêu thị tự động"
kind = "store"
route_id = "r1"
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The restocking fleet, with vm-a and vm-b moved into one store the way an operator
    would: export, edit, import."""
    folder = tmp_path_factory.mktemp("stores")
    url = f"sqlite:///{folder / 'fleet.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    fill_store(engine, folder / "master")
    dump = export_master_data(engine)
    for site in dump["sites"]:
        if site["machine_id"] in STORE_UNITS:
            site["location_id"] = "st-1"
    edited = folder / "edited.toml"
    edited.write_text(to_toml({"sites": dump["sites"]}) + STORE_TOML, encoding="utf-8")
    import_master_data(engine, [edited])
    engine.dispose()
    return url


def plan(db: str, *extra: str) -> Any:
    args = ["restock", "plan", "--db", db, "--date", PLAN_DAY, "--now", NOW.isoformat()]
    must = ["--must-visit", ",".join(STORE_UNITS)]
    return runner.invoke(app, [*args, *must, "--time-limit", "1", *extra])


def _stops(doc: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {s["machine_id"]: (van["van_id"], s) for van in doc["routes"] for s in van["stops"]}


def test_plan_json_rolls_picks_up_per_store(db: str) -> None:
    result = plan(db, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    stops = _stops(doc)
    stores = {s["location_id"]: s for s in doc["stores"]}
    store = stores["st-1"]
    assert (store["kind"], store["name"]) == ("store", "Siêu thị tự động")
    assert sorted(store["machines"]) == sorted(STORE_UNITS)  # both must-visit, both routed
    expected: Counter[str] = Counter()
    for machine in STORE_UNITS:
        for line in stops[machine][1]["picks"]:
            expected[line["sku"]] += line["quantity"]
    assert {p["sku"]: p["units"] for p in store["picks"]} == {
        sku: n for sku, n in expected.items() if n
    }
    assert store["units"] == sum(stops[m][1]["units"] for m in STORE_UNITS)
    # The planner routes the store as one stop: one van, one unit right after the other.
    vans = {stops[m][0] for m in STORE_UNITS}
    numbers = sorted(stops[m][1]["stop"] for m in STORE_UNITS)
    assert len(vans) == 1
    assert numbers[1] == numbers[0] + 1
    assert store["together"] is True
    assert not any("st-1" in note for note in doc["notes"])
    assert {stops[m][1]["location_id"] for m in STORE_UNITS} == {"st-1"}
    # Every other routed machine is its own site.
    for machine in set(stops) - set(STORE_UNITS):
        assert stores[machine]["machines"] == [machine]
        assert stores[machine]["kind"] == "site"


def test_the_snapshot_carries_each_sites_store(db: str) -> None:
    engine = make_engine(db)
    try:
        snap = load_snapshot(engine, NOW)
    finally:
        engine.dispose()
    assert {s.machine_id: s.location_id for s in snap.fleet.sites} == {
        "vm-a": "st-1",
        "vm-b": "st-1",
        "vm-d": "",
    }


def test_plan_csv_names_each_units_store(db: str, tmp_path: Path) -> None:
    result = plan(db, "--json", "--csv", str(tmp_path))
    assert result.exit_code == 0, result.output
    with (tmp_path / "picklists.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with (tmp_path / "visits.csv").open(encoding="utf-8") as handle:
        visits = list(csv.DictReader(handle))
    assert {r["location_id"] for r in rows if r["machine_id"] in STORE_UNITS} == {"st-1"}
    others = [r for r in rows + visits if r["machine_id"] not in STORE_UNITS]
    assert all(r["location_id"] == r["machine_id"] for r in others)
    assert {v["location_id"] for v in visits if v["machine_id"] in STORE_UNITS} == {"st-1"}


def test_plan_tables_print_the_store_pick_totals(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    result = plan(db)
    assert result.exit_code == 0, result.output
    assert "Pick totals per store" in result.stdout
    assert "st-1 Siêu thị tự động" in result.stdout
    # The van's stop table names each unit's store in a column of its own.
    assert re.search(r"vm-b\s*│\s*st-1\s*│", result.stdout), result.stdout
    assert "(apart)" not in result.stdout


# --- a hand-made plan: the split is known -------------------------------------------------

T = datetime(2026, 3, 11, 1, 0, tzinfo=UTC)


def _stop(machine: str, at: datetime, picks: dict[str, int]) -> StopSheet:
    lines = tuple(
        PickLine(machine, f"S{k}", sku, 0, qty, qty, qty, qty, 1)
        for k, (sku, qty) in enumerate(picks.items())
    )
    return StopSheet(
        machine, at, at, at + timedelta(minutes=10), MachinePickList(machine, lines), ()
    )


def _van(van_id: str, stops: list[StopSheet]) -> VanSheet:
    return VanSheet(
        van_id,
        T,
        T + timedelta(hours=8),
        1000,
        0,
        tuple(stops),
        (ProductTotal("cola", "Cola", 0, 0, 0), ProductTotal("tea", "Trà", 0, 0, 0)),
        sum(s.picks.units for s in stops),
    )


def test_a_store_split_over_vans_is_summed_and_named() -> None:
    day_plan = DayPlan(
        day=date(2026, 3, 11),
        made_at=T,
        scores=(),
        vans=(
            _van("v1", [_stop("u1", T, {"cola": 5}), _stop("lone", T, {"tea": 1})]),
            _van("v2", [_stop("u2", T, {"cola": 7, "tea": 2, "chips": 0})]),
        ),
        dropped=(DroppedStop("u3", required=False, prize=0, reason="van full"),),
        problems=(),
        feasible=True,
    )
    store = LocationRef("st", "r1", "store", "Store", declared=True)
    doc = plan_document(
        day_plan,
        depot_id="wh",
        timezone="UTC",
        notes=("given",),
        locations={"u1": store, "u2": store, "u3": store},
    )
    lone, st = doc["stores"]  # by location id
    assert (st["location_id"], st["machines"], st["dropped"]) == ("st", ["u1", "u2"], ["u3"])
    assert st["picks"] == [
        {"sku": "cola", "name": "Cola", "units": 12},
        {"sku": "tea", "name": "Trà", "units": 2},
    ]
    assert (st["units"], st["together"]) == (14, False)
    assert [(v["van_id"], v["stop"]) for v in st["visits"]] == [("v1", 1), ("v2", 1)]
    assert (lone["location_id"], lone["kind"], lone["together"]) == ("lone", "site", True)
    assert doc["notes"][0] == "given"
    assert doc["notes"][1].startswith("store st: its units are visited apart (u1 van v1 stop 1")
    assert "u3 not routed" in doc["notes"][1]
    assert len(doc["notes"]) == 2


def test_a_document_without_locations_groups_nothing() -> None:
    day_plan = DayPlan(
        day=date(2026, 3, 11),
        made_at=T,
        scores=(),
        vans=(_van("v1", [_stop("a", T, {"cola": 1}), _stop("b", T, {"cola": 2})]),),
        dropped=(),
        problems=(),
        feasible=True,
    )
    doc = plan_document(day_plan, depot_id="wh", timezone="UTC")
    assert [(s["location_id"], s["units"]) for s in doc["stores"]] == [("a", 1), ("b", 2)]
    assert doc["notes"] == []


def test_without_locations_the_plans_own_stores_group_and_its_notes_carry_over() -> None:
    day_plan = DayPlan(
        day=date(2026, 3, 11),
        made_at=T,
        scores=(),
        vans=(_van("v1", [_stop("a", T, {"cola": 1}), _stop("b", T, {"cola": 2})]),),
        dropped=(DroppedStop("c", required=False, prize=0, reason="no room"),),
        problems=(),
        feasible=True,
        notes=("store st is served as 2 stops: ...",),
        locations={"a": "st", "b": "st", "c": "st"},
    )
    doc = plan_document(day_plan, depot_id="wh", timezone="UTC", notes=("given",))
    [store] = doc["stores"]
    assert (store["location_id"], store["machines"], store["dropped"]) == ("st", ["a", "b"], ["c"])
    assert store["together"] is True  # a unit left out does not make the visit "apart"
    assert [s["location_id"] for s in doc["routes"][0]["stops"]] == ["st", "st"]
    assert doc["dropped"][0]["location_id"] == "st"
    assert doc["notes"] == ["given", "store st is served as 2 stops: ..."]
