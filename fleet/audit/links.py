"""Which sale a receipt or a settlement row belongs to (pure).

A receipt names its sale (``sale_key``) or carries the receipt number the machine gave the
sale. A settlement row carries the processor's transaction id, which the reader reported as
the sale's ``payment_ref``; refunds and chargebacks point at it with
``original_reference``. Rows without a reference fall back to the same machine and amount
within :data:`UNREFERENCED_MATCH` of the sale, nearest first, each sale used once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from fleet.audit.records import (
    ReceiptKind,
    ReceiptRecord,
    SaleMethod,
    SaleRecord,
    SettlementKind,
    SettlementRecord,
)

UNREFERENCED_MATCH = timedelta(minutes=10)


class Links:
    """Sale keys of receipts and settlement rows, over one machine's records."""

    def __init__(
        self,
        sales: Iterable[SaleRecord],
        receipts: Iterable[ReceiptRecord],
        settlements: Iterable[SettlementRecord],
    ) -> None:
        self.sales = {sale.key: sale for sale in sales}
        by_number = {s.receipt_number: s.key for s in self.sales.values() if s.receipt_number}
        by_ref = {s.payment_ref: s.key for s in self.sales.values() if s.payment_ref}
        self.receipt_numbers: dict[str, str] = {}  # receipt number -> sale key
        self.receipt_sale: dict[str, str] = {}  # receipt key -> sale key
        receipts = list(receipts)
        for r in receipts:
            if r.kind is not ReceiptKind.SALE:
                continue
            sale = r.sale_key if r.sale_key in self.sales else by_number.get(r.number)
            if sale is not None:
                self.receipt_sale[r.key] = sale
                self.receipt_numbers.setdefault(r.number, sale)
        for r in receipts:  # adjustments follow the receipt they adjust
            if r.kind is not ReceiptKind.SALE and r.original in self.receipt_numbers:
                self.receipt_sale[r.key] = self.receipt_numbers[r.original]
        self.settlement_sale: dict[str, str] = {}
        loose: list[SettlementRecord] = []
        for row in settlements:
            ref = row.reference if row.kind is SettlementKind.SALE else None
            if row.kind is not SettlementKind.SALE:
                ref = row.original_reference or row.reference
            if ref is None:
                loose.append(row)
            elif ref in by_ref:
                self.settlement_sale[row.key] = by_ref[ref]
        self._match_loose(loose)

    def _match_loose(self, loose: list[SettlementRecord]) -> None:
        taken = set(self.settlement_sale.values())
        cashless = [s for s in self.sales.values() if s.method is SaleMethod.CASHLESS]
        for row in sorted(loose, key=lambda r: (r.at, r.key)):
            if row.kind is not SettlementKind.SALE:
                continue
            candidates = [
                s
                for s in cashless
                if s.key not in taken
                and s.price == row.amount
                and abs(s.at - row.at) <= UNREFERENCED_MATCH
            ]
            if candidates:
                best = min(candidates, key=lambda s: (abs(s.at - row.at), s.key))
                self.settlement_sale[row.key] = best.key
                taken.add(best.key)

    def sale_of_receipt(self, receipt: ReceiptRecord) -> SaleRecord | None:
        key = self.receipt_sale.get(receipt.key)
        return self.sales[key] if key is not None else None

    def sale_of_settlement(self, row: SettlementRecord) -> SaleRecord | None:
        key = self.settlement_sale.get(row.key)
        return self.sales[key] if key is not None else None
