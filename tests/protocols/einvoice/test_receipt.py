"""protocols.einvoice: building receipts, the arithmetic a receipt must satisfy, lookup codes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings

from protocols.einvoice import (
    Buyer,
    EinvoiceError,
    OriginalRef,
    Payment,
    Receipt,
    Relation,
    SaleItem,
    Seller,
    build_receipt,
    lookup_code,
    validate_receipt,
    verify_lookup_code,
)
from protocols.money import Money
from tests.protocols.einvoice.strategies import SECRET, receipt_args

VN = timezone(timedelta(hours=7))
SELLER = Seller(
    name="Công ty TNHH Máy Bán Hàng Tự Động Sài Gòn",
    tax_code="0312345678",
    address="12 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh",
)


def vnd(n: int) -> Money:
    return Money(n, "VND")


def sample(**changes: Any) -> Receipt:
    args: dict[str, Any] = {
        "symbol": "1C26MAB",
        "number": 42,
        "issued_at": datetime(2026, 3, 5, 23, 30, 0, tzinfo=VN),
        "seller": SELLER,
        "items": [
            SaleItem("Trà xanh 0 độ", 1, vnd(12000), "8%", code="A1"),
            SaleItem("Nước khoáng Lavie", 2, vnd(7000), "10%", code="B2", unit="chai"),
            SaleItem("Bánh mì que", 1, vnd(8000), "8%", code="C3"),
        ],
        "payment": Payment.CASH,
        "secret": SECRET,
    }
    return build_receipt(**(args | changes))


def test_a_basket_adds_up_per_rate() -> None:
    doc = sample()
    assert [ln.amount for ln in doc.lines] == [12000, 14000, 8000]
    # 8%: 20000 gross -> VAT 1481.48 -> 1481; 10%: 14000 -> 1272.7 -> 1273
    assert [(r.vat_rate, r.before_vat, r.vat) for r in doc.rate_totals] == [
        ("8%", 18519, 1481),
        ("10%", 12727, 1273),
    ]
    assert (doc.total_before_vat, doc.total_vat, doc.total) == (31246, 2754, 34000)
    assert doc.total_money == vnd(34000)


def test_vietnamese_text_is_kept_in_nfc() -> None:
    decomposed = "Tra\u0300 xanh 0 đô\u0323"  # "Trà xanh 0 độ" with combining marks
    doc = sample(items=[SaleItem(decomposed, 1, vnd(12000), "8%")])
    assert doc.lines[0].product == "Trà xanh 0 độ"


def test_the_date_of_issue_is_the_local_date() -> None:
    assert sample().issued_on == date(2026, 3, 5)  # 16:30 UTC on the 5th is 23:30 in Hanoi


def test_lookup_code_is_deterministic_and_bound_to_the_receipt() -> None:
    doc = sample()
    again = sample()
    assert doc.lookup_code == again.lookup_code
    assert len(doc.lookup_code) == 10
    assert verify_lookup_code(SECRET, doc)
    assert not verify_lookup_code(b"another-secret-of-the-operator", doc)
    assert sample(number=43).lookup_code != doc.lookup_code
    forged = doc.model_copy(update={"number": 43})
    assert not verify_lookup_code(SECRET, forged)
    assert doc.lookup_code in doc.qr_payload


def test_lookup_code_needs_a_real_secret() -> None:
    with pytest.raises(EinvoiceError) as err:
        lookup_code(
            b"short", seller_tax_code="0312345678", symbol="1C26MAB", number=1, total=vnd(1)
        )
    assert err.value.field == "secret"


def test_qr_payload_with_and_without_a_lookup_page() -> None:
    plain = sample()
    assert plain.qr_payload == f"0312345678|1|C26MAB|42|2026-03-05|34000|{plain.lookup_code}"
    url = sample(lookup_url="https://tracuu.example.vn/hd").qr_payload
    assert url.startswith("https://tracuu.example.vn/hd?mst=0312345678&khmshdon=1&khhdon=C26MAB")


def test_json_round_trip() -> None:
    doc = sample(buyer=Buyer(name="Nguyễn Thị Bích", personal_id="079123456789"))
    assert validate_receipt(doc.model_dump(mode="json")) == doc
    assert Receipt.model_validate_json(doc.model_dump_json()) == doc


def tampered(doc: Receipt, **changes: Any) -> dict[str, Any]:
    return doc.model_dump(mode="json") | changes


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"total": 34001}, "total"),
        ({"total_vat": 2755}, "total_vat"),
        ({"total_before_vat": 31245}, "total_before_vat"),
        ({"rate_totals": [{"vat_rate": "8%", "before_vat": 18518, "vat": 1482}]}, "rate_totals"),
        ({"symbol": "1C26TAB"}, "symbol"),
        ({"number": 0}, "number"),
        ({"number": 100_000_000}, "number"),
        ({"currency": "XXX"}, "currency"),
        ({"lookup_code": "abc"}, "lookup_code"),
        ({"issued_at": "2026-03-05T23:30:00"}, "issued_at"),
        ({"payment": "cheque"}, "payment"),
        ({"total": 34000.0}, "total"),
        ({"buyer": {"address": "Hà Nội"}}, "buyer"),
    ],
)
def test_a_document_that_does_not_add_up_names_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(EinvoiceError) as err:
        validate_receipt(tampered(sample(), **change))
    assert err.value.field == field


def test_line_errors_name_the_line() -> None:
    data = tampered(sample())
    data["lines"][1] = data["lines"][1] | {"amount": 14001}
    with pytest.raises(EinvoiceError) as err:
        validate_receipt(data)
    assert err.value.field == "lines[1].amount"
    data = tampered(sample())
    data["lines"][0] = data["lines"][0] | {"product": "Trà\x07"}
    with pytest.raises(EinvoiceError, match="control character") as err:
        validate_receipt(data)
    assert err.value.field == "lines[0].product"


def test_build_errors_name_the_field() -> None:
    with pytest.raises(EinvoiceError) as err:
        sample(items=[SaleItem("Trà", 1, vnd(1000), "9 %")])
    assert err.value.field == "lines[0].vat_rate"
    with pytest.raises(EinvoiceError) as err:
        sample(
            items=[SaleItem("Trà", 1, vnd(1000), "8%"), SaleItem("Tea", 1, Money(1, "EUR"), "8%")]
        )
    assert err.value.field == "lines"
    with pytest.raises(EinvoiceError) as err:
        sample(items=[])
    assert err.value.field == "lines"
    with pytest.raises(EinvoiceError) as err:
        sample(seller=SELLER.model_copy(update={"tax_code": "12345"}))
    assert err.value.field == "seller.tax_code"


def test_negative_quantities_only_in_an_adjustment() -> None:
    minus = [SaleItem("Trà xanh 0 độ", -1, vnd(12000), "8%")]
    with pytest.raises(EinvoiceError) as err:
        sample(items=minus)
    assert err.value.field == "lines[0].quantity"
    ref = OriginalRef(
        relation=Relation.ADJUSTMENT, symbol="1C26MAB", number=41, issued_on=date(2026, 3, 5)
    )
    doc = sample(items=minus, original=ref)
    assert (doc.total, doc.total_vat) == (-12000, -889)
    with pytest.raises(EinvoiceError):
        sample(items=minus, original=ref.model_copy(update={"relation": Relation.REPLACEMENT}))


def test_a_receipt_cannot_correct_itself() -> None:
    ref = OriginalRef(
        relation=Relation.REPLACEMENT, symbol="1C26MAB", number=42, issued_on=date(2026, 3, 5)
    )
    with pytest.raises(EinvoiceError) as err:
        sample(original=ref)
    assert err.value.field == "original"


@settings(max_examples=100, deadline=None)
@given(receipt_args())
def test_built_receipts_reconcile(args: dict[str, Any]) -> None:
    doc = build_receipt(**args)
    gross = sum(item.quantity * item.unit_price.minor for item in args["items"])
    assert doc.total == gross
    assert doc.total_before_vat + doc.total_vat == gross
    assert sum(r.before_vat + r.vat for r in doc.rate_totals) == gross
    assert len({r.vat_rate for r in doc.rate_totals}) == len(doc.rate_totals)
    assert verify_lookup_code(SECRET, doc)
