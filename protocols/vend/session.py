"""The vend session reducer: one customer at a time, multi-vend off.

``VendSession.apply(input)`` changes the state and returns what the controller must
do. It never performs I/O, reads a clock or draws a random number, so replaying the
journal gives back the same state and the same ids.

Money rules it enforces:

* cash credit comes only from coins and *stacked* bills; a bill in escrow is shown
  but not credited, and is returned on cancel;
* a product is paid for only when the board confirmed the drop (``DispenseFinished``
  with ``delivered``); cashless readers get VEND SUCCESS only then, VEND FAILURE
  otherwise, so the reader refunds;
* change is ``credit - price`` and is planned before the vend starts: a vend whose
  change cannot be paid exactly from the tubes is refused up front; if the changer
  still pays less than asked, the rest is an IOU, recorded, never lost;
* every path that took money ends in a sale or a refund / IOU.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocols.change import Tube, plan_change
from protocols.money import Money
from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.acceptance import decide_acceptance
from protocols.vend.basket import Basket, BasketFlow, Phase
from protocols.vend.model import Counters, Method
from protocols.vend.state import (
    CardSession,
    PayoutInFlight,
    Rejected,
    Result,
    SelectionState,
    VendInFlight,
)

__all__ = [
    "CardSession",
    "PayoutInFlight",
    "Rejected",
    "Result",
    "SelectionState",
    "VendInFlight",
    "VendSession",
    "replay",
]


class VendSession(BasketFlow):
    """The whole machine's money and stock state, driven by journaled inputs."""

    def __init__(self, currency: str = "VND") -> None:
        self.currency = currency
        self.selections: dict[str, SelectionState] = {}
        self.credit = Money(0, currency)
        self.escrow: tuple[int, Money] | None = None
        self.pending_code: str | None = None  # waiting for the escrowed bill to stack
        self.card: CardSession | None = None
        self.vend: VendInFlight | None = None
        self.payout: PayoutInFlight | None = None
        self.counters = Counters()
        self.tubes: tuple[Tube, ...] = ()
        self.coin_types: tuple[tuple[int, Money], ...] = ()
        self.bill_types: tuple[tuple[int, Money], ...] = ()
        self.card_readers: tuple[int, ...] = ()
        self.refund_readers: tuple[int, ...] = ()
        self.multivend_readers: tuple[int, ...] = ()
        self.basket: Basket | None = None  # the customer's basket (automated stores)
        self.last_basket: Basket | None = None  # the last one settled, for the panel
        self.acceptance: o.SetAcceptance | None = None
        self.next_id = 1
        # Tube counts when the payout in flight started, plus coins that went into the
        # tubes since: what the tubes would hold had nothing been paid. Recovery compares
        # it with the tubes after a restart to learn what a cut-short payout really paid.
        self.payout_tubes: dict[int, int] = {}

    # --- queries ------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.vend is not None or self.payout is not None or self._basket_busy()

    def _basket_busy(self) -> bool:
        """A basket being dispensed or settled, or waiting for its cash (not for a card's
        approval: the customer may still cancel that)."""
        b = self.basket
        if b is None or not b.active:
            return False
        return not (b.phase is Phase.PAYING and b.method is Method.CASHLESS)

    def available(self) -> Money:
        """What the customer can spend now: credit plus a bill waiting in escrow."""
        return self.credit + (self.escrow[1] if self.escrow else self._zero())

    def can_pay(self, amount: Money) -> bool:
        return amount.minor == 0 or plan_change(amount, self.tubes) is not None

    def invariant_violations(self) -> list[str]:
        """The cash identity and the per-selection stock identity; empty when they hold."""
        c = self.counters
        in_flight = self.payout.amount.minor if self.payout else 0
        out = c.cash_sales_value + c.change_paid + c.refunds_paid + c.ious
        problems = []
        if c.cash_in != out + self.credit.minor + in_flight:
            problems.append(
                f"cash in {c.cash_in} != sales {c.cash_sales_value} + change {c.change_paid} "
                f"+ refunds {c.refunds_paid} + IOUs {c.ious} + credit {self.credit.minor} "
                f"+ payout in flight {in_flight}"
            )
        if self.credit.minor < 0:
            problems.append(f"negative credit {self.credit.minor}")
        for code, s in self.selections.items():
            if s.stock != s.last_fill - s.gone_since_fill:
                problems.append(
                    f"{code}: stock {s.stock} != last fill {s.last_fill} - {s.gone_since_fill}"
                )
            if s.stock < 0:
                problems.append(f"{code}: negative stock")
        return problems

    # --- the reducer ---------------------------------------------------------------

    def apply(self, event: i.VendInput) -> Result:
        handler = getattr(self, f"_on_{event.type}")
        out: Result = handler(event)
        self._refresh_acceptance(out)
        return out

    def _zero(self) -> Money:
        return Money(0, self.currency)

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _show(self, message: str) -> o.Show:
        return o.Show(message, self.available())

    # configuration and service ----------------------------------------------------

    def _on_journal_started(self, e: i.JournalStarted) -> Result:
        if self.next_id != 1:
            return [Rejected("ids are already in use; a journal starts only once")]
        self.next_id = e.id_base
        return []

    def _on_planogram_loaded(self, e: i.PlanogramLoaded) -> Result:
        if self.busy or self.credit or self.escrow or self.card:
            return [Rejected("planogram changes wait until no customer is being served")]
        if self.basket is not None and self.basket.active:
            return [Rejected("planogram changes wait until the basket is settled")]
        self.basket = None  # a basket being built refers to the old planogram
        self.currency = e.currency
        kept = {}
        for sel in e.selections:
            old = self.selections.get(sel.code)
            if old is None:
                kept[sel.code] = SelectionState(sel)
            else:
                old.selection = sel
                kept[sel.code] = old
        for code, gone in self.selections.items():
            if code not in kept and gone.stock:
                gone.counters.removed += gone.stock
        self.selections = kept
        if not self.credit:
            self.credit = self._zero()
        return []

    def _selection(self, code: str) -> SelectionState | None:
        return self.selections.get(code)

    def _on_price_changed(self, e: i.PriceChanged) -> Result:
        s = self._selection(e.code)
        if s is None:
            return [Rejected(f"no selection {e.code}")]
        if e.price.currency != self.currency or e.price.minor <= 0:
            return [Rejected(f"invalid price {e.price}")]
        s.selection = s.selection.model_copy(update={"price": e.price})
        return []

    def _on_service_state_changed(self, e: i.ServiceStateChanged) -> Result:
        s = self._selection(e.code)
        if s is None:
            return [Rejected(f"no selection {e.code}")]
        s.in_service, s.reason = e.in_service, ("" if e.in_service else e.reason)
        return []

    def _on_stock_filled(self, e: i.StockFilled) -> Result:
        s = self._selection(e.code)
        if s is None:
            return [Rejected(f"no selection {e.code}")]
        if e.count > s.selection.capacity:
            return [Rejected(f"{e.code} holds at most {s.selection.capacity}")]
        s.counters.filled += max(e.count - s.stock, 0)
        s.stock = s.last_fill = e.count
        s.gone_since_fill = 0
        if e.count and not s.in_service and s.reason in ("empty", "jam", "sold out"):
            s.in_service, s.reason = True, ""  # servicing the slot clears the fault
        return []

    def _on_stock_removed(self, e: i.StockRemoved) -> Result:
        s = self._selection(e.code)
        if s is None:
            return [Rejected(f"no selection {e.code}")]
        n = min(e.count, s.stock)
        s.stock -= n
        s.gone_since_fill += n
        s.counters.removed += n
        return []

    def _on_test_vend_requested(self, e: i.TestVendRequested) -> Result:
        s = self._selection(e.code)
        if s is None or self.busy or self.card or self.credit or self.escrow:
            return [Rejected("test vends need an idle machine and a known selection")]
        return self._start_vend(s, Method.TEST, None)

    def _on_tubes_filled(self, e: i.TubesFilled) -> Result:
        self.counters.manual_fill_value += e.value.minor
        return []

    def _on_tubes_emptied(self, e: i.TubesEmptied) -> Result:
        self.counters.manual_payout_value += e.value.minor
        return []

    def _on_tubes_read(self, e: i.TubesRead) -> Result:
        self.tubes = tuple(Tube(t, v, n) for t, v, n in e.tubes)
        return []

    def _on_acceptors_configured(self, e: i.AcceptorsConfigured) -> Result:
        self.coin_types, self.bill_types, self.card_readers = e.coins, e.bills, e.card_readers
        self.refund_readers, self.multivend_readers = e.refund_readers, e.multivend_readers
        return []

    # cash -------------------------------------------------------------------------

    def _on_coin_inserted(self, e: i.CoinInserted) -> Result:
        self.credit += e.value
        self.counters.cash_in += e.value.minor
        self.counters.coins_in += e.value.minor
        if e.to_tube:
            self.counters.coins_to_tubes += e.value.minor
        else:
            self.counters.coins_to_cash_box += e.value.minor
        if e.to_tube:
            self._tube_delta(e.coin_type, e.value, +1)
            if self.payout is not None:
                self.payout_tubes[e.coin_type] = self.payout_tubes.get(e.coin_type, 0) + 1
        return [self._show("Credit")]

    def _tube_delta(self, coin_type: int, value: Money, delta: int) -> None:
        tubes = list(self.tubes)
        for n, t in enumerate(tubes):
            if t.coin_type == coin_type:
                tubes[n] = Tube(t.coin_type, t.value, max(t.count + delta, 0))
                break
        else:
            if delta > 0:
                tubes.append(Tube(coin_type, value, delta))
        self.tubes = tuple(tubes)

    def _on_bill_escrowed(self, e: i.BillEscrowed) -> Result:
        if self.escrow is not None:
            return []  # the same escrow reported again
        if self.busy or self.card:
            return [o.ReturnBill(), self._show("Please wait")]
        self.escrow = (e.bill_type, e.value)
        cheapest = self._cheapest_price()
        if cheapest is None or self.available() < cheapest:
            # Not enough to buy anything yet: stack now so the customer can add more.
            return [o.StackBill(), self._show("Credit")]
        return [self._show("Choose a selection")]

    def _cheapest_price(self) -> Money | None:
        prices = [s.selection.price for s in self.selections.values() if self._sellable(s)]
        return min(prices) if prices else None

    @staticmethod
    def _sellable(s: SelectionState) -> bool:
        return s.in_service and s.stock > 0

    def _on_bill_stacked(self, e: i.BillStacked) -> Result:
        self.escrow = None
        self.credit += e.value
        self.counters.cash_in += e.value.minor
        self.counters.bills_in += e.value.minor
        basket = self._basket_bill_stacked()
        if basket is not None:
            return basket
        code, self.pending_code = self.pending_code, None
        if code is not None:
            return self._on_selection_pressed(i.SelectionPressed(code=code))
        return [self._show("Credit")]

    def _on_bill_returned(self, _e: i.BillReturned) -> Result:
        if self.escrow is None:
            return []
        self.escrow = None
        self.pending_code = None
        self._basket_bill_returned()
        return [self._show("Bill returned")]

    def _on_return_requested(self, e: i.ReturnRequested) -> Result:
        if self.vend is not None or self.payout is not None:
            return [self._show("Please wait")]
        out: Result = []
        self.pending_code = None  # the choice waiting for the bill is given up with it
        if self.escrow is not None:
            out.append(o.ReturnBill())
        b = self.basket
        if b is not None and b.phase is Phase.PAYING and b.method is Method.CASH:
            # Its bill goes back and its credit is refunded: nothing pays for it any more,
            # so a bill that stacks anyway (crossing RETURN) is credit, not a checkout.
            self._back_to_building(b)
        if self.card is not None:
            if self.card.requested and not self.card.cancelled:
                self.card.cancelled = True
                out.append(o.CancelCardVend(self.card.reader))
            out.append(o.EndCardSession(self.card.reader))
        if self.credit:
            out.extend(self._pay(self.credit, "refund"))
        if self.basket is not None and not self.basket.active:
            self.basket = None  # the customer walks away: the basket goes too
            out.append(self._show("Basket cleared"))
        if not out:
            return [Rejected(f"nothing to return ({e.reason})")]
        return out

    def _pay(self, amount: Money, reason: str) -> Result:
        if self.payout is not None:
            # One payout at a time: replacing the one in flight would lose its money.
            # The amount stays credit; RETURN pays it once the changer is free.
            return [self._show("Please wait")]
        payout = PayoutInFlight(self._new_id(), amount, reason)
        self.payout = payout
        self.payout_tubes = {t.coin_type: t.count for t in self.tubes}
        self.credit = self._zero()
        return [o.PayOut(payout.payout_id, amount, reason), self._show("Take your change")]

    def _on_payout_finished(self, e: i.PayoutFinished) -> Result:
        p = self.payout
        if p is None or p.payout_id != e.payout_id:
            return []  # reported twice
        paid = min(e.paid, p.amount) if e.paid.minor >= 0 else self._zero()
        if p.reason == "change":
            self.counters.change_paid += paid.minor
        else:
            self.counters.refunds_paid += paid.minor
        self.payout = None
        unpaid = p.amount - paid
        out: Result = []
        if unpaid and e.resume:
            self.credit += unpaid
            return self._pay(self.credit, p.reason)
        if unpaid:
            self.counters.ious += unpaid.minor
            out += [o.IouIssued(p.payout_id, unpaid), self._show(f"IOU {unpaid}: call operator")]
        return out

    # cashless ---------------------------------------------------------------------

    def _on_card_session_began(self, e: i.CardSessionBegan) -> Result:
        if self.card is not None:
            return []  # BEGIN SESSION repeated
        if self.credit or self.escrow or self.busy:
            return [o.EndCardSession(e.reader), self._show("Cash credit in use")]
        self.card = CardSession(e.reader, e.funds)
        return [self._show("Choose a selection")]

    def _on_card_vend_approved(self, e: i.CardVendApproved) -> Result:
        basket = self._basket_card_approved(e)
        if basket is not None:
            return basket
        if e.negative:
            return [o.FailCardVend(e.reader)]  # a credit nobody asked for: decline it
        card = self.card
        if card is None or card.reader != e.reader or card.requested is None:
            if self.vend is not None and self.vend.reader == e.reader:
                return []  # VEND APPROVED repeated while we dispense
            return [o.FailCardVend(e.reader)]  # approval we did not ask for: undo it
        if card.cancelled:
            card.requested = None
            return [o.FailCardVend(e.reader), o.EndCardSession(e.reader)]
        s = self.selections[card.requested]
        card.requested = None
        price = e.amount if e.amount is not None else s.selection.price
        return self._start_vend(s, Method.CASHLESS, e.reader, price)

    def _on_card_vend_denied(self, e: i.CardVendDenied) -> Result:
        if self.card is None or self.card.reader != e.reader:
            return []
        basket = self._basket_card_denied(e.reader)
        if basket is not None:
            return basket
        self.card.requested = None
        self.card.cancelled = False
        return [self._show("Card declined")]

    def _on_card_session_ended(self, e: i.CardSessionEnded) -> Result:
        if self.card is None or self.card.reader != e.reader:
            return []
        self.card = None
        return [*self._basket_card_ended(e.reader), self._show("Thank you")]

    # selection and dispensing -----------------------------------------------------

    def _on_selection_pressed(self, e: i.SelectionPressed) -> Result:
        s = self._selection(e.code)
        if s is None:
            return [self._show(f"No selection {e.code}")]
        if self.busy or self.pending_code:
            return [self._show("Please wait")]
        if self.basket is not None and (self.basket.lines or self.basket.active):
            return [self._show("Basket open: check out or clear it")]
        if not s.in_service:
            return [self._show(f"{e.code} unavailable")]
        if s.stock <= 0:
            return [self._show(f"{e.code} sold out")]
        price = s.selection.price
        if self.card is not None:
            if self.card.requested:
                return [self._show("Please wait")]
            if self.card.funds is not None and self.card.funds < price:
                return [self._show(f"Insufficient funds for {price}")]
            self.card.requested = e.code
            return [o.RequestCardVend(self.card.reader, price, s.selection.item_number)]
        available = self.available()
        if available < price:
            if not available:
                return [self._show(f"Price {price}")]
            return [self._show(f"Insert {price - available} more")]
        if not self.can_pay(available - price):
            return [self._show("Cannot make change: use exact amount")]
        if self.escrow is not None:
            self.pending_code = e.code
            return [o.StackBill()]
        return self._start_vend(s, Method.CASH, None)

    def _start_vend(
        self,
        s: SelectionState,
        method: Method,
        reader: int | None,
        price: Money | None = None,
        basket: int | None = None,
    ) -> Result:
        sel = s.selection
        vend = VendInFlight(self._new_id(), sel.code, price or sel.price, method, reader, basket)
        self.vend = vend
        return [o.Dispense(vend.vend_id, vend.code, sel.motor, sel.unit), self._show("Vending")]

    def _on_dispense_finished(self, e: i.DispenseFinished) -> Result:
        v = self.vend
        if v is None or v.vend_id != e.vend_id:
            return []  # a result we already have
        self.vend = None
        s = self.selections.get(v.code)
        out: Result = []
        if e.delivered and s is not None:
            s.stock -= 1
            s.gone_since_fill += 1
        if v.basket is not None:
            out += self._basket_item_finished(v, s, e)
        elif e.delivered and s is not None:
            out += self._delivered(v, s)
        else:
            out += self._not_delivered(v, e)
        if s is not None and e.slot_out_of_service:
            s.in_service, s.reason = False, e.outcome
            out.append(o.SelectionOutOfService(v.code, e.outcome))
        if v.basket is not None:
            out += self._basket_next()
        return out

    def _delivered(self, v: VendInFlight, s: SelectionState) -> Result:
        c, sc = self.counters, s.counters
        if v.method is Method.TEST:
            c.test_vends += 1
            sc.test_vends += 1
            return [self._show("Test vend done")]
        sc.vends += 1
        sc.sales_value += v.price.minor
        item = s.selection.item_number
        if v.method is Method.CASHLESS:
            assert v.reader is not None
            if self.card is not None and self.card.reader == v.reader:
                c.cashless_sales_value += v.price.minor
                c.cashless_sales_count += 1
                sale = o.Sale(v.vend_id, v.code, s.selection.product, v.price, v.method, v.reader)
                return [o.ConfirmCardVend(v.reader, item), o.EndCardSession(v.reader), sale]
            # The reader reset or vanished mid-vend: the product is out but nobody charged.
            c.cashless_unsettled_value += v.price.minor
            return [
                o.Sale(
                    v.vend_id,
                    v.code,
                    s.selection.product,
                    v.price,
                    v.method,
                    v.reader,
                    settled=False,
                )
            ]
        self.credit -= v.price
        c.cash_sales_value += v.price.minor
        c.cash_sales_count += 1
        out: Result = [o.Sale(v.vend_id, v.code, s.selection.product, v.price, v.method)]
        out += [o.ReportCashSale(r, v.price, item) for r in self.card_readers]
        if self.credit:
            out += self._pay(self.credit, "change")
        else:
            out.append(self._show("Thank you"))
        return out

    def _not_delivered(self, v: VendInFlight, e: i.DispenseFinished) -> Result:
        self.counters.failed_vends += 1
        if v.code in self.selections:
            self.selections[v.code].counters.failures += 1
        out: Result = [o.VendFailed(v.vend_id, v.code, e.outcome, v.method)]
        if v.method is Method.CASHLESS and v.reader is not None:
            if self.card is not None and self.card.reader == v.reader:
                out += [o.FailCardVend(v.reader), o.EndCardSession(v.reader)]
            out.append(self._show("Not delivered: card refunded"))
        elif v.method is Method.CASH:
            out.append(self._show("Not delivered: choose another or press return"))
        return out

    # acceptance ---------------------------------------------------------------------

    def _refresh_acceptance(self, out: Result) -> None:
        prices = [s.selection.price for s in self.selections.values() if self._sellable(s)]
        wanted = decide_acceptance(
            tubes=self.tubes,
            coins=self.coin_types,
            bills=self.bill_types,
            prices=prices,
            credit=self.available(),
            vending=self.busy or self.pending_code is not None,
            card_session=self.card is not None,
            escrow_held=self.escrow is not None,
            card_readers=bool(self.card_readers),
        )
        if wanted != self.acceptance:
            self.acceptance = wanted
            out.append(wanted)


def replay(inputs: Iterable[i.VendInput], currency: str = "VND") -> VendSession:
    """Rebuild a session from journaled inputs (the outputs were acted on already)."""
    session = VendSession(currency)
    for event in inputs:
        session.apply(event)
    return session
