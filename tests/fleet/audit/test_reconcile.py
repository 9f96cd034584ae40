"""reconcile_interval, one category at a time, on hand-built inputs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fleet.audit.reconcile import IntervalInput, reconcile_interval
from fleet.audit.records import (
    CashCount,
    DexPoint,
    ReceiptKind,
    ReceiptRecord,
    SaleMethod,
    SaleRecord,
    SelectionCounters,
    SettlementKind,
    SettlementRecord,
    TelemetryGap,
    vat_due,
)
from fleet.audit.report import BoundaryKind, Category

P0 = datetime(2026, 2, 28, 17, tzinfo=UTC)
P1 = datetime(2026, 3, 31, 17, tzinfo=UTC)
START = datetime(2026, 3, 10, 7, tzinfo=UTC)
END = datetime(2026, 3, 17, 7, tzinfo=UTC)
M = "vm-1"


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def sale(
    n: int, price: int = 12_000, method: SaleMethod = SaleMethod.CASH, hours: float = 1
) -> SaleRecord:
    return SaleRecord(
        key=f"{M}:{n}", machine=M, at=at(hours + n / 100), selection="A1", price=price,
        method=method, payment_ref=f"P{n}" if method is SaleMethod.CASHLESS else None,
        receipt_number=f"R{n}" if price else None,
        cash_to_box=price if method is SaleMethod.CASH else 0,
    )  # fmt: skip


def receipt(s: SaleRecord, **changes: object) -> ReceiptRecord:
    base = ReceiptRecord(
        key=f"r:{s.receipt_number}", machine=M, number=s.receipt_number or "?",
        at=s.at + timedelta(seconds=1), amount=s.price, vat=vat_due(s.price, 1000),
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def settlement(s: SaleRecord, **changes: object) -> SettlementRecord:
    base = SettlementRecord(
        key=f"st:{s.payment_ref}", machine=M, at=s.at, amount=s.price, fee=100,
        reference=s.payment_ref,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def point(read_id: str, when: datetime, **values: int | str) -> DexPoint:
    fields: dict[str, object] = {
        "board": "CB1", "paid_value": 0, "paid_count": 0, "cash_value": 0,
        "cashless_value": 0, "test_count": 0, "free_count": 0, "cashbox_coins": 0,
        "bills_in": 0, "manual_payout": 0,
    }  # fmt: skip
    fields.update(values)
    tests = int(fields.pop("a1_tests", 0))  # type: ignore[call-overload]
    return DexPoint(
        read_id=read_id, machine=M, read_at=when,
        selections=(SelectionCounters("A1", 12_000, 0, 0, tests, 0),),
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def interval(sales: tuple[SaleRecord, ...] = (), **changes: object) -> IntervalInput:
    base = IntervalInput(
        machine=M, index=0, start=START, end=END, start_kind=BoundaryKind.COLLECTION,
        end_kind=BoundaryKind.COLLECTION, period_start=P0, period_end=P1, month="2026-03",
        sales=sales, receipts=tuple(receipt(s) for s in sales if s.paid),
        settlements=tuple(settlement(s) for s in sales if s.method is SaleMethod.CASHLESS),
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def found(item: IntervalInput) -> list[tuple[str, int]]:
    return [(d.category.value, d.amount) for d in reconcile_interval(item).discrepancies]


CASH = (sale(1), sale(2, 10_000))
CARD = (sale(3, 15_000, SaleMethod.CASHLESS),)


def test_a_consistent_interval_has_no_discrepancies_and_full_line_items() -> None:
    sales = CASH + CARD
    start = point("d0", START - timedelta(minutes=1))
    end = point("d1", END - timedelta(minutes=1), paid_value=37_000, cash_value=22_000,
                cashless_value=15_000, bills_in=22_000)  # fmt: skip
    item = interval(
        sales, dex_start=start, dex_end=end, dex_sales=sales, cash_start=START,
        count=CashCount(M, "v1", END, coins=0, bills=12_000, change_added=10_000),
        cash_dex_start=start, cash_dex_end=end,
    )  # fmt: skip
    result = reconcile_interval(item)
    assert result.discrepancies == ()
    t = result.totals
    assert (t.telemetry_value, t.dex_paid, t.settled_gross, t.receipts_value) == (37_000,) * 2 + (
        15_000,
        37_000,
    )
    assert (t.cash_expected, t.cash_counted, t.cash_over_short) == (22_000, 12_000, 0)
    assert t.receipts_vat == sum(vat_due(p, 1000) for p in (12_000, 10_000, 15_000))
    assert result.expected_cash_source == "dex"


def test_missing_receipt_and_one_never_transmitted() -> None:
    item = interval(CASH)
    assert found(replace(item, receipts=item.receipts[1:])) == [("missing_receipt", -12_000)]
    unsent = replace(item.receipts[0], transmitted=False)
    assert found(replace(item, receipts=(unsent, item.receipts[1]))) == [
        ("missing_receipt", -12_000)
    ]


def test_receipt_without_sale_and_for_a_test_vend() -> None:
    test = sale(5, 0, SaleMethod.TEST)
    orphan = receipt(sale(9), key="r:orphan", number="R-none")
    on_test = receipt(sale(9), key="r:test", number="R-test", sale_key=test.key)
    got = found(interval((*CASH, test), receipts=(*interval(CASH).receipts, orphan, on_test)))
    assert sorted(got) == [("receipt_without_sale", 12_000), ("receipt_without_sale", 12_000)]


def test_duplicate_receipt_and_duplicate_capture() -> None:
    item = interval(CASH + CARD)
    extra = replace(item.receipts[0], key="r:again", at=item.receipts[0].at + timedelta(seconds=9))
    twice = replace(item.settlements[0], key="st:again", reference="P3")
    got = found(
        replace(item, receipts=(*item.receipts, extra), settlements=(*item.settlements, twice))
    )
    assert sorted(got) == [("duplicate", 12_000), ("duplicate", 15_000)]


def test_amount_and_vat_mismatch_are_separate_findings() -> None:
    item = interval(CASH + CARD)
    wrong_amount = receipt(CASH[0], amount=11_000, vat=vat_due(11_000, 1000))
    wrong_vat = receipt(CASH[1], vat=vat_due(10_000, 1000) - 1)
    short_settled = settlement(CARD[0], amount=14_000)
    got = found(
        replace(
            item, receipts=(wrong_amount, wrong_vat, item.receipts[2]), settlements=(short_settled,)
        )
    )
    assert sorted(got) == [
        ("amount_mismatch", -1_000),
        ("amount_mismatch", -1_000),
        ("vat_mismatch", -1),
    ]


def test_unsettled_and_unknown_cashless() -> None:
    stranger = SettlementRecord("st:x", M, at(3), 20_000, reference="PX")
    assert sorted(found(interval(CARD, settlements=(stranger,)))) == [
        ("unsettled_or_unknown_cashless", -15_000),
        ("unsettled_or_unknown_cashless", 20_000),
    ]


def test_refund_needs_an_adjustment_receipt() -> None:
    card = CARD[0]
    refund = settlement(card, key="st:refund", at=at(30), kind=SettlementKind.REFUND,
                        reference="RF", original_reference=card.payment_ref)  # fmt: skip
    later = interval(
        (),
        settlements=(refund,),
        related_sales=CARD,
        context_receipts=(receipt(card),),
        receipts=(),
    )
    assert found(later) == [("refund_without_receipt_adjustment", 15_000)]
    adjusted = receipt(card, key="r:adj", number="ADJ1", kind=ReceiptKind.ADJUSTMENT, original="R3")
    assert found(replace(later, context_receipts=(receipt(card), adjusted))) == []


def test_cash_short_and_over_against_dex_and_against_telemetry() -> None:
    start = point("d0", START)
    end = point("d1", END, cash_value=22_000, paid_value=22_000, bills_in=22_000)
    base = interval(CASH, cash_start=START, cash_dex_start=start, cash_dex_end=end, cash_sales=CASH)
    short = replace(base, count=CashCount(M, "v", END, 0, 17_000))
    assert found(short) == [("cash_over_short", -5_000)]
    over = replace(short, count=CashCount(M, "v", END, 500, 22_000), cash_dex_end=None)
    assert found(over) == [("cash_over_short", 500)]
    assert reconcile_interval(over).expected_cash_source == "telemetry"


def test_board_swap_books_no_negative_sales_and_cash_falls_back_to_telemetry() -> None:
    start = point("d0", START, paid_value=900_000, cash_value=900_000, bills_in=900_000)
    # new board: counts only the second sale
    end = point("d1", END, board="CB2", paid_value=10_000, cash_value=10_000, bills_in=10_000)
    item = interval(
        CASH, dex_start=start, dex_end=end, dex_sales=CASH, cash_start=START,
        cash_dex_start=start, cash_dex_end=end, cash_sales=CASH,
        count=CashCount(M, "v", END, 0, 22_000),
    )  # fmt: skip
    assert found(item) == [("counter_reset_or_board_swap", -12_000)]


def test_test_vends_valued_at_the_selection_price() -> None:
    start = point("d0", START, a1_tests=4)
    end = point("d1", END, a1_tests=6)
    assert found(interval((), dex_start=start, dex_end=end)) == [("test_or_free_vends", -24_000)]


def test_dex_ahead_of_telemetry_is_unexplained_unless_telemetry_has_a_gap() -> None:
    start = point("d0", START)
    end = point("d1", END, cash_value=34_000, paid_value=34_000)
    item = interval(CASH, dex_start=start, dex_end=end, dex_sales=CASH)
    assert found(item) == [("unexplained", 12_000)]
    gap = TelemetryGap(M, 7, 7, at(2), at(3))
    assert found(replace(item, gaps=(gap,))) == [("missing_receipt", -12_000)]


def test_documents_across_the_period_end_are_timing_once_per_sale() -> None:
    late = replace(CARD[0], at=P1 - timedelta(seconds=1))
    item = interval(
        (late,),
        receipts=(receipt(late, at=P1 + timedelta(seconds=1)),),
        settlements=(settlement(late, at=P1 + timedelta(seconds=2)),),
    )
    got = reconcile_interval(item).discrepancies
    assert [(d.category, d.amount, d.ref) for d in got] == [(Category.TIMING, -15_000, late.key)]
    # the next period sees the same sale's documents, with the opposite sign
    april = replace(
        item, sales=(), related_sales=(late,), period_start=P1, period_end=P1 + timedelta(days=30)
    )
    assert found(april) == [("timing", 15_000)]
