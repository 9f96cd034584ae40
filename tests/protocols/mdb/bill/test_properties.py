"""Properties of the bill validator codec: round trips, and garbage raises only MdbError."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.mdb.bill import (
    BILL_VALIDATOR,
    BillIdentification,
    BillRouted,
    BillRouting,
    BillSetup,
    BillType,
    DisabledBillAttempts,
    Escrow,
    ExpansionRaw,
    FeatureEnable,
    IdentificationL1,
    IdentificationL2,
    Poll,
    PollAnswer,
    RecyclerStatus,
    Reset,
    Security,
    Setup,
    Stacker,
    StackerAnswer,
    StatusCode,
    ValidatorStatus,
)
from protocols.mdb.errors import MdbError
from protocols.mdb.message import Answer, Command

SETTINGS = settings(max_examples=150, deadline=None)

types = st.frozensets(st.integers(0, 15))
u16s = st.integers(0, 0xFFFF)

fixed_commands = st.one_of(
    st.sampled_from([Reset(), Setup(), Poll(), Stacker(), IdentificationL1(), IdentificationL2()]),
    st.builds(Security, types),
    st.builds(BillType, types, types),
    st.builds(Escrow, st.booleans()),
    st.builds(FeatureEnable, st.integers(0, 0xFFFFFFFF)),
)
raw_expansions = st.builds(ExpansionRaw, st.integers(0x03, 0xFF), st.binary(max_size=20))

setups = st.builds(
    BillSetup,
    level=st.integers(0, 255),
    currency_code=u16s,
    scale_factor=u16s,
    decimal_places=st.integers(0, 255),
    stacker_capacity=u16s,
    high_security=types,
    escrow_capable=st.booleans(),
    bill_credits=st.tuples(*[st.integers(0, 255)] * 16),
)
ascii_text = st.text(alphabet=string.ascii_letters + string.digits + "-_.", max_size=12)
identifications = st.builds(
    BillIdentification,
    manufacturer=ascii_text.map(lambda s: s[:3]),
    serial=ascii_text,
    model=ascii_text,
    software_version=u16s,
    features=st.none() | st.integers(0, 0xFFFFFFFF),
)
poll_items = st.one_of(
    st.builds(BillRouted, st.integers(0, 15), st.sampled_from(BillRouting)),
    st.builds(DisabledBillAttempts, st.integers(0, 31)),
    st.builds(ValidatorStatus, st.sampled_from(StatusCode)),
    st.builds(ValidatorStatus, st.sampled_from([0x00, *range(0x0D, 0x21), *range(0x30, 0x40)])),
    st.builds(RecyclerStatus, st.integers(0x21, 0x2F)),
)
polls = st.builds(PollAnswer, st.lists(poll_items, max_size=16).map(tuple))


@SETTINGS
@given(fixed_commands)
def test_commands_round_trip_and_know_their_length(command: Command) -> None:
    block = command.to_block(0x30)
    assert BILL_VALIDATOR.decode_command(block) == command
    assert BILL_VALIDATOR.command_length(block) == len(block)


@SETTINGS
@given(raw_expansions)
def test_raw_expansion_commands_round_trip(command: ExpansionRaw) -> None:
    assert BILL_VALIDATOR.decode_command(command.to_block(0x30)) == command


def _answer_for(answer: Answer) -> Command:
    if isinstance(answer, BillSetup):
        return Setup()
    if isinstance(answer, StackerAnswer):
        return Stacker()
    if isinstance(answer, BillIdentification):
        return IdentificationL1() if answer.features is None else IdentificationL2()
    return Poll()


@SETTINGS
@given(
    st.one_of(
        setups,
        identifications,
        polls,
        st.builds(StackerAnswer, st.booleans(), st.integers(0, 0x7FFF)),
    )
)
def test_answers_round_trip(answer: Answer) -> None:
    assert BILL_VALIDATOR.decode_answer(_answer_for(answer), answer.to_bytes()) == answer


@SETTINGS
@given(setups, st.integers(11, 27))
def test_short_setup_decodes_with_padding(setup: BillSetup, length: int) -> None:
    decoded = BILL_VALIDATOR.decode_answer(Setup(), setup.to_bytes()[:length])
    assert isinstance(decoded, BillSetup)
    kept = length - 11
    assert decoded.bill_credits == setup.bill_credits[:kept] + (0,) * (16 - kept)
    assert decoded.stacker_capacity == setup.stacker_capacity


@SETTINGS
@given(st.one_of(fixed_commands, raw_expansions), st.binary(max_size=40))
def test_arbitrary_answers_raise_only_mdb_errors(command: Command, payload: bytes) -> None:
    try:
        answer = BILL_VALIDATOR.decode_answer(command, payload)
    except MdbError:
        return
    assert isinstance(answer, Answer)


@SETTINGS
@given(st.binary(max_size=40))
def test_arbitrary_command_blocks_raise_only_mdb_errors(block: bytes) -> None:
    BILL_VALIDATOR.command_length(block)
    try:
        command = BILL_VALIDATOR.decode_command(block)
    except MdbError:
        return
    assert command.to_block(0x30) == block
