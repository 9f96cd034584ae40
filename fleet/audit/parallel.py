"""Reconcile a large fleet in several processes, each a contiguous slice of the machines.

Machines are independent in a reconciliation, so each worker streams its own slice (its own
connection, its own server-side cursors) and sends back only the machine-interval rows; the
report is assembled and sorted in the caller, so the output does not depend on how the
fleet was cut. Workers are started with ``spawn`` (no inherited connections or threads).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Engine

if TYPE_CHECKING:
    from fleet.audit.periods import Period
    from fleet.audit.receipts import ReceiptSource
    from fleet.audit.records import ReconcileConfig
    from fleet.audit.report import IntervalResult

MAX_WORKERS = 2
PARALLEL_FROM = 500  # machines: below this, starting processes costs more than it saves


def default_workers(machines: int) -> int:
    if machines < PARALLEL_FROM:
        return 1
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def slices(machines: Sequence[str], parts: int) -> list[list[str]]:
    """``parts`` contiguous, nearly equal slices (in the given order), none empty."""
    parts = max(1, min(parts, len(machines)))
    size, extra = divmod(len(machines), parts)
    found: list[list[str]] = []
    start = 0
    for n in range(parts):
        end = start + size + (1 if n < extra else 0)
        found.append(list(machines[start:end]))
        start = end
    return found


def reconcile_in_processes(
    engine: Engine,
    period: Period,
    config: ReconcileConfig,
    machines: Sequence[str],
    receipts: ReceiptSource | None,
    *,
    workers: int,
) -> list[IntervalResult]:
    url = engine.url.render_as_string(hide_password=False)
    jobs = [(url, period, config, part, receipts) for part in slices(machines, workers)]
    with mp.get_context("spawn").Pool(len(jobs)) as pool:
        parts = pool.starmap(_work, jobs)
    return [row for part in parts for row in part]


def _work(
    url: str,
    period: Period,
    config: ReconcileConfig,
    machines: list[str],
    receipts: ReceiptSource | None,
) -> list[IntervalResult]:
    from fleet.audit.source import reconcile_rows_of  # noqa: PLC0415  (source imports us)
    from fleet.store.db import make_engine  # noqa: PLC0415

    engine = make_engine(url, read_only=True)  # SQLite: workers read side by side
    try:
        return reconcile_rows_of(engine, period, config, machines, receipts)
    finally:
        engine.dispose()
