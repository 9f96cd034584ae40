"""A receipt as the tax authority's XML: ``HDon`` / ``DLHDon`` / ``TTChung`` + ``NDHDon``.

Layout written (optional parts in brackets)::

    HDon
      DLHDon Id="data"
        TTChung   PBan THDon KHMSHDon KHHDon SHDon NLap DVTTe [TGia] HTTToan
                  [TTHDLQuan: TCHDon LHDCLQuan KHMSHDCLQuan KHHDCLQuan SHDCLQuan NLHDCLQuan [GChu]]
                  TTKhac: TTin(TGLap = exact time), TTin(MTCuu = lookup code)
        NDHDon    NBan(Ten MST DChi) [NMua([Ten] [MST] [CCCDan] [DChi])]
                  DSHHDVu: HHDVu(TChat STT [MHHDVu] THHDVu [DVTinh] SLuong DGia ThTien TSuat)...
                  TToan: THTTLTSuat: LTSuat(TSuat ThTien TThue)... TgTCThue TgTThue TgTTTBSo
      [MCCQT]
      DLQRCode

Line ``DGia``/``ThTien`` are the prices the customer paid (VAT included, retail); the
per-rate ``LTSuat`` rows split VAT out. ``DSCKS`` (signatures) is not ours to write: a
cash-register invoice needs none, and a provider adds its own.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from protocols.einvoice import xml_names as n
from protocols.einvoice.build import validate_receipt
from protocols.einvoice.model import Buyer, Receipt, Seller
from protocols.einvoice.symbol import InvoiceSymbol


def _add(parent: ET.Element, tag: str, text: str | None) -> ET.Element | None:
    if text is None:
        return None
    child = ET.SubElement(parent, tag)
    child.text = text
    return child


_DECLARATION = b"<?xml version='1.0' encoding='utf-8'?>\n"


def to_xml(doc: Receipt) -> bytes:
    """The document as UTF-8 XML; validates it first (raises :class:`EinvoiceError`)."""
    doc = validate_receipt(doc.model_dump())  # a model_construct()ed doc gets checked too
    root = ET.Element(n.ROOT)
    data = ET.SubElement(root, n.DATA, {"Id": n.DATA_ID})
    _general(ET.SubElement(data, n.GENERAL), doc)
    content = ET.SubElement(data, n.CONTENT)
    _party(ET.SubElement(content, n.SELLER), doc.seller)
    if doc.buyer is not None:
        _party(ET.SubElement(content, n.BUYER), doc.buyer)
    _lines(ET.SubElement(content, n.LINES), doc)
    _totals(ET.SubElement(content, n.TOTALS), doc)
    _add(root, n.AUTHORITY_CODE, doc.authority_code)
    _add(root, n.QR, doc.qr_payload)
    # Serialising to str and encoding once is about twice as fast as ElementTree's
    # byte writer (many small writes); the bytes are the same, declaration included.
    return _DECLARATION + ET.tostring(root, encoding="unicode").encode()


def _general(general: ET.Element, doc: Receipt) -> None:
    sym = doc.parsed_symbol
    _add(general, n.VERSION, n.FORMAT_VERSION)
    _add(general, n.NAME, sym.title)
    _add(general, n.TEMPLATE, str(sym.template))
    _add(general, n.SERIES, sym.series)
    _add(general, n.NUMBER, str(doc.number))
    _add(general, n.DATE, doc.issued_on.isoformat())
    _add(general, n.CURRENCY, doc.currency)
    if doc.currency == "VND":
        _add(general, n.RATE, "1")  # the exchange rate is ours to state only for VND
    _add(general, n.PAYMENT, doc.payment.text)
    if doc.original is not None:
        ref = doc.original
        orig = InvoiceSymbol.parse(ref.symbol)
        related = ET.SubElement(general, n.RELATED)
        _add(related, n.RELATION, str(ref.relation.code))
        _add(related, n.RELATED_KIND, n.RELATED_BY_DECREE_123)
        _add(related, n.RELATED_TEMPLATE, str(orig.template))
        _add(related, n.RELATED_SERIES, orig.series)
        _add(related, n.RELATED_NUMBER, str(ref.number))
        _add(related, n.RELATED_DATE, ref.issued_on.isoformat())
        _add(related, n.NOTE, ref.reason)
    extra = ET.SubElement(general, n.EXTRA)
    for name, kind, value in (
        (n.EXTRA_TIME, "dateTime", doc.issued_at.isoformat()),
        (n.EXTRA_LOOKUP, "string", doc.lookup_code),
    ):
        item = ET.SubElement(extra, n.EXTRA_ITEM)
        _add(item, n.EXTRA_NAME, name)
        _add(item, n.EXTRA_TYPE, kind)
        _add(item, n.EXTRA_VALUE, value)


def _party(element: ET.Element, party: Seller | Buyer) -> None:
    _add(element, n.PARTY_NAME, party.name)
    _add(element, n.TAX_CODE, party.tax_code)
    if isinstance(party, Buyer):
        _add(element, n.PERSONAL_ID, party.personal_id)
    _add(element, n.ADDRESS, party.address)


def _lines(element: ET.Element, doc: Receipt) -> None:
    cur = doc.currency
    for number, line in enumerate(doc.lines, start=1):
        row = ET.SubElement(element, n.LINE)
        _add(row, n.LINE_NATURE, n.GOODS)
        _add(row, n.LINE_NO, str(number))
        _add(row, n.LINE_CODE, line.code)
        _add(row, n.LINE_NAME, line.product)
        _add(row, n.LINE_UNIT, line.unit)
        _add(row, n.QUANTITY, str(line.quantity))
        _add(row, n.UNIT_PRICE, n.amount_text(line.unit_price, cur))
        _add(row, n.LINE_AMOUNT, n.amount_text(line.amount, cur))
        _add(row, n.VAT_RATE, line.vat_rate)


def _totals(element: ET.Element, doc: Receipt) -> None:
    cur = doc.currency
    rates = ET.SubElement(element, n.RATE_TOTALS)
    for rt in doc.rate_totals:
        row = ET.SubElement(rates, n.RATE_TOTAL)
        _add(row, n.VAT_RATE, rt.vat_rate)
        _add(row, n.LINE_AMOUNT, n.amount_text(rt.before_vat, cur))
        _add(row, n.RATE_VAT, n.amount_text(rt.vat, cur))
    _add(element, n.TOTAL_BEFORE, n.amount_text(doc.total_before_vat, cur))
    _add(element, n.TOTAL_VAT, n.amount_text(doc.total_vat, cur))
    _add(element, n.TOTAL, n.amount_text(doc.total, cur))
