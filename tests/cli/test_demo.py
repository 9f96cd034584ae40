"""`vend demo` end to end: the acceptance run (3 machines, 2 minutes, speed 60, headless,
JSON), checked from its summary and, independently, from the machines' own books and
the fleet database it leaves behind; and the live dashboard in a real terminal (tmux)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app as vend_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.pty]

ROOT = Path(__file__).resolve().parents[2]
VEND = [sys.executable, "-m", "cli.main"]
DEMO_TIMEOUT = 600  # seconds: a 2-minute day plus start-up and catch-up on a loaded host


@dataclass(frozen=True)
class DemoRun:
    folder: Path
    code: int
    summary: dict[str, Any]
    stderr: str


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    folder = tmp_path_factory.mktemp("demo") / "d"
    out = subprocess.run(
        [*VEND, "demo", "--machines", "3", "--minutes", "2", "--speed", "60",
         "--headless", "--json", "--seed", "11", "--dir", str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=DEMO_TIMEOUT, check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        summary = json.loads(out.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON summary (exit {out.returncode}):\n{out.stderr[-4000:]}")
    return DemoRun(folder, out.returncode, summary, out.stderr)


@pytest.mark.timeout(DEMO_TIMEOUT + 60)
def test_sales_on_every_payment_method_and_every_event_ingested_once(demo_run: DemoRun) -> None:
    s = demo_run.summary
    assert demo_run.code == 0, demo_run.stderr[-4000:]
    by = s["sales"]["by_method"]
    assert set(by) >= {"coins", "bills", "card"}, by
    assert all(by[m]["count"] > 0 and by[m]["value"] > 0 for m in ("coins", "bills", "card"))
    # The store's kiosk sold baskets: several items paid once, one sale each.
    baskets = s["baskets"]
    assert baskets["sales"] > 0
    assert baskets["items"] >= 2 * baskets["sales"]
    ev = s["events"]
    assert ev["published"] == ev["ingested"] > 0
    assert ev["exactly_once"] is True
    assert (ev["missing"], ev["unexpected"], ev["open_gaps"]) == ({}, {}, 0)
    # Every sale got its e-receipt on the machine, and the fleet transmitted each once.
    assert s["receipts"] == {"accepted": s["sales"]["count"]}


@pytest.mark.timeout(DEMO_TIMEOUT + 60)
def test_injected_faults_were_raised_and_cleared(demo_run: DemoRun) -> None:
    faults = {f["kind"]: f for f in demo_run.summary["faults"]}
    assert set(faults) == {"jam", "broker_outage", "power_cut", "door_held_open"}
    for kind, fault in faults.items():
        assert (fault["raised"], fault["cleared"]) == (True, True), kind
    # Nothing stays open: the cabinet's planogram notices (an item put back on the wrong
    # shelf) ended when the staff moved each stray back at closing time.
    assert demo_run.summary["alarms"]["open_by_code"] == {}
    assert _open_alarms(demo_run.folder) == []
    customers = demo_run.summary["cabinet"]["customers"]
    assert customers["strays_tidied"] == customers["put_back_wrong_shelf"]


def _open_alarms(folder: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(folder / "fleet.sqlite")
    try:
        rows = db.execute(
            "SELECT machine_id, device, detail FROM alarms WHERE cleared_at IS NULL"
        ).fetchall()
    finally:
        db.close()
    return [(str(m), str(d), str(t)) for m, d, t in rows]


@pytest.mark.timeout(DEMO_TIMEOUT + 60)
def test_the_fleet_database_agrees_with_the_machines_books(demo_run: DemoRun) -> None:
    """Independent of the summary: each machine's journal proves its books balance
    (`vend machine check`), and the fleet holds exactly the sales the machines count."""
    machines = sorted((demo_run.folder / "machines").iterdir())
    assert [m.name for m in machines] == [
        "cabinet-0001", "kiosk-0001", "vm-0001", "vm-0002", "vm-0003",
    ]  # fmt: skip
    machine_value = 0
    for folder in machines:
        out = subprocess.run(
            [*VEND, "machine", "check", "-c", str(folder / "machine.toml"), "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        books = json.loads(out.stdout)
        assert out.returncode == 0, books
        counters = books["counters"]
        machine_value += counters["cash_sales_value"] + counters["cashless_sales_value"]
        if _cabinet(folder):
            # A cabinet's sales are its session log's, not the vend counters': count
            # them from the sales its journal published.
            machine_value += sum(sale["price"] for sale in _journal_sales(folder))
    db = sqlite3.connect(demo_run.folder / "fleet.sqlite")
    try:
        (fleet_value,) = db.execute("SELECT sum(price) FROM sales").fetchone()
        (dupes,) = db.execute(
            "SELECT count(*) FROM (SELECT machine_id, vend_id FROM sales "
            "GROUP BY machine_id, vend_id HAVING count(*) > 1)"
        ).fetchone()
    finally:
        db.close()
    # The machines count items (a basket is several); the fleet one sale per basket, so
    # compare money, to the unit.
    assert fleet_value == machine_value == demo_run.summary["sales"]["value"]
    assert dupes == 0


def _journal_sales(folder: Path) -> list[dict[str, Any]]:
    """The sale messages a machine's journal queued (its own record of what it sold)."""
    db = sqlite3.connect(f"file:{folder / 'data' / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT body FROM outbox WHERE kind = 'sale' ORDER BY seq").fetchall()
    finally:
        db.close()
    return [json.loads(body) for (body,) in rows]


def _cabinet(folder: Path) -> bool:
    return "[cabinet]" in (folder / "machine.toml").read_text(encoding="utf-8")


@pytest.mark.timeout(DEMO_TIMEOUT + 120)
def test_the_store_cabinet_sold_with_receipts_settled_and_reconciled(demo_run: DemoRun) -> None:
    """The smart cabinet next to the kiosk: card sessions that became sales listing every
    item taken, each with its transmitted e-receipt, the processor's settlement rows, its
    reconciliation rollup, the held-open session in the review queue, a restock plan."""
    cab = demo_run.summary["cabinet"]
    mid = cab["machine"]
    sold = cab["sales"]
    assert sold["count"] > 0
    assert sold["items"] >= sold["count"]
    assert sold["receipts_accepted"] == sold["receipts_listing_every_item"] == sold["count"]
    assert cab["location"] == "store-q1"
    # Independently, the machine's own journal: the sales it published, every one with an
    # e-receipt whose lines are the sale's lines.
    folder = demo_run.folder / "machines" / mid
    published = _journal_sales(folder)
    assert len(published) == sold["count"]
    assert sum(p["price"] for p in published) == sold["value"]
    for sale in published:
        assert sale["settled"] is True
        items = sorted((ln["selection"], ln["quantity"]) for ln in sale["lines"])
        receipt = sale["receipt"]
        assert sorted((ln["code"], ln["quantity"]) for ln in receipt["lines"]) == items
        assert (
            receipt["total"]
            == sale["price"]
            == sum(ln["quantity"] * ln["unit_price"] for ln in sale["lines"])
        )
    # The card processor's file, as imported: one row per sale, the same money.
    db = sqlite3.connect(demo_run.folder / "fleet.sqlite")
    try:
        settled = db.execute(
            "SELECT count(*), coalesce(sum(amount), 0) FROM audit_settlements WHERE machine_id = ?",
            (mid,),
        ).fetchone()
        slots = {
            sel for (sel,) in db.execute(
                "SELECT selection FROM planogram_slots WHERE machine_id = ?", (mid,)
            )
        }  # fmt: skip
        shelves = db.execute(
            "SELECT selection, count, capacity, par FROM stock_levels WHERE machine_id = ?",
            (mid,),
        ).fetchall()
    finally:
        db.close()
    assert settled == (sold["count"], sold["value"])
    # Its shelves as its stock telemetry reported them: every planogram slot, levels
    # against the configured shelf size, and something sold off them.
    assert {sel for sel, *_ in shelves} == slots
    assert {(capacity, par) for _, _, capacity, par in shelves} == {(40, 40)}
    assert all(0 <= count <= 40 for _, count, _, _ in shelves)
    assert sum(count for _, count, _, _ in shelves) < 40 * len(shelves)
    assert cab["settlements"] == {"rows": sold["count"], "amount": sold["value"]}
    # Reconciled: the auditor's command finds the cabinet's row, fully settled and
    # receipted, in the store's rollup.
    db_arg = ["--db", f"sqlite:///{demo_run.folder / 'fleet.sqlite'}"]
    day = demo_run.summary["reconciliation"]["period"].split("..")[0]
    code, report = _cli("audit", "reconcile", *db_arg, "--from", day, "--to", day, "--json")
    assert code == 0, report
    rows = [r for r in report["rows"] if r["machine"] == mid]
    assert rows
    assert {r["location"] for r in rows} == {"store-q1"}
    totals = next(r for r in report["rollups"]["machine"] if r["key"] == mid)["totals"]
    assert totals["telemetry_cashless"] == totals["settled_gross"] == sold["value"]
    assert (totals["receipts_count"], totals["receipts_value"]) == (sold["count"], sold["value"])
    assert cab["reconciliation"]["settled_gross"] == sold["value"]
    # The door held open: charged what the shelves vouch for, and queued for a person.
    code, reviews = _cli("fleet", "reviews", *db_arg, "--machine", mid, "--json")
    assert code == 0, reviews
    held = [r for r in reviews if any("held open" in why for why in r["reasons"])]
    assert len(held) == 1
    assert held[0]["state"] == "open"
    # Tomorrow's plan knows the cabinet's shelves as planogram slots; pick rows, if the
    # cabinet is visited, are for those shelves, and every shelf sold from is among them.
    sold_from = {ln["selection"] for p in published for ln in p["lines"]}
    assert sold_from <= slots
    restock = cab["restock"]
    assert restock["planned"] is True
    assert {p["selection"] for p in restock["picks"]} <= slots


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is installed by scripts/system-deps")
@pytest.mark.timeout(300)
def test_the_dashboard_shows_machines_and_sales_in_a_terminal(tmp_path: Path) -> None:
    session = f"vend-demo-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]  # its own server: nobody else's
    command = " ".join(
        [*VEND, "demo", "--machines", "2", "--minutes", "1.5", "--speed", "120",
         "--seed", "3", "--no-faults", "--dir", str(tmp_path / "d")]
    )  # fmt: skip
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", session, "-x", "140", "-y", "100", "-c", str(ROOT),
         f"{command}; sleep 600"],
        check=True, env={k: v for k, v in os.environ.items() if k != "NO_COLOR"},
    )  # fmt: skip
    try:
        # Each part must show on the live dashboard, not necessarily in the same frame: a
        # busy machine may redraw between a table and the header.
        deadline = time.monotonic() + 240
        screen = ""
        seen: set[str] = set()
        wanted = {"Machines", "vm-0001", "vm-0002", "cabinet-0001", "online", "sold"}
        while time.monotonic() < deadline and seen != wanted:
            screen = _capture(tmux, session)
            if "Sales by payment method" in screen:
                break  # the day ended before the dashboard showed everything
            lines = screen.splitlines()
            seen |= {w for w in wanted - {"sold"} if any(w in line for line in lines)}
            if _sold(screen) > 0:
                seen.add("sold")
            time.sleep(1)
        assert seen == wanted, f"dashboard never showed {wanted - seen}:\n{screen}"
        # Ctrl-C ends the day early, and the end-of-day summary still comes.
        subprocess.run([*tmux, "send-keys", "-t", session, "C-c"], check=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "Sales by payment method" not in screen:
            time.sleep(2)
            screen = _capture(tmux, session)
        assert "Sales by payment method" in screen, screen
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)


def _capture(tmux: list[str], session: str) -> str:
    return subprocess.run(
        [*tmux, "capture-pane", "-p", "-t", session],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _sold(screen: str) -> int:
    """The header's ``sales N (M/min)`` figure (the header may wrap in a narrow pane)."""
    found = re.search(r"sales[\s│]+(\d+)[\s│]+\(\S*/min\)", " ".join(screen.split()))
    return int(found.group(1)) if found else 0


def _cli(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(vend_app, list(args))
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.exit_code, result.output


@pytest.mark.timeout(DEMO_TIMEOUT + 120)
def test_operator_and_auditor_commands_read_the_demo_database(demo_run: DemoRun) -> None:
    """The same CLI an operator uses, against what the demo left behind."""
    db = ["--db", f"sqlite:///{demo_run.folder / 'fleet.sqlite'}"]
    s = demo_run.summary
    code, status = _cli("fleet", "status", *db, "--json")
    assert code == 0, status
    assert status["machines"] == 5  # three vending machines, the store's kiosk and cabinet
    assert sum(row["count"] for row in status["sales"]) <= s["sales"]["count"]  # today only
    assert (status["open_gaps"], status["quarantined"]) == (0, 0)
    assert status["open_alarms"] == 0

    code, by_machine = _cli(
        "fleet", "sales", *db, "--from", "2000-01-01", "--to", "now", "--by", "machine", "--json"
    )
    assert code == 0, by_machine
    assert sum(r["count"] for r in by_machine["rows"]) == s["sales"]["count"]
    assert sum(r["total"] for r in by_machine["rows"]) == s["sales"]["value"]

    code, shown = _cli("fleet", "machine", "show", "vm-0001", *db, "--json")
    assert code == 0, shown
    assert len(shown["stock"]) == 6
    code, alarms = _cli("fleet", "alarms", *db, "--all", "--code", "jam", "--json")
    assert code == 0, alarms
    assert [(a["machine_id"], a["cleared_at"] is not None) for a in alarms] == [("vm-0001", True)]

    code, stores = _cli("fleet", "stores", *db, "--json")
    assert code == 0, stores
    store = next(x for x in stores if x["location"]["id"] == "store-q1")
    assert store["location"]["kind"] == "store"
    assert store["location"]["machines"] == ["cabinet-0001", "kiosk-0001"]
    assert store["selections"] >= 8  # the kiosk's eight, and the shelves the cabinet reports

    day = s["reconciliation"]["period"].split("..")[0]
    code, report = _cli("audit", "reconcile", *db, "--from", day, "--to", day, "--json")
    assert code == 0, report
    # No discrepancies: an item a cabinet customer put back on the wrong shelf still
    # counts as its own product (the machine's stock rows), so no shelf's count is short
    # or over by it -- the planogram notice is what tells the staff.
    found = [(r["machine"], d["category"]) for r in report["rows"] for d in r["discrepancies"]]
    assert report["rollups"]["total"][0]["totals"]["discrepancies"] == len(found) == 0, found

    code, plan = _cli("restock", "plan", *db, "--date", s["restock_plan"]["day"], "--json")
    assert code == 0, plan
    routed = {stop["machine_id"] for route in plan["routes"] for stop in route["stops"]}
    chosen = {m["machine_id"] for m in plan["machines"] if m.get("chosen")}
    assert chosen <= routed | {d["machine_id"] for d in plan["dropped"]}

    # Bad input: named, with the documented exit codes.
    assert _cli("fleet", "machine", "show", "vm-9999", *db, "--json")[0] == 4
    assert _cli("fleet", "sales", *db, "--by", "weekday", "--json")[0] == 2
    assert _cli("restock", "plan", *db, "--date", "tomorrow-ish", "--json")[0] != 0
