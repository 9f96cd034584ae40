"""E-receipts: the Vietnamese cash-register e-invoice (symbol ``M``) as a document and its XML.

API summary (for the fleet side; everything below is importable from ``protocols.einvoice``)::

    symbol = InvoiceSymbol.parse("1C26MAB")          # template 1, coded C, 2026, kind M, "AB"
    symbol.template -> int; symbol.series -> "C26MAB" (KHHDon); str(symbol) -> "1C26MAB"

    doc: Receipt = build_receipt(
        symbol="1C26MAB", number=42, issued_at=aware_datetime,
        seller=Seller(name=..., tax_code="0312345678", address=...),
        items=[SaleItem(product="Trà xanh 0 độ", quantity=1,
                        unit_price=Money(12000, "VND"), vat_rate="8%", code="A1")],
        payment=Payment.CASH, secret=b"operator lookup secret",
        buyer=None, original=None, authority_code=None, lookup_url=None,
    )                                                  # raises EinvoiceError
    to_xml(doc) -> bytes                               # UTF-8 <HDon>; validates first
    from_xml(data: bytes) -> Receipt                   # raises EinvoiceError on anything bad
    Receipt.model_validate(dict) / doc.model_dump(mode="json")   # JSON form (telemetry)
    validate_receipt(dict) -> Receipt                  # same, errors as EinvoiceError
    lookup_code(secret, seller_tax_code=, symbol=, number=, total=Money) -> str
    verify_lookup_code(secret, doc) -> bool

    EinvoiceError(ValueError): .field (dotted path, e.g. "lines[0].amount"), .problem

Machines with ``[receipts]`` send the document in the sale event (``SaleBody.receipt``,
JSON of ``Receipt``; ``SaleBody.receipt_number`` = ``"1C26MAB-00000042"``).

Receipt fields: symbol (str "1C26MAB"), number, issued_at, currency, seller, buyer,
lines (ReceiptLine: product, code, unit, quantity, unit_price, vat_rate, amount), rate_totals
(RateTotal: vat_rate, before_vat, vat), total_before_vat, total_vat, total, payment,
lookup_code, qr_payload, authority_code, original (OriginalRef: relation REPLACEMENT or
ADJUSTMENT, symbol, number, issued_on, reason). Amounts are integer minor units; Money
views: ``doc.total_money``. Prices include VAT (what the customer pays); VAT is split out
per rate, see :mod:`protocols.einvoice.vat` for the rounding rule.
"""

from protocols.einvoice.build import SaleItem, build_receipt, validate_receipt
from protocols.einvoice.errors import EinvoiceError
from protocols.einvoice.lookup import lookup_code, qr_payload, verify_lookup_code
from protocols.einvoice.model import (
    Buyer,
    OriginalRef,
    Payment,
    RateTotal,
    Receipt,
    ReceiptLine,
    Relation,
    Seller,
)
from protocols.einvoice.symbol import InvoiceSymbol, cash_register_symbol
from protocols.einvoice.vat import check_rate, split_by_rate, vat_included
from protocols.einvoice.xml_read import from_xml
from protocols.einvoice.xml_write import to_xml

__all__ = [
    "Buyer",
    "EinvoiceError",
    "InvoiceSymbol",
    "OriginalRef",
    "Payment",
    "RateTotal",
    "Receipt",
    "ReceiptLine",
    "Relation",
    "SaleItem",
    "Seller",
    "build_receipt",
    "cash_register_symbol",
    "check_rate",
    "from_xml",
    "lookup_code",
    "qr_payload",
    "split_by_rate",
    "to_xml",
    "validate_receipt",
    "vat_included",
    "verify_lookup_code",
]
