"""What the fleet hears about: telemetry bodies for each thing the vend session did.

This is the pure half of the outbox: no I/O, no clock. :class:`OutboxMapper` compares
the session just before an input with the session after it (plus the facts the input
produced) and returns the bodies to queue in the same journal transaction:

* a delivered vend -> ``sale`` (cash tender or cashless reader), a stock change;
* a cashless vend not delivered -> ``refund`` (cashless_failed_vend);
* a basket settled -> one ``sale`` whose ``lines`` are the delivered items (one
  e-receipt lists them all), ``refund`` cashless_failed_vend for card money given back
  for undelivered items (``iou`` if the reader refused it); a stock change per item;
* a payout -> ``cash`` change_payout or ``refund`` cash_refund, a short payout -> ``refund`` iou;
* tubes filled / emptied by hand -> ``cash`` tube_fill / tube_payout;
* any change to a selection's stock, price or service state -> ``stock`` change;
  a planogram -> ``stock`` snapshot;
* a selection going out of / back into service -> ``alarm`` raised / cleared
  (jam, empty, dispenser fault, or other with the reason);
* devices faulting, going offline and coming back -> reader/validator/changer alarms;
* service visits: ``service`` when the door opens and when it closes, with the actions
  done in between.

The mapper keeps two bits of memory the session does not: the coins and bills the
current customer inserted (for the sale's tender; rebuilt at boot by :meth:`track`) and
the open service visit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from controller.journal import OutboxMessage
from protocols.mdb.events import DeviceFault, DeviceOffline, DeviceOnline, MdbEvent
from protocols.telemetry import (
    AlarmBody,
    AlarmCode,
    AlarmState,
    BillCount,
    Body,
    CashBody,
    CashBoxCount,
    CashKind,
    CashTender,
    CoinCount,
    PaymentMethod,
    RefundBody,
    RefundKind,
    SaleBody,
    SaleLine,
    SelectionStock,
    ServiceAction,
    ServiceActionEntry,
    ServiceVisitBody,
    Severity,
    StockBody,
    StockKind,
    TubeCount,
    kind_of,
)
from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.model import Method
from protocols.vend.session import PayoutInFlight, Result, SelectionState, VendInFlight, VendSession

# MDB cashless addresses -> the reader number the contract uses.
READER_NUMBERS = {0x10: 1, 0x60: 2}
_SELECTION_ALARMS = {"jam": AlarmCode.JAM, "empty": AlarmCode.EMPTY, "sold out": AlarmCode.EMPTY}
# Board outcomes that take a slot out of service without being a jam or an empty spiral.
_DISPENSER_OUTCOMES = frozenset(
    {"not_dropped", "motor_not_home", "over_current", "invalid_slot", "board_timeout", "unknown"}
)
_DEVICE_ALARMS = (
    ("changer", AlarmCode.CHANGER_FAULT),
    ("bill", AlarmCode.VALIDATOR_FAULT),
    ("cashless", AlarmCode.READER_FAULT),
)


@dataclass(frozen=True, slots=True)
class SelectionView:
    """What telemetry reports of one selection, comparable before and after an input."""

    product: str
    price: int
    stock: int
    capacity: int
    par: int
    in_service: bool
    reason: str

    @classmethod
    def of(cls, s: SelectionState) -> SelectionView:
        sel = s.selection
        return cls(
            sel.product, sel.price.minor, s.stock, sel.capacity, sel.par, s.in_service, s.reason
        )


@dataclass(frozen=True, slots=True)
class Before:
    """The parts of the session an input may consume: taken just before it applies."""

    vend: VendInFlight | None
    payout: PayoutInFlight | None
    selections: dict[str, SelectionView]

    @classmethod
    def of(cls, session: VendSession) -> Before:
        views = {code: SelectionView.of(s) for code, s in session.selections.items()}
        return cls(session.vend, session.payout, views)


@dataclass(slots=True)
class _Visit:
    opened_at: datetime
    actions: list[ServiceActionEntry]


class OutboxMapper:
    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.coins: Counter[tuple[int, bool]] = Counter()  # (value, to_tube) -> count
        self.bills: Counter[int] = Counter()
        self.visit: _Visit | None = None
        self.device_alarms: dict[str, set[str]] = {}  # device -> fault codes raised
        # Stock rows kept outside the vend session (a smart cabinet's shelves): a snapshot
        # replaces the fleet's whole list, so it must carry them too.
        self.extra_stock: Callable[[], list[SelectionStock]] | None = None

    # --- vend inputs ------------------------------------------------------------------

    def track(self, event: i.VendInput, session: VendSession) -> None:
        """Follow a replayed input (at boot) so the current customer's tender is known."""
        self._tender(event, session)

    def bodies(
        self, event: i.VendInput, outputs: Result, session: VendSession, before: Before
    ) -> list[Body]:
        """The telemetry for one journaled input, in the order the fleet should see it."""
        self.currency = session.currency
        out: list[Body] = []
        if isinstance(event, i.CoinInserted | i.BillStacked):
            self._tender(event, session)  # reported with the sale, not on its own
        if isinstance(event, i.DispenseFinished):
            out += self._vend_result(event, outputs, before)
        out += self._basket_results(outputs)
        if isinstance(event, i.PayoutFinished):
            out += self._payout_result(event, outputs, before)
        if isinstance(event, i.TubesFilled | i.TubesEmptied):
            out.append(self._tubes_moved(event, session))
        if isinstance(event, i.PlanogramLoaded):
            out.append(self.snapshot(session))
        else:
            out += self._selection_changes(session, before)
        self._record_action(event, before, session)
        if not session.credit and session.escrow is None and session.vend is None:
            self.coins.clear()
            self.bills.clear()
        return out

    def _tender(self, event: i.VendInput, session: VendSession) -> None:
        if isinstance(event, i.CoinInserted):
            self.coins[(event.value.minor, event.to_tube)] += 1
        elif isinstance(event, i.BillStacked):
            self.bills[event.value.minor] += 1
        elif not session.credit and session.escrow is None and session.vend is None:
            self.coins.clear()
            self.bills.clear()

    def _vend_result(
        self, event: i.DispenseFinished, outputs: Result, before: Before
    ) -> list[Body]:
        vend = before.vend
        if vend is None or vend.vend_id != event.vend_id:
            return []  # a verdict the session already had
        if vend.basket is not None:
            return []  # a basket reports once, when it settles (_basket_results)
        out: list[Body] = []
        for fact in outputs:
            if isinstance(fact, o.Sale):
                out.append(self._sale(fact))
            elif isinstance(fact, o.VendFailed) and any(
                isinstance(x, o.FailCardVend) for x in outputs
            ):
                out.append(
                    RefundBody(
                        kind=RefundKind.CASHLESS_FAILED_VEND,
                        amount=vend.price.minor,
                        currency=vend.price.currency,
                        vend_id=vend.vend_id,
                        reason=f"not delivered: {fact.outcome}",
                    )
                )
        if vend.method is Method.TEST and event.delivered:
            product = before.selections[vend.code].product if vend.code in before.selections else ""
            out.append(
                SaleBody(
                    vend_id=vend.vend_id,
                    selection=vend.code,
                    product=product,
                    price=0,
                    currency=vend.price.currency,
                    method=PaymentMethod.TEST,
                )
            )
        return out

    def _sale(self, sale: o.Sale) -> SaleBody:
        cash = None
        if sale.method is Method.CASH:
            cash = CashTender(
                coins=[
                    CoinCount(value=v, count=n, to_tube=tube)
                    for (v, tube), n in sorted(self.coins.items())
                ],
                bills=[BillCount(value=v, count=n) for v, n in sorted(self.bills.items())],
            )
        return SaleBody(
            vend_id=sale.vend_id,
            selection=sale.code,
            product=sale.product,
            price=sale.price.minor,
            currency=sale.price.currency,
            method=PaymentMethod(sale.method.value),
            reader=READER_NUMBERS.get(sale.reader) if sale.reader is not None else None,
            settled=sale.settled,
            cash=cash,
        )

    def _basket_results(self, outputs: Result) -> list[Body]:
        out: list[Body] = []
        for fact in outputs:
            if isinstance(fact, o.BasketSold):
                out.append(self._basket_sale(fact))
            elif isinstance(fact, o.BasketRefunded):
                out.append(
                    RefundBody(
                        kind=RefundKind.IOU if fact.owed else RefundKind.CASHLESS_FAILED_VEND,
                        amount=fact.amount.minor,
                        currency=fact.amount.currency,
                        vend_id=fact.basket_id,
                        reason=f"basket: {fact.reason}",
                    )
                )
        return out

    def _basket_sale(self, sold: o.BasketSold) -> SaleBody:
        first = sold.lines[0]
        count = sum(line.quantity for line in sold.lines)
        single = len(sold.lines) == 1 and count == 1
        body = self._sale(
            o.Sale(
                sold.basket_id,
                first.code,
                first.product if single else f"{count} items",
                sold.total,
                sold.method,
                sold.reader,
                sold.settled,
            )
        )
        lines = [
            SaleLine(
                selection=line.code,
                product=line.product,
                quantity=line.quantity,
                unit_price=line.unit_price.minor,
            )
            for line in sold.lines
        ]
        return body.model_copy(update={"lines": lines})

    def _payout_result(
        self, event: i.PayoutFinished, outputs: Result, before: Before
    ) -> list[Body]:
        payout = before.payout
        if payout is None or payout.payout_id != event.payout_id:
            return []
        paid = min(max(event.paid.minor, 0), payout.amount.minor)
        out: list[Body] = []
        if paid and payout.reason == "change":
            out.append(
                CashBody(
                    kind=CashKind.CHANGE_PAYOUT,
                    amount=paid,
                    currency=payout.amount.currency,
                    detail=f"payout {payout.payout_id}",
                )
            )
        elif paid:
            out.append(
                RefundBody(
                    kind=RefundKind.CASH_REFUND,
                    amount=paid,
                    currency=payout.amount.currency,
                    payout_id=payout.payout_id,
                    reason=payout.reason,
                )
            )
        out += [
            RefundBody(
                kind=RefundKind.IOU,
                amount=fact.amount.minor,
                currency=fact.amount.currency,
                payout_id=fact.payout_id,
                reason=f"changer paid {paid} of {payout.amount.minor} ({payout.reason})",
            )
            for fact in outputs
            if isinstance(fact, o.IouIssued)
        ]
        return out

    def _tubes_moved(self, event: i.TubesFilled | i.TubesEmptied, session: VendSession) -> CashBody:
        kind = CashKind.TUBE_FILL if isinstance(event, i.TubesFilled) else CashKind.TUBE_PAYOUT
        return CashBody(
            kind=kind,
            amount=event.value.minor,
            currency=event.value.currency,
            tubes=self._tubes(session),
        )

    @staticmethod
    def _tubes(session: VendSession) -> list[TubeCount]:
        return [
            TubeCount(coin_type=t.coin_type, value=t.value.minor, count=t.count)
            for t in session.tubes
        ]

    # --- stock and selection alarms -----------------------------------------------------

    def snapshot(self, session: VendSession) -> StockBody:
        rows = [_row(code, SelectionView.of(s)) for code, s in session.selections.items()]
        if self.extra_stock is not None:
            rows += self.extra_stock()
        return StockBody(kind=StockKind.SNAPSHOT, currency=session.currency, selections=rows)

    def _selection_changes(self, session: VendSession, before: Before) -> list[Body]:
        rows: list[SelectionStock] = []
        alarms: list[Body] = []
        for code, state in session.selections.items():
            old = before.selections.get(code)
            new = SelectionView.of(state)
            if old is None or old == new:
                continue
            rows.append(_row(code, new, delta=new.stock - old.stock))
            if old.in_service != new.in_service:
                alarms.append(_selection_alarm(code, old, new))
        if not rows:
            return []
        return [
            StockBody(kind=StockKind.CHANGE, currency=session.currency, selections=rows),
            *alarms,
        ]

    # --- service visits -----------------------------------------------------------------

    def visit_opened(self, at: datetime) -> ServiceVisitBody:
        self.visit = _Visit(at, [])
        return ServiceVisitBody(opened_at=at, currency=self.currency)

    def visit_closed(self, at: datetime) -> ServiceVisitBody | None:
        visit, self.visit = self.visit, None
        if visit is None:
            return None
        return ServiceVisitBody(
            opened_at=visit.opened_at, closed_at=at, currency=self.currency, actions=visit.actions
        )

    def _record_action(self, event: i.VendInput, before: Before, session: VendSession) -> None:
        if self.visit is None:
            return
        entry: ServiceActionEntry | None = None
        match event:
            case i.StockFilled(code=code) if (
                code in session.selections and code in before.selections
            ):
                delta = session.selections[code].stock - before.selections[code].stock
                entry = ServiceActionEntry(action=ServiceAction.FILL, selection=code, count=delta)
            case i.StockRemoved(code=code) if (
                code in before.selections and code in session.selections
            ):
                gone = before.selections[code].stock - session.selections[code].stock
                entry = ServiceActionEntry(action=ServiceAction.REMOVE, selection=code, count=gone)
            case i.TestVendRequested(code=code) if session.vend is not None:
                entry = ServiceActionEntry(action=ServiceAction.TEST_VEND, selection=code, count=1)
            case i.TubesFilled(value=value):
                entry = ServiceActionEntry(action=ServiceAction.TUBE_FILL, amount=value.minor)
            case i.TubesEmptied(value=value):
                entry = ServiceActionEntry(action=ServiceAction.TUBE_PAYOUT, amount=value.minor)
            case i.PriceChanged(code=code, price=price) if code in session.selections:
                entry = ServiceActionEntry(
                    action=ServiceAction.PRICE_CHANGE, selection=code, amount=price.minor
                )
        if entry is not None:
            self.visit.actions.append(entry)

    def cash_collected(self, coins_value: int, bills_value: int) -> CashBody:
        """The cash box emptied: what the machine believes was in it since the last time."""
        if self.visit is not None:
            self.visit.actions.append(
                ServiceActionEntry(action=ServiceAction.COLLECT, amount=coins_value + bills_value)
            )
        return CashBody(
            kind=CashKind.COLLECTION,
            amount=coins_value + bills_value,
            currency=self.currency,
            cash_box=CashBoxCount(coins_value=coins_value, bills_value=bills_value),
        )

    # --- devices and the outbox itself ----------------------------------------------------

    def device_event(self, event: MdbEvent) -> list[AlarmBody]:
        """Faults and outages of the peripherals as alarms; back online clears them."""
        match event:
            case DeviceFault(device=device, code=code, detail=detail):
                return self._device_raised(device, code, detail)
            case DeviceOffline(device=device, reason=reason):
                return self._device_raised(device, "offline", reason)
            case DeviceOnline(device=device):
                raised = self.device_alarms.pop(device, set())
                return [
                    AlarmBody(
                        code=_device_code(device),
                        state=AlarmState.CLEARED,
                        severity=Severity.INFO,
                        device=device,
                        detail=f"{what}: device online",
                    )
                    for what in sorted(raised)
                ]
        return []

    def _device_raised(self, device: str, what: str, detail: str) -> list[AlarmBody]:
        raised = self.device_alarms.setdefault(device, set())
        if what in raised:
            return []  # the same fault reported on every poll
        raised.add(what)
        return [
            AlarmBody(
                code=_device_code(device),
                state=AlarmState.RAISED,
                severity=Severity.CRITICAL,
                device=device,
                detail=f"{what}: {detail}",
            )
        ]


def message_for(body: Body) -> OutboxMessage:
    """A body as an outbox row: its kind and its JSON (the envelope is added at publish)."""
    return OutboxMessage(kind_of(body).value, body.model_dump_json())


def backlog_alarm(raised: bool, backlog: int, threshold: int) -> AlarmBody:
    return AlarmBody(
        code=AlarmCode.OUTBOX_BACKLOG,
        state=AlarmState.RAISED if raised else AlarmState.CLEARED,
        severity=Severity.WARNING if raised else Severity.INFO,
        detail=f"{backlog} messages unsent (alarm above {threshold})",
    )


def _row(code: str, view: SelectionView, delta: int | None = None) -> SelectionStock:
    return SelectionStock(
        code=code,
        product=view.product,
        count=max(view.stock, 0),
        capacity=view.capacity,
        par=view.par,
        price=view.price,
        in_service=view.in_service,
        reason=view.reason or None,
        delta=delta,
    )


def _selection_code(reason: str) -> AlarmCode:
    if reason in _SELECTION_ALARMS:
        return _SELECTION_ALARMS[reason]
    if reason in _DISPENSER_OUTCOMES:
        return AlarmCode.DISPENSER_FAULT
    return AlarmCode.OTHER


def _selection_alarm(code: str, old: SelectionView, new: SelectionView) -> AlarmBody:
    if not new.in_service:
        return AlarmBody(
            code=_selection_code(new.reason),
            state=AlarmState.RAISED,
            severity=Severity.WARNING,
            selection=code,
            detail=f"out of service: {new.reason}" if new.reason else "out of service",
        )
    return AlarmBody(
        code=_selection_code(old.reason),
        state=AlarmState.CLEARED,
        severity=Severity.INFO,
        selection=code,
        detail="back in service",
    )


def _device_code(device: str) -> AlarmCode:
    for prefix, code in _DEVICE_ALARMS:
        if device.startswith(prefix):
            return code
    return AlarmCode.OTHER
