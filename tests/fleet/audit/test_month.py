"""End to end: a simulated month for 20 machines with one planted discrepancy of every
kind; the reconciliation finds each with its category and amount, and nothing else."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fleet.audit.inputs import CashCountEntry, import_settlements, load_mapping, record_cash_count
from fleet.audit.lock import lock_period, period_report
from fleet.audit.periods import month_period
from fleet.audit.receipts import QueueReceiptSource
from fleet.audit.records import ReconcileConfig
from fleet.audit.report import Category, ReconciliationReport
from fleet.audit.source import reconcile_from_store
from fleet.ingest import Ingestor
from fleet.store.audit_models import audit_sites
from fleet.store.db import make_engine
from fleet.store.schema import upgrade
from tests.fleet.audit.month import MACHINES, MAPPING_TOML, Month, generate
from tests.support.servers import Postgres

NOW = datetime(2026, 4, 5, 9, 0, tzinfo=UTC)
CONFIG = ReconcileConfig(vat_rate_bp=1000)
_names = itertools.count()


@dataclass
class Loaded:
    engine: Engine
    month: Month
    receipts: QueueReceiptSource


def _load(engine: Engine, month: Month, folder: Path) -> None:
    ingestor = Ingestor(engine, clock=lambda: NOW)
    for start in range(0, len(month.messages), 2000):
        report = ingestor.ingest(month.messages[start : start + 2000])
        assert report.quarantined == 0
        assert report.receipt_problems == 0
    month.queue_receipts(engine, NOW)
    with engine.begin() as conn:
        for count in month.counts:
            record_cash_count(conn, CashCountEntry(**count), now=NOW)  # type: ignore[arg-type]
        conn.execute(
            audit_sites.insert(),
            [
                {"machine_id": m, "location": f"loc-{n % 5}", "route": f"route-{n % 2}"}
                for n, m in enumerate(MACHINES)
            ],
        )
    csv_path, mapping_path = folder / "settlement.csv", folder / "mapping.toml"
    month.write_settlements(csv_path)
    mapping_path.write_text(MAPPING_TOML, encoding="utf-8")
    result = import_settlements(engine, csv_path, load_mapping(mapping_path), now=NOW)
    assert result.imported == len(month.settlements)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    folder = tmp_path_factory.mktemp("month")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'fleet.sqlite'}"
    else:
        server: Postgres = request.getfixturevalue("postgres")
        url = server.create_database(f"audit_month_{next(_names)}")
    engine = make_engine(url)
    upgrade(engine)
    month = generate()
    _load(engine, month, folder)
    yield Loaded(engine, month, QueueReceiptSource("VND"))
    engine.dispose()


def _report(loaded: Loaded) -> ReconciliationReport:
    period = month_period("2026-03", CONFIG.timezone)
    return reconcile_from_store(loaded.engine, period, CONFIG, receipts=loaded.receipts)


def test_every_planted_discrepancy_is_found_and_nothing_else(loaded: Loaded) -> None:
    report = _report(loaded)
    found = Counter((d.machine, d.category.value, d.amount) for d in report.discrepancies)
    planted = Counter((p.machine, p.category, p.amount) for p in loaded.month.plants)
    assert {p.category for p in loaded.month.plants} == {c.value for c in Category}
    assert found == planted, "\n".join(
        f"{d.machine} {d.category} {d.amount} {d.ref}: {d.detail}" for d in report.discrepancies
    )


def test_the_month_is_whole_and_adds_up(loaded: Loaded) -> None:
    report = _report(loaded)
    total = report.total.totals
    assert {row.machine for row in report.rows} == set(MACHINES)
    assert total.discrepancy_net == sum(p.amount for p in loaded.month.plants)
    for grain in ("machine", "location", "route", "month"):
        assert sum((r.totals for r in report.rollups[grain]), start=type(total)()) == total
    # every machine was collected four times in March, each count checked against the DEX
    # except the one whose counters broke (checked against telemetry instead)
    closing = [row for row in report.rows if row.cash_visit is not None]
    assert len(closing) == 80
    sources = Counter(row.expected_cash_source for row in closing)
    assert sources == {"dex": 79, "telemetry": 1}
    assert total.cash_counted + total.cash_change_added + total.cash_refunds_by_hand == (
        total.cash_expected + total.cash_over_short
    )


def test_the_sale_at_the_period_end_is_timing_in_both_months(loaded: Loaded) -> None:
    april = month_period("2026-04", CONFIG.timezone)
    report = reconcile_from_store(
        loaded.engine, april, CONFIG, machines=["vm-0008"], receipts=loaded.receipts
    )
    timing = [d for d in report.discrepancies if d.category is Category.TIMING]
    assert [(d.machine, d.amount) for d in timing] == [("vm-0008", 12_000)]


def test_a_locked_month_gives_the_same_bytes_after_late_data(loaded: Loaded) -> None:
    # Last in the module: it locks the shared month and adds late data to it.
    period = month_period("2026-03", CONFIG.timezone)
    lock = lock_period(
        loaded.engine, period, CONFIG, by="auditor", now=NOW, receipts=loaded.receipts
    )
    with loaded.engine.begin() as conn:  # a late correction to a March count
        record_cash_count(
            conn,
            CashCountEntry(
                machine="vm-0001", visit="vm-0001-late", coins=1000, bills=0,
                at=datetime(2026, 3, 20, 1, tzinfo=UTC),
            ),
            now=NOW,
        )  # fmt: skip
    again, used = period_report(loaded.engine, period, CONFIG, receipts=loaded.receipts)
    assert used is not None
    assert again == lock.report
    fresh = reconcile_from_store(loaded.engine, period, CONFIG, receipts=loaded.receipts)
    assert fresh.to_canonical_json() != lock.report
