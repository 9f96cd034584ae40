"""Sale telemetry carrying e-receipts through ingest: the receipt is stored on the sale and
queued for transmission in the sale's transaction, and a bad receipt never costs a sale."""

from __future__ import annotations

import json
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from fleet.einvoice import LocalProvider, QueueState, ReceiptKey, Sender, list_receipts
from fleet.ingest import Ingestor, Received, ingest_batch
from fleet.store.einvoice_models import receipt_queue
from fleet.store.models import quarantine, sales
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
from tests.fleet.conftest import T0, body, message

VN = timezone(timedelta(hours=7))
SELLER = Seller(name="Công ty TNHH Máy Bán Hàng Tự Động", tax_code="0312345678", address="Q1")
SECRET = b"ingest-receipts-lookup-secret"


def doc(number: int, price: int = 12_000, original: OriginalRef | None = None) -> Receipt:
    return build_receipt(
        symbol="1C26MAB",
        number=number,
        issued_at=T0.astimezone(VN),
        seller=SELLER,
        items=[SaleItem("Trà xanh Không Độ", 1, Money(price, "VND"), "8%", code="A3")],
        payment=Payment.CASH,
        secret=SECRET,
        original=original,
    )


def shown(receipt: Receipt) -> str:
    return f"{receipt.symbol}-{receipt.number:08d}"


def sale_with(seq: int, receipt: Receipt | None, **changes: object) -> Received:
    fields: dict[str, object] = {"vend_id": seq, "receipt": receipt, "receipt_number": None}
    if receipt is not None:
        fields |= {"price": receipt.total, "receipt_number": shown(receipt)}
    return message(body("sale").model_copy(update=fields | changes), seq)


def tampered(message: Received, change: dict[str, Any], receipt: dict[str, Any]) -> Received:
    """The same message with body fields and receipt fields changed on the wire."""
    data = json.loads(message.payload)
    data["body"].update(change)
    data["body"]["receipt"].update(receipt)
    payload = json.dumps(data, ensure_ascii=False).encode()
    return Received(message.topic, payload, message.received_at)


def sale_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(sales).order_by(sales.c.seq))]


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_receipts_are_stored_on_their_sales_and_queued_once(engine: Engine) -> None:
    docs = [doc(1), doc(2, price=15_000), doc(3, price=8_000)]
    batch = [*(sale_with(n, d) for n, d in enumerate(docs, start=1)), sale_with(4, None)]
    ingestor = Ingestor(engine, clock=lambda: T0)
    report = ingestor.ingest(batch)
    again = ingestor.ingest(batch)  # QoS 1 redelivery: nothing new anywhere

    assert (report.stored, report.receipts_queued, report.receipt_problems) == (4, 3, 0)
    assert (again.duplicates, again.receipts_queued) == (4, 0)
    rows = sale_rows(engine)
    assert [
        (r["receipt_number"], r["receipt_symbol"], r["receipt_no"], r["receipt_total"])
        for r in rows
    ] == [
        ("1C26MAB-00000001", "1C26MAB", 1, 12_000),
        ("1C26MAB-00000002", "1C26MAB", 2, 15_000),
        ("1C26MAB-00000003", "1C26MAB", 3, 8_000),
        (None, None, None, None),
    ]
    assert [r["receipt_vat"] for r in rows] == [889, 1111, 593, None]  # 8% inside the price
    assert all(r["receipt_problem"] is None for r in rows)
    with engine.connect() as conn:
        queued = list_receipts(conn)
        documents = conn.execute(select(receipt_queue.c.document).order_by(receipt_queue.c.id))
        parsed = [from_xml(d) for (d,) in documents]
    assert [(q.key, q.sale_seq, q.total, q.state) for q in queued] == [
        (ReceiptKey("vm-0001", "1C26MAB", str(n)), n, d.total, QueueState.PENDING)
        for n, d in enumerate(docs, start=1)
    ]
    assert parsed == docs


def test_the_queue_shares_the_sales_transaction(engine: Engine) -> None:
    with engine.connect() as conn:
        transaction = conn.begin()
        report = ingest_batch(conn, [sale_with(1, doc(1))], now=T0)
        transaction.rollback()  # whatever ends the sale's transaction ends its receipt's
    assert report.receipts_queued == 1
    assert (count(engine, sales), count(engine, receipt_queue)) == (0, 0)


def test_an_invalid_receipt_leaves_the_sale_stored_and_says_why(engine: Engine) -> None:
    good = sale_with(1, doc(1))
    broken = tampered(good, {}, {"total": 12_001})  # no longer the sum of its lines
    report = Ingestor(engine, clock=lambda: T0).ingest([broken])

    assert (report.stored, report.quarantined) == (1, 0)
    assert (report.receipts_queued, report.receipt_problems) == (0, 1)
    (row,) = sale_rows(engine)
    assert (row["price"], row["receipt_number"], row["receipt_no"]) == (12_000, shown(doc(1)), None)
    assert "receipt is invalid" in row["receipt_problem"]
    assert "total" in row["receipt_problem"]
    assert count(engine, receipt_queue) == 0


def test_a_sale_with_more_wrong_than_its_receipt_is_quarantined(engine: Engine) -> None:
    broken = tampered(sale_with(1, doc(1)), {"price": -5}, {"total": 1})
    report = Ingestor(engine, clock=lambda: T0).ingest([broken])

    assert (report.stored, report.quarantined) == (0, 1)
    with engine.connect() as conn:
        (reason,) = conn.execute(select(quarantine.c.reason)).scalars()
    assert "price" in reason
    assert "receipt" in reason  # the original reason, the receipt's fault included
    assert count(engine, sales) == 0


def test_receipts_that_cannot_be_queued_are_marked_on_their_sales(engine: Engine) -> None:
    first = doc(1)
    taken = doc(1, price=15_000)  # the same number, another document
    correction = doc(
        2,
        original=OriginalRef(
            relation=Relation.REPLACEMENT, symbol="1C26MAB", number=1, issued_on=date(2026, 3, 1)
        ),
    )
    report = Ingestor(engine, clock=lambda: T0).ingest(
        [sale_with(1, first), sale_with(2, taken), sale_with(3, correction)]
    )

    assert (report.stored, report.receipts_queued, report.receipt_problems) == (3, 1, 2)
    problems = [r["receipt_problem"] for r in sale_rows(engine)]
    assert problems[0] is None
    assert "already queued with another document" in problems[1]
    assert "corrections are queued by operators" in problems[2]
    with engine.connect() as conn:
        (queued,) = list_receipts(conn)
    assert (queued.sale_seq, queued.total) == (1, 12_000)


def test_the_receipt_number_follows_the_receipt_document(engine: Engine) -> None:
    Ingestor(engine, clock=lambda: T0).ingest([sale_with(1, doc(7), receipt_number="7")])
    (row,) = sale_rows(engine)
    assert (row["receipt_number"], row["receipt_no"]) == ("1C26MAB-00000007", 7)


async def test_queued_receipts_reach_a_local_provider(engine: Engine, tmp_path: Path) -> None:
    docs = [doc(1), doc(2, price=15_000)]
    Ingestor(engine, clock=lambda: T0).ingest(
        [sale_with(n, d) for n, d in enumerate(docs, start=1)]
    )
    folder = tmp_path / "receipts"
    drained = await Sender(engine, LocalProvider(folder), clock=lambda: T0).drain()

    assert (drained.accepted, drained.failed, drained.rejected) == (2, 0, 0)
    files = sorted(folder.glob("*.xml"))
    assert sorted((from_xml(f.read_bytes()) for f in files), key=lambda d: d.number) == docs
    with engine.connect() as conn:
        assert {q.state for q in list_receipts(conn)} == {QueueState.ACCEPTED}
