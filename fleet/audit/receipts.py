"""Where "receipts issued" come from: a small adapter fills plain :class:`ReceiptRecord`s.

:class:`QueueReceiptSource` (the default) reads the e-receipt transmission queue
(``receipt_queue``, see fleet.einvoice.queue): every document the fleet holds for a
machine, whether the provider accepted it, corrections linked to what they correct. See
:mod:`fleet.audit.queue_receipts`.

:class:`SalesReceiptSource` derives one receipt per sale that carries a receipt number
(amount = price, VAT at the configured rate, assumed transmitted): it proves the machine
assigned a number, not that the tax authority got it; kept for data without a queue.
:class:`StaticReceiptSource` serves a fixed list (a provider's export, tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection

from fleet.audit.queue_receipts import QueueReceiptSource
from fleet.audit.records import ReceiptRecord, SaleRecord, vat_due

__all__ = ["QueueReceiptSource", "ReceiptSource", "SalesReceiptSource", "StaticReceiptSource"]


class ReceiptSource(Protocol):
    def load(
        self,
        conn: Connection,
        machines: Sequence[str],
        start: datetime,
        end: datetime,
        sales: Sequence[SaleRecord],
    ) -> list[ReceiptRecord]:
        """Receipts of ``machines`` issued in [start, end), plus any receipt (or adjustment)
        of one of ``sales``, whenever issued."""
        ...


class SalesReceiptSource:
    def __init__(self, vat_rate_bp: int) -> None:
        self.vat_rate_bp = vat_rate_bp

    def load(
        self,
        conn: Connection,
        machines: Sequence[str],
        start: datetime,
        end: datetime,
        sales: Sequence[SaleRecord],
    ) -> list[ReceiptRecord]:
        return [
            ReceiptRecord(
                key=f"sale:{sale.key}",
                machine=sale.machine,
                number=sale.receipt_number,
                at=sale.at,
                amount=sale.price,
                vat=vat_due(sale.price, self.vat_rate_bp),
                sale_key=sale.key,
            )
            for sale in sales
            if sale.receipt_number and sale.paid
        ]


class StaticReceiptSource:
    """A fixed list (an export from the e-invoice provider, or a test's records)."""

    def __init__(self, receipts: Iterable[ReceiptRecord]) -> None:
        self.receipts = tuple(receipts)

    def load(
        self,
        conn: Connection,
        machines: Sequence[str],
        start: datetime,
        end: datetime,
        sales: Sequence[SaleRecord],
    ) -> list[ReceiptRecord]:
        wanted = set(machines)
        keys = {s.key for s in sales}
        numbers = {s.receipt_number for s in sales if s.receipt_number}
        picked = [
            r
            for r in self.receipts
            if r.machine in wanted
            and (start <= r.at < end or r.sale_key in keys or r.number in numbers)
        ]
        linked = {r.number for r in picked}
        picked += [r for r in self.receipts if r.original in linked and r not in picked]
        return picked
