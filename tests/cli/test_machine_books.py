"""`vend machine check` and `vend machine dex` read the journal a machine left behind."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from controller.config import load_config
from controller.journal import Journal
from protocols.dex import parse_dex, summarize
from protocols.money import Money
from protocols.vend import inputs as i

CONFIG = """
[machine]
id = "vm-0042"
currency = "VND"
data_dir = "data"

[mdb]
url = "memory://"

[dispenser]
url = "memory://"

[[selection]]
code = "A1"
product = "Trà xanh 0 độ"
price = 12000
capacity = 10
par = 8
motor = 11

[[selection]]
code = "B1"
product = "Bánh mì que"
price = 8000
capacity = 6
par = 6
motor = 21
"""


def vnd(n: int) -> Money:
    return Money(n, "VND")


@pytest.fixture
def machine_dir(tmp_path: Path) -> Path:
    (tmp_path / "machine.toml").write_text(CONFIG, encoding="utf-8")
    cfg = load_config(tmp_path / "machine.toml")
    journal = Journal(cfg.data_path(tmp_path) / "journal.sqlite")
    journal.open()
    at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    events: list[i.VendInput] = [
        i.PlanogramLoaded(currency="VND", selections=cfg.selections()),
        i.StockFilled(code="A1", count=8),
        i.StockFilled(code="B1", count=6),
        i.AcceptorsConfigured(coins=((4, vnd(5000)),), bills=(), card_readers=(0x10,)),
        i.TubesRead(tubes=((2, vnd(1000), 10), (3, vnd(2000), 10), (4, vnd(5000), 10))),
        # B1 for cash: 15,000 in, 7,000 change
        i.CoinInserted(coin_type=4, value=vnd(5000), to_tube=True),
        i.CoinInserted(coin_type=4, value=vnd(5000), to_tube=True),
        i.CoinInserted(coin_type=4, value=vnd(5000), to_tube=False),
        i.SelectionPressed(code="B1"),
        i.DispenseFinished(vend_id=1, delivered=True, outcome="dispensed"),
        i.PayoutFinished(payout_id=2, paid=vnd(7000)),
        i.CardSessionBegan(reader=0x10, funds=None),
        i.SelectionPressed(code="A1"),
        i.CardVendApproved(reader=0x10, amount=vnd(12000)),
        i.DispenseFinished(vend_id=3, delivered=True, outcome="dispensed"),
        i.CardSessionEnded(reader=0x10),
    ]
    for event in events:
        journal.append(event, at)
    journal.close()
    return tmp_path


def test_check_reports_balanced_books(machine_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["machine", "check", "-c", str(machine_dir / "machine.toml"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["counters"]["cash_sales_value"] == 8000
    assert report["counters"]["cashless_sales_value"] == 12000
    assert report["stock"] == {"A1": 7, "B1": 5}


def test_check_fails_on_a_missing_journal(tmp_path: Path) -> None:
    (tmp_path / "machine.toml").write_text(CONFIG, encoding="utf-8")
    result = CliRunner().invoke(app, ["machine", "check", "-c", str(tmp_path / "machine.toml")])
    assert result.exit_code == 1
    assert "no journal" in result.output


def test_dex_read_round_trips_through_the_reader_and_reset_restarts_interim(
    machine_dir: Path,
) -> None:
    config = str(machine_dir / "machine.toml")
    runner = CliRunner()
    first = runner.invoke(app, ["machine", "dex", "-c", config, "--reset"])
    assert first.exit_code == 0, first.output
    dex = parse_dex(first.stdout)
    summary = summarize(dex)
    assert summary["crc"] == "ok"
    assert summary["machine_serial"] == "vm-0042"
    assert summary["totals"] == {
        "paid_vends_value": 20000,
        "paid_vends_count": 2,
        "cash_sales_value": 8000,
        "cashless_sales_value": 12000,
    }
    assert {s["selection"]: s["vends"] for s in summary["selections"]} == {"A1": 1, "B1": 1}
    assert dex.paid_vends is not None
    assert dex.paid_vends.value_reset == 20000
    second = parse_dex(runner.invoke(app, ["machine", "dex", "-c", config]).stdout)
    assert second.paid_vends is not None
    assert second.paid_vends.value_init == 20000  # cumulative survives the reset
    assert second.paid_vends.value_reset == 0  # interim restarted at the read with reset
    assert second.read_info is not None
    assert second.read_info.reads_with_reset == 1
