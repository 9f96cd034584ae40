"""The bill validator state machine back to back with the simulated validator (fake clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.sim.base import SimAnswer, SimBus
from drivers.sim.bill import SimBillValidator
from protocols.mdb.bill import (
    BILL_VALIDATOR,
    BillEscrowed,
    BillRejected,
    BillReturned,
    BillStacked,
    BillType,
    BillValidatorInfo,
    BillValidatorMaster,
    EscrowedBillRemoved,
    FeatureEnable,
    IdentificationL1,
    IdentificationL2,
    NoBillInEscrowError,
    NotReadyError,
    Poll,
    Reset,
    Setup,
    Stacker,
    StackerRead,
)
from protocols.mdb.events import DeviceFault, DeviceOffline, DeviceOnline, DeviceReset, MdbEvent
from protocols.mdb.message import Command
from protocols.mdb.wire import Ack, Data
from protocols.money import Money, currency
from tests.support.direct_bus import DirectBus

VND = currency("VND")
E = TypeVar("E", bound=MdbEvent)


class RecordingBus(SimBus):
    """A simulated bus that notes every command and POLL answer, and can drop one ACK."""

    def __init__(self, sim: SimBillValidator) -> None:
        super().__init__(sim)
        self.commands: list[Command] = []
        self.poll_data: list[bytes] = []
        self.lose_ack_if: Callable[[bytes], bool] | None = None
        self.direct: DirectBus | None = None

    def handle(self, block: bytes, now: float) -> SimAnswer:
        answer = super().handle(block, now)
        command = BILL_VALIDATOR.decode_command(block)
        self.commands.append(command)
        if isinstance(command, Poll) and isinstance(answer, Data):
            self.poll_data.append(answer.payload)
            if self.lose_ack_if and self.lose_ack_if(answer.payload) and self.direct:
                self.lose_ack_if = None
                self.direct.lose_next_ack = True
        return answer


@dataclass
class Rig:
    sim: SimBillValidator
    master: BillValidatorMaster
    wire: RecordingBus
    bus: DirectBus
    seen: list[MdbEvent] = field(default_factory=list)

    def online(self) -> DeviceOnline:
        events = self.bus.run_until(lambda es: any(isinstance(e, DeviceOnline) for e in es))
        self.seen += events
        return next(e for e in events if isinstance(e, DeviceOnline))

    def run(self, seconds: float) -> list[MdbEvent]:
        events = self.bus.run_for(seconds)
        self.seen += events
        return events

    def until(self, kind: type[E], timeout: float = 30.0) -> E:
        events = self.bus.run_until(lambda es: any(isinstance(e, kind) for e in es), timeout)
        self.seen += events
        return next(e for e in events if isinstance(e, kind))

    def control(self, action: str, **args: Any) -> dict[str, object]:
        return self.sim.control(action, args, self.bus.clock.now)

    def all(self, kind: type[E]) -> list[E]:
        return [e for e in self.seen if isinstance(e, kind)]

    def faults(self, code: str) -> list[DeviceFault]:
        return [e for e in self.all(DeviceFault) if e.code == code]


def _escrowed(r: Rig) -> int | None:
    return r.master.escrowed


def rig(sim: SimBillValidator | None = None, **master_options: Any) -> Rig:
    sim = sim or SimBillValidator()
    wire = RecordingBus(sim)
    master = BillValidatorMaster(VND, **master_options)
    bus = DirectBus(wire, master)
    wire.direct = bus
    return Rig(sim, master, wire, bus)


def enabled_rig(**sim_options: Any) -> Rig:
    r = rig(SimBillValidator(**sim_options))
    r.online()
    r.master.enable()
    r.run(0.5)
    return r


def _init_commands(commands: list[Command]) -> list[type[Command]]:
    """The init sequence without the POLLs between its steps."""
    return [type(c) for c in commands if not isinstance(c, Poll)]


def test_level_2_initialises_in_spec_order_and_stays_disabled() -> None:
    r = rig()
    online = r.online()
    assert _init_commands(r.wire.commands) == [
        Reset, Setup, IdentificationL2, FeatureEnable, Stacker, BillType,
    ]  # fmt: skip
    assert r.wire.commands[1] == Poll()  # RESET, then POLL until "was reset"
    assert r.wire.poll_data[0] == bytes.fromhex("0609")
    assert r.all(DeviceReset) == [DeviceReset(0x30, "bill", unexpected=False)]
    assert isinstance(online.info, BillValidatorInfo)
    assert online.info.setup.level == 2
    assert online.info.identification is not None
    assert online.info.identification.features == 0
    assert r.master.level == 2
    assert r.master.bill_values[7] == Money(200_000, "VND")
    assert r.wire.commands[-1] == BillType()  # explicitly disabled
    assert r.sim.status()["enabled"] == []


def test_lost_ack_on_was_reset_is_not_a_second_reset() -> None:
    r = rig()
    r.wire.lose_ack_if = lambda p: p == bytes.fromhex("0609")
    r.online()
    r.run(3.0)
    assert r.wire.poll_data.count(bytes.fromhex("0609")) == 2  # sent again after init
    assert r.all(DeviceReset) == [DeviceReset(0x30, "bill", unexpected=False)]
    assert len(r.all(DeviceOnline)) == 1


def test_level_1_uses_the_short_identification() -> None:
    r = rig(SimBillValidator(level=1))
    online = r.online()
    assert _init_commands(r.wire.commands) == [Reset, Setup, IdentificationL1, Stacker, BillType]
    assert isinstance(online.info, BillValidatorInfo)
    assert online.info.identification is not None
    assert online.info.identification.features is None
    assert r.master.level == 1


def test_bill_offered_while_disabled_is_rejected_without_credit() -> None:
    r = rig()
    r.online()
    assert r.control("insert_bill", bill_type=3)["accepted"] is False
    rejected = r.until(BillRejected)
    assert rejected.reason == "validator_disabled"
    assert r.all(BillStacked) == []


def test_escrow_then_stack_credits_exactly_once() -> None:
    r = enabled_rig()
    assert r.sim.status()["escrow_enabled"] == list(range(8))
    r.control("insert_bill", value=50_000)
    escrowed = r.until(BillEscrowed)
    assert escrowed == BillEscrowed(0x30, 5, Money(50_000, "VND"))
    assert _escrowed(r) == 5
    assert r.all(BillStacked) == []  # escrow is not credit
    r.master.stack()
    stacked = r.until(BillStacked)
    assert stacked == BillStacked(0x30, 5, Money(50_000, "VND"))
    r.run(5.0)
    assert len(r.all(BillStacked)) == 1
    assert r.master.escrowed is None
    assert r.sim.status()["stacked_value"] == 50_000


def test_returned_bill_is_never_credited() -> None:
    r = enabled_rig()
    r.control("insert_bill", bill_type=7)
    r.until(BillEscrowed)
    r.master.return_bill()
    returned = r.until(BillReturned)
    assert returned == BillReturned(0x30, 7, Money(200_000, "VND"), "returned")
    r.run(5.0)
    assert r.all(BillStacked) == []
    assert r.sim.status()["stacked_value"] == 0


def test_escrow_timeout_returns_the_bill_without_credit() -> None:
    r = enabled_rig()
    r.control("set_escrow_timeout", seconds=3)
    r.control("insert_bill", bill_type=2)
    r.until(BillEscrowed)
    returned = r.until(BillReturned, timeout=10.0)
    assert returned.reason == "timed_out"
    assert r.master.escrowed is None
    with pytest.raises(NoBillInEscrowError):
        r.master.stack()
    r.run(3.0)
    assert r.all(BillStacked) == []


def _is_stacked(payload: bytes) -> bool:
    return any(b & 0xF0 == 0x80 for b in payload)


def test_lost_ack_on_the_stacked_item_credits_once() -> None:
    r = enabled_rig()
    r.wire.lose_ack_if = _is_stacked
    r.control("insert_bill", bill_type=4)
    r.until(BillEscrowed)
    r.master.stack()
    r.until(BillStacked)
    r.run(5.0)
    # The validator really did send the stacked item twice ...
    assert sum(_is_stacked(p) for p in r.wire.poll_data) == 2
    # ... and it was credited once.
    assert r.all(BillStacked) == [BillStacked(0x30, 4, Money(20_000, "VND"))]


def test_lost_ack_on_a_directly_stacked_bill_credits_once() -> None:
    r = rig()
    r.online()
    r.master.enable(escrow=False)
    r.run(0.5)
    r.wire.lose_ack_if = _is_stacked
    assert r.control("insert_bill", bill_type=0)["escrow"] is False
    r.until(BillStacked)
    r.run(5.0)
    assert sum(_is_stacked(p) for p in r.wire.poll_data) == 2
    assert len(r.all(BillStacked)) == 1
    assert r.all(BillEscrowed) == []


def test_lost_ack_on_the_escrow_item_reports_one_escrow() -> None:
    r = enabled_rig()
    r.wire.lose_ack_if = lambda p: any(b & 0xF0 == 0x90 for b in p)
    r.control("insert_bill", bill_type=1)
    r.until(BillEscrowed)
    r.run(1.0)
    assert sum(any(b & 0xF0 == 0x90 for b in p) for p in r.wire.poll_data) == 2
    assert len(r.all(BillEscrowed)) == 1
    r.master.stack()
    r.until(BillStacked)
    r.run(3.0)
    assert len(r.all(BillStacked)) == 1


def test_two_bills_of_the_same_type_are_both_credited() -> None:
    r = enabled_rig()
    for _ in range(2):
        r.control("insert_bill", bill_type=3)
        r.until(BillEscrowed)
        r.master.stack()
        r.until(BillStacked)
    assert [e.value for e in r.all(BillStacked)] == [Money(10_000, "VND")] * 2


def test_stacker_full_after_the_last_bill_stops_acceptance() -> None:
    r = enabled_rig(stacker_capacity=3, stacker_count=2)
    r.control("insert_bill", bill_type=0)
    r.until(BillEscrowed)
    r.master.stack()
    r.until(BillStacked)
    fault = r.until(DeviceFault)
    assert fault.code == "stacker_full"
    assert r.master.stacker_full
    assert r.control("insert_bill", bill_type=0)["accepted"] is False
    r.run(2.0)
    assert len(r.all(BillStacked)) == 1
    assert len(r.faults("stacker_full")) == 1


def test_stacker_marked_full_is_found_by_the_periodic_read() -> None:
    r = rig(stacker_interval=5.0)
    r.online()
    r.control("stacker_full")
    fault = r.until(DeviceFault, timeout=15.0)
    assert fault.code == "stacker_full"
    read = r.all(StackerRead)
    assert read
    assert read[-1].full


def test_read_stacker_reports_the_count() -> None:
    r = rig(SimBillValidator(stacker_count=42))
    with pytest.raises(NotReadyError):
        r.master.read_stacker()
    r.online()
    r.master.read_stacker()
    assert r.until(StackerRead) == StackerRead(0x30, full=False, count=42)


def test_jam_is_one_fault_while_it_lasts() -> None:
    r = enabled_rig()
    r.control("jam")
    assert r.until(DeviceFault).code == "validator_jammed"
    r.run(3.0)
    assert len(r.faults("validator_jammed")) == 1
    assert "validator_jammed" in r.master.faults
    assert r.control("insert_bill", bill_type=0)["accepted"] is False
    r.control("clear_jam")
    r.run(1.0)
    assert r.master.faults == frozenset()
    r.control("jam")
    r.run(1.0)
    assert len(r.faults("validator_jammed")) == 2


def test_cash_box_removed_is_a_fault() -> None:
    r = enabled_rig()
    r.control("remove_cash_box")
    assert r.until(DeviceFault).code == "cash_box_out_of_position"


def test_customer_takes_the_escrowed_bill_back() -> None:
    r = enabled_rig()
    r.control("insert_bill", bill_type=6)
    r.until(BillEscrowed)
    r.control("take_escrowed")
    removed = r.until(EscrowedBillRemoved)
    assert removed == EscrowedBillRemoved(0x30, 6, Money(100_000, "VND"))
    assert r.master.escrowed is None
    r.run(2.0)
    assert r.all(BillStacked) == []


def test_unknown_bill_is_rejected() -> None:
    r = enabled_rig()
    r.control("insert_unknown")
    assert r.until(BillRejected).reason == "unknown_bill"


def test_unplugged_validator_goes_offline_and_comes_back_enabled() -> None:
    r = enabled_rig()
    assert r.sim.status()["enabled"] == list(range(8))
    r.control("unplug")
    r.run(4.0)
    assert r.all(DeviceOffline) == []  # still within the validator's 5 s non-response time
    r.until(DeviceOffline, timeout=3.0)
    r.run(3.0)
    r.control("plug")
    r.until(DeviceOnline, timeout=20.0)
    r.run(0.5)
    assert r.sim.status()["enabled"] == list(range(8))
    r.control("insert_bill", bill_type=1)
    r.until(BillEscrowed)


def test_power_cycle_with_a_bill_in_escrow_gives_it_back_and_reinitialises() -> None:
    r = enabled_rig()
    r.control("insert_bill", bill_type=5)
    r.until(BillEscrowed)
    r.control("power_cycle")
    reset = r.until(DeviceReset)
    assert reset.unexpected
    returned = r.all(BillReturned)
    assert returned == [BillReturned(0x30, 5, Money(50_000, "VND"), "escrow_aborted")]
    r.until(DeviceOnline)
    r.run(5.0)
    assert r.all(BillStacked) == []
    assert r.master.escrowed is None
    assert r.sim.status()["enabled"] == list(range(8))  # re-applied by the master
    with pytest.raises(NoBillInEscrowError):
        r.master.return_bill()


def test_power_cycle_while_stacking_leaves_the_outcome_to_the_cash_count() -> None:
    r = enabled_rig()
    r.control("insert_bill", bill_type=5)
    r.until(BillEscrowed)
    r.master.stack()
    r.run(0.3)  # ESCROW sent, the validator is busy stacking
    r.control("power_cycle")
    r.until(DeviceOnline)
    r.run(3.0)
    assert r.all(BillStacked) == []
    assert len(r.faults("escrow_outcome_unknown")) == 1


def test_currency_mismatch_is_a_fault_and_never_enabled() -> None:
    r = rig(SimBillValidator(currency_code=0x1978, scale_factor=500, decimal_places=2))
    r.master.enable()
    fault = r.until(DeviceFault)
    assert fault.code == "currency_mismatch"
    assert "EUR" in fault.detail
    r.run(20.0)
    assert r.all(DeviceOnline) == []
    assert not any(isinstance(c, BillType) and c.enabled for c in r.wire.commands)
    assert r.sim.status()["enabled"] == []
    assert len(r.faults("currency_mismatch")) == 1


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"scale_factor": 1, "decimal_places": 1}, "not a whole number"),  # 0.1 VND bills
        ({"scale_factor": 0}, "scale factor"),
    ],
)
def test_setup_that_cannot_be_valued_is_a_fault(options: dict[str, Any], problem: str) -> None:
    r = rig(SimBillValidator(**options))
    r.master.enable()
    fault = r.until(DeviceFault)
    assert fault.code == "bad_setup"
    assert problem in fault.detail
    r.run(12.0)
    assert r.all(DeviceOnline) == []
    assert r.sim.status()["enabled"] == []


def test_escrow_decision_errors() -> None:
    r = enabled_rig()
    with pytest.raises(NoBillInEscrowError, match="no bill"):
        r.master.stack()
    r.control("insert_bill", bill_type=0)
    r.until(BillEscrowed)
    r.master.stack()
    with pytest.raises(NoBillInEscrowError, match="already"):
        r.master.return_bill()
    with pytest.raises(ValueError, match=r"0\.\.15"):
        r.master.enable(frozenset({16}))


def test_enable_a_subset_without_escrow() -> None:
    r = enabled_rig()
    r.master.enable(frozenset({0, 1, 9}), escrow=False)  # 9 has no value: left out
    r.run(0.5)
    assert r.sim.status()["enabled"] == [0, 1]
    assert r.sim.status()["escrow_enabled"] == []
    r.control("insert_bill", bill_type=2)
    assert r.until(BillRejected).reason == "disabled"
    r.master.disable()
    r.run(0.5)
    assert r.sim.status()["enabled"] == []


def _ready_master() -> tuple[BillValidatorMaster, float]:
    r = rig()
    r.online()
    r.run(0.5)
    return r.master, r.bus.clock.now


def test_no_escrow_command_while_the_validator_is_busy() -> None:
    master, now = _ready_master()
    assert master.request(now) == bytes((0x33,))
    master.on_reply(Data(bytes((0x93, 0x03))), now)  # bill 3 in escrow, validator busy
    assert master.drain_events() == [BillEscrowed(0x30, 3, Money(10_000, "VND"))]
    assert master.next_time() == pytest.approx(now + master.timing.busy_interval)
    master.stack()
    assert master.request(now) == bytes((0x33,))  # still only POLL
    master.on_reply(Data(bytes((0x03,))), now)
    assert master.request(now) == bytes((0x33,))
    master.on_reply(Data(bytes((0x09,))), now)  # no longer busy
    assert master.request(now) == bytes((0x35, 0x01))


def _poll_with(master: BillValidatorMaster, now: float, payload: bytes) -> None:
    """Answer queued commands as the validator would, then answer the next POLL with ``payload``."""
    while (block := master.request(now)) != bytes((0x33,)):
        master.on_reply(Data(b"\x00\x05") if block == bytes((0x36,)) else Ack(), now)
    master.on_reply(Data(payload), now)


def test_a_repeated_answer_after_a_gap_is_a_new_bill() -> None:
    master, now = _ready_master()
    for _ in range(2):
        _poll_with(master, now, bytes((0x82,)))  # stacked without escrow
        _poll_with(master, now, bytes((0x09,)))
    stacked = [e for e in master.drain_events() if isinstance(e, BillStacked)]
    assert len(stacked) == 2


def test_an_identical_answer_in_the_next_poll_is_a_resend() -> None:
    master, now = _ready_master()
    _poll_with(master, now, bytes((0x82,)))
    _poll_with(master, now, bytes((0x82,)))
    stacked = [e for e in master.drain_events() if isinstance(e, BillStacked)]
    assert len(stacked) == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=12))
def test_any_answers_never_raise_and_credit_only_stacked_items(answers: list[bytes]) -> None:
    master, now = _ready_master()
    credit_items = 0
    for payload in answers:
        block = master.request(now)
        if block == bytes((0x33,)):
            credit_items += sum(b >> 4 in (0x8, 0xB) for b in payload)
        master.on_reply(Data(payload), now)  # whatever the command was
        now += 0.05
    stacked = [e for e in master.drain_events() if isinstance(e, BillStacked)]
    assert len(stacked) <= credit_items
