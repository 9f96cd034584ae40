"""Read a report back from its canonical JSON (a locked period is stored as those bytes).

The inverse of :meth:`ReconciliationReport.to_canonical_json`: ``report_from_json(data)``
gives a report whose canonical JSON is ``data`` again, so exports of a locked period are
made from exactly what was locked. Anything that is not such a document is an
:class:`~fleet.audit.records.AuditError` naming what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from fleet.audit.records import AuditError
from fleet.audit.report import (
    SCHEMA,
    SCHEMA_VERSION,
    BoundaryKind,
    Category,
    Discrepancy,
    IntervalResult,
    ReconciliationReport,
    Rollup,
    Totals,
)

_TOTAL_FIELDS = tuple(f.name for f in fields(Totals))


def report_from_json(data: bytes) -> ReconciliationReport:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditError(f"not a reconciliation report: {exc}") from None
    try:
        return _report(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AuditError(f"malformed reconciliation report: {exc!r}") from None


def _report(doc: dict[str, Any]) -> ReconciliationReport:
    if doc.get("schema") != SCHEMA or doc.get("version") != SCHEMA_VERSION:
        raise AuditError(
            f"not a {SCHEMA} v{SCHEMA_VERSION} document "
            f"(schema {doc.get('schema')!r}, version {doc.get('version')!r})"
        )
    period = doc["period"]
    return ReconciliationReport(
        label=str(period["label"]),
        start=parse_time(period["start"]),
        end=parse_time(period["end"]),
        timezone=str(period["timezone"]),
        currency=str(doc["currency"]),
        rows=tuple(_row(row) for row in doc["rows"]),
        rollups={
            grain: tuple(_rollup(item) for item in items) for grain, items in doc["rollups"].items()
        },
    )


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return moment.astimezone(UTC)


def totals_from(values: dict[str, Any]) -> Totals:
    unknown = set(values) - set(_TOTAL_FIELDS)
    if unknown:
        raise ValueError(f"unknown totals {sorted(unknown)}")
    return Totals(**{name: _int(values.get(name, 0)) for name in _TOTAL_FIELDS})


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer amount, got {value!r}")
    return value


def _span(value: list[str] | None) -> tuple[datetime, datetime] | None:
    if value is None:
        return None
    first, second = value
    return parse_time(first), parse_time(second)


def _row(row: dict[str, Any]) -> IntervalResult:
    reads = row["dex_reads"]
    return IntervalResult(
        machine=str(row["machine"]),
        index=_int(row["index"]),
        location=str(row["location"]),
        route=str(row["route"]),
        start=parse_time(row["start"]),
        end=parse_time(row["end"]),
        start_kind=BoundaryKind(row["start_kind"]),
        end_kind=BoundaryKind(row["end_kind"]),
        dex_reads=(str(reads[0]), str(reads[1])) if reads else None,
        dex_window=_span(row["dex_window"]),
        cash_visit=row["cash_visit"],
        cash_window=_span(row["cash_window"]),
        expected_cash_source=row["expected_cash_source"],
        totals=totals_from(row["totals"]),
        discrepancies=tuple(_discrepancy(d) for d in row["discrepancies"]),
        month=str(row["month"]),
    )


def _discrepancy(d: dict[str, Any]) -> Discrepancy:
    return Discrepancy(
        machine=str(d["machine"]),
        interval=_int(d["interval"]),
        category=Category(d["category"]),
        amount=_int(d["amount"]),
        at=parse_time(d["at"]),
        ref=str(d["ref"]),
        detail=str(d["detail"]),
    )


def _rollup(item: dict[str, Any]) -> Rollup:
    return Rollup(
        grain=str(item["grain"]),
        key=str(item["key"]),
        rows=_int(item["rows"]),
        totals=totals_from(item["totals"]),
        by_category={str(k): _int(v) for k, v in item["by_category"].items()},
    )
