"""Building a receipt from what was sold: amounts, VAT per rate, totals and lookup data.

:func:`build_receipt` is the one way to make a :class:`.model.Receipt` from scratch; it
computes everything derived, then validates the whole document, so its errors are
:class:`.errors.EinvoiceError` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from protocols.einvoice.errors import EinvoiceError, from_validation
from protocols.einvoice.lookup import lookup_code, qr_payload
from protocols.einvoice.model import (
    Buyer,
    OriginalRef,
    Payment,
    RateTotal,
    Receipt,
    Seller,
)
from protocols.einvoice.symbol import InvoiceSymbol, cash_register_symbol
from protocols.einvoice.vat import check_rate, split_by_rate
from protocols.money import Money


@dataclass(frozen=True, slots=True)
class SaleItem:
    """One thing sold: the price is what the customer paid per unit, VAT included."""

    product: str
    quantity: int
    unit_price: Money
    vat_rate: str
    code: str | None = None
    unit: str | None = None


def build_receipt(
    *,
    symbol: str | InvoiceSymbol,
    number: int,
    issued_at: datetime,
    seller: Seller,
    items: Sequence[SaleItem],
    payment: Payment,
    secret: bytes,
    buyer: Buyer | None = None,
    original: OriginalRef | None = None,
    authority_code: str | None = None,
    lookup_url: str | None = None,
) -> Receipt:
    """A complete, validated receipt; raises :class:`EinvoiceError` naming the bad field."""
    sym = cash_register_symbol(str(symbol))
    if not items:
        raise EinvoiceError("lines", "a receipt needs at least one line")
    currencies = {item.unit_price.currency for item in items}
    if len(currencies) != 1:
        raise EinvoiceError(
            "lines", f"all prices must be in one currency, got {sorted(currencies)}"
        )
    (cur,) = currencies
    for n, item in enumerate(items):
        check_rate(item.vat_rate, field=f"lines[{n}].vat_rate")
    amounts = [item.quantity * item.unit_price.minor for item in items]
    per_rate = split_by_rate(zip((item.vat_rate for item in items), amounts, strict=True))
    total = Money(sum(amounts), cur)
    code = lookup_code(
        secret, seller_tax_code=seller.tax_code, symbol=str(sym), number=number, total=total
    )
    qr = qr_payload(
        seller_tax_code=seller.tax_code,
        symbol=str(sym),
        number=number,
        issued_on=issued_at.date(),
        total=total,
        code=code,
        url=lookup_url,
    )
    return validate_receipt(
        {
            "symbol": str(sym),
            "number": number,
            "issued_at": issued_at,
            "currency": cur,
            "seller": seller,
            "buyer": buyer,
            "lines": [
                {
                    "product": item.product,
                    "code": item.code,
                    "unit": item.unit,
                    "quantity": item.quantity,
                    "unit_price": item.unit_price.minor,
                    "vat_rate": item.vat_rate,
                    "amount": amount,
                }
                for item, amount in zip(items, amounts, strict=True)
            ],
            "rate_totals": [
                RateTotal(vat_rate=r, before_vat=before, vat=vat) for r, before, vat in per_rate
            ],
            "total_before_vat": sum(before for _, before, _ in per_rate),
            "total_vat": sum(vat for _, _, vat in per_rate),
            "total": total.minor,
            "payment": payment,
            "lookup_code": code,
            "qr_payload": qr,
            "authority_code": authority_code,
            "original": original,
        }
    )


def validate_receipt(data: object) -> Receipt:
    """A receipt from a mapping (e.g. the JSON in a sale event); errors name the field."""
    try:
        return Receipt.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc) from None
