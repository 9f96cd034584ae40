"""E-receipts numbered on the machine at the moment of sale, in the sale's own transaction.

A customer can get a receipt while the machine is offline, so the number cannot come
from the fleet. Each series (invoice symbol, e.g. ``1C26MAB``; the two-digit year follows
the sale's local date, so a new year starts a new series at 1) counts 1, 2, 3 ... without
gaps. The last number per series lives in the journal's ``meta`` table under
:data:`META_KEY` and is written in the same SQLite transaction as the sale and its outbox
event. A crash before that commit loses the number together with the sale (recovery
replays the sale and numbers it again); after it, both are on disk. So a number is never
reused and never skipped.

:meth:`ReceiptIssuer.issue` only computes: it returns the bodies with their receipts and
the meta update; :meth:`ReceiptIssuer.confirm` moves the in-memory counters once the
journal committed. The machine calls both under its one lock, so no two sales interleave.
A receipt that cannot be built (bad data, series exhausted) is logged and the sale goes
out without one: a receipt problem never costs a sale, and takes no number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from controller.config import ReceiptsSection
from controller.journal import MetaUpdate, OutboxMessage
from controller.outbox import message_for
from protocols.einvoice import (
    EinvoiceError,
    InvoiceSymbol,
    Payment,
    Receipt,
    SaleItem,
    build_receipt,
    cash_register_symbol,
)
from protocols.einvoice.model import MAX_NUMBER
from protocols.money import Money
from protocols.telemetry import Body, PaymentMethod, SaleBody

log = logging.getLogger(__name__)

META_KEY = "receipt_numbers"  # JSON: {"1C26MAB": 42, ...} last number per series
_PAYMENTS = {PaymentMethod.CASH: Payment.CASH, PaymentMethod.CASHLESS: Payment.CASHLESS}


def receipt_number(doc: Receipt) -> str:
    """The short form carried in ``SaleBody.receipt_number``: ``1C26MAB-00000042``."""
    return f"{doc.symbol}-{doc.number:08d}"


@dataclass(frozen=True, slots=True)
class Issued:
    """The bodies to journal (sales now carrying receipts) and the counters to write."""

    bodies: list[Body]
    numbers: dict[str, int] = field(default_factory=dict)  # every series' last number

    @property
    def messages(self) -> list[OutboxMessage]:
        return [message_for(body) for body in self.bodies]

    @property
    def meta(self) -> MetaUpdate:
        return {META_KEY: json.dumps(self.numbers, sort_keys=True)} if self.numbers else {}


@dataclass(frozen=True, slots=True)
class _Series:
    """What ``[receipts]`` says, parsed once."""

    settings: ReceiptsSection
    zone: ZoneInfo
    symbol: InvoiceSymbol
    secret: bytes


class ReceiptIssuer:
    """Numbers and builds receipts for sales; a machine without ``[receipts]`` issues none."""

    def __init__(self, settings: ReceiptsSection | None, timezone: str) -> None:
        self.series: _Series | None = None
        if settings is not None:
            self.series = _Series(
                settings,
                ZoneInfo(timezone),
                cash_register_symbol(settings.invoice_symbol),
                settings.secret,
            )
        self.numbers: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.series is not None

    def load(self, stored: str | None) -> None:
        """The counters as the journal's ``meta`` holds them (at boot)."""
        self.numbers = {}
        if stored is None:
            return
        data = json.loads(stored)  # written only by us: a bad value is a broken journal
        self.numbers = {str(k): int(v) for k, v in data.items()}

    def last_number(self, symbol: str) -> int:
        return self.numbers.get(symbol, 0)

    def issue(self, bodies: Sequence[Body], at: datetime) -> Issued:
        """Receipts for the sales among ``bodies``; nothing changes until :meth:`confirm`."""
        if self.series is None:
            return Issued(list(bodies))
        numbers = dict(self.numbers)
        out: list[Body] = []
        for body in bodies:
            if isinstance(body, SaleBody) and body.method in _PAYMENTS and body.price > 0:
                out.append(self._with_receipt(self.series, body, at, numbers))
            else:
                out.append(body)
        return Issued(out, numbers if numbers != self.numbers else {})

    def confirm(self, issued: Issued) -> None:
        """The journal committed ``issued``: its numbers are now taken."""
        if issued.numbers:
            self.numbers = dict(issued.numbers)

    @staticmethod
    def _with_receipt(
        series: _Series, sale: SaleBody, at: datetime, numbers: dict[str, int]
    ) -> SaleBody:
        try:
            doc = build_for_sale(series, sale, at, numbers)
        except EinvoiceError as exc:
            log.error("no e-receipt for vend %s: %s", sale.vend_id, exc)  # noqa: TRY400
            return sale
        except Exception:  # a receipt must never cost a sale
            log.exception("no e-receipt for vend %s", sale.vend_id)
            return sale
        numbers[doc.symbol] = doc.number
        return sale.model_copy(update={"receipt": doc, "receipt_number": receipt_number(doc)})


def build_for_sale(
    series: _Series, sale: SaleBody, at: datetime, numbers: dict[str, int]
) -> Receipt:
    """The receipt for ``sale`` with the next number of its series (not yet taken)."""
    local = at.astimezone(series.zone).replace(microsecond=0)
    symbol = series.symbol.for_year(local.year)
    number = numbers.get(str(symbol), 0) + 1
    if number > MAX_NUMBER:
        raise EinvoiceError("number", f"series {symbol} is used up; configure new letters")
    return build_receipt(
        symbol=symbol,
        number=number,
        issued_at=local,
        seller=series.settings.seller,
        items=sale_items(series.settings, sale),
        payment=_PAYMENTS[sale.method],
        secret=series.secret,
        lookup_url=series.settings.lookup_url,
    )


def sale_items(settings: ReceiptsSection, sale: SaleBody) -> list[SaleItem]:
    """The sale's lines (a basket) or its one product, each with its configured VAT rate."""
    lines = [(ln.product, ln.selection, ln.quantity, ln.unit_price) for ln in sale.lines or ()]
    if not lines:
        lines = [(sale.product, sale.selection, 1, sale.price)]
    rates = settings.vat_rates
    return [
        SaleItem(
            product=product,
            quantity=quantity,
            unit_price=Money(price, sale.currency),
            vat_rate=rates.get(product) or rates.get(code) or settings.vat_rate,
            code=code,
            unit=settings.unit,
        )
        for product, code, quantity, price in lines
    ]
