"""From ingested sales to queued receipts: the hook ingest calls in the sale's transaction.

``enqueue_for_sales(conn, rows, now)`` takes the sale rows just projected (the dicts
``fleet.projections`` inserts into ``sales``) and queues the receipt each one carries.
A receipt problem never fails ingest — the sale is a fact whatever its receipt — so bad
or missing receipts are reported back and logged; reconciliation finds them again as
"missing receipt" discrepancies.

How a row becomes a document is a ``ReceiptBuilder``: the default reads the receipt the
machine issued (``row["receipt"]``: the ``protocols.einvoice.Receipt`` as a dict or JSON
text); an installation that builds receipts centrally passes its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from fleet.einvoice.queue import Enqueued, enqueue_many
from fleet.einvoice.receipt import OutgoingReceipt, ReceiptError, ReceiptKey, ReceiptKind
from protocols.einvoice import EinvoiceError, Receipt, Relation, to_xml, validate_receipt

log = logging.getLogger(__name__)

SaleRow = Mapping[str, Any]
ReceiptBuilder = Callable[[SaleRow], OutgoingReceipt | None]

_KINDS = {
    Relation.REPLACEMENT: ReceiptKind.REPLACEMENT,
    Relation.ADJUSTMENT: ReceiptKind.ADJUSTMENT,
}


def outgoing_from_receipt(
    machine_id: str, doc: Receipt, *, sale_seq: int | None = None
) -> OutgoingReceipt:
    """The transmission form of a receipt document: keyed by machine, symbol and number."""
    original = None
    kind = ReceiptKind.ORIGINAL
    if doc.original is not None:
        kind = _KINDS[doc.original.relation]
        original = ReceiptKey(machine_id, doc.original.symbol, str(doc.original.number))
    return OutgoingReceipt(
        key=ReceiptKey(machine_id, doc.symbol, str(doc.number)),
        kind=kind,
        xml=to_xml(doc),
        total=doc.total,
        currency=doc.currency,
        issued_at=doc.issued_at,
        original=original,
        sale_seq=sale_seq,
    )


def receipt_in_row(row: SaleRow) -> OutgoingReceipt | None:
    """The default builder: the receipt document the machine sent with the sale."""
    raw = row.get("receipt")
    if raw is None:
        return None
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ReceiptError(f"receipt JSON is malformed: {exc}") from None
    return outgoing_from_receipt(
        str(row["machine_id"]), validate_receipt(raw), sale_seq=row.get("seq")
    )


@dataclass
class SalesEnqueued:
    new: int = 0
    duplicate: int = 0
    without_receipt: int = 0
    problems: list[str] = field(default_factory=list)  # "machine seq N: why", not queued
    # The same problems by sale, (machine_id, seq) -> why, for callers that mark the sale.
    reasons: dict[tuple[str, int], str] = field(default_factory=dict)


def enqueue_for_sales(
    conn: Connection,
    rows: Sequence[SaleRow],
    now: datetime,
    *,
    build: ReceiptBuilder = receipt_in_row,
) -> SalesEnqueued:
    """Queue the receipts of ``rows`` in the caller's transaction (idempotent), in one
    insert for them all (fleet.einvoice.queue.enqueue_many)."""
    report = SalesEnqueued()
    built: list[tuple[SaleRow, OutgoingReceipt | str]] = []  # a receipt, or why not
    for row in rows:
        try:
            receipt = build(row)
            if receipt is None:
                report.without_receipt += 1
                continue
            if receipt.kind is not ReceiptKind.ORIGINAL:
                raise ReceiptError(
                    f"sale carries a {receipt.kind.value}: corrections are queued by operators"
                )
        except (ReceiptError, EinvoiceError, KeyError, TypeError) as exc:
            built.append((row, str(exc)))
        else:
            built.append((row, receipt))
    queued = iter(enqueue_many(conn, [r for _, r in built if isinstance(r, OutgoingReceipt)], now))
    for row, item in built:
        where = f"{row.get('machine_id')} seq {row.get('seq')}"
        if isinstance(item, str):
            _problem(report, row, where, item)
            continue
        outcome = next(queued)
        if outcome is Enqueued.NEW:
            report.new += 1
        elif outcome is Enqueued.DUPLICATE:
            report.duplicate += 1
        else:
            why = f"receipt {item.key} is already queued with another document"
            _problem(report, row, where, why)
    return report


def _problem(report: SalesEnqueued, row: SaleRow, where: str, why: str) -> None:
    report.problems.append(f"{where}: {why}")
    seq = row.get("seq")
    report.reasons[(str(row.get("machine_id")), seq if isinstance(seq, int) else -1)] = why
    log.warning("receipt of sale %s not queued: %s", where, why)
