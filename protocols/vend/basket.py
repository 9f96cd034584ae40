"""Baskets (automated stores): several items, one payment, dispensed one by one.

A basket moves through explicit phases::

    building -> paying -> dispensing item 1 .. n -> settling -> done

* **building**: the customer adds and removes items; nothing is reserved or paid.
* **paying**: checkout asked for the total once -- a VEND REQUEST for the total on the
  card, or, with cash, an escrowed bill being stacked. Cash that already covers the
  total skips this phase.
* **dispensing**: one item at a time, each with its own vend id (write-ahead like a
  single vend). An item whose selection went out of service meanwhile (a jam on the
  same spiral) is skipped, never dispensed into a known fault.
* **settling**: the customer pays exactly the delivered value. Cash: each delivered
  item is taken from the credit as it drops, the rest is paid out (change, or an IOU
  for what the changer cannot pay). Card, some items failed: with MDB Level-3
  negative vend the reader is told VEND SUCCESS for the approved total and then
  credits the undelivered value back (NEGATIVE VEND REQUEST); a multivend reader
  instead gets VEND FAILURE (everything refunded) and one new charge for the
  delivered value; a reader with neither is told VEND FAILURE and the delivered
  items are recorded as unsettled -- a free product is a smaller wrong than a
  charge for nothing. (MDB's VEND SUCCESS carries an item number, not an amount, so
  an approval cannot simply be lowered.)
* **done**: the basket is kept as ``last_basket`` so the panel can show what failed.

The flow is a mixin of :class:`protocols.vend.session.VendSession`: the same journaled
inputs, the same counters, the same invariants.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protocols.money import Money
from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.model import Counters, Method
from protocols.vend.state import (
    CardSession,
    PayoutInFlight,
    Rejected,
    Result,
    SelectionState,
    VendInFlight,
)

MAX_ITEMS = 20  # units per basket: what one customer can carry away from a cabinet
UNKNOWN_ITEM = 0xFFFF  # MDB item number "unknown": a basket of several products
BASKET_REQUEST = "\x00basket"  # CardSession.requested while the basket total awaits approval


class Phase(enum.StrEnum):
    BUILDING = "building"
    PAYING = "paying"
    DISPENSING = "dispensing"
    SETTLING = "settling"
    DONE = "done"


class ItemStatus(enum.StrEnum):
    PENDING = "pending"
    DISPENSING = "dispensing"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"  # never dispensed: slot out of service, or the basket was stopped


@dataclass(slots=True)
class BasketItem:
    code: str
    product: str
    price: Money
    item_number: int
    vend_id: int | None = None
    status: ItemStatus = ItemStatus.PENDING
    outcome: str = ""


@dataclass(slots=True)
class Basket:
    lines: dict[str, int] = field(default_factory=dict)  # code -> quantity (building)
    phase: Phase = Phase.BUILDING
    basket_id: int | None = None
    method: Method | None = None
    reader: int | None = None
    charged: Money | None = None  # cashless: the amount the reader approved
    items: list[BasketItem] = field(default_factory=list)
    stop_reason: str = ""  # set: no further item starts
    settle: str = ""  # "refund" or "recharge": the reader's answer we wait for
    result: str = ""

    @property
    def active(self) -> bool:
        """Money is committed: the basket can no longer be edited or dropped."""
        return self.phase in (Phase.PAYING, Phase.DISPENSING, Phase.SETTLING)

    def count(self) -> int:
        return sum(self.lines.values())

    def value(self, *statuses: ItemStatus) -> int:
        return sum(it.price.minor for it in self.items if it.status in statuses)

    def undelivered(self) -> int:
        return self.value(ItemStatus.FAILED, ItemStatus.SKIPPED, ItemStatus.PENDING)

    def item_number(self) -> int:
        numbers = {it.item_number for it in self.items}
        return numbers.pop() if len(numbers) == 1 else UNKNOWN_ITEM

    def sold_lines(self) -> tuple[o.SoldLine, ...]:
        lines: dict[tuple[str, int], o.SoldLine] = {}
        for it in self.items:
            if it.status is not ItemStatus.DELIVERED:
                continue
            key = (it.code, it.price.minor)
            old = lines.get(key)
            qty = 1 if old is None else old.quantity + 1
            lines[key] = o.SoldLine(it.code, it.product, qty, it.price)
        return tuple(lines.values())

    def view(self) -> dict[str, Any]:
        """What the panel shows: the lines while building, every item's outcome after."""
        return {
            "basket_id": self.basket_id,
            "phase": self.phase.value,
            "method": self.method.value if self.method else None,
            "lines": [{"code": c, "quantity": q} for c, q in self.lines.items()],
            "items": [
                {
                    "code": it.code,
                    "product": it.product,
                    "price": it.price.minor,
                    "vend_id": it.vend_id,
                    "status": it.status.value,
                    "outcome": it.outcome,
                }
                for it in self.items
            ],
            "delivered_value": self.value(ItemStatus.DELIVERED),
            "result": self.result,
        }


class BasketFlow:
    """The basket half of the vend session (a mixin; the session supplies the state)."""

    if TYPE_CHECKING:
        currency: str
        selections: dict[str, SelectionState]
        credit: Money
        escrow: tuple[int, Money] | None
        pending_code: str | None
        card: CardSession | None
        vend: VendInFlight | None
        payout: PayoutInFlight | None
        counters: Counters
        card_readers: tuple[int, ...]
        refund_readers: tuple[int, ...]
        multivend_readers: tuple[int, ...]
        _zero: Callable[[], Money]
        _new_id: Callable[[], int]
        _show: Callable[[str], o.Show]
        _pay: Callable[[Money, str], Result]
        available: Callable[[], Money]
        can_pay: Callable[[Money], bool]
        _start_vend: Callable[..., Result]

        basket: Basket | None
        last_basket: Basket | None

    # --- building -------------------------------------------------------------------

    def _building(self) -> Basket | Rejected:
        b = self.basket
        if b is not None and b.active:
            return Rejected("the basket is being paid or dispensed")
        if self.vend is not None or self.payout is not None or self.pending_code:
            return Rejected("please wait: a vend or payout is running")
        if b is None:
            b = self.basket = Basket()
        return b

    def _basket_shown(self, b: Basket) -> o.Show:
        total = self._zero()
        for code, qty in b.lines.items():
            total += self.selections[code].selection.price * qty
        return self._show(f"Basket: {b.count()} items, {total}")

    def _on_basket_item_added(self, e: i.BasketItemAdded) -> Result:
        b = self._building()
        if isinstance(b, Rejected):
            return [b]
        s = self.selections.get(e.code)
        if s is None:
            return [Rejected(f"no selection {e.code}")]
        if not s.in_service:
            return [Rejected(f"{e.code} unavailable")]
        wanted = b.lines.get(e.code, 0) + e.quantity
        if wanted > s.stock:
            return [Rejected(f"only {s.stock} of {e.code} in stock")]
        if b.count() + e.quantity > MAX_ITEMS:
            return [Rejected(f"a basket holds at most {MAX_ITEMS} items")]
        b.lines[e.code] = wanted
        return [self._basket_shown(b)]

    def _on_basket_item_removed(self, e: i.BasketItemRemoved) -> Result:
        b = self._building()
        if isinstance(b, Rejected):
            return [b]
        if e.code not in b.lines:
            return [Rejected(f"{e.code} is not in the basket")]
        left = 0 if e.quantity is None else max(b.lines[e.code] - e.quantity, 0)
        if left:
            b.lines[e.code] = left
        else:
            del b.lines[e.code]
        return [self._basket_shown(b)]

    def _on_basket_cleared(self, _e: i.BasketCleared) -> Result:
        b = self._building()
        if isinstance(b, Rejected):
            return [b]
        self.basket = None
        return [self._show("Basket cleared")]

    # --- checkout ---------------------------------------------------------------------

    def _on_checkout_requested(self, _e: i.CheckoutRequested) -> Result:
        b = self._building()
        if isinstance(b, Rejected):
            return [b]
        if not b.lines:
            return [Rejected("the basket is empty")]
        items: list[BasketItem] = []
        for code, qty in b.lines.items():
            s = self.selections.get(code)
            if s is None or not s.in_service or s.stock < qty:
                return [Rejected(f"{code} is no longer available in that quantity")]
            sel = s.selection
            items += [BasketItem(code, sel.product, sel.price, sel.item_number) for _ in range(qty)]
        total = Money(sum(it.price.minor for it in items), self.currency)
        card = self.card
        if card is not None:
            if card.requested:
                return [Rejected("please wait: the reader is busy")]
            if card.funds is not None and card.funds < total:
                return [Rejected(f"insufficient funds for {total}")]
        else:
            available = self.available()
            if available < total:
                return [Rejected(f"insert {total - available} more (total {total})")]
            if not self.can_pay(available - total):
                return [Rejected("cannot make change: use exact amount")]
        b.items, b.basket_id = items, self._new_id()
        if card is not None:
            b.method, b.reader, b.phase = Method.CASHLESS, card.reader, Phase.PAYING
            card.requested = BASKET_REQUEST
            return [o.RequestCardVend(card.reader, total, b.item_number()), self._show("Paying")]
        b.method = Method.CASH
        if self.escrow is not None:
            b.phase = Phase.PAYING  # the bill is stacked first; BillStacked goes on
            return [o.StackBill(), self._show("Paying")]
        return self._dispense_next(b)

    def _basket_bill_stacked(self) -> Result | None:
        b = self.basket
        if b is None or b.phase is not Phase.PAYING or b.method is not Method.CASH:
            return None
        # Re-check what checkout checked: the stacked bill may not be the one in escrow.
        total = Money(b.value(ItemStatus.PENDING), self.currency)
        paid = self.payout is None and self.credit >= total
        if not paid or not self.can_pay(self.credit - total):
            self._back_to_building(b)
            return [self._show(f"Basket not paid: {self.credit} credit, total {total}")]
        return self._dispense_next(b)

    def _basket_bill_returned(self) -> None:
        b = self.basket
        if b is not None and b.phase is Phase.PAYING and b.method is Method.CASH:
            self._back_to_building(b)

    @staticmethod
    def _back_to_building(b: Basket) -> None:
        b.phase, b.items, b.basket_id, b.method, b.reader = Phase.BUILDING, [], None, None, None

    # --- the card's answers -------------------------------------------------------------

    def _basket_card(self, reader: int) -> Basket | None:
        b = self.basket
        if b is None or b.method is not Method.CASHLESS or b.reader != reader:
            return None
        return b if b.phase in (Phase.PAYING, Phase.SETTLING) else None

    def _basket_card_approved(self, e: i.CardVendApproved) -> Result | None:
        b = self._basket_card(e.reader)
        if b is None:
            return None
        card = self.card
        if b.phase is Phase.PAYING and not e.negative:
            assert card is not None
            card.requested = None
            if card.cancelled:  # the approval crossed our VEND CANCEL
                card.cancelled = False
                self._back_to_building(b)
                return [o.FailCardVend(e.reader), o.EndCardSession(e.reader)]
            total = Money(b.value(ItemStatus.PENDING), self.currency)
            b.charged = e.amount if e.amount is not None else total
            return self._dispense_next(b)
        if b.phase is Phase.SETTLING and e.negative == (b.settle == "refund"):
            if card is not None:
                card.requested = None
            return self._settled_by_reader(b, e.amount)
        return None

    def _basket_card_denied(self, reader: int) -> Result | None:
        b = self._basket_card(reader)
        if b is None:
            return None
        if self.card is not None:
            self.card.requested, self.card.cancelled = None, False
        if b.phase is Phase.PAYING:
            self._back_to_building(b)
            return [self._show("Card declined")]
        return [*self._reader_refused(b), o.EndCardSession(reader)]

    def _basket_card_ended(self, reader: int) -> Result:
        """The card session is over (ended, reader reset or lost): no more card talk."""
        b = self.basket
        if b is None or b.method is not Method.CASHLESS or b.reader != reader:
            return []
        if b.phase is Phase.PAYING:
            self._back_to_building(b)
            return []
        if b.phase is Phase.DISPENSING:
            b.stop_reason = b.stop_reason or "card session ended"
            return []
        if b.phase is Phase.SETTLING:
            return self._reader_refused(b)
        return []

    # --- dispensing ---------------------------------------------------------------------

    def _dispense_next(self, b: Basket) -> Result:
        b.phase = Phase.DISPENSING
        for it in b.items:
            if it.status is not ItemStatus.PENDING:
                continue
            s = self.selections.get(it.code)
            if b.stop_reason:
                it.status, it.outcome = ItemStatus.SKIPPED, b.stop_reason
            elif s is None or not s.in_service or s.stock <= 0:
                it.status = ItemStatus.SKIPPED
                it.outcome = "sold out" if s is not None and s.in_service else "unavailable"
                if s is not None and s.reason:
                    it.outcome = s.reason
            else:
                assert b.method is not None
                out = self._start_vend(s, b.method, b.reader, it.price, b.basket_id)
                assert self.vend is not None
                it.vend_id, it.status = self.vend.vend_id, ItemStatus.DISPENSING
                return out
        return self._settle(b)

    def _basket_item_finished(
        self, v: VendInFlight, s: SelectionState | None, e: i.DispenseFinished
    ) -> Result:
        b = self.basket
        assert b is not None
        it = next(x for x in b.items if x.vend_id == v.vend_id)
        out: Result = []
        if e.delivered and s is not None:
            it.status, it.outcome = ItemStatus.DELIVERED, e.outcome
            s.counters.vends += 1
            s.counters.sales_value += v.price.minor
            if v.method is Method.CASH:
                self.credit -= v.price
                self.counters.cash_sales_value += v.price.minor
                self.counters.cash_sales_count += 1
                out += [o.ReportCashSale(r, v.price, it.item_number) for r in self.card_readers]
        else:
            it.status, it.outcome = ItemStatus.FAILED, e.outcome
            self.counters.failed_vends += 1
            if s is not None:
                s.counters.failures += 1
            out.append(o.VendFailed(v.vend_id, v.code, e.outcome, v.method))
        return out

    def _basket_next(self) -> Result:
        b = self.basket
        assert b is not None
        return self._dispense_next(b)

    def _on_basket_interrupted(self, e: i.BasketInterrupted) -> Result:
        b = self.basket
        if b is None or b.phase is not Phase.DISPENSING:
            return [Rejected("no basket is being dispensed")]
        b.stop_reason = e.reason
        if self.vend is not None:
            return []  # the item in flight is resolved first; then the basket settles
        return self._dispense_next(b)

    # --- settling -----------------------------------------------------------------------

    def _settle(self, b: Basket) -> Result:
        b.phase = Phase.SETTLING
        if b.method is Method.CASH:
            return self._settle_cash(b)
        return self._settle_card(b)

    def _done(self, b: Basket, result: str) -> None:
        b.phase, b.result, b.settle = Phase.DONE, result, ""
        self.last_basket, self.basket = b, None

    def _summary(self, b: Basket) -> str:
        failed = [it.code for it in b.items if it.status is not ItemStatus.DELIVERED]
        if not failed:
            return "All items delivered"
        return "Not delivered: " + ", ".join(failed)

    def _sold(self, b: Basket, total: int, *, settled: bool = True) -> list[o.BasketSold]:
        lines = b.sold_lines()
        if not lines:
            return []
        assert b.basket_id is not None
        assert b.method is not None
        money = Money(total, self.currency)
        return [o.BasketSold(b.basket_id, lines, money, b.method, b.reader, settled)]

    def _settle_cash(self, b: Basket) -> Result:
        summary = self._summary(b)
        out: Result = [*self._sold(b, b.value(ItemStatus.DELIVERED))]
        if self.credit:
            reason = "refund" if b.undelivered() else "change"
            out += self._pay(self.credit, reason)
        out.append(self._show(summary))
        self._done(b, summary)
        return out

    def _settle_card(self, b: Basket) -> Result:
        r = b.reader
        assert r is not None
        charged = b.charged or self._zero()
        refund = min(b.undelivered(), charged.minor)
        net = charged.minor - refund
        card_here = self.card is not None and self.card.reader == r
        summary = self._summary(b)
        if not card_here:  # the reader reset or vanished: its approval is void
            self.counters.cashless_unsettled_value += net
            self._done(b, f"{summary}; card not charged")
            return [*self._sold(b, net, settled=False), self._show(summary)]
        if not refund:
            self._card_sale(b, net)
            self._done(b, summary)
            return [
                o.ConfirmCardVend(r, b.item_number()),
                o.EndCardSession(r),
                *self._sold(b, net),
                self._show(summary),
            ]
        if not net:
            self._done(b, f"{summary}; card refunded")
            return [
                o.FailCardVend(r),
                o.EndCardSession(r),
                self._refunded(b, refund, owed=False, reason="nothing delivered"),
                self._show(f"{summary}; card refunded"),
            ]
        assert self.card is not None
        money = Money(refund, self.currency)
        if r in self.refund_readers:
            b.settle = "refund"
            self.card.requested = BASKET_REQUEST
            return [
                o.ConfirmCardVend(r, b.item_number()),
                o.RequestCardRefund(r, money, b.item_number()),
                self._show(f"{summary}; refunding {money}"),
            ]
        if r in self.multivend_readers:
            b.settle = "recharge"
            self.card.requested = BASKET_REQUEST
            return [
                o.FailCardVend(r),
                o.RequestCardVend(r, Money(net, self.currency), b.item_number()),
                self._show(f"{summary}; charging {Money(net, self.currency)}"),
            ]
        # Neither: undo the charge; the delivered items go unpaid and are recorded so.
        self.counters.cashless_unsettled_value += net
        self._done(b, f"{summary}; card not charged")
        return [
            o.FailCardVend(r),
            o.EndCardSession(r),
            *self._sold(b, net, settled=False),
            self._refunded(b, refund, owed=False, reason="reader cannot refund part"),
            self._show(summary),
        ]

    def _card_sale(self, b: Basket, value: int) -> None:
        self.counters.cashless_sales_value += value
        self.counters.cashless_sales_count += sum(
            1 for it in b.items if it.status is ItemStatus.DELIVERED
        )

    def _refunded(self, b: Basket, amount: int, *, owed: bool, reason: str) -> o.BasketRefunded:
        assert b.basket_id is not None
        assert b.reader is not None
        return o.BasketRefunded(b.basket_id, Money(amount, self.currency), b.reader, owed, reason)

    def _settled_by_reader(self, b: Basket, amount: Money | None) -> Result:
        """The reader approved the refund (negative vend) or the new charge."""
        r = b.reader
        assert r is not None
        charged = b.charged or self._zero()
        refund = min(b.undelivered(), charged.minor)
        net = charged.minor - refund
        if b.settle == "recharge" and amount is not None:
            net = amount.minor  # the reader's word on what it charged
        self._card_sale(b, net)
        summary = self._summary(b)
        self._done(b, summary)
        return [
            o.ConfirmCardVend(r, b.item_number()),
            o.EndCardSession(r),
            *self._sold(b, net),
            self._refunded(b, refund, owed=False, reason="not delivered"),
            self._show(summary),
        ]

    def _reader_refused(self, b: Basket) -> Result:
        """The refund or new charge was denied, or the session ended first."""
        charged = b.charged or self._zero()
        refund = min(b.undelivered(), charged.minor)
        net = charged.minor - refund
        summary = self._summary(b)
        if b.settle == "refund":
            # VEND SUCCESS already took the whole total: the difference is owed.
            self._card_sale(b, net)
            self.counters.cashless_refunds_owed += refund
            self._done(b, f"{summary}; {refund} owed: call operator")
            return [
                *self._sold(b, net),
                self._refunded(b, refund, owed=True, reason="reader refused the refund"),
                self._show(f"{summary}; refund owed: call operator"),
            ]
        # "recharge": VEND FAILURE gave everything back; the delivered items go unpaid.
        self.counters.cashless_unsettled_value += net
        self._done(b, f"{summary}; card not charged")
        return [
            *self._sold(b, net, settled=False),
            self._refunded(b, refund, owed=False, reason="not delivered"),
            self._show(summary),
        ]
