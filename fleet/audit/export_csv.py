"""CSV export (the data of record) and reading it back for verification.

Files: ``intervals.csv`` (one row per machine-interval, every line item), ``rollups.csv``
(grain, key, line items, net discrepancy per category), ``discrepancies.csv`` and
``README.txt`` (period, time zone, currency, sign convention, what each file holds).
UTF-8, comma separated, CRLF, integers in minor units, UTC times with a ``Z``.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fleet.audit.export_info import (
    CATEGORIES,
    GRAIN_NAMES,
    SIGN_CONVENTION,
    TOTAL_FIELDS,
    ExportInfo,
    period_lines,
)
from fleet.audit.records import AuditError
from fleet.audit.report import IntervalResult, ReconciliationReport, iso

INTERVALS = "intervals.csv"
ROLLUPS = "rollups.csv"
DISCREPANCIES = "discrepancies.csv"
README = "README.txt"

INTERVAL_HEADER = (
    "machine", "interval", "location", "route", "month", "start", "end",
    "start_kind", "end_kind", "dex_read_start", "dex_read_end", "dex_window_start",
    "dex_window_end", "cash_visit", "cash_window_start", "cash_window_end",
    "expected_cash_source", "currency", *TOTAL_FIELDS,
)  # fmt: skip
ROLLUP_HEADER = (
    "grain", "key", "rows", "currency", *TOTAL_FIELDS,
    *(f"net_{c}" for c in CATEGORIES),
)  # fmt: skip
DISCREPANCY_HEADER = (
    "id", "machine", "interval", "category", "amount", "currency", "at", "ref", "detail",
)  # fmt: skip


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def interval_row(row: IntervalResult, currency: str) -> list[object]:
    reads = row.dex_reads or ("", "")
    dex = row.dex_window
    cash = row.cash_window
    return [
        row.machine, row.index, row.location, row.route, row.month, iso(row.start),
        iso(row.end), row.start_kind.value, row.end_kind.value, reads[0], reads[1],
        iso(dex[0]) if dex else "", iso(dex[1]) if dex else "", row.cash_visit or "",
        iso(cash[0]) if cash else "", iso(cash[1]) if cash else "",
        row.expected_cash_source or "", currency, *row.totals.to_dict().values(),
    ]  # fmt: skip


def intervals_csv(report: ReconciliationReport) -> bytes:
    return _table(INTERVAL_HEADER, (interval_row(r, report.currency) for r in report.rows))


def rollups_csv(report: ReconciliationReport) -> bytes:
    rows = (
        [
            grain,
            item.key,
            item.rows,
            report.currency,
            *item.totals.to_dict().values(),
            *(item.by_category.get(c, 0) for c in CATEGORIES),
        ]
        for grain, items in report.rollups.items()
        for item in items
    )
    return _table(ROLLUP_HEADER, rows)


def discrepancies_csv(report: ReconciliationReport) -> bytes:
    rows = (
        [
            d.id,
            d.machine,
            d.interval,
            d.category.value,
            d.amount,
            report.currency,
            iso(d.at),
            d.ref,
            d.detail,
        ]
        for d in report.discrepancies
    )
    return _table(DISCREPANCY_HEADER, rows)


def readme(report: ReconciliationReport, info: ExportInfo) -> bytes:
    facts = "\n".join(f"{label}: {value}" for label, value in period_lines(report, info))
    grains = ", ".join(f"{g} ({GRAIN_NAMES[g]})" for g in report.rollups)
    text = f"""vendfleet reconciliation export

{facts}

Money: every amount is an integer in minor units of {report.currency}; nothing is rounded.
Sign convention: {SIGN_CONVENTION}. A positive amount means more money (or more
documented sales) than expected, a negative one less.
Times: UTC, ISO 8601 with a Z. Intervals are [start, end).

{INTERVALS}: one row per machine-interval (between cash collections and period or month
  boundaries), every line item of the reconciliation.
{ROLLUPS}: one row per grain and key; grains {grains}. Every grain's line items add up
  to the period row (grain "total"); net_<category> is the net discrepancy amount.
{DISCREPANCIES}: one row per finding, with the record it is about (ref).
manifest.json: SHA-256 of every file and the control totals; manifest.json.sig: its
  signature ({info.algorithm}, key {info.key_id}). Check with
  `vend audit verify DIR --public-key FILE.pub` or `--key-id {info.key_id}`.
"""
    return text.replace("\n", "\r\n").encode("utf-8")


def csv_files(report: ReconciliationReport, info: ExportInfo) -> dict[str, bytes]:
    return {
        README: readme(report, info),
        INTERVALS: intervals_csv(report),
        ROLLUPS: rollups_csv(report),
        DISCREPANCIES: discrepancies_csv(report),
    }


# -- reading back ---------------------------------------------------------------------


@dataclass
class CsvTotals:
    """What the CSV files add up to, recomputed from their text."""

    rows: int = 0
    intervals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOTAL_FIELDS, 0))
    # grain -> summed line items (and net per category) over that grain's rows
    grains: dict[str, dict[str, int]] = field(default_factory=dict)
    grain_rows: dict[str, int] = field(default_factory=dict)
    discrepancies: int = 0
    discrepancy_net: int = 0
    by_category: dict[str, int] = field(default_factory=dict)


def _reader(path: Path, header: Sequence[str]) -> Iterable[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"{path.name}: cannot read ({exc})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if tuple(reader.fieldnames or ()) != tuple(header):
        raise AuditError(f"{path.name}: unexpected header {reader.fieldnames}")
    return reader


def _number(path: Path, line: int, column: str, text: str | None) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise AuditError(
            f"{path.name}:{line}: column {column!r}: {text!r} is not an integer"
        ) from None


def read_csv_totals(folder: Path) -> CsvTotals:
    """Sum the CSV files in ``folder``; raises AuditError naming a file it cannot read."""
    result = CsvTotals()
    path = folder / INTERVALS
    for line, row in enumerate(_reader(path, INTERVAL_HEADER), start=2):
        result.rows += 1
        for name in TOTAL_FIELDS:
            result.intervals[name] += _number(path, line, name, row[name])
    path = folder / ROLLUPS
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    counted: dict[str, int] = defaultdict(int)
    for line, row in enumerate(_reader(path, ROLLUP_HEADER), start=2):
        grain = row["grain"]
        counted[grain] += 1
        for name in ("rows", *TOTAL_FIELDS, *(f"net_{c}" for c in CATEGORIES)):
            sums[grain][name] += _number(path, line, name, row[name])
    result.grains = {g: dict(v) for g, v in sums.items()}
    result.grain_rows = dict(counted)
    path = folder / DISCREPANCIES
    by_category: dict[str, int] = defaultdict(int)
    for line, row in enumerate(_reader(path, DISCREPANCY_HEADER), start=2):
        amount = _number(path, line, "amount", row["amount"])
        result.discrepancies += 1
        result.discrepancy_net += amount
        by_category[row["category"]] += amount
    result.by_category = dict(sorted(by_category.items()))
    return result
