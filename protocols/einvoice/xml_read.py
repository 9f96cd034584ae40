"""Reading a receipt back from the tax authority's XML (the inverse of :mod:`.xml_write`).

Tolerant where it costs nothing -- namespaces, surrounding whitespace, elements we do
not use (a provider's ``DSCKS`` signatures, extra ``TTKhac`` pairs) -- and strict about
everything that makes up the receipt. Anything wrong raises :class:`EinvoiceError`
naming the XML path (``HDon/DLHDon/NDHDon/DSHHDVu/HHDVu[2]/DGia``) or, for a document that
parses but does not add up, the model field (``rate_totals``). DTDs and entities are
refused outright: an invoice has no use for them and they are how XML bombs work. The
document must be UTF-8, so that check cannot be dodged with another encoding.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime
from typing import Any

from protocols.einvoice import xml_names as n
from protocols.einvoice.build import validate_receipt
from protocols.einvoice.errors import EinvoiceError
from protocols.einvoice.model import Payment, Receipt, Relation
from protocols.einvoice.symbol import InvoiceSymbol
from protocols.money import CURRENCIES

MAX_XML_BYTES = 4_000_000
_DECLARED_ENCODING = re.compile(r"\ufeff?<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
_RELATIONS = {str(r.code): r for r in Relation}


class _Node:
    """An element and its path, for errors that say where."""

    def __init__(self, element: ET.Element, path: str) -> None:
        self.element = element
        self.path = path

    def child(self, tag: str) -> _Node:
        found = self.optional(tag)
        if found is None:
            raise EinvoiceError(f"{self.path}/{tag}", "missing")
        return found

    def optional(self, tag: str) -> _Node | None:
        for el in self.element:
            if _local(el.tag) == tag:
                return _Node(el, f"{self.path}/{tag}")
        return None

    def children(self, tag: str) -> list[_Node]:
        found = [el for el in self.element if _local(el.tag) == tag]
        return [_Node(el, f"{self.path}/{tag}[{k}]") for k, el in enumerate(found, start=1)]

    def text(self, tag: str) -> str:
        node = self.child(tag)
        value = (node.element.text or "").strip()
        if not value:
            raise EinvoiceError(node.path, "empty")
        return value

    def maybe(self, tag: str) -> str | None:
        node = self.optional(tag)
        if node is None:
            return None
        return (node.element.text or "").strip() or None

    def where(self, tag: str) -> str:
        return f"{self.path}/{tag}"


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _date(node: _Node, tag: str) -> date:
    text = node.text(tag)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise EinvoiceError(node.where(tag), f"{text!r} is not a date (YYYY-MM-DD)") from None


def from_xml(data: bytes) -> Receipt:
    """A validated receipt from its XML; raises :class:`EinvoiceError` on anything bad."""
    if not isinstance(data, bytes | bytearray):
        raise EinvoiceError("xml", "must be bytes")
    if len(data) > MAX_XML_BYTES:
        raise EinvoiceError("xml", f"larger than {MAX_XML_BYTES} bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EinvoiceError("xml", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    declared = _DECLARED_ENCODING.match(text)
    if declared and declared[1].lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise EinvoiceError("xml", f"must be UTF-8, declares {declared[1]!r}")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise EinvoiceError("xml", "DTDs and entities are not allowed in an invoice")
    try:
        root = ET.fromstring(bytes(data))  # noqa: S314 - no DTD, so no entity expansion
    except ET.ParseError as exc:
        raise EinvoiceError("xml", f"not well-formed XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # an unknown or unsupported declared encoding
        raise EinvoiceError("xml", f"unreadable XML declaration: {exc}") from None
    if _local(root.tag) != n.ROOT:
        raise EinvoiceError("xml", f"root element must be {n.ROOT}, got {_local(root.tag)!r}")
    top = _Node(root, n.ROOT)
    body = top.child(n.DATA)
    general = body.child(n.GENERAL)
    content = body.child(n.CONTENT)
    fields = _general(general)
    currency = fields["currency"]
    fields |= {
        "seller": _party(content.child(n.SELLER)),
        "buyer": _party(buyer) if (buyer := content.optional(n.BUYER)) else None,
        "lines": [_line(row, currency) for row in content.child(n.LINES).children(n.LINE)],
        "authority_code": top.maybe(n.AUTHORITY_CODE),
        "qr_payload": top.text(n.QR),
    }
    fields |= _totals(content.child(n.TOTALS), currency)
    return validate_receipt(fields)


def _general(general: _Node) -> dict[str, Any]:
    sym = InvoiceSymbol.from_parts(
        general.text(n.TEMPLATE), general.text(n.SERIES), field=general.where(n.SERIES)
    )
    currency = general.text(n.CURRENCY)
    if currency not in CURRENCIES:
        raise EinvoiceError(general.where(n.CURRENCY), f"unknown currency {currency!r}")
    extras = _extras(general.child(n.EXTRA))
    stamp = extras.get(n.EXTRA_TIME)
    if stamp is None:
        raise EinvoiceError(general.where(n.EXTRA), f"no {n.EXTRA_TIME} (time of sale)")
    try:
        issued_at = datetime.fromisoformat(stamp)
    except ValueError:
        raise EinvoiceError(general.where(n.EXTRA), f"{stamp!r} is not a date and time") from None
    issued_on = _date(general, n.DATE)
    if issued_at.tzinfo is not None and issued_at.date() != issued_on:
        raise EinvoiceError(general.where(n.DATE), f"{issued_on} is not the date of {stamp}")
    try:
        payment = Payment.from_text(general.text(n.PAYMENT))
    except EinvoiceError as exc:
        raise EinvoiceError(general.where(n.PAYMENT), exc.problem) from None
    return {
        "symbol": str(sym),
        "number": n.parse_int(general.text(n.NUMBER), general.where(n.NUMBER)),
        "issued_at": issued_at,
        "currency": currency,
        "payment": payment,
        "lookup_code": extras.get(n.EXTRA_LOOKUP, ""),
        "original": _related(related) if (related := general.optional(n.RELATED)) else None,
    }


def _extras(extra: _Node) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in extra.children(n.EXTRA_ITEM):
        name = item.maybe(n.EXTRA_NAME)
        value = item.maybe(n.EXTRA_VALUE)
        if name is not None and value is not None:
            out.setdefault(name, value)
    return out


def _related(related: _Node) -> dict[str, Any]:
    code = related.text(n.RELATION)
    if code not in _RELATIONS:
        raise EinvoiceError(related.where(n.RELATION), f"{code!r}: 1 replacement, 2 adjustment")
    sym = InvoiceSymbol.from_parts(
        related.text(n.RELATED_TEMPLATE),
        related.text(n.RELATED_SERIES),
        field=related.where(n.RELATED_SERIES),
    )
    return {
        "relation": _RELATIONS[code],
        "symbol": str(sym),
        "number": n.parse_int(related.text(n.RELATED_NUMBER), related.where(n.RELATED_NUMBER)),
        "issued_on": _date(related, n.RELATED_DATE),
        "reason": related.maybe(n.NOTE),
    }


def _party(party: _Node) -> dict[str, Any]:
    return {
        "name": party.maybe(n.PARTY_NAME),
        "tax_code": party.maybe(n.TAX_CODE),
        "personal_id": party.maybe(n.PERSONAL_ID),
        "address": party.maybe(n.ADDRESS),
    }


def _line(row: _Node, currency: str) -> dict[str, Any]:
    nature = row.maybe(n.LINE_NATURE)
    if nature not in (None, n.GOODS):
        raise EinvoiceError(
            row.where(n.LINE_NATURE), f"only goods lines (1) are read, got {nature!r}"
        )
    return {
        "product": row.text(n.LINE_NAME),
        "code": row.maybe(n.LINE_CODE),
        "unit": row.maybe(n.LINE_UNIT),
        "quantity": n.parse_int(row.text(n.QUANTITY), row.where(n.QUANTITY)),
        "unit_price": n.parse_amount(row.text(n.UNIT_PRICE), currency, row.where(n.UNIT_PRICE)),
        "amount": n.parse_amount(row.text(n.LINE_AMOUNT), currency, row.where(n.LINE_AMOUNT)),
        "vat_rate": row.text(n.VAT_RATE),
    }


def _totals(totals: _Node, currency: str) -> dict[str, Any]:
    rates = [
        {
            "vat_rate": row.text(n.VAT_RATE),
            "before_vat": n.parse_amount(
                row.text(n.LINE_AMOUNT), currency, row.where(n.LINE_AMOUNT)
            ),
            "vat": n.parse_amount(row.text(n.RATE_VAT), currency, row.where(n.RATE_VAT)),
        }
        for row in totals.child(n.RATE_TOTALS).children(n.RATE_TOTAL)
    ]

    def amount(tag: str) -> int:
        return n.parse_amount(totals.text(tag), currency, totals.where(tag))

    return {
        "rate_totals": rates,
        "total_before_vat": amount(n.TOTAL_BEFORE),
        "total_vat": amount(n.TOTAL_VAT),
        "total": amount(n.TOTAL),
    }
