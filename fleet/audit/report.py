"""What a reconciliation returns: machine-interval rows, discrepancies, rollups.

The shape is a contract for exports (CSV/XLSX/PDF) and for locked periods:
:meth:`ReconciliationReport.to_canonical_json` is UTF-8 JSON with sorted keys, no
whitespace, UTC times as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` and integers for money,
so the same inputs always give the same bytes. Sign convention everywhere: positive =
more money (or more documented sales) than expected ("over"), negative = less ("short").
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

SCHEMA = "vendfleet.reconciliation"
SCHEMA_VERSION = 1


class Category(enum.StrEnum):
    MISSING_RECEIPT = "missing_receipt"
    RECEIPT_WITHOUT_SALE = "receipt_without_sale"
    DUPLICATE = "duplicate"
    AMOUNT_MISMATCH = "amount_mismatch"
    VAT_MISMATCH = "vat_mismatch"
    CASH_OVER_SHORT = "cash_over_short"
    CASHLESS_UNMATCHED = "unsettled_or_unknown_cashless"
    REFUND_WITHOUT_ADJUSTMENT = "refund_without_receipt_adjustment"
    COUNTER_BREAK = "counter_reset_or_board_swap"
    TEST_FREE_VENDS = "test_or_free_vends"
    TIMING = "timing"
    UNEXPLAINED = "unexplained"
    INVENTORY_MISMATCH = "inventory_mismatch"  # last: earlier exports keep their columns


class BoundaryKind(enum.StrEnum):
    COLLECTION = "collection"  # a cash count closes the interval
    PERIOD = "period"  # the period starts or ends here


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One difference: ``ref`` names the record it is about (sale ``machine:seq``,
    receipt, settlement row, visit or DEX read); ``at`` is when that record happened."""

    machine: str
    interval: int
    category: Category
    amount: int
    at: datetime
    ref: str
    detail: str

    @property
    def id(self) -> str:
        return f"{self.machine}/{self.interval}/{self.category.value}/{self.ref}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "machine": self.machine,
            "interval": self.interval,
            "category": self.category.value,
            "amount": self.amount,
            "at": iso(self.at),
            "ref": self.ref,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Totals:
    """Summable line items of a row or a rollup (0 where a source had nothing)."""

    telemetry_count: int = 0
    telemetry_value: int = 0
    telemetry_cash: int = 0
    telemetry_cashless: int = 0
    test_free_vends: int = 0
    dex_paid: int = 0
    dex_cash: int = 0
    dex_cashless: int = 0
    cash_expected: int = 0
    cash_counted: int = 0
    cash_change_added: int = 0
    cash_refunds_by_hand: int = 0
    cash_over_short: int = 0
    settled_gross: int = 0
    settled_fees: int = 0
    settled_refunds: int = 0
    receipts_count: int = 0
    receipts_value: int = 0
    receipts_vat: int = 0
    discrepancies: int = 0
    discrepancy_net: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class IntervalResult:
    """One machine-interval row: (start, end] between two boundaries.

    ``dex_window`` is the read-to-read span the DEX figures cover (reads taken at the
    boundaries); ``cash_window`` the collection-to-collection span the cash count covers
    (it may begin in the previous period); ``expected_cash_source`` says whether expected
    cash came from the DEX counters or, when they could not be trusted, from telemetry.
    """

    machine: str
    index: int
    location: str
    route: str
    start: datetime
    end: datetime
    start_kind: BoundaryKind
    end_kind: BoundaryKind
    dex_reads: tuple[str, str] | None
    dex_window: tuple[datetime, datetime] | None
    cash_visit: str | None
    cash_window: tuple[datetime, datetime] | None
    expected_cash_source: str | None
    totals: Totals
    discrepancies: tuple[Discrepancy, ...]
    month: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "index": self.index,
            "location": self.location,
            "route": self.route,
            "month": self.month,
            "start": iso(self.start),
            "end": iso(self.end),
            "start_kind": self.start_kind.value,
            "end_kind": self.end_kind.value,
            "dex_reads": list(self.dex_reads) if self.dex_reads else None,
            "dex_window": _span(self.dex_window),
            "cash_visit": self.cash_visit,
            "cash_window": _span(self.cash_window),
            "expected_cash_source": self.expected_cash_source,
            "totals": self.totals.to_dict(),
            "discrepancies": [d.to_dict() for d in self.discrepancies],
        }


GRAINS = ("machine", "location", "route", "month")


@dataclass(frozen=True, slots=True)
class Rollup:
    grain: str
    key: str
    rows: int
    totals: Totals
    by_category: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "grain": self.grain,
            "key": self.key,
            "rows": self.rows,
            "totals": self.totals.to_dict(),
            "by_category": dict(sorted(self.by_category.items())),
        }


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    """A period's reconciliation. ``rollups`` holds one list per grain in :data:`GRAINS`
    plus ``total`` (one entry); every grain's totals add up to the same total."""

    label: str
    start: datetime
    end: datetime
    timezone: str
    currency: str
    rows: tuple[IntervalResult, ...]
    rollups: dict[str, tuple[Rollup, ...]]

    @property
    def discrepancies(self) -> tuple[Discrepancy, ...]:
        return tuple(d for row in self.rows for d in row.discrepancies)

    @property
    def total(self) -> Rollup:
        return self.rollups["total"][0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "period": {
                "label": self.label,
                "start": iso(self.start),
                "end": iso(self.end),
                "timezone": self.timezone,
            },
            "currency": self.currency,
            "sign_convention": "over = positive, short = negative",
            "rows": [row.to_dict() for row in self.rows],
            "rollups": {
                grain: [r.to_dict() for r in items] for grain, items in self.rollups.items()
            },
        }

    def to_canonical_json(self) -> bytes:
        return canonical_json(self.to_dict())


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iso(moment: datetime) -> str:
    """UTC, ``Z`` suffix; microseconds only when there are any (deterministic either way)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _span(span: tuple[datetime, datetime] | None) -> list[str] | None:
    return [iso(span[0]), iso(span[1])] if span else None
