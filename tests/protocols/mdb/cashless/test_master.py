"""CashlessMaster back to back with the simulated reader firmware, on a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from drivers.sim.base import SimAnswer, SimBus
from drivers.sim.cashless import SimCashlessReader
from protocols.mdb.cashless import (
    FEATURE_32BIT,
    BeginSession,
    CashlessMaster,
    CashlessState,
    CashlessUsageError,
    VendApproved,
)
from protocols.mdb.cashless import events as ev
from protocols.mdb.events import (
    DeviceFault,
    DeviceOffline,
    DeviceOnline,
    DeviceReset,
    MdbEvent,
    ProtocolViolation,
)
from protocols.mdb.wire import Data
from protocols.money import CURRENCIES, Money
from tests.support.direct_bus import DirectBus

VND = CURRENCIES["VND"]
EUR = CURRENCIES["EUR"]
E = TypeVar("E", bound=MdbEvent)


class RecordingBus(SimBus):
    """A SimBus that remembers every data answer, to see what was (re)sent."""

    def __init__(self, *peripherals: SimCashlessReader) -> None:
        super().__init__(*peripherals)
        self.answers: list[bytes] = []

    def handle(self, block: bytes, now: float) -> SimAnswer:
        answer = super().handle(block, now)
        if isinstance(answer, Data):
            self.answers.append(answer.payload)
        return answer


def of(events: list[MdbEvent], cls: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, cls)]


def seen(cls: type[MdbEvent], address: int | None = None) -> Callable[[list[MdbEvent]], bool]:
    return lambda events: any(
        isinstance(e, cls) and (address is None or e.address == address) for e in events
    )


def rig(
    currency: Any = VND, master_args: dict[str, Any] | None = None, **sim_args: Any
) -> tuple[SimCashlessReader, CashlessMaster, DirectBus, RecordingBus]:
    sim = SimCashlessReader(**sim_args)
    master = CashlessMaster(currency, address=sim.address, **(master_args or {}))
    sim_bus = RecordingBus(sim)
    return sim, master, DirectBus(sim_bus, master), sim_bus


def online_and_enabled(bus: DirectBus, master: CashlessMaster) -> list[MdbEvent]:
    events = bus.run_until(seen(DeviceOnline, master.address))
    master.enable()
    bus.run_until(lambda _: master.reader_state is CashlessState.ENABLED, timeout=2)
    return events


def open_session(bus: DirectBus, sim: SimCashlessReader, funds: object) -> ev.SessionBegan:
    sim.control("present_card", {"funds": funds}, bus.clock.now)
    events = bus.run_until(seen(ev.SessionBegan), timeout=2)
    return of(events, ev.SessionBegan)[0]


def vend(bus: DirectBus, master: CashlessMaster, price: Money, item: int) -> list[MdbEvent]:
    master.vend_request(price, item)
    return bus.run_until(lambda es: bool(of(es, ev.VendApproved) + of(es, ev.VendDenied)), 3)


# --- initialisation -------------------------------------------------------------------


def test_level3_vnd_reader_comes_up_in_expanded_currency_mode() -> None:
    sim, master, bus, _ = rig(max_response_time=7, master_args={"max_price": Money(150_000)})
    events = bus.run_until(seen(DeviceOnline))
    online = of(events, DeviceOnline)[0]
    assert isinstance(online.info, ev.CashlessInfo)
    assert online.info.expanded_currency
    assert online.info.features & FEATURE_32BIT
    assert master.expanded_currency
    assert master.reader_state is CashlessState.DISABLED
    assert master.peripheral_id is not None
    assert master.peripheral_id.model == "CASHLESS-SIM"
    # 150,000 VND does not fit 16 bits: the reader got the 32-bit SETUP prices.
    assert sim.expanded
    assert sim.max_price == 150_000
    assert master.timing.non_response == 7.0
    assert (master.refund_capable, master.multivend_capable, master.supports_cash_sale) == (
        True,
        True,
        True,
    )


def test_level1_eur_reader_stays_16_bit_and_sells_in_cents() -> None:
    sim, master, bus, _ = rig(
        EUR, level=1, currency_code=0x1978, decimal_places=2, options=0, supports_expanded=False
    )
    online_and_enabled(bus, master)
    assert not master.expanded_currency
    assert master.peripheral_id is not None
    assert master.peripheral_id.features is None
    assert not master.refund_capable
    began = open_session(bus, sim, 500)
    assert began.funds == Money(500, "EUR")
    assert began.media_id is None  # level 1: no payment media fields
    events = vend(bus, master, Money(150, "EUR"), 7)
    assert of(events, ev.VendApproved) == [ev.VendApproved(0x10, Money(150, "EUR"), 7)]
    assert sim.status()["charged"] == 150


def test_reader_config_delivered_on_a_later_poll() -> None:
    sim, master, bus, _ = rig(config_on_later_poll=True)
    bus.run_until(seen(DeviceOnline))
    assert master.config == sim.reader_config


def test_just_reset_resent_together_with_a_late_reader_config() -> None:
    sim, _, bus, recorder = rig(config_on_later_poll=True)
    bus.lose_next_ack = True  # the ACK to JUST RESET is lost
    events = bus.run_until(seen(DeviceOnline))
    assert bytes.fromhex("00") + sim.reader_config.to_bytes() in recorder.answers
    assert [e.unexpected for e in of(events, DeviceReset)] == [False]
    assert len(of(events, DeviceOnline)) == 1


def test_currency_mismatch_is_a_fault_and_the_reader_is_never_enabled() -> None:
    sim, master, bus, _ = rig(VND, currency_code=0x1978, decimal_places=2)
    master.enable()
    events = bus.run_for(5)
    faults = of(events, DeviceFault)
    assert [f.code for f in faults] == ["currency_mismatch"]
    assert "EUR" in faults[0].detail
    assert not of(events, DeviceOnline)
    assert sim.state is CashlessState.DISABLED
    with pytest.raises(CashlessUsageError):
        master.vend_request(Money(10_000), 1)


# --- sessions -------------------------------------------------------------------------


def test_two_readers_on_one_bus_each_keep_their_own_sessions() -> None:
    first = SimCashlessReader(address=0x10)
    second = SimCashlessReader(address=0x60, level=1, supports_expanded=False)
    m1, m2 = CashlessMaster(VND, 0x10), CashlessMaster(VND, 0x60)
    bus = DirectBus(SimBus(first, second), m1, m2)
    bus.run_until(lambda es: len(of(es, DeviceOnline)) == 2)
    assert (m1.device, m2.device) == ("cashless1", "cashless2")
    assert (m1.expanded_currency, m2.expanded_currency) == (True, False)
    m1.enable()
    m2.enable()
    bus.run_for(0.5)
    open_session(bus, second, 50_000)
    events = vend(bus, m2, Money(20_000), 4)
    assert [e.address for e in of(events, ev.VendApproved)] == [0x60]
    m2.vend_success(4)
    m2.session_complete()
    events = bus.run_until(seen(ev.SessionEnded), timeout=2)
    assert of(events, ev.SessionEnded) == [ev.SessionEnded(0x60, confirmed=True)]
    assert (first.status()["charged"], second.status()["charged"]) == (0, 20_000)
    assert m1.reader_state is m2.reader_state is CashlessState.ENABLED


def test_full_sale_above_65535_vnd() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    began = open_session(bus, sim, 200_000)
    assert began.funds == Money(200_000)
    assert master.session_funds == Money(200_000)
    events = vend(bus, master, Money(120_000), 12)
    assert of(events, ev.VendApproved)[0].amount == Money(120_000)
    master.vend_success(12)
    master.session_complete()
    bus.run_until(seen(ev.SessionEnded), timeout=2)
    status = sim.status()
    assert (status["charged"], status["refunded"]) == (120_000, 0)
    assert status["last_vend"] == {
        "item": 12,
        "price": 120_000,
        "negative": False,
        "outcome": "success",
    }
    assert master.reader_state is CashlessState.ENABLED
    assert master.session_funds is None


def test_denied_vend_returns_to_session_idle_and_charges_nothing() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    sim.control("set_policy", {"policy": "deny"}, bus.clock.now)
    events = vend(bus, master, Money(10_000), 1)
    assert of(events, ev.VendDenied) == [ev.VendDenied(0x10, 1, cancelled=False)]
    assert master.reader_state is CashlessState.SESSION_IDLE
    assert sim.status()["charged"] == 0
    with pytest.raises(CashlessUsageError, match="VEND SUCCESS"):
        master.vend_success(1)


def test_vend_failure_makes_the_reader_refund() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    vend(bus, master, Money(15_000), 2)
    master.vend_failure()
    events = bus.run_for(0.5)
    assert not of(events, ev.RefundFailed)
    status = sim.status()
    assert (status["charged"], status["refunded"]) == (15_000, 15_000)
    assert master.reader_state is CashlessState.SESSION_IDLE


def test_a_failed_refund_is_reported_with_its_amount() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    sim.control("fail_refunds", {"on": True}, bus.clock.now)
    vend(bus, master, Money(15_000), 2)
    master.vend_failure()
    events = bus.run_until(seen(ev.RefundFailed), timeout=2)
    assert of(events, ev.RefundFailed) == [ev.RefundFailed(0x10, Money(15_000), 0xC0)]
    assert not of(events, DeviceFault)


def test_reader_initiated_cancel_is_answered_with_session_complete() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    sim.control("cancel_session", {}, bus.clock.now)
    events = bus.run_until(seen(ev.SessionEnded), timeout=2)
    assert [type(e) for e in events] == [ev.SessionCancelRequested, ev.SessionEnded]
    assert sim.state is CashlessState.ENABLED  # it got SESSION COMPLETE and ended
    assert master.reader_state is CashlessState.ENABLED


def test_reader_session_timeout_ends_the_session() -> None:
    sim, master, bus, _ = rig(session_timeout=3.0)
    online_and_enabled(bus, master)
    open_session(bus, sim, "unknown")
    events = bus.run_until(seen(ev.SessionEnded), timeout=10)
    assert of(events, ev.SessionCancelRequested)
    assert master.session_funds is None


def test_unanswered_vend_can_be_cancelled_by_the_application() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    sim.control("set_policy", {"policy": "timeout"}, bus.clock.now)
    master.vend_request(Money(10_000), 3)
    events = bus.run_for(3)
    assert not of(events, ev.VendApproved)
    assert not of(events, ev.VendDenied)
    assert master.reader_state.value == "vend"
    master.vend_cancel()
    events = bus.run_until(seen(ev.VendDenied), timeout=2)
    assert of(events, ev.VendDenied) == [ev.VendDenied(0x10, 3, cancelled=True)]
    assert master.reader_state is CashlessState.SESSION_IDLE
    assert sim.status()["charged"] == 0


def test_customer_cancel_during_a_pending_vend_cancels_then_completes() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    sim.control("set_policy", {"policy": "timeout"}, bus.clock.now)
    master.vend_request(Money(10_000), 3)
    bus.run_for(0.5)
    sim.control("cancel_session", {}, bus.clock.now)
    events = bus.run_until(seen(ev.SessionEnded), timeout=3)
    kinds = [type(e) for e in events]
    assert kinds == [ev.SessionCancelRequested, ev.VendDenied, ev.SessionEnded]
    assert sim.state is CashlessState.ENABLED


def test_approval_crossing_our_cancel_is_answered_with_vend_failure() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    master.vend_request(Money(10_000), 3)
    while "VendApproved" not in sim.status()["pending"]:  # type: ignore[operator]
        bus.step()
    master.vend_cancel()  # the approval is already on its way
    events = bus.run_for(1)
    assert not of(events, ev.VendApproved)
    assert of(events, ev.VendDenied) == [ev.VendDenied(0x10, 3, cancelled=True)]
    status = sim.status()
    assert status["charged"] == status["refunded"] == 10_000
    assert master.reader_state is CashlessState.SESSION_IDLE


def test_reader_that_never_sends_end_session_does_not_wedge_the_master() -> None:
    sim, master, bus, _ = rig(sends_end_session=False)
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    master.session_complete()
    events = bus.run_until(seen(ev.SessionEnded), timeout=15)
    assert of(events, ev.SessionEnded) == [ev.SessionEnded(0x10, confirmed=False)]
    assert master.reader_state is CashlessState.ENABLED
    open_session(bus, sim, 10_000)  # the next customer is served


def test_cash_sale_is_reported_to_the_reader() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    assert master.cash_sale(Money(80_000), 9)
    bus.run_for(0.5)
    assert sim.cash_sales == [(80_000, 9)]
    quiet, other, bus2, _ = rig(options=0)
    online_and_enabled(bus2, other)
    assert not other.cash_sale(Money(80_000), 9)
    bus2.run_for(0.5)
    assert quiet.cash_sales == []


def test_disable_during_a_session_takes_effect_when_it_ends() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    master.disable()
    master.session_complete()
    bus.run_until(seen(ev.SessionEnded), timeout=2)
    bus.run_for(0.5)
    assert master.reader_state is sim.state is CashlessState.DISABLED


# --- level 3 extras -------------------------------------------------------------------


def test_always_idle_reader_vends_without_a_prior_session() -> None:
    sim, master, bus, _ = rig(offers_always_idle=True, master_args={"always_idle": True})
    online_and_enabled(bus, master)
    events = vend(bus, master, Money(30_000), 5)
    assert of(events, ev.VendApproved)[0].amount == Money(30_000)
    master.vend_success(5)
    master.session_complete()
    bus.run_until(seen(ev.SessionEnded), timeout=2)
    assert sim.status()["charged"] == 30_000


def test_negative_vend_credits_the_card() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 1_000)
    master.negative_vend_request(Money(25_000), 6)
    events = bus.run_until(seen(ev.VendApproved), timeout=2)
    assert of(events, ev.VendApproved) == [ev.VendApproved(0x10, Money(25_000), 6, negative=True)]
    master.vend_success(6)
    bus.run_for(0.5)
    assert sim.status()["credited"] == 25_000
    assert sim.status()["session_funds"] == 26_000


def test_revalue_adds_to_the_session_funds() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 5_000)
    master.revalue_request(Money(20_000))
    events = bus.run_until(lambda es: bool(of(es, ev.RevalueApproved)), timeout=2)
    assert of(events, ev.RevalueApproved) == [ev.RevalueApproved(0x10, Money(20_000))]
    assert master.session_funds == Money(25_000)
    assert master.reader_state is CashlessState.SESSION_IDLE


# --- faults ---------------------------------------------------------------------------


def test_power_cycle_mid_vend_aborts_the_session_and_charges_once() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 100_000)
    vend(bus, master, Money(40_000), 8)
    sim.control("power_cycle", {}, bus.clock.now)
    events = bus.run_until(seen(DeviceOnline), timeout=5)
    assert [e.unexpected for e in of(events, DeviceReset)][:1] == [True]
    aborted = of(events, ev.SessionAborted)
    assert len(aborted) == 1
    assert aborted[0].approved == Money(40_000)
    assert aborted[0].vend_pending
    with pytest.raises(CashlessUsageError):
        master.vend_success(8)  # that vend is gone
    bus.run_until(lambda _: master.reader_state is CashlessState.ENABLED, timeout=2)
    assert sim.status()["refunded"] == sim.status()["charged"] == 40_000  # voided
    open_session(bus, sim, 100_000)
    vend(bus, master, Money(40_000), 8)
    master.vend_success(8)
    bus.run_for(0.5)
    status = sim.status()
    assert status["charged"] - status["refunded"] == 40_000  # type: ignore[operator]


def test_out_of_sequence_resets_and_recovers_to_enabled() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    sim.control("send_out_of_sequence", {}, bus.clock.now)
    events = bus.run_until(seen(DeviceOnline), timeout=5)
    assert of(events, ev.OutOfSequenceReported) == [ev.OutOfSequenceReported(0x10, 4)]
    assert [e.reason for e in of(events, ev.SessionAborted)] == ["command out of sequence"]
    bus.run_until(lambda _: master.reader_state is CashlessState.ENABLED, timeout=2)
    assert sim.state is CashlessState.ENABLED


def test_unplugged_reader_goes_offline_and_comes_back() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    sim.control("unplug", {}, bus.clock.now)
    events = bus.run_until(seen(DeviceOffline), timeout=10)
    assert of(events, ev.SessionAborted)
    sim.control("plug", {}, bus.clock.now)
    bus.run_until(seen(DeviceOnline), timeout=15)
    bus.run_until(lambda _: master.reader_state is CashlessState.ENABLED, timeout=2)


def test_lost_ack_on_begin_session_gives_one_event() -> None:
    sim, master, bus, recorder = rig()
    online_and_enabled(bus, master)
    sim.control("present_card", {"funds": 50_000}, bus.clock.now)
    bus.lose_next_ack = True
    events = bus.run_for(1)
    begin = BeginSession(50_000, 0x12345678, 0, 0, wide=True).to_bytes()
    assert recorder.answers.count(begin) == 2  # the reader did send it again
    assert len(of(events, ev.SessionBegan)) == 1


def test_lost_ack_on_vend_approved_gives_one_event() -> None:
    sim, master, bus, recorder = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    master.vend_request(Money(10_000), 1)
    bus.run_until(lambda _: "VendApproved" in sim.status()["pending"], timeout=2)  # type: ignore[operator]
    bus.lose_next_ack = True
    events = bus.run_for(1)
    approved = VendApproved(10_000, wide=True).to_bytes()
    assert recorder.answers.count(approved) == 2
    assert len(of(events, ev.VendApproved)) == 1


def test_stale_approval_is_not_taken_for_the_next_vend() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    master.vend_request(Money(10_000), 1)
    bus.run_until(lambda _: "VendApproved" in sim.status()["pending"], timeout=2)  # type: ignore[operator]
    bus.lose_next_ack = True
    bus.run_until(seen(ev.VendApproved), timeout=2)
    # Multivend at once, before the reader's resend of the first approval is read;
    # the reader refuses the second vend.
    master.vend_success(1)
    sim.control("set_policy", {"policy": "deny"}, bus.clock.now)
    master.vend_request(Money(10_000), 2)
    events = bus.run_until(lambda es: bool(of(es, ev.VendApproved) + of(es, ev.VendDenied)), 2)
    assert not of(events, ev.VendApproved)
    assert of(events, ev.VendDenied) == [ev.VendDenied(0x10, 2)]
    assert sim.status()["charged"] == 10_000


def test_illegal_application_calls_raise_a_clear_error() -> None:
    sim, master, bus, _ = rig(level=1, supports_expanded=False)
    with pytest.raises(CashlessUsageError, match="VEND REQUEST"):
        master.vend_request(Money(1_000), 1)
    online_and_enabled(bus, master)
    with pytest.raises(
        CashlessUsageError, match="VEND REQUEST is not possible while cashless1 is enabled"
    ):
        master.vend_request(Money(1_000), 1)
    open_session(bus, sim, 10_000)
    with pytest.raises(CashlessUsageError, match="money format"):
        master.vend_request(Money(70_000), 1)  # 16-bit reader, scale 1
    with pytest.raises(CashlessUsageError, match="item number"):
        master.vend_request(Money(1_000), 70_000)
    with pytest.raises(CashlessUsageError, match="negative vend"):
        master.negative_vend_request(Money(1_000), 1)
    with pytest.raises(CashlessUsageError, match="REVALUE"):
        master.revalue_request(Money(1_000))  # level 1
    with pytest.raises(CashlessUsageError, match="VEND CANCEL"):
        master.vend_cancel()
    with pytest.raises(ValueError, match="not a cashless reader address"):
        CashlessMaster(VND, address=0x30)


# --- items the simulator does not produce, fed as raw answers ---------------------------


def feed(master: CashlessMaster, bus: DirectBus, payload: str) -> list[MdbEvent]:
    """Answer the master's next POLL with ``payload`` (hex) instead of the simulator."""
    assert master.request(bus.clock.now) == b"\x12"
    master.on_reply(Data(bytes.fromhex(payload)), bus.clock.now)
    return master.drain_events()


def test_display_request_and_malfunctions_become_events() -> None:
    _, master, bus, _ = rig()
    online_and_enabled(bus, master)
    events = feed(master, bus, "02 19" + "48454c4c4f")
    assert events == [ev.DisplayRequested(0x10, "HELLO", 2.5)]
    events = feed(master, bus, "0a 81")
    assert [(e.code, e.detail) for e in of(events, DeviceFault)] == [
        ("reader_failure", "MALFUNCTION 0x81")
    ]
    events = feed(master, bus, "0a c0")  # no refund owed: a plain fault
    assert [e.code for e in of(events, DeviceFault)] == ["refund_error"]


def test_undecodable_answer_is_reported_and_changes_nothing() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    events = feed(master, bus, "0c 01")
    assert [type(e) for e in events] == [ProtocolViolation]
    assert master.reader_state is CashlessState.ENABLED
    open_session(bus, sim, 1_000)


def test_end_session_in_the_middle_of_a_vend_aborts_it() -> None:
    sim, master, bus, _ = rig()
    online_and_enabled(bus, master)
    open_session(bus, sim, 50_000)
    vend(bus, master, Money(10_000), 1)
    events = feed(master, bus, "07")
    assert [type(e) for e in events] == [ev.SessionAborted]
    assert of(events, ev.SessionAborted)[0].approved == Money(10_000)
    assert master.reader_state is CashlessState.ENABLED
