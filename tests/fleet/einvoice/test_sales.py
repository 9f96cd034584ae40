"""From ingested sale rows to queued receipts, with real ``protocols.einvoice`` documents:
idempotent, and a bad receipt never fails ingest."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from fleet.einvoice import (
    QueueState,
    ReceiptKey,
    ReceiptKind,
    enqueue_for_sales,
    list_receipts,
    outgoing_from_receipt,
)
from protocols.einvoice import (
    OriginalRef,
    Payment,
    Receipt,
    Relation,
    SaleItem,
    Seller,
    build_receipt,
    from_xml,
)
from protocols.money import Money
from tests.fleet.einvoice.support import T0

SELLER = Seller(name="Công ty TNHH Bán Hàng Tự Động", tax_code="0312345678", address="TP.HCM")
SECRET = b"operator-lookup-secret-0001"


def receipt(number: int, price: int = 12_000, original: OriginalRef | None = None) -> Receipt:
    return build_receipt(
        symbol="1C26MAB",
        number=number,
        issued_at=T0,
        seller=SELLER,
        items=[
            SaleItem(
                product="Trà xanh Không Độ",
                quantity=1,
                unit_price=Money(price, "VND"),
                vat_rate="8%",
                code="A3",
            )
        ],
        payment=Payment.CASH,
        secret=SECRET,
        original=original,
    )


def row(seq: int, doc: object, machine: str = "vm-0001") -> dict[str, object]:
    return {"machine_id": machine, "seq": seq, "receipt_number": "C26MAB-1", "receipt": doc}


def test_receipts_of_sales_are_queued_once(engine: Engine) -> None:
    first, second = receipt(1), receipt(2, price=15_000)
    rows = [
        row(10, first.model_dump(mode="json")),
        row(11, second.model_dump_json()),  # the JSON text form works too
        {"machine_id": "vm-0001", "seq": 12, "receipt_number": None},
    ]
    with engine.begin() as conn:
        report = enqueue_for_sales(conn, rows, T0)
        repeat = enqueue_for_sales(conn, rows, T0)
        queued = list_receipts(conn)
    assert (report.new, report.duplicate, report.without_receipt, report.problems) == (2, 0, 1, [])
    assert (repeat.new, repeat.duplicate) == (0, 2)
    assert [(q.key, q.total, q.sale_seq, q.state) for q in queued] == [
        (ReceiptKey("vm-0001", "1C26MAB", "1"), 12_000, 10, QueueState.PENDING),
        (ReceiptKey("vm-0001", "1C26MAB", "2"), 15_000, 11, QueueState.PENDING),
    ]


def test_the_queued_document_is_the_receipts_xml(engine: Engine) -> None:
    doc = receipt(7)
    outgoing = outgoing_from_receipt("vm-0001", doc, sale_seq=3)
    assert from_xml(outgoing.xml) == doc
    assert (outgoing.kind, outgoing.total, outgoing.currency) == (
        ReceiptKind.ORIGINAL,
        doc.total,
        "VND",
    )


def test_a_correction_document_maps_to_a_linked_kind() -> None:
    ref = OriginalRef(
        relation=Relation.ADJUSTMENT,
        symbol="1C26MAB",
        number=7,
        issued_on=date(2026, 3, 1),
        reason="wrong price",
    )
    outgoing = outgoing_from_receipt("vm-0001", receipt(8, price=2_000, original=ref))
    assert outgoing.kind is ReceiptKind.ADJUSTMENT
    assert outgoing.original == ReceiptKey("vm-0001", "1C26MAB", "7")


def test_bad_receipts_are_reported_and_ingest_goes_on(engine: Engine) -> None:
    good = receipt(1).model_dump(mode="json")
    broken = {**good, "total": 1}  # totals no longer add up
    ref = OriginalRef(
        relation=Relation.REPLACEMENT, symbol="1C26MAB", number=1, issued_on=date(2026, 3, 1)
    )
    rows = [
        row(1, "{not json"),
        row(2, broken),
        row(3, receipt(2, original=ref).model_dump(mode="json")),
        {"seq": 4, "receipt": good},  # no machine id
        row(5, good),
        row(6, {**receipt(1, price=9_000).model_dump(mode="json")}),  # same number, other doc
    ]
    with engine.begin() as conn:
        report = enqueue_for_sales(conn, rows, T0)
        queued = list_receipts(conn)
    assert report.new == 1
    assert [p.split(":")[0] for p in report.problems] == [
        "vm-0001 seq 1",
        "vm-0001 seq 2",
        "vm-0001 seq 3",
        "None seq 4",
        "vm-0001 seq 6",
    ]
    assert "malformed" in report.problems[0]
    assert "corrections are queued by operators" in report.problems[2]
    assert "already queued with another document" in report.problems[4]
    assert [q.sale_seq for q in queued] == [5]
