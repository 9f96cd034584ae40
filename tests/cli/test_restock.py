"""`vend restock`: plan against a filled SQLite store (JSON and CSV checked against the
master data, not against the planner), bad input, import/export, and solve-vrptw on
Solomon instances checked route by route in exact arithmetic."""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from fleet.store.db import make_engine
from fleet.store.schema import upgrade
from tests.fleet.planning.restock_data import (
    ACCESS_A,
    CAPACITY,
    NOW,
    PLAN_DAY,
    VAN_CAPACITY,
    fill_store,
    write_master,
)

runner = CliRunner()
SOLOMON = Path(__file__).resolve().parents[2] / "bench" / "data" / "solomon"


def _db(tmp_path: Path, name: str = "fleet.sqlite", *, fill: bool = True) -> str:
    url = f"sqlite:///{tmp_path / name}"
    engine = make_engine(url)
    upgrade(engine)
    if fill:
        fill_store(engine, tmp_path / f"{name}-master")
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _db(tmp_path_factory.mktemp("restock"))


def plan(db: str, *extra: str) -> Any:
    args = ["restock", "plan", "--db", db, "--date", PLAN_DAY, "--now", NOW.isoformat()]
    return runner.invoke(app, [*args, "--time-limit", "1", *extra])


def test_plan_json_and_csv_hold_a_sound_plan(filled_db: str, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    result = plan(filled_db, "--json", "--csv", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["day"] == PLAN_DAY
    assert doc["feasible"] is True
    machines = {m["machine_id"]: m for m in doc["machines"]}
    assert set(machines) == {"vm-a", "vm-b", "vm-d"}
    assert machines["vm-b"]["chosen"]  # sold out: both selections empty
    assert {r["code"] for r in machines["vm-b"]["reasons"]} >= {"sold_out"}
    assert machines["vm-a"]["decision"] == "required"  # its cash box is full
    chosen = {mid for mid, m in machines.items() if m["chosen"]}
    routed = [s["machine_id"] for r in doc["routes"] for s in r["stops"]]
    dropped = [d["machine_id"] for d in doc["dropped"]]
    assert Counter(routed + dropped) == Counter(chosen)  # each chosen machine exactly once
    assert "vm-b" in routed
    for route in doc["routes"]:
        assert route["van_id"] in {"v1", "v2"}
        assert route["load_units"] <= VAN_CAPACITY
        assert sum(s["units"] for s in route["stops"]) == route["load_units"]
        times = [route["depart"]]
        for stop in route["stops"]:
            times += [stop["arrival"], stop["service_start"], stop["departure"]]
            for pick in stop["picks"]:
                on_hand = pick["on_hand"] or 0
                assert pick["capacity"] == CAPACITY[pick["selection"]]
                assert on_hand + pick["quantity"] <= pick["capacity"]
                assert pick["quantity"] >= 0
            assert stop["units"] == sum(p["quantity"] for p in stop["picks"])
            start = datetime.fromisoformat(stop["service_start"])
            assert start.date().isoformat() == PLAN_DAY
            if stop["machine_id"] == "vm-a":
                minute = start.hour * 60 + start.minute
                assert ACCESS_A[0] <= minute <= ACCESS_A[1]
        times.append(route["back"])
        stamps = [datetime.fromisoformat(t) for t in times]
        assert stamps == sorted(stamps)
        first, last = stamps[0], stamps[-1]
        assert (first.hour, last.hour) >= (6, 0)
        assert last.hour * 60 + last.minute <= 18 * 60
        units = Counter[str]()
        for stop in route["stops"]:
            for pick in stop["picks"]:
                units[pick["sku"]] += pick["quantity"]
        assert {t["sku"]: t["units"] for t in route["totals"]} == {
            k: v for k, v in units.items() if v
        }
        for total in route["totals"]:
            case = 24 if total["sku"] == "cola" else 12
            assert total["cases"] * case + total["loose_units"] == total["units"]

    files = {n: _rows(out / f"{n}.csv") for n in ("visits", "routes", "picklists", "van_totals")}
    assert [r["machine_id"] for r in files["visits"] if r["status"] == "routed"] == routed
    assert [r["van_id"] for r in files["routes"]] == [r["van_id"] for r in doc["routes"]]
    picks = [p for r in doc["routes"] for s in r["stops"] for p in s["picks"]]
    assert len(files["picklists"]) == len(picks)
    for row in files["picklists"]:
        on_hand = int(row["on_hand"] or 0)
        assert on_hand + int(row["quantity"]) <= int(row["capacity"])
    for route in files["routes"]:
        loaded = sum(
            int(p["quantity"]) for p in files["picklists"] if p["van_id"] == route["van_id"]
        )
        assert loaded == int(route["load_units"])
        picked = sum(int(t["units"]) for t in files["van_totals"] if t["van_id"] == route["van_id"])
        assert picked == loaded


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_plan_tables_skip_and_van_limit(filled_db: str) -> None:
    result = plan(filled_db, "--skip", "vm-b", "--vans", "1")
    assert result.exit_code == 0, result.output
    assert "Van v1" in result.stdout
    assert "Van v2" not in result.stdout
    assert "Load sheet v1" in result.stdout
    assert "vm-x" in result.stdout  # the note about a machine without a site
    as_json = plan(filled_db, "--skip", "vm-b", "--vans", "1", "--json")
    doc = json.loads(as_json.stdout)
    vm_b = next(m for m in doc["machines"] if m["machine_id"] == "vm-b")
    assert not vm_b["chosen"]
    assert all(s["machine_id"] != "vm-b" for r in doc["routes"] for s in r["stops"])
    assert {r["van_id"] for r in doc["routes"]} <= {"v1"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-13-01"], "bad --date"),
        (["--date", PLAN_DAY, "--must-visit", "vm-a,vm-zz"], "unknown machine(s) vm-zz"),
        (["--date", PLAN_DAY, "--skip", "nope"], "unknown machine(s) nope"),
        (["--date", PLAN_DAY, "--vans", "0"], "--vans must be at least 1"),
        (["--date", PLAN_DAY, "--vans", "3"], "asked for 3 vans"),
        (["--date", PLAN_DAY, "--depot", "x"], "unknown depot"),
        (["--date", PLAN_DAY, "--must-visit", "vm-a", "--skip", "vm-a"], "both must-visit"),
        (["--date", "2026-03-01"], "already over"),
        (["--date", PLAN_DAY, "--tz", "Mars/Base"], "unknown time zone"),
        (["--date", PLAN_DAY, "--now", "yesterday"], "bad --now"),
    ],
)
def test_bad_plan_input_is_named(filled_db: str, args: list[str], message: str) -> None:
    result = runner.invoke(
        app, ["restock", "plan", "--db", filled_db, "--now", NOW.isoformat(), *args]
    )
    assert result.exit_code == 1, result.output
    assert message in result.stderr


def test_unusable_databases_are_named(tmp_path: Path) -> None:
    cases = {
        _db(tmp_path, "empty.sqlite", fill=False): "no depots",
        f"sqlite:///{tmp_path / 'raw.sqlite'}": "no fleet schema yet",
        "mysql://x@localhost/db": "only sqlite",
    }
    no_vans = _db(tmp_path, "novans.sqlite", fill=False)
    folder = write_master(tmp_path / "novans")
    text = folder[0].read_text(encoding="utf-8")
    start = text.index("[[vans]]")
    folder[0].write_text(text[:start] + text[text.index("[[sites]]") :], encoding="utf-8")
    assert (
        runner.invoke(app, ["restock", "import", "--db", no_vans, *map(str, folder)]).exit_code == 0
    )
    cases[no_vans] = "no vans at depot 'wh'"
    for db, message in cases.items():
        result = runner.invoke(app, ["restock", "plan", "--db", db, "--date", PLAN_DAY])
        assert result.exit_code == 1, (db, result.output)
        assert message in result.stderr, (db, result.stderr)


def test_import_errors_and_export_round_trip(tmp_path: Path) -> None:
    db = _db(tmp_path, fill=False)
    bad = tmp_path / "vans.csv"
    bad.write_text("id,depot,capacity,shift_start,shift_end,currency\nv1,wh,many,6,18:00,VND\n")
    result = runner.invoke(app, ["restock", "import", "--db", db, str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:2: vans #1: field capacity: expected a whole number, got 'many'" in result.stderr
    assert f"{bad}:2: vans #1: field shift_start: expected a time of day" in result.stderr
    assert "nothing imported" in result.stderr

    files = write_master(tmp_path / "master")
    result = runner.invoke(app, ["restock", "import", "--db", db, *map(str, files)])
    assert result.exit_code == 0, result.output
    assert "6 planogram" in result.stdout
    exported = tmp_path / "fleet-export.toml"
    assert runner.invoke(app, ["restock", "export", "--db", db, str(exported)]).exit_code == 0
    assert runner.invoke(app, ["restock", "export", "--db", db, str(tmp_path / "x")]).exit_code == 0
    for source in (exported, tmp_path / "x"):
        copy = _db(tmp_path, f"copy-{source.name}.sqlite", fill=False)
        result = runner.invoke(app, ["restock", "import", "--db", copy, str(source)])
        assert result.exit_code == 0, result.output
        again = tmp_path / f"again-{source.name}.toml"
        runner.invoke(app, ["restock", "export", "--db", copy, str(again)])
        assert again.read_text(encoding="utf-8") == exported.read_text(encoding="utf-8")


# --- solve-vrptw ------------------------------------------------------------------------


def _nodes(text: str) -> tuple[int, dict[int, list[float]]]:
    """An independent reader: capacity, and number -> x y demand ready due service."""
    rows = [line.split() for line in text.splitlines() if line.strip() and line[0] != "#"]
    numeric = [r for r in rows if all(t.replace(".", "", 1).isdigit() for t in r)]
    capacity = int(next(r for r in numeric if len(r) <= 2)[-1])
    return capacity, {int(r[0]): [float(v) for v in r[1:]] for r in numeric if len(r) == 7}


def _check_solution(text: str, doc: dict[str, Any]) -> None:
    capacity, nodes = _nodes(text)
    depot = next(iter(nodes))
    served = [c for route in doc["routes"] for c in route]
    assert sorted(served) == sorted(n for n in nodes if n != depot)  # each exactly once
    assert doc["vehicles"] == len(doc["routes"])
    total = 0.0
    for route in doc["routes"]:
        assert sum(nodes[c][2] for c in route) <= capacity
        t = nodes[depot][3]
        for a, b in itertools.pairwise([depot, *route, depot]):
            leg = math.dist(nodes[a][:2], nodes[b][:2])
            total += leg
            t = max(t + leg, nodes[b][3])
            assert t <= nodes[b][4] + 1e-9, f"customer {b} served late"
            t += nodes[b][5]
    assert doc["distance"] == pytest.approx(total, abs=1e-3)


def _classic(name: str, customers: int) -> str:
    """The first `customers` customers of a bench instance in Solomon's original layout."""
    rows = [
        line.split()
        for line in (SOLOMON / f"{name}.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    body = "\n".join("".join(f"{v:>10}" for v in row) for row in rows[1 : customers + 2])
    return (
        f"{name}.{customers}\n\nVEHICLE\nNUMBER     CAPACITY\n  25         {rows[0][0]}\n\n"
        "CUSTOMER\nCUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME\n"
        f"\n{body}\n"
    )


def test_solve_vrptw_on_a_bench_instance(tmp_path: Path) -> None:
    path = SOLOMON / "C101.txt"
    result = runner.invoke(
        app, ["restock", "solve-vrptw", str(path), "--time-limit", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"routes", "vehicles", "distance"}
    _check_solution(path.read_text(), doc)
    assert doc["vehicles"] >= 10  # the best known needs 10


def test_solve_vrptw_reads_the_classic_layout(tmp_path: Path) -> None:
    path = tmp_path / "R101.25.txt"
    path.write_text(_classic("R101", 25))
    result = runner.invoke(
        app, ["restock", "solve-vrptw", str(path), "--time-limit", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    _check_solution(path.read_text(), doc)
    table = runner.invoke(app, ["restock", "solve-vrptw", str(path), "--time-limit", "0.5"])
    assert table.exit_code == 0
    assert "R101.25" in table.stdout


def test_malformed_instances_name_the_line(tmp_path: Path) -> None:
    good = _classic("C101", 5).splitlines()
    cases = {
        "short_row": ([*good[:12], "    3      42     66     10", *good[13:]], ":13:"),
        "text": ([*good[:11], "    2      45     x      10   912  967  90", *good[12:]], ":12:"),
        "window": ([*good[:11], "    2      45     68     10   967  912  90", *good[12:]], ":12:"),
        "no_capacity": ([line for line in good if "25" not in line], "customer row before"),
    }
    for name, (lines, where) in cases.items():
        path = tmp_path / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        result = runner.invoke(app, ["restock", "solve-vrptw", str(path), "--json"])
        assert result.exit_code == 1, (name, result.output)
        assert where in result.stderr, (name, result.stderr)
    missing = runner.invoke(app, ["restock", "solve-vrptw", str(tmp_path / "none.txt")])
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr


def test_now_defaults_to_the_clock(filled_db: str) -> None:
    past = (NOW - timedelta(days=30)).date().isoformat()
    result = runner.invoke(app, ["restock", "plan", "--db", filled_db, "--date", past])
    assert result.exit_code == 1
    assert "already over" in result.stderr
