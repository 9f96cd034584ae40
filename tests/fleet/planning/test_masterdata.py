"""Master-data import/export: TOML and CSV, errors that name file, line and field, all or
nothing, planogram replacement, and round trips through both formats."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from fleet.planning.masterdata import (
    MasterData,
    MasterDataError,
    export_master_data,
    import_master_data,
    read_files,
    to_toml,
    write_csvs,
)
from fleet.store.db import make_engine
from fleet.store.planning_models import planogram_slots, products
from fleet.store.schema import upgrade
from tests.fleet.planning.restock_data import write_master


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _fresh(tmp_path: Path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / name}")
    upgrade(engine)
    return engine


def test_import_then_export_round_trips_through_toml_and_csv(
    engine: Engine, tmp_path: Path
) -> None:
    counts = import_master_data(engine, write_master(tmp_path / "in"))
    assert counts == {"products": 2, "depots": 1, "vans": 2, "sites": 3, "planogram": 6}
    dump = export_master_data(engine)
    cola = dump["products"][1]
    assert cola == {
        "sku": "cola",
        "name": "Cola 330ml",
        "case_quantity": 24,
        "pack_rule": "case",
        "shelf_life_days": 270,
        "unit_cost": 6000,
        "unit_margin": 4000,
        "currency": "VND",  # inherited from the file's top-level currency
    }
    assert dump["vans"][0]["shift_start"] == "06:00"
    vm_b = next(s for s in dump["sites"] if s["machine_id"] == "vm-b")
    assert vm_b["weights"] == {"min_score": 20.0, "max_days_between_visits": 7.0}
    assert dump["products"][0]["name"] == "Khoai tây chiên"

    toml_file = tmp_path / "out.toml"
    toml_file.write_text(to_toml(dump), encoding="utf-8")
    again = _fresh(tmp_path, "toml.sqlite")
    import_master_data(again, [toml_file])
    assert export_master_data(again) == dump

    write_csvs(dump, tmp_path / "csv")
    third = _fresh(tmp_path, "csv.sqlite")
    import_master_data(third, [tmp_path / "csv"])  # a folder: every CSV in it
    assert export_master_data(third) == dump


def test_every_problem_is_named_with_file_line_and_field(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        """\
currency = "VND"

[[products]]
sku = "cola"
case_quantity = 24

[[products]]
sku = "chips"
case_quantity = 0
pack_rule = "crate"

[[vans]]
id = "v1"
depot = "wh"
capacity = 100
shift_start = "18:00"
shift_end = "06:00"

[[depots]]
id = "wh"
lat = 91
lon = 106.7
colour = "red"
""",
        encoding="utf-8",
    )
    planogram = tmp_path / "planogram.csv"
    planogram.write_text(
        "machine_id,selection,sku,capacity,par\nvm-1,A1,cola,10,12\nvm-1,A2,cola,ten,5\n"
        "vm-1,A1,cola,10,8\n",
        encoding="utf-8",
    )
    with pytest.raises(MasterDataError) as caught:
        read_files([fleet, planogram])
    problems = "\n".join(caught.value.problems)
    assert f"{fleet}:7: products #2: field case_quantity: must be at least 1, got 0" in problems
    assert f"{fleet}:7: products #2: field pack_rule: expected one of unit, half_case, case" in (
        problems
    )
    assert f"{fleet}:12: vans #1: field shift_end: shift ends before it starts" in problems
    assert f"{fleet}:19: depots #1: field lat: must be between -90 and 90, got 91" in problems
    assert f"{fleet}:19: depots #1: unknown field 'colour'" in problems
    assert f"{planogram}:2: planogram #1: field par: par 12 is above capacity 10" in problems
    assert f"{planogram}:3: planogram #2: field capacity: expected a whole number, got 'ten'" in (
        problems
    )
    assert len(caught.value.problems) == 7  # the duplicate vm-1/A1 is a row that failed


def test_duplicates_missing_fields_and_unknown_files(tmp_path: Path) -> None:
    depots = tmp_path / "depots.csv"
    depots.write_text("id,lat,lon\nwh,10,106\nwh,11,107\nwh3,,106\n", encoding="utf-8")
    other = tmp_path / "machines.csv"
    other.write_text("id\nx\n", encoding="utf-8")
    with pytest.raises(MasterDataError) as caught:
        read_files([depots, other, tmp_path / "missing.toml"])
    problems = caught.value.problems
    assert f"{depots}:3: depots #2: wh is already defined at {depots}:2: depots #1" in problems
    assert f"{depots}:4: depots #3: field lat: missing (required)" in problems
    assert any(p.startswith(f"{other}: cannot tell which entity") for p in problems)
    assert f"{tmp_path / 'missing.toml'}: no such file" in problems


def test_references_are_checked_and_nothing_is_written_on_error(
    engine: Engine, tmp_path: Path
) -> None:
    products_csv = tmp_path / "products.csv"
    products_csv.write_text("sku,currency\ncola,VND\n", encoding="utf-8")
    planogram = tmp_path / "planogram.csv"
    planogram.write_text(
        "machine_id,selection,sku,capacity,par\nvm-9,A1,tea,10,8\n", encoding="utf-8"
    )
    vans = tmp_path / "vans.csv"
    vans.write_text(
        "id,depot,capacity,shift_start,shift_end,currency\nv1,nowhere,10,06:00,18:00,VND\n",
        encoding="utf-8",
    )
    with pytest.raises(MasterDataError) as caught:
        import_master_data(engine, [products_csv, planogram, vans])
    assert caught.value.problems == (
        f"{planogram}:2: planogram #1: field sku: unknown product 'tea'",
        f"{planogram}:2: planogram #1: field machine_id: 'vm-9' has no site",
        f"{vans}:2: vans #1: field depot: unknown depot 'nowhere'",
    )
    assert _count(engine, products) == 0  # the good products row was not written either


def test_a_machines_planogram_is_replaced_whole(engine: Engine, tmp_path: Path) -> None:
    import_master_data(engine, write_master(tmp_path / "in"))
    planogram = tmp_path / "new" / "planogram.csv"
    planogram.parent.mkdir()
    planogram.write_text(
        "machine_id,selection,sku,capacity,par\nvm-a,C1,chips,30,20\n", encoding="utf-8"
    )
    import_master_data(engine, [planogram])
    with engine.connect() as conn:
        rows = conn.execute(select(planogram_slots.c.machine_id, planogram_slots.c.selection)).all()
    keys = sorted((r.machine_id, r.selection) for r in rows)
    assert ("vm-a", "C1") in keys
    assert ("vm-a", "A1") not in keys  # the old slots of vm-a are gone
    assert [k for k in keys if k[0] == "vm-b"] == [("vm-b", "A1"), ("vm-b", "B1")]


def _outcome(path: Path) -> MasterData | MasterDataError:
    try:
        return read_files([path])
    except MasterDataError as exc:
        return exc


CELL = st.text(max_size=12)  # no lone surrogates: the files are UTF-8


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cells=st.lists(CELL, min_size=5, max_size=9))
def test_garbage_csv_only_ever_raises_master_data_errors(tmp_path: Path, cells: list[str]) -> None:
    path = tmp_path / "planogram.csv"
    quoted = ",".join('"' + c.replace('"', '""') + '"' for c in cells)
    path.write_text("machine_id,selection,sku,capacity,par\n" + quoted + "\n", encoding="utf-8")
    outcome = _outcome(path)
    if isinstance(outcome, MasterDataError):
        assert outcome.problems
        assert all(p.startswith(str(path)) for p in outcome.problems)
    elif not any(c.strip() for c in cells):
        assert outcome.rows["planogram"] == []  # a blank row is skipped like a blank line
    else:
        ((origin, row),) = outcome.rows["planogram"]
        assert 1 <= row["par"] <= row["capacity"]
        assert origin.line == 2


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_garbage_toml_only_ever_raises_master_data_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(text, encoding="utf-8")
    outcome = _outcome(path)
    if isinstance(outcome, MasterDataError):
        assert outcome.problems
