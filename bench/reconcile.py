"""Reconcile and export a month of N sales, on PostgreSQL and on SQLite.

Generates March 2026 (Asia/Ho_Chi_Minh) for ``--machines`` machines straight into the
fleet tables (COPY on PostgreSQL, executemany in big transactions on SQLite): sales
(60 % cash, 40 % cashless), a collection with a cash count and a DEX read four times a
month plus reads at the period boundaries, a settlement row per cashless sale, sites
and a few planted missing receipts. Then, in a fresh process, times
``reconcile_from_store`` and the export (CSV, XLSX, PDF, signed manifest) and reports
that process's peak resident memory (ru_maxrss).

    .venv/bin/python bench/reconcile.py --sales 1000000        # both databases
    .venv/bin/python bench/reconcile.py --db sqlite --sales 100000
    .venv/bin/python bench/reconcile.py --pg postgresql+psycopg://user@host/db
    .venv/bin/python bench/reconcile.py --db sqlite --sales 1000000 --keep /tmp/b --workers 1
    .venv/bin/python bench/reconcile.py --db postgresql --pg URL --loaded   # reuse a load

Receipts are in the transmission queue (accepted) and reconciled from there
(QueueReceiptSource). ``--workers N`` sets the reconcile processes (default: the
library's choice); ``--keep DIR`` keeps the SQLite database there and reuses it.

Targets (TARGETS.md): 10 M sales in <= 120 s on PostgreSQL, <= 300 s on SQLite, peak
memory <= 1 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import random
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from fleet.audit.export_bundle import render_files, write_files
from fleet.audit.manifest import SigningKey
from fleet.audit.parallel import default_workers
from fleet.audit.periods import month_period
from fleet.audit.receipts import QueueReceiptSource
from fleet.audit.records import ReconcileConfig, vat_due
from fleet.audit.source import reconcile_from_store
from fleet.store.db import make_engine
from fleet.store.schema import upgrade
from protocols.dex import AuditCounters, CashIn, CashlessDevice, DeviceId, Tally, write_dex
from tests.support.servers import run_postgres, server_folder

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PRICES = (10_000, 12_000, 15_000, 20_000)
SELECTIONS = ("A1", "B1", "A2", "B2")
BILL_FOR = {10_000: 10_000, 12_000: 20_000, 15_000: 20_000, 20_000: 20_000}
TENDERS = {b: json.dumps({"coins": [], "bills": [{"value": b, "count": 1}]}) for b in BILL_FOR}
FIRST, LAST = date(2026, 2, 28), date(2026, 3, 31)
PLANT_EVERY = 100_000  # a paid sale without a receipt number, every this many sales
TARGETS = {"postgresql": 120.0, "sqlite": 300.0}
MEMORY_TARGET_MB = 1024.0
CONFIG = ReconcileConfig()

SALE_COLUMNS = (
    "machine_id",
    "seq",
    "ts",
    "vend_id",
    "selection",
    "product",
    "price",
    "currency",
    "method",
    "reader",
    "payment_ref",
    "settled",
    "receipt_number",
    "cash",
    "receipt_symbol",
    "receipt_no",
    "receipt_total",
    "receipt_vat",
)
QUEUE_COLUMNS = (
    "idempotency_key", "machine_id", "series", "number", "kind", "sale_seq", "document",
    "total", "currency", "issued_at", "state", "attempts", "next_attempt_at", "provider",
    "provider_ref", "enqueued_at", "updated_at", "accepted_at",
)  # fmt: skip
SYMBOL = "1C26MAA"
SETTLEMENT_COLUMNS = (
    "row_key",
    "machine_id",
    "terminal",
    "at",
    "amount",
    "fee",
    "currency",
    "kind",
    "reference",
    "original_reference",
    "settlement_date",
    "source",
)
COUNT_COLUMNS = (
    "machine_id",
    "visit",
    "counted_at",
    "currency",
    "coins",
    "bills",
    "change_added",
    "refunds_by_hand",
    "source",
    "entered_at",
)
READ_COLUMNS = ("machine_id", "seq", "read_at", "reset", "raw", "summary")


def local(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ZONE).astimezone(UTC)


@dataclass
class _Machine:
    index: int
    id: str
    seq: int = 0
    vend: int = 0
    cash: int = 0
    cashless: int = 0
    paid_count: int = 0
    bills_in: int = 0
    bag: int = 0
    collections: dict[date, datetime] = field(default_factory=dict)

    def dex(self, at: datetime) -> tuple[Any, ...]:
        self.seq += 1
        raw = write_dex(
            AuditCounters(
                machine_serial=self.id,
                currency_numeric="1704",
                currency_alpha="VND",
                control_board=DeviceId(serial=f"CB{self.index:05d}", model="VF-CB"),
                paid_vends=Tally(self.cash + self.cashless, self.paid_count),
                cash_sales=Tally(self.cash, 0),
                cash_in=CashIn(
                    value_init=self.bills_in, cashbox_init=0, tubes_init=0, bills_init=self.bills_in
                ),
                cashless=(CashlessDevice(slot="DA", sales=Tally(self.cashless, 0)),),
            ),
            read_at=at.astimezone(ZONE).replace(tzinfo=None),
            reset_interim=False,
            communication_id="VFL0000001",
        )
        return (self.id, self.seq, at, True, raw, "{}")


@dataclass
class _Batch:
    sales: list[tuple[Any, ...]] = field(default_factory=list)
    settlements: list[tuple[Any, ...]] = field(default_factory=list)
    counts: list[tuple[Any, ...]] = field(default_factory=list)
    reads: list[tuple[Any, ...]] = field(default_factory=list)
    receipts: list[tuple[Any, ...]] = field(default_factory=list)


def generate(n_sales: int, n_machines: int, seed: int = 11) -> Iterator[_Batch]:
    """One batch per day, rows in time order (indexes grow at their end)."""
    rng = random.Random(seed)
    days = (LAST - FIRST).days + 1
    per_day = n_sales / (n_machines * days)
    machines = [_Machine(i, f"vm-{i:05d}") for i in range(1, n_machines + 1)]
    for m in machines:
        m.collections = {FIRST: local(FIRST, 5)} | {
            date(2026, 3, d + m.index % 5): local(date(2026, 3, d + m.index % 5), 14)
            for d in (3, 10, 17, 24)
        }
    boundaries = {date(2026, 3, 1): local(date(2026, 3, 1), 0, 0, 30)}
    made = 0
    for offset in range(days):
        day = FIRST + timedelta(days=offset)
        batch = _Batch()
        quota = round(per_day * n_machines * (offset + 1)) - made
        for position, m in enumerate(machines):
            k = quota // n_machines + (1 if position < quota % n_machines else 0)
            made += k
            if day in boundaries:
                batch.reads.append(m.dex(boundaries[day]))
            visit = m.collections.get(day)
            opened = local(day, 6)
            seconds = sorted(rng.randrange(16 * 3600) for _ in range(k))
            moments = [opened + timedelta(seconds=s) for s in seconds]
            if visit is not None:
                moments = [t for t in moments if abs(t - visit) > timedelta(minutes=3)]
                before = [t for t in moments if t < visit]
                after = moments[len(before) :]
            else:
                before, after = moments, []
            for at in before:
                _sale(m, at, rng, batch)
            if visit is not None:
                batch.reads.append(m.dex(visit - timedelta(minutes=1)))
                batch.counts.append(
                    (m.id, f"{m.id}-{day}", visit, "VND", 0, m.bag, 0, 0, "bench", visit)
                )
                m.bag = 0
            for at in after:
                _sale(m, at, rng, batch)
        if day == LAST:
            end = local(date(2026, 4, 1), 0, 0, 30)
            batch.reads.extend(m.dex(end) for m in machines)
        batch.sales.sort(key=lambda r: r[2])
        batch.settlements.sort(key=lambda r: r[3])
        yield batch


def _sale(m: _Machine, at: datetime, rng: random.Random, batch: _Batch) -> None:
    m.seq += 1
    m.vend += 1
    pick = rng.randrange(4)
    price = PRICES[pick]
    m.paid_count += 1
    number = m.index * 10_000_000 + m.vend
    receipt = None if rng.randrange(PLANT_EVERY) == 0 else f"{SYMBOL}-{number:08d}"
    issued = (SYMBOL, number, price, vat_due(price, CONFIG.vat_rate_bp)) if receipt else (None,) * 4
    if receipt:  # the receipt travelled with the sale, was queued and accepted
        sent = at + timedelta(seconds=5)
        batch.receipts.append(
            (f"rcpt-{m.id}-{number}", m.id, SYMBOL, str(number), "original", m.seq, b"<HDon/>",
             price, "VND", at, "accepted", 1, at, "bench", f"P{number}", at, sent, sent)
        )  # fmt: skip
    if rng.random() < 0.6:
        bill = BILL_FOR[price]
        m.cash += price
        m.bills_in += bill
        m.bag += bill
        batch.sales.append(
            (
                m.id,
                m.seq,
                at,
                m.vend,
                SELECTIONS[pick],
                "product",
                price,
                "VND",
                "cash",
                None,
                None,
                True,
                receipt,
                TENDERS[bill],
                *issued,
            )
        )
        return
    m.cashless += price
    ref = f"{m.id}-{m.vend}"
    batch.sales.append(
        (
            m.id,
            m.seq,
            at,
            m.vend,
            SELECTIONS[pick],
            "product",
            price,
            "VND",
            "cashless",
            1,
            ref,
            True,
            receipt,
            None,
            *issued,
        )
    )
    settled = at + timedelta(seconds=2)
    batch.settlements.append(
        (
            f"sale:{ref}",
            m.id,
            f"T{m.index:05d}",
            settled,
            price,
            price * 2 // 100,
            "VND",
            "sale",
            ref,
            None,
            settled.astimezone(ZONE).date() + timedelta(days=1),
            "bench",
        )
    )


def _naive(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):  # as SQLAlchemy stores it: naive UTC text
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def load(url: str, n_sales: int, n_machines: int) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    tables = {
        "sales": SALE_COLUMNS,
        "audit_settlements": SETTLEMENT_COLUMNS,
        "audit_cash_counts": COUNT_COLUMNS,
        "dex_reads": READ_COLUMNS,
        "receipt_queue": QUEUE_COLUMNS,
    }
    sites = [
        (f"vm-{i:05d}", f"loc-{i % 200:03d}", f"route-{i % 25:02d}")
        for i in range(1, n_machines + 1)
    ]
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            with conn.cursor() as cur:
                for batch in generate(n_sales, n_machines):
                    for name, rows in zip(tables, _rows(batch), strict=True):
                        with cur.copy(f"COPY {name} ({', '.join(tables[name])}) FROM STDIN") as cp:
                            for row in rows:
                                cp.write_row(_naive(row))
                cur.executemany(
                    "INSERT INTO audit_sites (machine_id, location, route) VALUES (%s, %s, %s)",
                    sites,
                )
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
        finally:
            raw.close()
    else:
        path = url.removeprefix("sqlite:///")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        for batch in generate(n_sales, n_machines):
            for name, rows in zip(tables, _rows(batch), strict=True):
                marks = ", ".join("?" * len(tables[name]))
                db.executemany(
                    f"INSERT INTO {name} ({', '.join(tables[name])}) VALUES ({marks})",
                    ([_sqlite_value(v) for v in row] for row in rows),
                )
        db.executemany("INSERT INTO audit_sites VALUES (?, ?, ?)", sites)
        db.execute("COMMIT")
        db.execute("ANALYZE")
        db.close()
    engine.dispose()
    return {"load_s": time.perf_counter() - started}


def _rows(batch: _Batch) -> tuple[list[tuple[Any, ...]], ...]:
    return batch.sales, batch.settlements, batch.counts, batch.reads, batch.receipts


def run(url: str, out: str, workers: int | None) -> dict[str, float]:
    """In a fresh process: reconcile, export, peak RSS of this process."""
    engine = make_engine(url)
    period = month_period("2026-03", CONFIG.timezone)
    started = time.perf_counter()
    report = reconcile_from_store(
        engine, period, CONFIG, receipts=QueueReceiptSource(CONFIG.currency), workers=workers
    )
    reconciled = time.perf_counter()
    key = SigningKey(b"bench-key-" + b"0" * 22)
    files = render_files(report, key)
    write_files(Path(out), files)
    exported = time.perf_counter()
    with engine.connect() as conn:
        in_period = conn.execute(
            text("SELECT count(*) FROM sales WHERE ts >= :a AND ts < :b"),
            {"a": period.start.replace(tzinfo=None), "b": period.end.replace(tzinfo=None)},
        ).scalar_one()
    engine.dispose()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The reconcile workers are this process's children: the largest one's peak, and
    # the worst case of all of them at their peak at once beside this process.
    worker_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    workers_used = workers or default_workers(len({row.machine for row in report.rows}))
    total = report.total.totals
    return {
        "reconcile_s": reconciled - started,
        "export_s": exported - reconciled,
        "peak_rss_mb": rss_kb / 1024,
        "worker_rss_mb": worker_kb / 1024,
        "peak_total_mb": (rss_kb + worker_kb * workers_used) / 1024,
        "rows": len(report.rows),
        "discrepancies": len(report.discrepancies),
        "sales_in_period": in_period,
        "telemetry_count": total.telemetry_count,
        "bytes": sum(len(v) for v in files.values()),
    }


def _child(target: Any, *args: Any) -> dict[str, float]:
    # Not a multiprocessing.Pool: its daemon workers could not start reconcile workers.
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        result: dict[str, float] = pool.submit(target, *args).result()
    return result


def measure(kind: str, url: str, args: argparse.Namespace, folder: Path) -> None:
    print(f"\n== {kind}: {args.sales:,} sales, {args.machines:,} machines", flush=True)
    if args.keep and kind == "sqlite" and Path(url.removeprefix("sqlite:///")).exists():
        print("reusing the database kept from an earlier run", flush=True)
    elif args.loaded and kind == "postgresql":
        print("reusing the month loaded by an earlier run (--loaded)", flush=True)
    else:
        loaded = _child(load, url, args.sales, args.machines)
        print(f"generated and loaded in {loaded['load_s']:.1f} s", flush=True)
    got = _child(run, url, str(folder / f"export-{kind}-{time.time_ns()}"), args.workers)
    print(f"workers: {args.workers or 'default'}")
    total = got["reconcile_s"] + got["export_s"]
    scale = 10_000_000 / args.sales
    target = TARGETS[kind]
    print(
        f"rows {got['rows']:,}, discrepancies {got['discrepancies']:,}, sales in period "
        f"{got['sales_in_period']:,}, reconciled {got['telemetry_count']:,}, "
        f"export {got['bytes'] / 1e6:.1f} MB"
    )
    print(
        f"reconcile {got['reconcile_s']:.1f} s + export {got['export_s']:.1f} s = {total:.1f} s"
        f"; target <= {target:.0f} s at 10 M"
    )
    if scale != 1:  # reconcile grows with sales; the export with machine-intervals
        estimate = got["reconcile_s"] * scale + got["export_s"]
        print(f"  estimate at 10 M sales, same fleet: ~{estimate:.0f} s (reconcile x{scale:g})")
    print(
        f"peak RSS: main {got['peak_rss_mb']:.0f} MB, largest worker {got['worker_rss_mb']:.0f}"
        f" MB, all at once at most {got['peak_total_mb']:.0f} MB"
        f" (target <= {MEMORY_TARGET_MB:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=10_000_000)
    parser.add_argument("--machines", type=int, default=2_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg", help="use this PostgreSQL URL (an empty database)")
    parser.add_argument("--workers", type=int, help="reconcile processes (default: library's)")
    parser.add_argument(
        "--keep", type=Path, help="keep the SQLite database in this folder and reuse it"
    )
    parser.add_argument(
        "--loaded",
        action="store_true",
        help="with --pg: the database already holds the month (an earlier run); skip loading",
    )
    args = parser.parse_args()
    if args.loaded and not args.pg:
        parser.error("--loaded needs --pg (a database an earlier run filled)")
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vend-bench-")))
        if args.db in {"sqlite", "both"}:
            place = args.keep or folder
            place.mkdir(parents=True, exist_ok=True)
            name = f"fleet-{args.sales}-{args.machines}.sqlite"
            measure("sqlite", f"sqlite:///{place / name}", args, folder)
        if args.db in {"postgresql", "both"}:
            url = args.pg
            if url is None:
                pg_folder = stack.enter_context(server_folder("bench-pg"))
                server = stack.enter_context(run_postgres(pg_folder))
                url = server.create_database("bench")
            measure("postgresql", url, args, folder)


if __name__ == "__main__":
    main()
