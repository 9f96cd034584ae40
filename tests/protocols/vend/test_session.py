from __future__ import annotations

from typing import Any

from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.model import Method
from protocols.vend.session import Rejected, VendSession, replay

from .conftest import loaded_session, vnd


def _only(out: list[Any], kind: type) -> list[Any]:
    return [x for x in out if isinstance(x, kind)]


def test_cash_sale_with_change(session: VendSession) -> None:
    session.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))
    session.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))
    session.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))
    out = session.apply(i.SelectionPressed(code="A1"))
    (dispense,) = _only(out, o.Dispense)
    assert dispense.motor == 11
    # Nothing is paid for before the board confirms the drop.
    assert session.counters.cash_sales_value == 0
    out = session.apply(
        i.DispenseFinished(vend_id=dispense.vend_id, delivered=True, outcome="dispensed")
    )
    (sale,) = _only(out, o.Sale)
    (payout,) = _only(out, o.PayOut)
    assert sale.price == vnd(12000)
    assert sale.method is Method.CASH
    assert payout.amount == vnd(3000)
    assert payout.reason == "change"
    session.apply(i.PayoutFinished(payout_id=payout.payout_id, paid=vnd(3000)))
    assert session.credit == vnd(0)
    assert session.selections["A1"].stock == 7
    assert session.invariant_violations() == []


def test_changer_paying_less_leaves_an_iou(session: VendSession) -> None:
    session.apply(i.BillEscrowed(bill_type=1, value=vnd(20000)))
    out = session.apply(i.SelectionPressed(code="B1"))
    assert _only(out, o.StackBill)
    out = session.apply(i.BillStacked(bill_type=1, value=vnd(20000)))
    (dispense,) = _only(out, o.Dispense)
    out = session.apply(
        i.DispenseFinished(vend_id=dispense.vend_id, delivered=True, outcome="dispensed")
    )
    (payout,) = _only(out, o.PayOut)
    assert payout.amount == vnd(12000)
    out = session.apply(i.PayoutFinished(payout_id=payout.payout_id, paid=vnd(7000)))
    (iou,) = _only(out, o.IouIssued)
    assert iou.amount == vnd(5000)
    assert session.counters.ious == 5000
    assert session.invariant_violations() == []


def test_bill_in_escrow_is_returned_on_cancel_and_never_credited(session: VendSession) -> None:
    out = session.apply(i.BillEscrowed(bill_type=1, value=vnd(20000)))
    assert not _only(out, o.StackBill)  # enough to buy: held in escrow until a choice
    out = session.apply(i.ReturnRequested())
    assert _only(out, o.ReturnBill)
    session.apply(i.BillReturned(bill_type=1, value=vnd(20000)))
    assert session.credit == vnd(0)
    assert session.counters.cash_in == 0
    assert session.invariant_violations() == []


def test_return_gives_up_the_choice_waiting_for_the_bill(session: VendSession) -> None:
    session.apply(i.BillEscrowed(bill_type=1, value=vnd(20000)))
    assert _only(session.apply(i.SelectionPressed(code="A1")), o.StackBill)
    assert _only(session.apply(i.ReturnRequested()), o.ReturnBill)
    # The bill stacks anyway (STACK crossed RETURN): it is credit, not a vend.
    out = session.apply(i.BillStacked(bill_type=1, value=vnd(20000)))
    assert not _only(out, o.Dispense)
    assert session.credit == vnd(20000)
    assert session.invariant_violations() == []


def test_small_bill_is_stacked_at_once_so_more_can_follow(session: VendSession) -> None:
    # 10,000 buys B1 (8,000): held. With B1 sold out nothing costs <= 10,000: stack it.
    session.apply(i.StockRemoved(code="B1", count=5))
    out = session.apply(i.BillEscrowed(bill_type=0, value=vnd(10000)))
    assert _only(out, o.StackBill)


def test_cashless_approved_then_jam_fails_the_vend_and_takes_the_slot_out(
    session: VendSession,
) -> None:
    session.apply(i.CardSessionBegan(reader=0x10, funds=vnd(100000)))
    out = session.apply(i.SelectionPressed(code="A2"))
    (request,) = _only(out, o.RequestCardVend)
    assert request.price == vnd(15000)
    assert request.item_number == 2
    out = session.apply(i.CardVendApproved(reader=0x10, amount=vnd(15000)))
    (dispense,) = _only(out, o.Dispense)
    out = session.apply(
        i.DispenseFinished(
            vend_id=dispense.vend_id, delivered=False, outcome="jam", slot_out_of_service=True
        )
    )
    assert _only(out, o.FailCardVend)
    assert not _only(out, o.ConfirmCardVend)
    assert _only(out, o.SelectionOutOfService)
    assert session.selections["A2"].in_service is False
    assert session.counters.cashless_sales_value == 0
    # The other selections still sell.
    session.apply(i.CardSessionEnded(reader=0x10))
    session.apply(i.CardSessionBegan(reader=0x10, funds=vnd(100000)))
    out = session.apply(i.SelectionPressed(code="A1"))
    assert _only(out, o.RequestCardVend)


def test_cashless_success_confirms_only_after_the_drop(session: VendSession) -> None:
    session.apply(i.CardSessionBegan(reader=0x10, funds=None))
    session.apply(i.SelectionPressed(code="A1"))
    out = session.apply(i.CardVendApproved(reader=0x10, amount=vnd(12000)))
    assert not _only(out, o.ConfirmCardVend)
    (dispense,) = _only(out, o.Dispense)
    out = session.apply(
        i.DispenseFinished(vend_id=dispense.vend_id, delivered=True, outcome="dispensed")
    )
    assert _only(out, o.ConfirmCardVend) == [o.ConfirmCardVend(0x10, 1)]
    assert session.counters.cashless_sales_value == 12000


def test_denied_card_goes_back_to_choosing(session: VendSession) -> None:
    session.apply(i.CardSessionBegan(reader=0x10, funds=vnd(5000)))
    out = session.apply(i.SelectionPressed(code="A1"))
    assert not _only(out, o.RequestCardVend)  # funds known to be short
    session.apply(i.CardSessionEnded(reader=0x10))
    session.apply(i.CardSessionBegan(reader=0x10, funds=None))
    session.apply(i.SelectionPressed(code="A1"))
    out = session.apply(i.CardVendDenied(reader=0x10))
    assert session.card is not None
    assert session.card.requested is None
    assert session.vend is None
    assert any(isinstance(x, o.Show) and "declined" in x.message for x in out)


def test_approval_after_cancel_is_undone(session: VendSession) -> None:
    session.apply(i.CardSessionBegan(reader=0x10, funds=None))
    session.apply(i.SelectionPressed(code="A1"))
    out = session.apply(i.ReturnRequested())
    assert _only(out, o.CancelCardVend)
    out = session.apply(i.CardVendApproved(reader=0x10, amount=vnd(12000)))
    assert _only(out, o.FailCardVend)
    assert session.vend is None


def test_repeated_inputs_are_no_ops(session: VendSession) -> None:
    session.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))
    session.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))
    session.apply(i.CoinInserted(coin_type=2, value=vnd(2000), to_tube=True))
    out = session.apply(i.SelectionPressed(code="A1"))
    (dispense,) = _only(out, o.Dispense)
    first = session.apply(
        i.DispenseFinished(vend_id=dispense.vend_id, delivered=True, outcome="ok")
    )
    again = session.apply(
        i.DispenseFinished(vend_id=dispense.vend_id, delivered=True, outcome="ok")
    )
    assert _only(first, o.Sale)
    assert not _only(again, o.Sale)
    assert session.counters.cash_sales_count == 1


def test_change_that_cannot_be_made_refuses_the_vend() -> None:
    session = loaded_session(tubes=0)
    session.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=False))
    session.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=False))
    out = session.apply(i.SelectionPressed(code="B1"))
    assert not _only(out, o.Dispense)
    assert any(isinstance(x, o.Show) and "change" in x.message for x in out)


def test_exact_change_mode_refuses_big_bills_when_tubes_are_empty() -> None:
    session = loaded_session(tubes=0)
    acceptance = session.acceptance
    assert acceptance is not None
    assert acceptance.exact_change
    assert 2 not in acceptance.bills  # a 50,000 bill could not be changed
    session.apply(
        i.TubesRead(
            tubes=((0, vnd(500), 50), (1, vnd(1000), 50), (2, vnd(2000), 50), (3, vnd(5000), 50))
        )
    )
    assert session.acceptance is not None
    assert not session.acceptance.exact_change
    assert 2 in session.acceptance.bills


def test_acceptors_are_off_while_vending(session: VendSession) -> None:
    session.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))
    session.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))
    session.apply(i.CoinInserted(coin_type=2, value=vnd(2000), to_tube=True))
    session.apply(i.SelectionPressed(code="A1"))
    assert session.acceptance is not None
    assert session.acceptance.coins == frozenset()
    assert session.acceptance.bills == frozenset()
    assert session.acceptance.cards is False


def test_invalid_operator_input_is_rejected_and_changes_nothing(session: VendSession) -> None:
    out = session.apply(i.PriceChanged(code="Z9", price=vnd(1000)))
    assert isinstance(out[0], Rejected)
    out = session.apply(i.StockFilled(code="A1", count=99))
    assert isinstance(out[0], Rejected)
    assert session.selections["A1"].stock == 8


def test_replay_rebuilds_an_in_flight_vend(session: VendSession) -> None:
    log: list[i.VendInput] = [
        i.PlanogramLoaded(
            currency="VND", selections=tuple(s.selection for s in session.selections.values())
        ),
        i.StockFilled(code="A1", count=5),
        i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=False),
        i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=False),
        i.CoinInserted(coin_type=2, value=vnd(2000), to_tube=False),
        i.SelectionPressed(code="A1"),
    ]
    original = VendSession("VND")
    for event in log:
        original.apply(i.decode_input(i.encode_input(event)))
    rebuilt = replay(i.decode_input(i.encode_input(e)) for e in log)
    assert rebuilt.vend is not None
    assert rebuilt.vend == original.vend
    assert rebuilt.credit == vnd(12000)
    assert rebuilt.next_id == original.next_id


def test_a_new_journal_starts_its_ids_where_it_was_told() -> None:
    session = VendSession("VND")
    session.apply(i.JournalStarted(id_base=7_000_001))
    from .conftest import SELECTIONS  # noqa: PLC0415

    session.apply(i.PlanogramLoaded(currency="VND", selections=SELECTIONS))
    session.apply(i.StockFilled(code="A1", count=3))
    out = session.apply(i.TestVendRequested(code="A1"))
    (dispense,) = _only(out, o.Dispense)
    assert dispense.vend_id == 7_000_001
    assert isinstance(session.apply(i.JournalStarted(id_base=5))[0], Rejected)
