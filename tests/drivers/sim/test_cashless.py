"""The simulated reader's firmware, driven block by block as a VMC would."""

from __future__ import annotations

import json

import pytest

from drivers.sim.base import Silence
from drivers.sim.cashless import SimCashlessReader
from protocols.mdb.cashless import (
    CASHLESS,
    CASHLESS_EXPANDED,
    FEATURE_32BIT,
    FEATURE_NEGATIVE_VEND,
    BeginSession,
    CashlessState,
    CmdOutOfSequence,
    EndSession,
    ExpansionRequestId,
    Item,
    JustReset,
    Malfunction,
    OptionalFeatureEnabled,
    PeripheralId,
    Poll,
    ReaderCancel,
    ReaderEnable,
    Reset,
    SessionCancelRequest,
    SessionComplete,
    SetupConfig,
    SetupPrices,
    VendApproved,
    VendCancel,
    VendDenied,
    VendFailure,
    VendRequest,
    VendSuccess,
)
from protocols.mdb.cashless.answers import Cancelled
from protocols.mdb.message import Command
from protocols.mdb.wire import Ack, Data

Answer = tuple[Item, ...] | str


def send(sim: SimCashlessReader, command: Command, ack: bool = True, now: float = 0.0) -> Answer:
    reply = sim.handle(command.to_block(sim.address), now)
    if isinstance(reply, Silence):
        return "silence"
    if isinstance(reply, Ack):
        return "ack"
    assert isinstance(reply, Data)
    sim.acked(ack)
    codec = CASHLESS_EXPANDED if sim.expanded else CASHLESS
    return codec.decode_answer(command, reply.payload).items


def configured(**kwargs: object) -> SimCashlessReader:
    sim = SimCashlessReader(**kwargs)  # type: ignore[arg-type]
    assert send(sim, Poll()) == (JustReset(),)
    send(sim, SetupConfig(3))
    return sim


def in_session(funds: int = 50_000, **kwargs: object) -> SimCashlessReader:
    sim = configured(**kwargs)
    send(sim, ReaderEnable())
    sim.control("present_card", {"funds": funds}, 0.0)
    items = send(sim, Poll())
    assert isinstance(items, tuple)
    assert isinstance(items[0], BeginSession)
    return sim


def test_reports_just_reset_until_the_vmc_acks_it() -> None:
    sim = SimCashlessReader()
    assert send(sim, Poll(), ack=False) == (JustReset(),)
    assert send(sim, Poll()) == (JustReset(),)
    assert send(sim, Poll()) == "ack"
    assert sim.state is CashlessState.INACTIVE


def test_a_link_that_never_reports_the_ack_does_not_cause_endless_resends() -> None:
    sim = SimCashlessReader()
    assert isinstance(sim.handle(b"\x12", 0.0), Data)
    assert isinstance(sim.handle(b"\x12", 0.0), Ack)


def test_setup_answers_reader_config_directly_or_on_a_later_poll() -> None:
    sim = SimCashlessReader(currency_code=0x1978, decimal_places=2, max_response_time=9)
    send(sim, Poll())
    assert send(sim, SetupConfig(3)) == (sim.reader_config,)
    assert sim.reader_config.max_response_time == 9
    assert sim.state is CashlessState.DISABLED
    late = SimCashlessReader(config_on_later_poll=True)
    send(late, Poll())
    assert send(late, SetupConfig(3)) == "ack"
    assert send(late, Poll()) == (late.reader_config,)


def test_a_lost_direct_answer_comes_again_on_the_next_poll() -> None:
    sim = SimCashlessReader()
    send(sim, Poll())
    send(sim, SetupConfig(3), ack=False)
    assert send(sim, Poll()) == (sim.reader_config,)


def test_peripheral_id_follows_request_id_with_level_3_option_bits() -> None:
    sim = configured()
    assert send(sim, ExpansionRequestId("VFL", "1", "vendfleet", 0x0100)) == "ack"
    items = send(sim, Poll())
    assert isinstance(items, tuple)
    ident = items[0]
    assert isinstance(ident, PeripheralId)
    assert ident.features == FEATURE_32BIT | FEATURE_NEGATIVE_VEND
    level1 = configured(level=1)
    send(level1, ExpansionRequestId("VFL", "1", "vendfleet", 0x0100))
    items = send(level1, Poll())
    assert isinstance(items, tuple)
    assert isinstance(items[0], PeripheralId)
    assert items[0].features is None


def test_illegal_commands_are_reported_out_of_sequence_with_the_state() -> None:
    sim = configured()
    assert send(sim, VendRequest(100, 1)) == "ack"
    assert send(sim, Poll()) == (CmdOutOfSequence(2),)  # 2 = disabled
    level1 = configured(level=1)
    send(level1, SessionComplete())
    assert send(level1, Poll()) == (CmdOutOfSequence(None),)
    fresh = SimCashlessReader()
    send(fresh, Poll())
    send(fresh, ReaderEnable())  # no SETUP yet
    assert send(fresh, Poll()) == (CmdOutOfSequence(1),)


def test_expanded_mode_changes_the_money_format() -> None:
    sim = configured()
    send(sim, OptionalFeatureEnabled(FEATURE_32BIT | 0x8000))
    assert sim.expanded
    assert sim.features == FEATURE_32BIT  # only what it offered
    assert sim.command_length(bytes.fromhex("1300")) == 8
    send(sim, SetupPrices(100, 0))  # 16-bit form: wrong now
    assert send(sim, Poll()) == (CmdOutOfSequence(2),)
    send(sim, SetupPrices(100_000, 0, 0x1704))
    assert sim.max_price == 100_000


def test_session_vend_and_ledger() -> None:
    sim = in_session(50_000, supports_expanded=False)
    send(sim, VendRequest(20_000, 4))
    assert send(sim, Poll()) == (VendApproved(20_000),)
    send(sim, VendSuccess(4))
    assert sim.status()["session_funds"] == 30_000
    send(sim, VendRequest(40_000, 5))  # more than is left on the card
    assert send(sim, Poll()) == (VendDenied(),)
    send(sim, VendRequest(10_000, 6))
    send(sim, Poll())
    send(sim, VendFailure())
    status = sim.status()
    assert (status["charged"], status["refunded"]) == (30_000, 10_000)
    assert status["last_vend"] == {
        "item": 6,
        "price": 10_000,
        "negative": False,
        "outcome": "refunded",
    }
    send(sim, SessionComplete())
    assert send(sim, Poll()) == (EndSession(),)
    assert sim.state is CashlessState.ENABLED
    json.dumps(status)  # control results travel as JSON


def test_failed_refund_reports_malfunction_c0() -> None:
    sim = in_session()
    sim.control("fail_refunds", {}, 0.0)
    send(sim, VendRequest(10_000, 1, wide=False))
    send(sim, Poll())
    send(sim, VendFailure())
    assert send(sim, Poll()) == (Malfunction(0xC0),)
    assert sim.status()["refunded"] == 0


def test_vend_cancel_before_approval_is_denied_and_too_late_after() -> None:
    sim = in_session()
    sim.control("set_policy", {"policy": "timeout"}, 0.0)
    send(sim, VendRequest(10_000, 1))
    assert send(sim, Poll()) == "ack"
    assert send(sim, VendCancel()) == (VendDenied(),)
    sim.control("set_policy", {"policy": "approve"}, 0.0)
    send(sim, VendRequest(10_000, 1))
    assert send(sim, VendCancel()) == "ack"  # already approved: ignored
    assert send(sim, Poll()) == (VendApproved(10_000),)
    assert sim.state is CashlessState.VEND


def test_customer_cancel_and_session_timeout_ask_for_the_session_end() -> None:
    sim = in_session()
    sim.control("cancel_session", {}, 0.0)
    assert send(sim, Poll()) == (SessionCancelRequest(),)
    timed = in_session(session_timeout=30.0)
    assert send(timed, Poll(), now=10.0) == "ack"
    assert send(timed, Poll(), now=31.0) == (SessionCancelRequest(),)
    assert send(timed, Poll(), now=40.0) == "ack"  # asked once


def test_power_cycle_voids_an_unsettled_approval() -> None:
    sim = in_session()
    send(sim, VendRequest(10_000, 1))
    send(sim, Poll())
    sim.control("power_cycle", {}, 0.0)
    assert sim.state is CashlessState.INACTIVE
    assert send(sim, Poll()) == (JustReset(),)
    status = sim.status()
    assert status["charged"] == status["refunded"] == 10_000
    assert status["last_vend"] == {"item": 1, "price": 10_000, "outcome": "voided"}


def test_reset_command_and_reader_cancel() -> None:
    sim = configured()
    send(sim, ReaderEnable())
    assert send(sim, ReaderCancel()) == (Cancelled(),)
    assert send(sim, Reset()) == "ack"
    assert send(sim, Poll()) == (JustReset(),)
    assert not sim.expanded


def test_unplugged_other_address_and_garbage_get_silence() -> None:
    sim = SimCashlessReader(address=0x60)
    assert send(sim, Poll()) == (JustReset(),)
    assert sim.handle(b"\x12", 0.0) == Silence()
    assert sim.handle(bytes.fromhex("6309"), 0.0) == Silence()
    sim.control("unplug", {}, 0.0)
    assert send(sim, Poll()) == "silence"
    sim.control("plug", {}, 0.0)
    assert send(sim, Poll()) == "ack"


@pytest.mark.parametrize(
    ("action", "args", "problem"),
    [
        ("present_card", {"funds": 100}, "not enabled"),
        ("set_policy", {"policy": "maybe"}, "policy must be one of"),
        ("cancel_session", {}, "no session"),
        ("insert_coin", {}, "no action"),
    ],
)
def test_bad_control_requests_name_the_problem(
    action: str, args: dict[str, object], problem: str
) -> None:
    sim = configured()
    with pytest.raises(ValueError, match=problem):
        sim.control(action, args, 0.0)


@pytest.mark.parametrize(
    ("funds", "problem"), [(-5, "non-negative"), ("lots", "non-negative"), (70_000, "do not fit")]
)
def test_card_funds_are_checked(funds: object, problem: str) -> None:
    sim = configured(supports_expanded=False)
    send(sim, ReaderEnable())
    with pytest.raises(ValueError, match=problem):
        sim.control("present_card", {"funds": funds}, 0.0)


def test_constructor_refuses_bad_addresses_and_levels() -> None:
    with pytest.raises(ValueError, match="not a cashless reader address"):
        SimCashlessReader(address=0x08)
    with pytest.raises(ValueError, match="level must be 1, 2 or 3"):
        SimCashlessReader(level=4)
