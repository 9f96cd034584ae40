"""Baskets: build, pay once, dispense item by item, settle exactly what was delivered."""

from __future__ import annotations

from typing import TypeVar

from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.basket import ItemStatus, Phase
from protocols.vend.session import Rejected, Result, VendSession

from .conftest import BILLS, COINS, SELECTIONS, loaded_session, vnd

READER = 0x10
T = TypeVar("T")


def _of(out: Result, kind: type[T]) -> list[T]:
    return [x for x in out if isinstance(x, kind)]


def _session(*, refund: bool = True, multivend: bool = True) -> VendSession:
    s = loaded_session()
    s.apply(
        i.AcceptorsConfigured(
            coins=COINS,
            bills=BILLS,
            card_readers=(READER,),
            refund_readers=(READER,) if refund else (),
            multivend_readers=(READER,) if multivend else (),
        )
    )
    return s


def _build(s: VendSession) -> None:
    for code in ("A1", "A2", "B1"):  # 12,000 + 15,000 + 8,000
        assert not _of(s.apply(i.BasketItemAdded(code=code)), Rejected)


def _coins(s: VendSession, amount: int) -> None:
    for _ in range(amount // 5000):
        s.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))


def _dispense_all(s: VendSession, first: Result, fails: set[str]) -> Result:
    """Answer each Dispense as the board would; return the last input's outputs."""
    out = first
    seen: set[int] = set()
    while dispense := _of(out, o.Dispense):
        d = dispense[0]
        assert d.vend_id not in seen
        seen.add(d.vend_id)
        bad = d.code in fails
        out = s.apply(
            i.DispenseFinished(
                vend_id=d.vend_id,
                delivered=not bad,
                outcome="jam" if bad else "delivered",
                slot_out_of_service=bad,
            )
        )
    return out


def test_building_checks_stock_and_service() -> None:
    s = _session()
    assert _of(s.apply(i.BasketItemAdded(code="B1", quantity=6)), Rejected)  # par 5
    assert not _of(s.apply(i.BasketItemAdded(code="B1", quantity=2)), Rejected)
    s.apply(i.ServiceStateChanged(code="A1", in_service=False, reason="jam"))
    assert _of(s.apply(i.BasketItemAdded(code="A1")), Rejected)
    s.apply(i.BasketItemRemoved(code="B1", quantity=1))
    assert s.basket is not None
    assert s.basket.lines == {"B1": 1}
    s.apply(i.BasketCleared())
    assert s.basket is None


def test_cash_checkout_needs_the_total() -> None:
    s = _session()
    _build(s)
    _coins(s, 30000)
    refused = _of(s.apply(i.CheckoutRequested()), Rejected)
    assert refused
    assert "5,000" in refused[0].reason or "5000" in refused[0].reason


def test_cash_basket_with_one_jam_pays_back_the_failed_item_and_change() -> None:
    s = _session()
    _build(s)
    _coins(s, 40000)
    last = _dispense_all(s, s.apply(i.CheckoutRequested()), fails={"A2"})
    sold = _of(last, o.BasketSold)
    assert len(sold) == 1
    assert {ln.code for ln in sold[0].lines} == {"A1", "B1"}
    assert sold[0].total == vnd(20000)
    payout = _of(last, o.PayOut)
    assert payout[0].amount == vnd(20000)  # 40,000 in, 20,000 delivered
    assert payout[0].reason == "refund"
    assert s.counters.cash_sales_value == 20000
    assert s.last_basket is not None
    statuses = {it.code: it.status for it in s.last_basket.items}
    assert statuses == {
        "A1": ItemStatus.DELIVERED,
        "A2": ItemStatus.FAILED,
        "B1": ItemStatus.DELIVERED,
    }
    s.apply(i.PayoutFinished(payout_id=payout[0].payout_id, paid=vnd(20000)))
    assert s.invariant_violations() == []
    assert s.counters.refunds_paid == 20000


def test_second_unit_of_a_jammed_selection_is_skipped_not_dispensed() -> None:
    s = _session()
    s.apply(i.BasketItemAdded(code="A2", quantity=2))
    _coins(s, 30000)
    out = s.apply(i.CheckoutRequested())
    first = _of(out, o.Dispense)[0]
    last = s.apply(
        i.DispenseFinished(
            vend_id=first.vend_id, delivered=False, outcome="jam", slot_out_of_service=True
        )
    )
    assert not _of(last, o.Dispense)
    assert s.last_basket is not None
    assert [it.status for it in s.last_basket.items] == [ItemStatus.FAILED, ItemStatus.SKIPPED]
    assert _of(last, o.PayOut)[0].amount == vnd(30000)
    assert not _of(last, o.BasketSold)


def test_return_while_the_basket_waits_for_its_bill_cancels_the_basket() -> None:
    s = _session()
    _coins(s, 5000)
    s.apply(i.BillEscrowed(bill_type=0, value=vnd(10000)))
    s.apply(i.BasketItemAdded(code="A1"))
    assert _of(s.apply(i.CheckoutRequested()), o.StackBill)
    out = s.apply(i.ReturnRequested())
    assert _of(out, o.ReturnBill)
    (refund,) = _of(out, o.PayOut)
    assert refund.amount == vnd(5000)
    assert s.basket is None
    # The validator stacks the bill anyway (it crossed RETURN): credit, not a checkout.
    out = s.apply(i.BillStacked(bill_type=0, value=vnd(10000)))
    assert not _of(out, o.Dispense)
    assert not _of(out, o.PayOut)
    assert s.payout is not None
    assert s.payout.payout_id == refund.payout_id  # the refund in flight is kept
    assert s.credit == vnd(10000)
    assert s.invariant_violations() == []
    s.apply(i.PayoutFinished(payout_id=refund.payout_id, paid=vnd(5000)))
    (late,) = _of(s.apply(i.ReturnRequested()), o.PayOut)
    assert late.amount == vnd(10000)
    s.apply(i.PayoutFinished(payout_id=late.payout_id, paid=vnd(10000)))
    assert s.counters.refunds_paid == s.counters.cash_in == 15000
    assert s.invariant_violations() == []


def test_stacked_bill_short_of_the_total_does_not_start_the_basket() -> None:
    s = _session()
    s.apply(i.BillEscrowed(bill_type=1, value=vnd(20000)))
    s.apply(i.BasketItemAdded(code="A1"))
    assert _of(s.apply(i.CheckoutRequested()), o.StackBill)
    # The validator reports a smaller bill than the one it held in escrow.
    out = s.apply(i.BillStacked(bill_type=0, value=vnd(10000)))
    assert not _of(out, o.Dispense)
    assert s.basket is not None
    assert s.basket.phase is Phase.BUILDING
    assert s.credit == vnd(10000)
    assert s.invariant_violations() == []


def _card_basket(s: VendSession) -> Result:
    s.apply(i.CardSessionBegan(reader=READER, funds=vnd(100000)))
    _build(s)
    out = s.apply(i.CheckoutRequested())
    request = _of(out, o.RequestCardVend)
    assert request == [o.RequestCardVend(READER, vnd(35000), 0xFFFF)]
    assert s.basket is not None
    assert s.basket.phase is Phase.PAYING
    return s.apply(i.CardVendApproved(reader=READER, amount=vnd(35000)))


def test_card_basket_all_delivered_is_one_vend_success() -> None:
    s = _session()
    last = _dispense_all(s, _card_basket(s), fails=set())
    assert _of(last, o.ConfirmCardVend)
    assert _of(last, o.EndCardSession)
    assert _of(last, o.BasketSold)[0].total == vnd(35000)
    assert s.counters.cashless_sales_value == 35000


def test_card_basket_partial_with_negative_vend_refunds_the_failed_item() -> None:
    s = _session(refund=True)
    last = _dispense_all(s, _card_basket(s), fails={"A2"})
    assert _of(last, o.ConfirmCardVend)
    assert _of(last, o.RequestCardRefund) == [o.RequestCardRefund(READER, vnd(15000), 0xFFFF)]
    assert s.busy  # waiting for the reader
    done = s.apply(i.CardVendApproved(reader=READER, amount=vnd(15000), negative=True))
    assert _of(done, o.ConfirmCardVend)
    assert _of(done, o.BasketSold)[0].total == vnd(20000)
    assert _of(done, o.BasketRefunded)[0].amount == vnd(15000)
    assert s.counters.cashless_sales_value == 20000
    assert not s.busy


def test_refused_negative_vend_is_owed_not_lost() -> None:
    s = _session(refund=True)
    _dispense_all(s, _card_basket(s), fails={"A2"})
    done = s.apply(i.CardVendDenied(reader=READER))
    refund = _of(done, o.BasketRefunded)[0]
    assert refund.owed
    assert refund.amount == vnd(15000)
    assert s.counters.cashless_refunds_owed == 15000


def test_card_basket_partial_without_negative_vend_fails_and_charges_again() -> None:
    s = _session(refund=False, multivend=True)
    last = _dispense_all(s, _card_basket(s), fails={"B1"})
    assert _of(last, o.FailCardVend)
    assert _of(last, o.RequestCardVend) == [o.RequestCardVend(READER, vnd(27000), 0xFFFF)]
    done = s.apply(i.CardVendApproved(reader=READER, amount=vnd(27000)))
    assert _of(done, o.ConfirmCardVend)
    assert _of(done, o.BasketSold)[0].total == vnd(27000)
    assert s.counters.cashless_sales_value == 27000


def test_reader_without_either_leaves_delivered_items_unsettled() -> None:
    s = _session(refund=False, multivend=False)
    last = _dispense_all(s, _card_basket(s), fails={"B1"})
    assert _of(last, o.FailCardVend)
    assert not _of(last, o.ConfirmCardVend)
    assert _of(last, o.BasketSold)[0].settled is False
    assert s.counters.cashless_unsettled_value == 27000
    assert s.counters.cashless_sales_value == 0


def test_card_declined_goes_back_to_building() -> None:
    s = _session()
    s.apply(i.CardSessionBegan(reader=READER, funds=None))
    _build(s)
    s.apply(i.CheckoutRequested())
    s.apply(i.CardVendDenied(reader=READER))
    assert s.basket is not None
    assert s.basket.phase is Phase.BUILDING
    assert s.basket.count() == 3


def test_interrupted_basket_stops_after_the_item_in_flight() -> None:
    s = _session()
    _build(s)
    _coins(s, 35000)
    first = _of(s.apply(i.CheckoutRequested()), o.Dispense)[0]
    assert _of(s.apply(i.BasketInterrupted(reason="controller restarted")), Rejected) == []
    last = s.apply(i.DispenseFinished(vend_id=first.vend_id, delivered=True, outcome="ok"))
    assert not _of(last, o.Dispense)
    assert _of(last, o.PayOut)[0].amount == vnd(35000 - 12000)
    assert s.last_basket is not None
    assert [it.status for it in s.last_basket.items][1:] == [ItemStatus.SKIPPED] * 2


def test_basket_survives_replay() -> None:
    s = _session()
    journal: list[i.VendInput] = []

    def feed(event: i.VendInput) -> Result:
        journal.append(event)
        return s.apply(event)

    for code in ("A1", "B1"):
        feed(i.BasketItemAdded(code=code))
    for _ in range(4):
        feed(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))
    first = _of(feed(i.CheckoutRequested()), o.Dispense)[0]
    second = _of(
        feed(i.DispenseFinished(vend_id=first.vend_id, delivered=True, outcome="ok")), o.Dispense
    )[0]
    again = loaded_session()
    again.apply(
        i.AcceptorsConfigured(
            coins=COINS, bills=BILLS, card_readers=(READER,), refund_readers=(READER,)
        )
    )
    encoded = [i.encode_input(e) for e in journal]
    for text in encoded:
        again.apply(i.decode_input(text))
    assert again.vend is not None
    assert again.vend.vend_id == second.vend_id
    assert again.credit == s.credit
    assert again.basket is not None
    assert SELECTIONS[0].code in {it.code for it in again.basket.items}
