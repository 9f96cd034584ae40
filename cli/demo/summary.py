"""The end of the demo: wait until the fleet holds everything the machines published,
then say what happened — from the fleet database and, independently, from each
machine's own journal (the outbox is the machine's record of what it published)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from fleet.einvoice.queue import QueueState, counts
from fleet.ingest import IngestReport
from fleet.store.models import alarms, events, gaps, machines, sales

if TYPE_CHECKING:
    from cli.demo.machines import DemoMachine
    from cli.demo.run import DemoRun


def outbox_seqs(journal: Path) -> tuple[set[int], int]:
    """(every outbox sequence number, how many are still unsent) from a machine journal,
    opened read-only next to the running controller (WAL allows it)."""
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT seq, sent IS NULL FROM outbox").fetchall()
    finally:
        db.close()
    return {int(seq) for seq, _ in rows}, sum(1 for _, unsent in rows if unsent)


def fleet_seqs(engine: Engine) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(events.c.machine_id, events.c.seq)):
            out.setdefault(row.machine_id, set()).add(int(row.seq))
    return out


async def wait_caught_up(engine: Engine, fleet: list[DemoMachine], timeout: float) -> None:
    """Until every machine's outbox is sent and the fleet holds every one of its seqs.
    Gives up quietly after ``timeout``: the summary then shows what is missing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def done() -> bool:
        held = fleet_seqs(engine)
        for m in fleet:
            published, unsent = outbox_seqs(m.journal)
            if unsent or not published <= held.get(m.machine_id, set()):
                return False
        return True

    def receipts_sent() -> bool:
        with engine.connect() as conn:
            pending = counts(conn)
        return not any(pending[s] for s in (QueueState.PENDING, QueueState.SENDING))

    while not await asyncio.to_thread(lambda: done() and receipts_sent()):
        if loop.time() > deadline:
            return
        await asyncio.sleep(0.5)


def tender(method: str, cash: str | None) -> str:
    """How the customer paid: ``card`` (cashless), ``bills`` (any bill) or ``coins``."""
    if method != "cash":
        return "card" if method == "cashless" else method
    paid = json.loads(cash) if cash else {}
    return "bills" if paid.get("bills") else "coins"


@dataclass
class DemoSummary:
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.data.get("ok"))

    def add_end_of_day(self, reconciliation: dict[str, Any], plan: dict[str, Any]) -> None:
        self.data["reconciliation"] = reconciliation
        self.data["restock_plan"] = {
            "day": plan["day"],
            "feasible": plan["feasible"],
            **plan["summary"],
            "routes": [
                {"van": r["van_id"], "stops": [s["machine_id"] for s in r["stops"]]}
                for r in plan["routes"]
            ],
            "stores": [
                {k: store[k] for k in ("location_id", "machines", "dropped", "units", "picks")}
                for store in plan["stores"]
            ],
        }
        self.data["ok"] = bool(self.data.get("ok")) and reconciliation["unexplained"] == 0


def build_summary(engine: Engine, run: DemoRun, report: IngestReport) -> DemoSummary:
    held = fleet_seqs(engine)
    published_total = ingested_total = 0
    missing: dict[str, list[int]] = {}
    unexpected: dict[str, list[int]] = {}
    for m in run.machines:
        published, _ = outbox_seqs(m.journal)
        got = held.get(m.machine_id, set())
        published_total += len(published)
        ingested_total += len(got)
        if published - got:
            missing[m.machine_id] = sorted(published - got)[:20]
        if got - published:
            unexpected[m.machine_id] = sorted(got - published)[:20]
    with engine.connect() as conn:
        by_method: dict[str, dict[str, int]] = {}
        baskets = {"sales": 0, "items": 0, "value": 0}  # the kiosk's (a cabinet's: its own)
        cabinets = {m.machine_id for m in run.machines if m.is_cabinet}
        for row in conn.execute(
            select(sales.c.machine_id, sales.c.method, sales.c.price, sales.c.cash, sales.c.lines)
        ):
            entry = by_method.setdefault(tender(row.method, row.cash), {"count": 0, "value": 0})
            entry["count"] += 1
            entry["value"] += int(row.price)
            lines = json.loads(row.lines) if row.lines else []
            if lines and row.machine_id not in cabinets:
                baskets["sales"] += 1
                baskets["items"] += sum(int(line["quantity"]) for line in lines)
                baskets["value"] += int(row.price)
        alarm_rows = conn.execute(
            select(alarms.c.code, alarms.c.raised_at, alarms.c.cleared_at)
        ).all()
        open_gaps = conn.execute(
            select(func.count()).select_from(gaps).where(gaps.c.filled_at.is_(None))
        ).scalar_one()
        receipts = {str(k.value): v for k, v in counts(conn).items() if v}
        online = conn.execute(
            select(func.count()).select_from(machines).where(machines.c.online.is_(True))
        ).scalar_one()
    raised = Counter(r.code for r in alarm_rows if r.raised_at is not None)
    cleared = Counter(r.code for r in alarm_rows if r.cleared_at is not None)
    faults = [fault.as_json() for fault in run.log.faults]
    exactly_once = not missing and not unexpected
    data: dict[str, Any] = {
        "machines": len(run.machines),
        "machines_online": int(online),
        "minutes": run.options.minutes,
        "speed": run.options.speed,
        "seed": run.options.seed,
        "sales": {
            "count": sum(v["count"] for v in by_method.values()),
            "value": sum(v["value"] for v in by_method.values()),
            "currency": "VND",
            "by_method": by_method,
        },
        "baskets": baskets,
        "receipts": receipts,
        "customers": {
            "attempts": dict(run.stats.attempts),
            "bought": dict(run.stats.bought),
            "cancelled": run.stats.cancelled,
            "refused": run.stats.refused,
            "interrupted": run.stats.errors,
        },
        "events": {
            "published": published_total,
            "ingested": ingested_total,
            "exactly_once": exactly_once,
            "missing": missing,
            "unexpected": unexpected,
            "duplicates_dropped": report.duplicates,
            "quarantined": report.quarantined,
            "gaps_opened": report.gaps_opened,
            "open_gaps": int(open_gaps),
        },
        "alarms": {
            "raised": dict(raised),
            "cleared": dict(cleared),
            "open": sum(1 for r in alarm_rows if r.cleared_at is None),
            "open_by_code": dict(Counter(r.code for r in alarm_rows if r.cleared_at is None)),
        },
        "faults": faults,
        "timeline": run.log.timeline,
        "data": {"folder": str(run.folder), "db": run.db_url},
    }
    data["ok"] = exactly_once and all(x["raised"] and x["cleared"] for x in faults)
    return DemoSummary(data)
