"""The simulated bill validator's firmware, command by command."""

from __future__ import annotations

import pytest

from drivers.sim.base import Silence, SimAnswer, SimBus
from drivers.sim.bill import SimBillValidator
from protocols.mdb.bill import BILL_VALIDATOR, BillSetup, Setup
from protocols.mdb.wire import Ack, Data

POLL = b"\x33"
VND_DEFAULT_SETUP = bytes.fromhex("02170403e80001f40000ff0102050a143264c8") + bytes(8)


def data(answer: SimAnswer) -> bytes:
    assert isinstance(answer, Data), answer
    return answer.payload


def poll(sim: SimBillValidator, now: float, ack: bool = True) -> bytes | None:
    """One POLL; None for a bare ACK. ``ack`` = whether the VMC's ACK arrives."""
    answer = sim.handle(POLL, now)
    if isinstance(answer, Ack):
        return None
    sim.acked(ack)
    return data(answer)


def ready(sim: SimBillValidator | None = None, escrow: bool = True) -> SimBillValidator:
    sim = sim or SimBillValidator()
    assert poll(sim, 0.0) == bytes.fromhex("0609")
    sim.handle(bytes.fromhex("3400ff00ff" if escrow else "3400ff0000"), 0.0)
    return sim


def test_default_setup_is_the_vietnamese_table() -> None:
    sim = SimBillValidator()
    payload = data(sim.handle(b"\x31", 0.0))
    assert payload == VND_DEFAULT_SETUP
    setup = BILL_VALIDATOR.decode_answer(Setup(), payload)
    assert isinstance(setup, BillSetup)
    assert setup.bill_credits[:8] == (1, 2, 5, 10, 20, 50, 100, 200)


def test_other_tables_are_configurable() -> None:
    sim = SimBillValidator(
        level=1,
        currency_code=0x1978,
        scale_factor=100,
        decimal_places=2,
        bill_credits=(5, 10, 20, 50),
        escrow_capable=False,
        stacker_capacity=1000,
    )
    setup = BILL_VALIDATOR.decode_answer(Setup(), data(sim.handle(b"\x31", 0.0)))
    assert isinstance(setup, BillSetup)
    assert (setup.level, setup.scale_factor, setup.decimal_places) == (1, 100, 2)
    assert setup.stacker_capacity == 1000
    assert not setup.escrow_capable
    assert sim.control("insert_bill", {"value": 2000}, 0.0)["bill_type"] == 2  # 20.00 EUR
    with pytest.raises(ValueError, match="level"):
        SimBillValidator(level=3)


def test_reset_reports_was_reset_then_disabled_once() -> None:
    sim = SimBillValidator()
    assert poll(sim, 0.0) == bytes.fromhex("0609")
    assert poll(sim, 0.1) is None
    assert sim.handle(b"\x30", 0.2) == Ack()
    assert poll(sim, 0.3) == bytes.fromhex("0609")


def test_data_without_ack_is_sent_again_unchanged() -> None:
    sim = SimBillValidator()
    assert poll(sim, 0.0, ack=False) == bytes.fromhex("0609")
    assert poll(sim, 0.1, ack=False) == bytes.fromhex("0609")
    assert poll(sim, 0.2) == bytes.fromhex("0609")
    assert poll(sim, 0.3) is None


def test_disabled_validator_counts_attempts() -> None:
    sim = SimBillValidator()
    poll(sim, 0.0)
    result = sim.control("insert_bill", {"bill_type": 1}, 0.0)
    assert result == {"accepted": False, "bill_type": 1, "reason": "disabled"}
    assert poll(sim, 0.1) == b"\x41"


def test_escrow_stack_is_busy_then_stacked() -> None:
    sim = ready()
    assert sim.control("insert_bill", {"bill_type": 3}, 1.0)["escrow"] is True
    assert poll(sim, 1.1) == b"\x93"
    assert sim.handle(b"\x35\x01", 1.2) == Ack()
    assert poll(sim, 1.3) == b"\x03"  # busy while the bill travels
    assert poll(sim, 2.3) == b"\x83"
    assert sim.status()["stacker_count"] == 1
    assert sim.status()["stacked_value"] == 10_000


def test_escrow_return_and_invalid_escrow_request() -> None:
    sim = ready()
    sim.control("insert_bill", {"value": 1000}, 1.0)
    assert poll(sim, 1.1) == b"\x90"
    sim.handle(b"\x35\x00", 1.2)
    assert poll(sim, 2.0) == b"\xa0"
    sim.handle(b"\x35\x01", 2.1)  # nothing in escrow any more
    assert poll(sim, 2.2) == b"\x0a"
    assert sim.status()["stacked_value"] == 0


def test_escrow_times_out_by_itself() -> None:
    sim = ready()
    sim.control("set_escrow_timeout", {"seconds": 2}, 0.0)
    sim.control("insert_bill", {"bill_type": 0}, 1.0)
    assert poll(sim, 1.1) == b"\x90"
    assert poll(sim, 3.1) == b"\x03"
    assert poll(sim, 4.0) == b"\xa0"
    assert sim.status()["escrow"] is None


def test_bills_without_escrow_bit_go_straight_to_the_stacker() -> None:
    sim = ready(escrow=False)
    assert sim.control("insert_bill", {"bill_type": 7}, 1.0)["escrow"] is False
    assert poll(sim, 1.1) == b"\x03"
    assert poll(sim, 2.1) == b"\x87"


def test_a_single_disabled_type_is_rejected_as_such() -> None:
    sim = ready()
    sim.handle(bytes.fromhex("3400010000"), 0.5)  # only type 0
    assert sim.control("insert_bill", {"bill_type": 2}, 1.0)["reason"] == "type_disabled"
    assert poll(sim, 1.1) == b"\xc2"


def test_stacker_fills_and_stops_acceptance() -> None:
    sim = ready(SimBillValidator(stacker_capacity=1), escrow=False)
    assert data(sim.handle(b"\x36", 0.5)) == b"\x00\x00"
    sim.control("insert_bill", {"bill_type": 0}, 1.0)
    poll(sim, 1.1)
    assert poll(sim, 2.1) == b"\x80"
    assert data(sim.handle(b"\x36", 2.2)) == b"\x80\x01"
    assert sim.control("insert_bill", {"bill_type": 0}, 3.0)["reason"] == "stacker_full"
    emptied = sim.control("empty_stacker", {}, 4.0)
    assert emptied == {"bills": 1, "value": 1000}
    assert data(sim.handle(b"\x36", 4.1)) == b"\x00\x00"


def test_jam_and_cash_box_are_reported_while_they_last() -> None:
    sim = ready()
    sim.control("jam", {}, 1.0)
    sim.control("remove_cash_box", {}, 1.0)
    assert poll(sim, 1.1) == b"\x05\x08"
    assert poll(sim, 1.2) == b"\x05\x08"
    assert sim.control("insert_bill", {"bill_type": 0}, 1.3)["reason"] == "jammed"
    sim.control("clear_jam", {}, 1.4)
    sim.control("replace_cash_box", {}, 1.4)
    assert poll(sim, 1.5) is None


def test_customer_takes_the_escrowed_bill() -> None:
    sim = ready()
    sim.control("insert_bill", {"bill_type": 4}, 1.0)
    poll(sim, 1.1)
    assert sim.control("take_escrowed", {}, 1.2) == {"bill_type": 4}
    assert poll(sim, 1.3) == b"\x07"
    with pytest.raises(ValueError, match="no bill in escrow"):
        sim.control("take_escrowed", {}, 1.4)


def test_unknown_bill() -> None:
    sim = ready()
    sim.control("insert_unknown", {}, 1.0)
    assert poll(sim, 1.1) == b"\x0b"


def test_unplugged_is_silent_and_comes_back_reset() -> None:
    sim = ready()
    bus = SimBus(sim)
    sim.control("unplug", {}, 1.0)
    assert bus.handle(POLL, 1.1) == Silence()
    sim.control("plug", {}, 2.0)
    answer = bus.handle(POLL, 2.1)
    assert data(answer) == bytes.fromhex("0609")
    assert sim.status()["enabled"] == []


def test_power_cycle_gives_back_the_escrowed_bill() -> None:
    sim = ready()
    sim.control("insert_bill", {"bill_type": 5}, 1.0)
    poll(sim, 1.1)
    assert sim.control("power_cycle", {}, 1.2) == {"returned_bill": 5}
    assert poll(sim, 1.3) == bytes.fromhex("0609")
    assert sim.status()["escrow"] is None
    assert sim.status()["stacked_value"] == 0


def test_level_1_ignores_level_2_expansion() -> None:
    level1 = SimBillValidator(level=1)
    assert len(data(level1.handle(b"\x37\x00", 0.0))) == 29
    assert level1.handle(b"\x37\x02", 0.0) == Silence()
    level2 = SimBillValidator()
    assert len(data(level2.handle(b"\x37\x02", 0.0))) == 33
    assert level2.handle(b"\x37\x01\x00\x00\x00\x00", 0.0) == Ack()
    assert level2.handle(b"\x37\x05", 0.0) == Silence()  # not a recycler


def test_malformed_command_is_ignored() -> None:
    sim = SimBillValidator()
    assert sim.handle(b"\x35\x07", 0.0) == Silence()
    assert sim.handle(b"\x34\x00", 0.0) == Silence()


@pytest.mark.parametrize(
    ("action", "args", "problem"),
    [
        ("fly", {}, "no action 'fly'"),
        ("insert_bill", {}, "bill_type"),
        ("insert_bill", {"bill_type": 9}, "no bill type 9"),
        ("insert_bill", {"value": 1234}, "worth 1234"),
        ("set_escrow_timeout", {"seconds": -1}, "seconds"),
    ],
)
def test_bad_control_requests_say_why(action: str, args: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SimBillValidator().control(action, args, 0.0)


def test_non_integer_bill_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="integer"):
        SimBillValidator().control("insert_bill", {"bill_type": True}, 0.0)


def test_command_lengths_come_from_the_codec() -> None:
    sim = SimBillValidator()
    assert sim.command_length(b"\x34") == 5
    assert sim.command_length(b"\x37") is None
    assert sim.command_length(b"\x37\x01") == 6
