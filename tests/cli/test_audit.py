"""`vend audit`: counts, settlement import, reconcile (table and JSON), lock, adjust."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from fleet.ingest import Ingestor
from fleet.store.db import make_engine
from fleet.store.schema import upgrade
from protocols.telemetry import BillCount, CashTender, PaymentMethod, SaleBody
from tests.fleet.conftest import message

runner = CliRunner()
T = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    cash = SaleBody(
        vend_id=1, selection="A1", product="Trà", price=10_000, currency="VND",
        method=PaymentMethod.CASH, cash=CashTender(bills=[BillCount(value=10_000, count=1)]),
        receipt_number="R1",
    )  # fmt: skip
    card = SaleBody(
        vend_id=2, selection="A2", product="Cà phê", price=15_000, currency="VND",
        method=PaymentMethod.CASHLESS, reader=1, payment_ref="TX-2", receipt_number="R2",
    )  # fmt: skip
    Ingestor(engine).ingest([message(cash, 1, "vm-1", at=T), message(card, 2, "vm-1", at=T)])
    engine.dispose()
    return url


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", *args])
    return result.exit_code, result.output


def test_by_default_only_receipts_in_the_transmission_queue_count(db: str) -> None:
    code, out = invoke(
        "reconcile", "--db", db, "--from", "2026-03-01", "--to", "2026-03-31", "--json"
    )
    assert code == 0, out
    found = [d for row in json.loads(out)["rows"] for d in row["discrepancies"]]
    assert sorted((d["category"], d["amount"], d["detail"]) for d in found) == [
        ("missing_receipt", -15_000, "no receipt issued"),
        ("missing_receipt", -10_000, "no receipt issued"),
        ("unsettled_or_unknown_cashless", -15_000, "sold, not settled"),
    ]
    code, out = invoke("reconcile", "--db", db, "--from", "2026-03-01", "--to", "2026-03-31",
                       "--receipts", "printed")  # fmt: skip
    assert code == 1
    assert "expected queue or sales" in out


def test_a_month_from_counts_to_lock(db: str, tmp_path: Path) -> None:
    code, out = invoke(
        "cash-count", "--db", db, "--machine", "vm-1", "--visit", "v1",
        "--coins", "0", "--bills", "10000x1", "--at", "2026-03-12T14:00",
    )  # fmt: skip
    assert code == 0, out
    assert "recorded" in out
    settlement = tmp_path / "s.csv"
    settlement.write_text("t,term,amt,id\n2026-03-10 10:00:02,vm-1,15000,TX-2\n", encoding="utf-8")
    code, out = invoke(
        "import-settlement", str(settlement), "--db", db, "--column", "time=t",
        "--column", "terminal=term", "--column", "amount=amt", "--column", "reference=id",
    )  # fmt: skip
    assert code == 0, out
    assert "1 new" in out

    # these sales carry receipt numbers but no receipt documents: count the numbers
    code, out = invoke(
        "reconcile", "--db", db, "--from", "2026-03-01", "--to", "2026-03-31", "--json",
        "--receipts", "sales",
    )  # fmt: skip
    assert code == 0, out
    report = json.loads(out)
    assert report["period"]["label"] == "2026-03"
    total = report["rollups"]["total"][0]["totals"]
    assert (total["telemetry_value"], total["settled_gross"], total["receipts_value"]) == (
        25_000,
        15_000,
        25_000,
    )
    # the only count has no count before it: nothing to compare it with, nothing reported
    assert total["discrepancies"] == 0

    code, out = invoke(
        "lock", "--db", db, "--period", "2026-03", "--by", "Lan", "--receipts", "sales"
    )
    assert code == 0, out
    sha = out.split("sha256 ")[1].strip()
    code, locked = invoke(
        "reconcile", "--db", db, "--from", "2026-03-01", "--to", "2026-03-31", "--json"
    )
    assert code == 0
    assert locked == out_json(report)
    assert hashlib.sha256(locked.rstrip("\n").encode()).hexdigest() == sha

    code, out = invoke("lock", "--db", db, "--period", "2026-03", "--by", "Lan")
    assert code == 1
    assert "already" in out or "locked by Lan" in out
    code, out = invoke(
        "adjust", "--db", db, "--period", "2026-03", "--category", "cash_over_short",
        "--amount", "-5000", "--by", "Lan", "--why", "bag recounted", "--machine", "vm-1",
    )  # fmt: skip
    assert code == 0, out
    code, out = invoke("reconcile", "--db", db, "--from", "2026-03-01", "--to", "2026-03-31")
    assert code == 0, out
    assert "locked" in out
    assert "adjustments after lock" in out
    assert "bag recounted" in out


def out_json(report: dict[str, object]) -> str:
    return json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def test_errors_are_named(db: str, tmp_path: Path) -> None:
    code, out = invoke("cash-count", "--db", db, "--machine", "vm-1", "--visit", "v9",
                       "--coins", "12.5", "--bills", "0", "--at", "2026-03-12T14:00")  # fmt: skip
    assert code == 1
    assert "--coins" in out
    code, out = invoke("cash-count", "--db", db, "--machine", "vm-1", "--visit", "v9",
                       "--coins", "0", "--bills", "0")  # fmt: skip
    assert code == 1
    assert "--at" in out
    code, out = invoke("adjust", "--db", db, "--period", "2026-04", "--category", "timing",
                       "--amount", "1", "--by", "x", "--why", "y")  # fmt: skip
    assert code == 1
    assert "not locked" in out
    code, out = invoke("lock", "--db", db, "--period", "2026-13", "--by", "x")
    assert code == 1
    assert "YYYY-MM" in out
    code, out = invoke(
        "import-settlement", str(tmp_path / "none.csv"), "--db", db, "--column", "time=t"
    )
    assert code == 1
    assert "no column for" in out or "cannot read" in out
    unmigrated = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    code, out = invoke(
        "reconcile", "--db", unmigrated, "--from", "2026-03-01", "--to", "2026-03-31"
    )
    assert code == 1
    assert "vend fleet migrate" in out


def test_sites_set_the_rollup_keys(db: str) -> None:
    code, out = invoke(
        "site", "--db", db, "--machine", "vm-1", "--location", "Bến Thành", "--route", "R3"
    )
    assert code == 0, out
    code, out = invoke(
        "reconcile", "--db", db, "--from", "2026-03-10", "--to", "2026-03-10", "--json"
    )
    report = json.loads(out)
    assert [r["key"] for r in report["rollups"]["location"]] == ["Bến Thành"]
    assert [r["key"] for r in report["rollups"]["route"]] == ["R3"]
