"""controller.outbox: the telemetry bodies each vend input produces (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.outbox import Before, OutboxMapper
from protocols.mdb.events import DeviceFault, DeviceOffline, DeviceOnline
from protocols.money import Money
from protocols.telemetry import (
    AlarmBody,
    AlarmCode,
    AlarmState,
    CashBody,
    CashKind,
    PaymentMethod,
    RefundBody,
    RefundKind,
    SaleBody,
    ServiceAction,
    StockBody,
    StockKind,
    decode,
    encode,
    make_envelope,
    topic_for,
)
from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.model import Selection
from protocols.vend.session import VendSession

T0 = datetime(2025, 3, 14, 2, 30, tzinfo=UTC)


def vnd(n: int) -> Money:
    return Money(n, "VND")


SELECTIONS = (
    Selection(code="A1", product="Trà xanh 0 độ", price=vnd(12000), capacity=10, par=8, motor=11),
    Selection(code="A2", product="Cà phê sữa", price=vnd(15000), capacity=10, par=8, motor=12),
    Selection(code="B1", product="Bánh mì que", price=vnd(8000), capacity=6, par=5, motor=21),
)
COINS = ((1, vnd(1000)), (2, vnd(2000)), (3, vnd(5000)))
BILLS = ((0, vnd(10000)), (1, vnd(20000)))


class Rig:
    """A session and a mapper fed the same inputs, as Machine.submit does."""

    def __init__(self) -> None:
        self.session = VendSession("VND")
        self.mapper = OutboxMapper("VND")
        self.outputs: list[Any] = []

    def apply(self, event: i.VendInput) -> list[Any]:
        before = Before.of(self.session)
        self.outputs = self.session.apply(event)
        return self.mapper.bodies(event, self.outputs, self.session, before)

    def output(self, kind: type) -> Any:
        (found,) = [x for x in self.outputs if isinstance(x, kind)]
        return found


def loaded() -> Rig:
    r = Rig()
    r.apply(i.PlanogramLoaded(currency="VND", selections=SELECTIONS))
    for sel in SELECTIONS:
        r.apply(i.StockFilled(code=sel.code, count=sel.par))
    r.apply(i.AcceptorsConfigured(coins=COINS, bills=BILLS, card_readers=(0x10,)))
    r.apply(i.TubesRead(tubes=tuple((t, v, 20) for t, v in COINS)))
    return r


def only(bodies: list[Any], kind: type) -> list[Any]:
    return [b for b in bodies if isinstance(b, kind)]


def test_planogram_gives_a_snapshot_of_every_selection() -> None:
    r = Rig()
    (snapshot,) = r.apply(i.PlanogramLoaded(currency="VND", selections=SELECTIONS))
    assert isinstance(snapshot, StockBody)
    assert snapshot.kind is StockKind.SNAPSHOT
    assert [(s.code, s.price, s.count) for s in snapshot.selections] == [
        ("A1", 12000, 0),
        ("A2", 15000, 0),
        ("B1", 8000, 0),
    ]


def test_cash_sale_reports_the_tender_stock_and_change() -> None:
    r = loaded()
    assert r.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True)) == []
    r.apply(i.CoinInserted(coin_type=1, value=vnd(1000), to_tube=False))
    r.apply(i.BillEscrowed(bill_type=0, value=vnd(10000)))
    r.apply(i.SelectionPressed(code="A1"))  # stacks the bill first
    r.apply(i.BillStacked(bill_type=0, value=vnd(10000)))
    dispense = r.output(o.Dispense)
    bodies = r.apply(i.DispenseFinished(vend_id=dispense.vend_id, delivered=True, outcome="ok"))
    (sale,) = only(bodies, SaleBody)
    assert (sale.selection, sale.price, sale.method) == ("A1", 12000, PaymentMethod.CASH)
    assert sale.product == "Trà xanh 0 độ"
    assert sale.cash is not None
    assert [(c.value, c.count, c.to_tube) for c in sale.cash.coins] == [
        (1000, 1, False),
        (5000, 1, True),
    ]
    assert [(b.value, b.count) for b in sale.cash.bills] == [(10000, 1)]
    (stock,) = only(bodies, StockBody)
    assert stock.kind is StockKind.CHANGE
    assert [(s.code, s.count, s.delta) for s in stock.selections] == [("A1", 7, -1)]
    payout = r.output(o.PayOut)
    (change,) = r.apply(i.PayoutFinished(payout_id=payout.payout_id, paid=vnd(4000)))
    assert isinstance(change, CashBody)
    assert (change.kind, change.amount) == (CashKind.CHANGE_PAYOUT, 4000)


def test_the_next_customers_tender_starts_empty() -> None:
    r = loaded()
    r.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))
    r.apply(i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True))
    r.apply(i.SelectionPressed(code="B1"))
    r.apply(i.DispenseFinished(vend_id=r.output(o.Dispense).vend_id, delivered=True, outcome="ok"))
    r.apply(i.PayoutFinished(payout_id=r.output(o.PayOut).payout_id, paid=vnd(2000)))
    r.apply(i.BillStacked(bill_type=1, value=vnd(20000)))
    r.apply(i.SelectionPressed(code="A2"))
    bodies = r.apply(
        i.DispenseFinished(vend_id=r.output(o.Dispense).vend_id, delivered=True, outcome="ok")
    )
    (sale,) = only(bodies, SaleBody)
    assert sale.cash is not None
    assert sale.cash.coins == []
    assert [(b.value, b.count) for b in sale.cash.bills] == [(20000, 1)]


def test_tender_is_rebuilt_from_replayed_inputs() -> None:
    r = loaded()
    coin = i.CoinInserted(coin_type=3, value=vnd(5000), to_tube=True)
    r.apply(coin)
    r.apply(coin)
    r.apply(coin)
    # A restart: the journal is replayed into a fresh session and a fresh mapper.
    fresh = OutboxMapper("VND")
    replayed = VendSession("VND")
    history: list[i.VendInput] = [
        i.PlanogramLoaded(currency="VND", selections=SELECTIONS),
        i.StockFilled(code="A1", count=8),
        i.AcceptorsConfigured(coins=COINS, bills=BILLS, card_readers=()),
        i.TubesRead(tubes=tuple((t, v, 20) for t, v in COINS)),
        coin,
        coin,
        coin,
    ]
    for event in history:
        replayed.apply(event)
        fresh.track(event, replayed)
    r.session, r.mapper = replayed, fresh
    r.apply(i.SelectionPressed(code="A1"))
    bodies = r.apply(
        i.DispenseFinished(vend_id=r.output(o.Dispense).vend_id, delivered=True, outcome="ok")
    )
    (sale,) = only(bodies, SaleBody)
    assert sale.cash is not None
    assert [(c.value, c.count) for c in sale.cash.coins] == [(5000, 3)]


def test_cashless_jam_refunds_takes_the_slot_out_and_a_fill_clears_the_alarm() -> None:
    r = loaded()
    r.apply(i.CardSessionBegan(reader=0x10, funds=vnd(100000)))
    r.apply(i.SelectionPressed(code="A2"))
    r.apply(i.CardVendApproved(reader=0x10, amount=vnd(15000)))
    vend_id = r.output(o.Dispense).vend_id
    bodies = r.apply(
        i.DispenseFinished(
            vend_id=vend_id, delivered=False, outcome="jam", slot_out_of_service=True
        )
    )
    assert only(bodies, SaleBody) == []
    (refund,) = only(bodies, RefundBody)
    assert (refund.kind, refund.amount, refund.vend_id) == (
        RefundKind.CASHLESS_FAILED_VEND,
        15000,
        vend_id,
    )
    (stock,) = only(bodies, StockBody)
    assert [(s.code, s.in_service, s.reason, s.delta) for s in stock.selections] == [
        ("A2", False, "jam", 0)
    ]
    (alarm,) = only(bodies, AlarmBody)
    assert (alarm.code, alarm.state, alarm.selection) == (AlarmCode.JAM, AlarmState.RAISED, "A2")
    r.apply(i.CardSessionEnded(reader=0x10))
    bodies = r.apply(i.StockFilled(code="A2", count=10))
    (cleared,) = only(bodies, AlarmBody)
    assert (cleared.code, cleared.state) == (AlarmCode.JAM, AlarmState.CLEARED)
    (stock,) = only(bodies, StockBody)
    assert [(s.code, s.count, s.delta, s.in_service) for s in stock.selections] == [
        ("A2", 10, 2, True)
    ]


def test_cashless_sale_names_the_reader() -> None:
    r = loaded()
    r.apply(i.CardSessionBegan(reader=0x60, funds=None))
    r.apply(i.SelectionPressed(code="B1"))
    r.apply(i.CardVendApproved(reader=0x60, amount=vnd(8000)))
    bodies = r.apply(
        i.DispenseFinished(vend_id=r.output(o.Dispense).vend_id, delivered=True, outcome="ok")
    )
    (sale,) = only(bodies, SaleBody)
    assert (sale.method, sale.reader, sale.cash, sale.settled) == (
        PaymentMethod.CASHLESS,
        2,
        None,
        True,
    )


def test_short_payout_leaves_an_iou_and_a_return_is_a_cash_refund() -> None:
    r = loaded()
    r.apply(i.BillStacked(bill_type=1, value=vnd(20000)))
    r.apply(i.SelectionPressed(code="B1"))
    r.apply(i.DispenseFinished(vend_id=r.output(o.Dispense).vend_id, delivered=True, outcome="ok"))
    bodies = r.apply(i.PayoutFinished(payout_id=r.output(o.PayOut).payout_id, paid=vnd(7000)))
    (change,) = only(bodies, CashBody)
    assert change.amount == 7000
    (iou,) = only(bodies, RefundBody)
    assert (iou.kind, iou.amount) == (RefundKind.IOU, 5000)

    r.apply(i.CoinInserted(coin_type=2, value=vnd(2000), to_tube=True))
    r.apply(i.ReturnRequested(reason="return lever"))
    bodies = r.apply(i.PayoutFinished(payout_id=r.output(o.PayOut).payout_id, paid=vnd(2000)))
    (refund,) = bodies
    assert isinstance(refund, RefundBody)
    assert (refund.kind, refund.amount) == (RefundKind.CASH_REFUND, 2000)


def test_operator_taking_a_selection_out_raises_an_other_alarm() -> None:
    r = loaded()
    bodies = r.apply(i.ServiceStateChanged(code="B1", in_service=False, reason="recall"))
    (alarm,) = only(bodies, AlarmBody)
    assert (alarm.code, alarm.state) == (AlarmCode.OTHER, AlarmState.RAISED)
    assert "recall" in alarm.detail
    bodies = r.apply(i.ServiceStateChanged(code="B1", in_service=True))
    (alarm,) = only(bodies, AlarmBody)
    assert alarm.state is AlarmState.CLEARED


def test_price_change_is_a_stock_change_with_the_new_price() -> None:
    r = loaded()
    (stock,) = r.apply(i.PriceChanged(code="A1", price=vnd(13000)))
    assert [(s.code, s.price, s.delta) for s in stock.selections] == [("A1", 13000, 0)]


def test_service_visit_reports_what_was_done_between_open_and_close() -> None:
    r = loaded()
    opened = r.mapper.visit_opened(T0)
    assert opened.closed_at is None
    (fill,) = only(r.apply(i.TubesFilled(value=vnd(10000))), CashBody)
    assert (fill.kind, fill.amount) == (CashKind.TUBE_FILL, 10000)
    r.apply(i.StockFilled(code="B1", count=6))
    r.apply(i.StockRemoved(code="A1", count=2, reason="expired"))
    r.apply(i.TestVendRequested(code="A2"))
    bodies = r.apply(
        i.DispenseFinished(vend_id=r.output(o.Dispense).vend_id, delivered=True, outcome="ok")
    )
    (test_sale,) = only(bodies, SaleBody)
    assert (test_sale.method, test_sale.price) == (PaymentMethod.TEST, 0)
    collected = r.mapper.cash_collected(3000, 40000)
    assert (collected.kind, collected.amount) == (CashKind.COLLECTION, 43000)
    visit = r.mapper.visit_closed(T0 + timedelta(minutes=9))
    assert visit is not None
    assert visit.closed_at == T0 + timedelta(minutes=9)
    assert [(a.action, a.selection, a.count, a.amount) for a in visit.actions] == [
        (ServiceAction.TUBE_FILL, None, None, 10000),
        (ServiceAction.FILL, "B1", 1, None),
        (ServiceAction.REMOVE, "A1", 2, None),
        (ServiceAction.TEST_VEND, "A2", 1, None),
        (ServiceAction.COLLECT, None, None, 43000),
    ]
    assert r.mapper.visit_closed(T0) is None  # closing twice reports once


def test_device_faults_are_raised_once_and_cleared_when_back_online() -> None:
    m = OutboxMapper("VND")
    (raised,) = m.device_event(DeviceFault(0x08, "changer", "tube_jam", "tube jammed"))
    assert (raised.code, raised.state, raised.device) == (
        AlarmCode.CHANGER_FAULT,
        AlarmState.RAISED,
        "changer",
    )
    assert m.device_event(DeviceFault(0x08, "changer", "tube_jam", "tube jammed")) == []
    (offline,) = m.device_event(DeviceOffline(0x10, "cashless1", "no answer"))
    assert offline.code is AlarmCode.READER_FAULT
    cleared = m.device_event(DeviceOnline(0x08, "changer", info=None))  # type: ignore[arg-type]
    assert [(a.code, a.state) for a in cleared] == [(AlarmCode.CHANGER_FAULT, AlarmState.CLEARED)]
    assert m.device_event(DeviceOnline(0x08, "changer", info=None)) == []  # type: ignore[arg-type]


_INPUTS = st.one_of(
    st.builds(
        i.CoinInserted,
        coin_type=st.sampled_from([1, 2, 3]),
        value=st.sampled_from([vnd(1000), vnd(2000), vnd(5000)]),
        to_tube=st.booleans(),
    ),
    st.builds(i.BillStacked, bill_type=st.just(1), value=st.just(vnd(20000))),
    st.builds(i.SelectionPressed, code=st.sampled_from(["A1", "A2", "B1", "ZZ"])),
    st.builds(i.ReturnRequested),
    st.builds(i.StockFilled, code=st.sampled_from(["A1", "B1"]), count=st.integers(0, 6)),
    st.builds(i.CardSessionBegan, reader=st.just(0x10), funds=st.none()),
    st.builds(i.CardVendApproved, reader=st.just(0x10), amount=st.none()),
    st.builds(i.CardSessionEnded, reader=st.just(0x10)),
    st.just("finish-vend"),
    st.just("finish-payout"),
)


@settings(max_examples=120, deadline=None)
@given(
    steps=st.lists(st.tuples(_INPUTS, st.booleans(), st.integers(0, 3)), min_size=1, max_size=30)
)
def test_every_body_travels_through_the_contract(steps: list[tuple[Any, bool, int]]) -> None:
    """Whatever the customers do, each body wraps, encodes and decodes unchanged."""
    r = loaded()
    seq = 0
    for step, delivered, short in steps:
        event: i.VendInput
        if step == "finish-vend":
            if r.session.vend is None:
                continue
            event = i.DispenseFinished(
                vend_id=r.session.vend.vend_id,
                delivered=delivered,
                outcome="ok" if delivered else "jam",
                slot_out_of_service=not delivered,
            )
        elif step == "finish-payout":
            payout = r.session.payout
            if payout is None:
                continue
            paid = max(payout.amount.minor - short * 1000, 0)
            event = i.PayoutFinished(payout_id=payout.payout_id, paid=vnd(paid))
        else:
            event = step
        for body in r.apply(event):
            seq += 1
            env = make_envelope(body, machine_id="vm-0001", boot_id=1, seq=seq, ts=T0)
            back = decode(topic_for("vm-0001", env.KIND), encode(env))
            assert back == env
