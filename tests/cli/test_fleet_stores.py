"""`vend fleet stores | store show` (and the location column of `machines`) through the
Typer runner, against a SQLite fleet database filled by the master-data importer and the
real ingest path: JSON checked against the ingested facts, exit codes for bad input."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from cli import fleet_common
from cli.fleet_common import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_USAGE
from cli.main import app
from fleet.ingest import Ingestor
from fleet.planning.masterdata import import_master_data
from fleet.store.db import make_engine
from fleet.store.models import sales
from fleet.store.schema import upgrade
from tests.fleet.test_locations import LEVELS, MASTER, STORE, telemetry

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("VEND_DB", "VEND_CONFIG", "VEND_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.setenv("VEND_TIMEZONE", "UTC")
    url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    master = tmp_path / "fleet.toml"
    master.write_text(MASTER, encoding="utf-8")
    import_master_data(engine, [master])
    now = datetime.now(UTC)
    Ingestor(engine, clock=lambda: now).ingest(telemetry(now - timedelta(hours=2)))
    engine.dispose()
    return url


def vend(*args: str) -> Result:
    return runner.invoke(app, ["fleet", *args])


def ok_json(*args: str) -> Any:
    result = vend(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored_sales(db: str) -> list[tuple[str, int, str, datetime]]:
    """The sales as stored (the facts), read without the code under test."""
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(sales.c.machine_id, sales.c.price, sales.c.currency, sales.c.ts)
            ).all()
    finally:
        engine.dispose()
    return [(m, p, c, ts.replace(tzinfo=UTC)) for m, p, c, ts in rows]


def expected_sales(db: str, machines: tuple[str, ...], since: str) -> dict[str, list[int]]:
    start = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    out: dict[str, list[int]] = {}
    for machine, price, currency, ts in stored_sales(db):
        if machine in machines and ts >= start:
            count, total = out.get(currency, [0, 0])
            out[currency] = [count + 1, total + price]
    return out


def test_stores_json_rolls_units_up_per_location(db: str) -> None:
    rows = {row["location"]["id"]: row for row in ok_json("stores", "--db", db)}
    assert sorted(rows) == ["acct-9", "bank-7", "st-q1", "vm-lone"]
    store = rows["st-q1"]
    assert (store["location"]["kind"], store["location"]["machines"]) == ("store", list(STORE))
    mine = [lv for lv in LEVELS if lv.machine in STORE]
    assert (store["selections"], store["empty"], store["units_in_stock"]) == (
        len(mine),
        sum(lv.count == 0 for lv in mine),
        sum(lv.count for lv in mine),
    )
    assert (store["open_alarms"], store["critical_alarms"]) == (1, 1)
    for location_id, row in rows.items():
        machines = tuple(row["location"]["machines"])
        got = {t["currency"]: [t["count"], t["total"]] for t in row["sales"]}
        assert got == expected_sales(db, machines, row["sales_since"]), location_id
    assert rows["st-q1"]["sales"], "the store sold today"
    assert rows["acct-9"]["location"]["declared"] is False


def test_store_show_json_has_units_stock_per_product_and_alarms(db: str) -> None:
    detail = ok_json("store", "show", "st-q1", "--db", db)
    assert [u["machine_id"] for u in detail["units"]] == list(STORE)
    assert [u["reported"] for u in detail["units"]] == [True, True, False]
    mine = [lv for lv in LEVELS if lv.machine in STORE]
    totals: Counter[str] = Counter()
    per_unit: dict[str, list[list[Any]]] = {}
    for lv in mine:
        totals[lv.product] += lv.count
        per_unit.setdefault(lv.product, []).append([lv.machine, lv.count])
    assert {p["product"]: p["count"] for p in detail["stock"]} == dict(totals)
    for product in detail["stock"]:
        units = [[u["machine_id"], u["count"]] for u in product["units"]]
        assert units == sorted(per_unit[product["product"]])
    assert [(a["machine_id"], a["code"]) for a in detail["alarms"]] == [("vm-s1", "jam")]
    since = detail["summary"]["sales_since"]
    got = {
        (s["machine_id"], s["currency"]): [s["count"], s["total"]] for s in detail["sales_by_unit"]
    }
    want = {(m, c): v for m in STORE for c, v in expected_sales(db, (m,), since).items()}
    assert got == want


def test_a_declared_location_without_units_shows_empty(db: str) -> None:
    detail = ok_json("store", "show", "bank-7", "--db", db)
    assert detail["summary"]["location"]["kind"] == "cabinet_bank"
    assert (detail["units"], detail["stock"], detail["alarms"]) == ([], [], [])
    assert detail["summary"]["sales"] == []


def test_tables_name_the_locations_products_and_units(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_common.out, "width", 250)  # no wrapped cells
    listing = vend("stores", "--db", db)
    assert listing.exit_code == 0, listing.output
    for word in ("st-q1", "acct-9", "store (implicit)", "cabinet_bank", "vm-lone"):
        assert word in listing.stdout
    shown = vend("store", "show", "st-q1", "--db", db)
    assert shown.exit_code == 0, shown.output
    for word in ("Cửa hàng tự động Quận 1", "Water", "Juice", "vm-s3", "never reported", "jam"):
        assert word in shown.stdout


def test_machines_carry_their_location(db: str) -> None:
    rows = {m["id"]: m["location_id"] for m in ok_json("machines", "--db", db)}
    assert rows["vm-s1"] == "st-q1"
    assert rows["vm-i2"] == "acct-9"
    assert rows["vm-lone"] == "vm-lone"
    assert rows["vm-nosite"] is None


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["store", "show", "nowhere"], EXIT_NOT_FOUND, ["unknown location 'nowhere'"]),
        (["store", "show", "vm-nosite"], EXIT_NOT_FOUND, ["vm-nosite"]),
        (["store", "show", "  "], EXIT_USAGE, ["must not be empty"]),
        (["store", "show"], EXIT_USAGE, ["Missing argument"]),
        (["stores", "--bogus"], EXIT_USAGE, ["No such option"]),
    ],
)
def test_bad_input_has_a_clear_error_and_exit_code(
    db: str, args: list[str], code: int, words: list[str]
) -> None:
    result = vend(*args, "--db", db)
    assert result.exit_code == code, result.output
    for word in words:
        assert word in result.output


def test_a_missing_database_is_named(tmp_path: Path) -> None:
    result = vend("stores", "--db", f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert result.exit_code == EXIT_ERROR
    assert "no fleet database" in result.output
