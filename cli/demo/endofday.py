"""The operator's and the auditor's part of the demo day, through the same fleet code the
CLI uses: master data for restocking, cash counts, the processor's settlement file,
tomorrow's restock plan and the day's reconciliation.

The counts and the settlement file come from the simulated world, not from the fleet:
the cash is what the simulated changer's cash box and bill stacker physically hold, and
the settlement is what the simulated card reader charged (as its processor would
report). So the reconciliation compares independent records, as it would in the field.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from cli.demo.catalog import DEPOT, PRODUCTS, STORE_ID, machine_site
from cli.demo.machines import DemoMachine
from fleet.audit.inputs import (
    CashCountEntry,
    SettlementMapping,
    import_settlements,
    record_cash_count,
)
from fleet.audit.periods import date_period
from fleet.audit.receipts import QueueReceiptSource
from fleet.audit.records import ReconcileConfig
from fleet.audit.report import Rollup
from fleet.audit.source import reconcile_from_store
from fleet.locations import machine_locations
from fleet.planning.masterdata import import_master_data
from fleet.planning.plan import PlanSettings, plan_day
from fleet.planning.plan_report import plan_document
from fleet.planning.source import load_snapshot

TZ_NAME = "Asia/Ho_Chi_Minh"
VANS = 2
PLAN_TIME_LIMIT = 5.0


def sku(name: str) -> str:
    """``Trà xanh 0 độ`` -> ``tra-xanh-0-do``."""
    plain = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    ascii_only = plain.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")


def _toml(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def master_data_toml(machines: list[DemoMachine], sites: dict[str, tuple[float, float]]) -> str:
    lines = ['currency = "VND"', ""]
    for p in PRODUCTS:
        lines += [
            "[[products]]", f"sku = {_toml(sku(p.name))}", f"name = {_toml(p.name)}",
            f"case_quantity = {p.pack}", 'pack_rule = "unit"',
            f"unit_margin = {p.price * 3 // 10}", "",
        ]  # fmt: skip
    lines += [
        "[[depots]]", 'id = "kho-q4"', 'name = "Kho Quận 4"',
        f"lat = {DEPOT[0]}", f"lon = {DEPOT[1]}", 'open = "05:00"', 'close = "22:00"', "",
    ]  # fmt: skip
    for n in range(1, VANS + 1):
        lines += [
            "[[vans]]", f'id = "van-{n}"', 'depot = "kho-q4"', "capacity = 400",
            'shift_start = "07:00"', 'shift_end = "17:00"', "cost_per_km = 3000", "",
        ]  # fmt: skip
    if any(m.in_store for m in machines):
        lines += [
            "[[locations]]", f"id = {_toml(STORE_ID)}", 'name = "vendfleet Store Quận 1"',
            'kind = "store"', 'address = "35 Nguyễn Huệ, Quận 1"', 'route_id = "q1"', "",
        ]  # fmt: skip
    for m in machines:
        lat, lon = sites[m.machine_id]
        location = STORE_ID if m.in_store else f"loc-{m.machine_id}"
        lines += [
            "[[sites]]", f"machine_id = {_toml(m.machine_id)}", f"lat = {lat}", f"lon = {lon}",
            'access_start = "06:00"', 'access_end = "22:00"',
            f"location_id = {_toml(location)}", 'route_id = "q1"', "",
        ]  # fmt: skip
        for slot in m.slots:
            lines += [
                "[[planogram]]", f"machine_id = {_toml(m.machine_id)}",
                f"selection = {_toml(slot.code)}", f"sku = {_toml(sku(slot.product))}",
                f"capacity = {slot.capacity}", f"par = {slot.par}", "",
            ]  # fmt: skip
    return "\n".join(lines)


def import_demo_master_data(
    engine: Engine, folder: Path, machines: list[DemoMachine], seed: float
) -> dict[str, int]:
    import random  # noqa: PLC0415  (only here: sites are placed once)

    rng = random.Random(seed)  # noqa: S311  (simulation)
    sites = {m.machine_id: machine_site(rng) for m in machines}
    path = folder / "masterdata.toml"
    path.write_text(master_data_toml(machines, sites), encoding="utf-8")
    return import_master_data(engine, [path])


@dataclass
class CashDrawer:
    """What one machine's cash box and bill stacker held at the last count."""

    coins: int = 0
    bills: int = 0


@dataclass
class CardLedger:
    """The processor's view of card payments: one row per net charge the reader made."""

    rows: list[tuple[datetime, str, int]] = field(default_factory=list)

    def add(self, at: datetime, machine: str, amount: int) -> None:
        self.rows.append((at, machine, amount))

    def write_csv(self, path: Path, tz: ZoneInfo) -> None:
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["Txn Time", "Terminal", "Amount", "Fee", "Type", "Settled On"])
            for at, machine, amount in self.rows:
                local = at.astimezone(tz)
                fee = amount * 2 // 100  # 2 % merchant fee: reported, never a discrepancy
                writer.writerow(
                    [local.isoformat(), machine, amount, fee, "sale", local.date().isoformat()]
                )


def count_cash(machine: DemoMachine, drawer: CashDrawer) -> tuple[int, int]:
    """What the collector finds: everything added to the box and stacker since the last
    count (the simulators keep running totals; the bag holds the difference)."""
    coins = int(machine.mdb.call("changer", "status")["cash_box_value"])
    bills = int(machine.mdb.call("bill", "status")["stacked_total"])
    found = (coins - drawer.coins, bills - drawer.bills)
    drawer.coins, drawer.bills = coins, bills
    return found


def record_count(
    engine: Engine, machine_id: str, visit: str, *, at: datetime, coins: int, bills: int
) -> None:
    with engine.begin() as conn:
        record_cash_count(
            conn,
            CashCountEntry(
                machine=machine_id, visit=visit, coins=coins, bills=bills, at=at, source="demo"
            ),
            now=datetime.now(UTC),
        )


def import_card_settlements(engine: Engine, ledger: CardLedger, folder: Path) -> int:
    tz = ZoneInfo(TZ_NAME)
    path = folder / "settlement.csv"
    ledger.write_csv(path, tz)
    mapping = SettlementMapping(
        columns={
            "time": "Txn Time",
            "terminal": "Terminal",
            "amount": "Amount",
            "fee": "Fee",
            "kind": "Type",
            "settlement_date": "Settled On",
        },
        timezone=TZ_NAME,
    )
    result = import_settlements(engine, path, mapping, now=datetime.now(UTC))
    return int(getattr(result, "imported", len(ledger.rows)))


def reconcile_day(engine: Engine, day: date) -> dict[str, Any]:
    config = ReconcileConfig(timezone=TZ_NAME)
    report = reconcile_from_store(
        engine, date_period(day, day, TZ_NAME), config, receipts=QueueReceiptSource()
    )
    by_category: Counter[str] = Counter()
    amounts: Counter[str] = Counter()
    for d in report.discrepancies:
        by_category[str(d.category)] += 1
        amounts[str(d.category)] += d.amount
    return {
        "period": report.label,
        "intervals": len(report.rows),
        "discrepancies": dict(by_category),
        "amounts": dict(amounts),
        "unexplained": by_category.get("unexplained", 0),
        "by_machine": {r.key: _rollup(r) for r in report.rollups["machine"]},
        "by_location": {r.key: _rollup(r) for r in report.rollups["location"]},
    }


def _rollup(rollup: Rollup) -> dict[str, int]:
    """One machine's or location's reconciliation totals: what was sold, settled by the
    card processor, receipted and counted, and how many discrepancies remain."""
    t = rollup.totals
    return {
        "intervals": rollup.rows,
        "sales": t.telemetry_count,
        "sales_value": t.telemetry_value,
        "card_value": t.telemetry_cashless,
        "settled_gross": t.settled_gross,
        "receipts": t.receipts_count,
        "receipts_value": t.receipts_value,
        "cash_counted": t.cash_counted,
        "discrepancies": t.discrepancies,
    }


def plan_tomorrow(engine: Engine, now: datetime) -> dict[str, Any]:
    tz = ZoneInfo(TZ_NAME)
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    snap = load_snapshot(engine, now)
    with engine.connect() as conn:
        where = machine_locations(conn)  # a store's units roll up into one visit
    settings = PlanSettings(tz=tz, overrides=snap.overrides, time_limit_s=PLAN_TIME_LIMIT)
    result = plan_day(tomorrow, snap.fleet, now, settings)
    return plan_document(
        result,
        depot_id=snap.fleet.depot.depot_id,
        timezone=TZ_NAME,
        routes=snap.routes,
        notes=snap.notes,
        locations=where,
    )
