"""Stateful property test: whatever customers, boards and changers do, money adds up."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.session import VendSession

from .conftest import BILLS, COINS, SELECTIONS, loaded_session, vnd


class MachineUnderLoad(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.session: VendSession = loaded_session(tubes=5)
        self.pending_payouts: list[o.PayOut] = []
        self.pending_dispense: list[o.Dispense] = []
        self.dispensed: set[int] = set()

    def _feed(self, event: i.VendInput) -> None:
        for out in self.session.apply(event):
            if isinstance(out, o.PayOut):
                self.pending_payouts.append(out)
            elif isinstance(out, o.Dispense):
                assert out.vend_id not in self.dispensed, "a vend id was dispensed twice"
                self.pending_dispense.append(out)

    @rule(coin=st.sampled_from(COINS), to_tube=st.booleans())
    def insert_coin(self, coin: tuple[int, object], to_tube: bool) -> None:
        coin_type, value = coin
        self._feed(i.CoinInserted(coin_type=coin_type, value=value, to_tube=to_tube))

    @rule(bill=st.sampled_from(BILLS))
    def escrow_bill(self, bill: tuple[int, object]) -> None:
        bill_type, value = bill
        self._feed(i.BillEscrowed(bill_type=bill_type, value=value))

    @rule(stack=st.booleans())
    def validator_acts(self, stack: bool) -> None:
        escrow = self.session.escrow
        if escrow is None:
            return
        if stack:
            self._feed(i.BillStacked(bill_type=escrow[0], value=escrow[1]))
        else:
            self._feed(i.BillReturned(bill_type=escrow[0], value=escrow[1]))

    @rule(code=st.sampled_from([s.code for s in SELECTIONS]))
    def press(self, code: str) -> None:
        self._feed(i.SelectionPressed(code=code))

    @rule()
    def cancel(self) -> None:
        self._feed(i.ReturnRequested())

    @rule(delivered=st.booleans(), jam=st.booleans())
    def board_answers(self, delivered: bool, jam: bool) -> None:
        if not self.pending_dispense:
            return
        d = self.pending_dispense.pop(0)
        self.dispensed.add(d.vend_id)
        self._feed(
            i.DispenseFinished(
                vend_id=d.vend_id,
                delivered=delivered,
                outcome="jam" if jam else "ok",
                slot_out_of_service=jam and not delivered,
            )
        )

    @rule(fraction=st.sampled_from([0, 1, 2, 4]), repeat=st.booleans())
    def changer_pays(self, fraction: int, repeat: bool) -> None:
        if not self.pending_payouts:
            return
        p = self.pending_payouts.pop(0)
        paid = vnd(p.amount.minor * fraction // 4 // 500 * 500)
        self._feed(i.PayoutFinished(payout_id=p.payout_id, paid=paid))
        if repeat:
            self._feed(i.PayoutFinished(payout_id=p.payout_id, paid=paid))

    @rule(funds=st.sampled_from([None, 5000, 100000]))
    def card(self, funds: int | None) -> None:
        self._feed(i.CardSessionBegan(reader=0x10, funds=None if funds is None else vnd(funds)))

    @rule(approve=st.booleans())
    def reader_answers(self, approve: bool) -> None:
        card = self.session.card
        if card is None or card.requested is None:
            return
        if approve:
            self._feed(i.CardVendApproved(reader=0x10, amount=None))
        else:
            self._feed(i.CardVendDenied(reader=0x10))

    @rule()
    def reader_ends(self) -> None:
        self._feed(i.CardSessionEnded(reader=0x10))

    @rule(code=st.sampled_from([s.code for s in SELECTIONS]))
    def refill(self, code: str) -> None:
        self._feed(i.StockFilled(code=code, count=5))

    @invariant()
    def money_and_stock_add_up(self) -> None:
        assert self.session.invariant_violations() == []

    @invariant()
    def nothing_sold_beyond_stock(self) -> None:
        for s in self.session.selections.values():
            assert 0 <= s.stock <= s.selection.capacity


MachineUnderLoad.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestMachineUnderLoad = MachineUnderLoad.TestCase
