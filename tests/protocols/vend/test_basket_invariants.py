"""Stateful property test for baskets: whatever customers, boards, changers and readers
do, money in = delivered value + refunds + change + IOUs (+ credit), no item is
dispensed twice, and no card is charged for an item that was not delivered.

The test keeps its own ledger of the reader (what it approved, refunded, credited),
built only from the session's outputs and the answers the test gave, so the session
cannot vouch for itself.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from protocols.money import Money
from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.model import Method
from protocols.vend.session import VendSession

from .conftest import BILLS, COINS, SELECTIONS, loaded_session, vnd

READER = 0x10
CODES = [s.code for s in SELECTIONS]
PRICES = {s.code: s.price.minor for s in SELECTIONS}


class ReaderLedger:
    """What a reader following MDB would have done with our commands."""

    def __init__(self) -> None:
        self.charged = self.refunded = self.credited = 0
        self.request: tuple[int, bool] | None = None  # (amount, negative) awaiting an answer
        self.cancelled = False
        self.approved: tuple[int, bool] | None = None  # approved, not yet settled

    @property
    def net(self) -> int:
        return self.charged - self.refunded - self.credited

    def void(self) -> None:
        """The reader reset: an approval never settled is given back."""
        if self.approved is not None and not self.approved[1]:
            self.refunded += self.approved[0]
        self.approved = self.request = None


class BasketsUnderLoad(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.session: VendSession = loaded_session(tubes=5)
        self.session.apply(i.AcceptorsConfigured(coins=COINS, bills=BILLS, card_readers=(READER,)))
        self.reader = ReaderLedger()
        self.card_open = False
        self.pending_payouts: list[o.PayOut] = []
        self.pending_dispense: list[o.Dispense] = []
        self.dispensed: set[int] = set()
        self.follow_up: list[i.VendInput] = []
        self.delivered_cash = 0
        self.delivered_card = 0

    @initialize(refund=st.booleans(), multivend=st.booleans())
    def reader_kind(self, refund: bool, multivend: bool) -> None:
        """Level-3 negative vend or not, multivend capable or not."""
        self.session.apply(
            i.AcceptorsConfigured(
                coins=COINS,
                bills=BILLS,
                card_readers=(READER,),
                refund_readers=(READER,) if refund else (),
                multivend_readers=(READER,) if multivend else (),
            )
        )

    # --- the world's side of the outputs ------------------------------------------------

    def _feed(self, event: i.VendInput) -> None:
        self.follow_up.append(event)
        while self.follow_up:
            self._one(self.follow_up.pop(0))

    def _one(self, event: i.VendInput) -> None:
        for out in self.session.apply(event):
            match out:
                case o.PayOut():
                    self.pending_payouts.append(out)
                case o.Dispense():
                    assert out.vend_id not in self.dispensed, "a vend id was dispensed twice"
                    assert all(d.vend_id != out.vend_id for d in self.pending_dispense)
                    self.pending_dispense.append(out)
                case o.RequestCardVend(price=price):
                    self.reader.request, self.reader.cancelled = (price.minor, False), False
                case o.RequestCardRefund(amount=credit):
                    self.reader.request, self.reader.cancelled = (credit.minor, True), False
                case o.CancelCardVend():
                    self.reader.cancelled = True
                case o.ConfirmCardVend() if self.reader.approved is not None:
                    value, negative = self.reader.approved
                    self.reader.credited += value if negative else 0
                    self.reader.approved = None
                case o.FailCardVend() if self.reader.approved is not None:
                    value, negative = self.reader.approved
                    self.reader.refunded += 0 if negative else value
                    self.reader.approved = None
                case o.EndCardSession() if self.card_open:
                    self.reader.void()
                    self.card_open = False
                    self.follow_up.append(i.CardSessionEnded(reader=READER))
                case _:
                    pass

    # --- customers ------------------------------------------------------------------------

    @rule(code=st.sampled_from(CODES), quantity=st.integers(1, 3))
    def add(self, code: str, quantity: int) -> None:
        self._feed(i.BasketItemAdded(code=code, quantity=quantity))

    @rule(code=st.sampled_from(CODES))
    def remove(self, code: str) -> None:
        self._feed(i.BasketItemRemoved(code=code))

    @rule()
    def checkout(self) -> None:
        self._feed(i.CheckoutRequested())

    @rule(codes=st.lists(st.sampled_from(CODES), min_size=1, max_size=3), card=st.booleans())
    def shop(self, codes: list[str], card: bool) -> None:
        """A whole customer visit in one step: card (or the cash already in), items, pay."""
        if card and not self.card_open:
            self.present_card(None)
        elif not card:
            self.bill(BILLS[2], stack=True)
        for code in codes:
            self._feed(i.BasketItemAdded(code=code))
        self._feed(i.CheckoutRequested())
        self.reader_answers(approve=True, discount=False)

    @rule(code=st.sampled_from(CODES))
    def press(self, code: str) -> None:
        self._feed(i.SelectionPressed(code=code))

    @rule(now=st.integers(0, 3))
    def cancel(self, now: int) -> None:
        if now == 0:  # a rarer event than the others: give baskets a chance to finish
            self._feed(i.ReturnRequested())

    @rule(coin=st.sampled_from(COINS), to_tube=st.booleans())
    def insert_coin(self, coin: tuple[int, Money], to_tube: bool) -> None:
        self._feed(i.CoinInserted(coin_type=coin[0], value=coin[1], to_tube=to_tube))

    @rule(bill=st.sampled_from(BILLS), stack=st.booleans())
    def bill(self, bill: tuple[int, Money], stack: bool) -> None:
        self._feed(i.BillEscrowed(bill_type=bill[0], value=bill[1]))
        escrow = self.session.escrow
        if escrow is not None and stack:
            self._feed(i.BillStacked(bill_type=escrow[0], value=escrow[1]))

    @rule()
    def validator_stacks(self) -> None:
        escrow = self.session.escrow
        if escrow is not None:
            self._feed(i.BillStacked(bill_type=escrow[0], value=escrow[1]))

    @rule(funds=st.sampled_from([None, 20000, 100000]))
    def present_card(self, funds: int | None) -> None:
        if self.card_open:
            return
        self._feed(i.CardSessionBegan(reader=READER, funds=None if funds is None else vnd(funds)))
        self.card_open = self.session.card is not None

    # --- the machine's devices ----------------------------------------------------------

    @rule(
        codes=st.lists(st.sampled_from(CODES), min_size=1, max_size=3),
        card=st.booleans(),
        delivered=st.lists(st.booleans(), min_size=3, max_size=3),
        approve=st.booleans(),
    )
    def whole_visit(
        self, codes: list[str], card: bool, delivered: list[bool], approve: bool
    ) -> None:
        """Shop, then let the board and the reader answer everything (deep paths often)."""
        self.shop(codes, card)
        for ok in delivered:
            self.board_answers(ok, jam=not ok)
        self.reader_answers(approve=approve, discount=False)

    @rule(answers=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=4))
    def board_answers_some(self, answers: list[tuple[bool, bool]]) -> None:
        for delivered, jam in answers:
            self.board_answers(delivered, jam)

    @rule(delivered=st.booleans(), jam=st.booleans())
    def board_answers(self, delivered: bool, jam: bool) -> None:
        if not self.pending_dispense:
            return
        d = self.pending_dispense.pop(0)
        self.dispensed.add(d.vend_id)
        vend = self.session.vend
        if delivered and vend is not None and vend.vend_id == d.vend_id:
            if vend.method is Method.CASH:
                self.delivered_cash += vend.price.minor
            elif vend.method is Method.CASHLESS:
                self.delivered_card += PRICES[vend.code]
        self._feed(
            i.DispenseFinished(
                vend_id=d.vend_id,
                delivered=delivered,
                outcome="jam" if jam else "delivered",
                slot_out_of_service=jam and not delivered,
            )
        )

    @rule(fraction=st.sampled_from([0, 2, 4]))
    def changer_pays(self, fraction: int) -> None:
        if not self.pending_payouts:
            return
        p = self.pending_payouts.pop(0)
        paid = vnd(p.amount.minor * fraction // 4 // 500 * 500)
        self._feed(i.PayoutFinished(payout_id=p.payout_id, paid=paid))

    @rule(approve=st.sampled_from([True, True, False]), discount=st.booleans())
    def reader_answers(self, approve: bool, discount: bool) -> None:
        request = self.reader.request
        if request is None:
            return
        self.reader.request = None
        amount, negative = request
        if approve and not self.reader.cancelled:
            if discount and not negative:
                amount -= min(amount, 1000)  # the reader may approve less than asked
            self.reader.approved = (amount, negative)
            self.reader.charged += 0 if negative else amount
            self._feed(i.CardVendApproved(reader=READER, amount=vnd(amount), negative=negative))
        else:
            self._feed(i.CardVendDenied(reader=READER))

    @rule(now=st.integers(0, 3))
    def reader_lost(self, now: int) -> None:
        if not self.card_open or now:
            return
        self.reader.void()
        self.card_open = False
        self._feed(i.CardSessionEnded(reader=READER, reason="reader lost"))

    @rule()
    def restart(self) -> None:
        """What recovery submits for a basket being dispensed."""
        basket = self.session.basket
        if basket is not None and basket.phase == "dispensing":
            self._feed(i.BasketInterrupted(reason="controller restarted"))

    @rule(code=st.sampled_from(CODES))
    def refill(self, code: str) -> None:
        self._feed(i.StockFilled(code=code, count=5))

    # --- what must hold ---------------------------------------------------------------

    @invariant()
    def cash_adds_up(self) -> None:
        assert self.session.invariant_violations() == []
        assert self.session.counters.cash_sales_value == self.delivered_cash

    @invariant()
    def cards_pay_only_for_what_was_delivered(self) -> None:
        s, c = self.session, self.session.counters
        quiet = s.card is None and s.vend is None and not self.card_open
        quiet = quiet and (s.basket is None or not s.basket.active)
        if not quiet or self.reader.approved is not None:
            return
        assert self.reader.net == c.cashless_sales_value + c.cashless_refunds_owed
        assert c.cashless_sales_value <= self.delivered_card

    @invariant()
    def nothing_sold_beyond_stock(self) -> None:
        for s in self.session.selections.values():
            assert 0 <= s.stock <= s.selection.capacity


BasketsUnderLoad.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None
)
TestBasketsUnderLoad = BasketsUnderLoad.TestCase


def _checked(state: BasketsUnderLoad, *steps: Callable[[], None]) -> None:
    """Run steps as Hypothesis would: the invariants hold before and after each."""
    checks = (
        state.cash_adds_up,
        state.cards_pay_only_for_what_was_delivered,
        state.nothing_sold_beyond_stock,
    )
    for check in checks:
        check()
    for step in steps:
        step()
        for check in checks:
            check()
    state.teardown()


def test_bill_stacked_after_return_does_not_start_the_basket_nor_replace_the_refund() -> None:
    """Falsifying example from CI: RETURN refunded the credit and sent the escrowed bill
    back, the validator stacked it anyway, and the basket waiting for it was dispensed
    on that bill alone; its settlement then replaced the refund still in flight."""
    state = BasketsUnderLoad()
    ten = BILLS[0]
    _checked(
        state,
        lambda: state.reader_kind(refund=False, multivend=False),
        lambda: state.bill(bill=ten, stack=False),
        state.validator_stacks,
        lambda: state.bill(bill=ten, stack=False),
        lambda: state.shop(card=True, codes=["A1"]),
        lambda: state.cancel(now=0),
        lambda: state.whole_visit(
            approve=False, card=False, codes=["A1"], delivered=[False, False, False]
        ),
    )
    assert not state.pending_dispense  # the stacked bill did not buy a 12,000 item
    assert [p.amount.minor for p in state.pending_payouts] == [10000]  # the refund
    assert state.session.credit == vnd(10000)  # the late bill, still the customer's
