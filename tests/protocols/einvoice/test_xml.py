"""protocols.einvoice XML: the tax authority's HDon layout, round trips, and hostile input."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.einvoice import (
    Buyer,
    EinvoiceError,
    OriginalRef,
    Relation,
    SaleItem,
    build_receipt,
    from_xml,
    to_xml,
    verify_lookup_code,
)
from protocols.money import Money
from tests.protocols.einvoice.strategies import SECRET, receipt_args
from tests.protocols.einvoice.test_receipt import sample


def texts_at(xml: bytes, path: str) -> list[str]:
    return [el.text or "" for el in ET.fromstring(xml).findall(path)]


def test_layout_follows_the_tax_authority_structure() -> None:
    doc = sample(buyer=Buyer(name="Công ty Cổ phần Bình Minh", tax_code="0101234567"))
    xml = to_xml(doc)
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    g = "DLHDon/TTChung/"
    assert texts_at(xml, g + "KHMSHDon") == ["1"]
    assert texts_at(xml, g + "KHHDon") == ["C26MAB"]
    assert texts_at(xml, g + "SHDon") == ["42"]
    assert texts_at(xml, g + "NLap") == ["2026-03-05"]
    assert texts_at(xml, g + "THDon") == ["Hóa đơn giá trị gia tăng"]
    assert texts_at(xml, g + "DVTTe") == ["VND"]
    assert texts_at(xml, g + "HTTToan") == ["Tiền mặt"]
    assert texts_at(xml, g + "TTKhac/TTin/TTruong") == ["TGLap", "MTCuu"]
    assert texts_at(xml, g + "TTKhac/TTin/DLieu") == ["2026-03-05T23:30:00+07:00", doc.lookup_code]
    c = "DLHDon/NDHDon/"
    assert texts_at(xml, c + "NBan/MST") == ["0312345678"]
    assert texts_at(xml, c + "NMua/Ten") == ["Công ty Cổ phần Bình Minh"]
    assert texts_at(xml, c + "DSHHDVu/HHDVu/THHDVu") == [
        "Trà xanh 0 độ",
        "Nước khoáng Lavie",
        "Bánh mì que",
    ]
    assert texts_at(xml, c + "DSHHDVu/HHDVu/STT") == ["1", "2", "3"]
    assert texts_at(xml, c + "DSHHDVu/HHDVu/ThTien") == ["12000", "14000", "8000"]
    assert texts_at(xml, c + "TToan/THTTLTSuat/LTSuat/TSuat") == ["8%", "10%"]
    assert texts_at(xml, c + "TToan/THTTLTSuat/LTSuat/TThue") == ["1481", "1273"]
    assert texts_at(xml, c + "TToan/TgTTTBSo") == ["34000"]
    assert texts_at(xml, "DLQRCode") == [doc.qr_payload]
    assert texts_at(xml, "MCCQT") == []  # none until the tax authority's code is known
    assert "Trà xanh 0 độ".encode() in xml  # UTF-8, not character references


def test_replacement_links_to_the_original() -> None:
    ref = OriginalRef(
        relation=Relation.REPLACEMENT,
        symbol="1C26MAB",
        number=41,
        issued_on=date(2026, 3, 4),
        reason="Sai tên hàng hóa",
    )
    doc = sample(original=ref, authority_code="M1-26-ABCDE-00000000042")
    xml = to_xml(doc)
    r = "DLHDon/TTChung/TTHDLQuan/"
    assert texts_at(xml, r + "TCHDon") == ["1"]
    assert texts_at(xml, r + "KHMSHDCLQuan") == ["1"]
    assert texts_at(xml, r + "KHHDCLQuan") == ["C26MAB"]
    assert texts_at(xml, r + "SHDCLQuan") == ["41"]
    assert texts_at(xml, r + "NLHDCLQuan") == ["2026-03-04"]
    assert texts_at(xml, r + "GChu") == ["Sai tên hàng hóa"]
    assert texts_at(xml, "MCCQT") == ["M1-26-ABCDE-00000000042"]
    assert from_xml(xml) == doc


def test_adjustment_with_negative_amounts_round_trips_in_eur() -> None:
    ref = OriginalRef(
        relation=Relation.ADJUSTMENT, symbol="2C25MXY", number=7, issued_on=date(2025, 12, 30)
    )
    doc = sample(
        symbol="2C26MXY",
        items=[SaleItem("Kaffee", -2, Money(150, "EUR"), "7.7%")],
        original=ref,
    )
    xml = to_xml(doc)
    assert texts_at(xml, "DLHDon/NDHDon/DSHHDVu/HHDVu/DGia") == ["1.50"]
    assert texts_at(xml, "DLHDon/NDHDon/DSHHDVu/HHDVu/ThTien") == ["-3.00"]
    assert texts_at(xml, "DLHDon/TTChung/TGia") == []
    assert texts_at(xml, "DLHDon/TTChung/TTHDLQuan/TCHDon") == ["2"]
    assert from_xml(xml) == doc


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(receipt_args())
def test_round_trip(args: dict[str, Any]) -> None:
    doc = build_receipt(**args)
    assert from_xml(to_xml(doc)) == doc


def test_namespaces_whitespace_and_foreign_elements_are_tolerated() -> None:
    doc = sample()
    root = ET.fromstring(to_xml(doc))
    ET.SubElement(root, "DSCKS").text = "provider signature"
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode").replace("<HDon>", '<HDon xmlns="urn:x-hd">', 1)
    assert from_xml(text.encode()) == doc


def test_a_byte_order_mark_is_fine() -> None:
    doc = sample()
    assert from_xml(b"\xef\xbb\xbf" + to_xml(doc)) == doc


def mutated(xml: bytes, path: str, text: str | None) -> bytes:
    root = ET.fromstring(xml)
    el = root.find(path)
    assert el is not None
    if text is None:
        parent = root.find(path.rpartition("/")[0]) if "/" in path else root
        assert parent is not None
        parent.remove(el)
    else:
        el.text = text
    out: bytes = ET.tostring(root, encoding="utf-8")
    return out


@pytest.mark.parametrize(
    ("path", "text", "field"),
    [
        ("DLHDon/TTChung/SHDon", None, "HDon/DLHDon/TTChung/SHDon"),
        ("DLHDon/TTChung/SHDon", "4x", "HDon/DLHDon/TTChung/SHDon"),
        ("DLHDon/TTChung/NLap", "05/03/2026", "HDon/DLHDon/TTChung/NLap"),
        ("DLHDon/TTChung/NLap", "2026-03-06", "HDon/DLHDon/TTChung/NLap"),
        ("DLHDon/TTChung/KHHDon", "C26QAB", "HDon/DLHDon/TTChung/KHHDon"),
        ("DLHDon/TTChung/DVTTe", "ABC", "HDon/DLHDon/TTChung/DVTTe"),
        ("DLHDon/TTChung/HTTToan", "Séc", "HDon/DLHDon/TTChung/HTTToan"),
        ("DLHDon/NDHDon/DSHHDVu/HHDVu/DGia", "12000.5", "HDon/DLHDon/NDHDon/DSHHDVu/HHDVu[1]/DGia"),
        ("DLHDon/NDHDon/DSHHDVu/HHDVu/ThTien", "12001", "lines[0].amount"),
        ("DLHDon/NDHDon/DSHHDVu/HHDVu/TSuat", "9 %", "lines[0].vat_rate"),
        ("DLHDon/NDHDon/TToan/TgTTTBSo", "34001", "total"),
        ("DLHDon/NDHDon/TToan/TgTThue", "1e3", "HDon/DLHDon/NDHDon/TToan/TgTThue"),
        ("DLHDon/NDHDon/NBan/MST", "031234567", "seller.tax_code"),
        ("DLHDon/NDHDon/NBan", None, "HDon/DLHDon/NDHDon/NBan"),
        ("DLQRCode", None, "HDon/DLQRCode"),
    ],
)
def test_a_bad_document_names_where(path: str, text: str | None, field: str) -> None:
    with pytest.raises(EinvoiceError) as err:
        from_xml(mutated(to_xml(sample()), path, text))
    assert err.value.field == field


def test_a_renumbered_receipt_fails_the_lookup_check() -> None:
    forged = from_xml(mutated(to_xml(sample()), "DLHDon/TTChung/SHDon", "43"))
    assert forged.number == 43
    assert not verify_lookup_code(SECRET, forged)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml",
        b"<HDon>",
        b"<Invoice/>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><HDon>&a;</HDon>',
        "<HDon>é</HDon>".encode("latin-1"),
        '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE x [<!ENTITY a "a">]><HDon/>'.encode(
            "utf-16"
        ),
        b'<?xml version="1.0" encoding="latin-1"?><HDon/>',
    ],
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(EinvoiceError) as err:
        from_xml(data)
    assert err.value.field.startswith(("xml", "HDon"))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_corruption_raises_only_our_error(data: st.DataObject) -> None:
    xml = bytearray(to_xml(sample()))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(xml) - 1))
        xml[at] = data.draw(st.integers(0, 255))
    try:
        doc = from_xml(bytes(xml))
    except EinvoiceError:
        return
    assert doc.total_before_vat + doc.total_vat == doc.total  # whatever survived still adds up


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_our_error(data: bytes) -> None:
    with pytest.raises(EinvoiceError):
        from_xml(data)
