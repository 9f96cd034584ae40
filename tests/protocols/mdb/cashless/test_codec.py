from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.mdb.cashless import (
    CASHLESS,
    CASHLESS_EXPANDED,
    BeginSession,
    Cancelled,
    CashSale,
    CmdOutOfSequence,
    DataEntryCancel,
    DataEntryRequest,
    DataEntryResponse,
    Diagnostic,
    DisplayRequest,
    EndSession,
    ExpansionRaw,
    ExpansionRequestId,
    Item,
    JustReset,
    Malfunction,
    NegativeVendRequest,
    OptionalFeatureEnabled,
    PeripheralId,
    Poll,
    PollAnswer,
    ReaderCancel,
    ReaderConfig,
    ReaderDisable,
    ReaderEnable,
    Reset,
    RevalueApproved,
    RevalueDenied,
    RevalueLimitAmount,
    RevalueLimitRequest,
    RevalueRequest,
    SessionCancelRequest,
    SessionComplete,
    SetupConfig,
    SetupPrices,
    TimeDateRequest,
    VendApproved,
    VendCancel,
    VendDenied,
    VendFailure,
    VendRequest,
    VendSuccess,
    WriteTimeDate,
)
from protocols.mdb.cashless.codec import CashlessCodec
from protocols.mdb.errors import DecodeError, MdbError
from protocols.mdb.message import Command, DeviceCodec
from protocols.mdb.wire import encode_command
from protocols.money import CURRENCIES, currency_from_mdb

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
name_text = st.text(alphabet=string.ascii_uppercase + string.digits + "-", max_size=12)


def money(wide: bool) -> st.SearchStrategy[int]:
    return u32 if wide else u16


def known_money(wide: bool) -> st.SearchStrategy[int | None]:
    """An amount or None, never the raw 'unknown' value (which reads back as None)."""
    top = 0xFFFFFFFF if wide else 0xFFFF
    return st.none() | st.integers(0, top - 1)


def commands(wide: bool) -> st.SearchStrategy[Command]:
    currency = u16 if wide else st.none()
    return st.one_of(
        st.sampled_from(
            [
                Reset(),
                Poll(),
                VendCancel(),
                VendFailure(),
                SessionComplete(),
                ReaderDisable(),
                ReaderEnable(),
                ReaderCancel(),
                RevalueLimitRequest(),
            ]
        ),
        st.builds(SetupConfig, u8, u8, u8, u8),
        st.builds(SetupPrices, money(wide), money(wide), currency),
        st.builds(VendRequest, money(wide), u16, st.just(wide)),
        st.builds(VendSuccess, u16),
        st.builds(CashSale, money(wide), u16, currency),
        st.builds(NegativeVendRequest, money(wide), u16, st.just(wide)),
        st.builds(DataEntryResponse, st.binary(min_size=8, max_size=8)),
        st.builds(RevalueRequest, money(wide), st.just(wide)),
        st.builds(ExpansionRequestId, name_text.map(lambda s: s[:3]), name_text, name_text, u16),
        st.builds(WriteTimeDate, st.binary(min_size=10, max_size=10)),
        st.builds(OptionalFeatureEnabled, u32),
    )


raw_expansions = st.builds(
    ExpansionRaw, u8.filter(lambda s: s not in (0x00, 0x03, 0x04)), st.binary(max_size=30)
)

FLAGS = [
    JustReset(),
    SessionCancelRequest(),
    VendDenied(),
    EndSession(),
    Cancelled(),
    RevalueApproved(),
    RevalueDenied(),
    TimeDateRequest(),
    DataEntryCancel(),
]


def fixed_items(wide: bool) -> st.SearchStrategy[Item]:
    """Items whose length is known from their code: safe anywhere in an answer."""
    return st.one_of(
        st.sampled_from(FLAGS),
        st.builds(ReaderConfig, u8, u16, u8, u8, u8, u8),
        st.builds(
            BeginSession,
            known_money(wide),
            u32,
            u8,
            u16,
            u16,
            u16,
            u8,
            st.just(wide),
        ),
        st.builds(VendApproved, known_money(wide), st.just(wide)),
        st.builds(PeripheralId, name_text.map(lambda s: s[:3]), name_text, name_text, u16, u32),
        st.builds(Malfunction, u8),
        st.builds(RevalueLimitAmount, money(wide), st.just(wide)),
        st.builds(DataEntryRequest, u8),
    )


def tail_items(wide: bool) -> st.SearchStrategy[Item]:
    """Items that take the rest of the block or have a short form: only last."""
    return st.one_of(
        fixed_items(wide),
        st.builds(ReaderConfig, u8, u16, u8, u8, u8, st.none()),
        st.builds(BeginSession, known_money(wide), st.just(None), wide=st.just(wide)),
        st.builds(BeginSession, known_money(wide), u32, u8, u16, wide=st.just(wide)),
        st.builds(PeripheralId, name_text.map(lambda s: s[:3]), name_text, name_text, u16),
        st.builds(CmdOutOfSequence, st.none() | u8),
        st.builds(DisplayRequest, u8, st.text(alphabet=string.printable, max_size=32)),
        st.builds(Diagnostic, st.binary(max_size=20)),
    )


def codec_for(wide: bool) -> CashlessCodec:
    return CASHLESS_EXPANDED if wide else CASHLESS


def test_both_codecs_satisfy_the_device_codec_protocol() -> None:
    codecs: list[DeviceCodec] = [CASHLESS, CASHLESS_EXPANDED]
    assert [(c.name, c.addresses, c.expanded) for c in (CASHLESS, CASHLESS_EXPANDED)] == [
        ("cashless", (0x10, 0x60), False),
        ("cashless", (0x10, 0x60), True),
    ]
    assert len(codecs) == 2


# --- the wire examples of reference mdb.md 5.1 / 5.2 -------------------------------


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (Reset(), (0x110, 0x010)),
        (SetupConfig(2, 0, 0, 0), (0x111, 0x000, 0x002, 0x000, 0x000, 0x000, 0x013)),
        (SetupPrices(200, 100), (0x111, 0x001, 0x000, 0x0C8, 0x000, 0x064, 0x03E)),
        (ReaderEnable(), (0x114, 0x001, 0x015)),
        (VendRequest(100, 1), (0x113, 0x000, 0x000, 0x064, 0x000, 0x001, 0x078)),
        (VendSuccess(1), (0x113, 0x002, 0x000, 0x001, 0x016)),
        (SessionComplete(), (0x113, 0x004, 0x017)),
    ],
)
def test_recorded_vmc_words(command: Command, words: tuple[int, ...]) -> None:
    block = command.to_block(0x10)
    assert encode_command(block) == words
    assert CASHLESS.decode_command(bytes(w & 0xFF for w in words[:-1])) == command
    assert CASHLESS.command_length(block[:2]) == len(block)


def test_reader_two_uses_the_same_commands_at_0x60() -> None:
    assert VendRequest(100, 1).to_block(0x60) == bytes.fromhex("6300 0064 0001")
    assert CASHLESS.decode_command(bytes.fromhex("6300 0064 0001")) == VendRequest(100, 1)
    with pytest.raises(ValueError, match="not a cashless reader address"):
        Reset().to_block(0x30)


def test_matedealer_reader_config() -> None:
    answer = CASHLESS.decode_answer(Poll(), bytes.fromhex("0101197801020500"))
    config = ReaderConfig(1, 0x1978, 1, 2, 5, 0)
    assert answer == PollAnswer((config,))
    assert currency_from_mdb(config.currency_code) == CURRENCIES["EUR"]
    flags = (config.refund_capable, config.multivend_capable, config.has_display)
    assert flags == (False, False, False)
    assert not config.supports_cash_sale


def test_just_reset_and_reader_config_in_one_answer() -> None:
    answer = CASHLESS.decode_answer(Poll(), bytes.fromhex("000101197801020500"))
    assert answer.items == (JustReset(), ReaderConfig(1, 0x1978, 1, 2, 5, 0))


def test_sniffed_level_one_begin_session() -> None:
    # Qibixx sniffer example: BEGIN SESSION with funds 0x01F4 and nothing else.
    answer = CASHLESS.decode_answer(Poll(), bytes.fromhex("0301f4"))
    assert answer.items == (BeginSession(500),)


def test_short_answers_decode_with_defaults() -> None:
    config = CASHLESS.decode_answer(Poll(), bytes.fromhex("01021978010205"))
    assert config.items == (ReaderConfig(2, 0x1978, 1, 2, 5, None),)
    ident = b"\x09" + b"ABC" + b"SERIAL000001" + b"MODEL-X     " + b"\x01\x23"
    answer = CASHLESS.decode_answer(Poll(), ident)
    assert answer.items == (PeripheralId("ABC", "SERIAL000001", "MODEL-X", 0x0123, None),)
    assert CASHLESS.decode_answer(Poll(), b"\x0b").items == (CmdOutOfSequence(None),)
    assert CASHLESS.decode_answer(Poll(), b"\x0b\x04").items == (CmdOutOfSequence(4),)


def test_unknown_amounts_read_as_none() -> None:
    assert CASHLESS.decode_answer(Poll(), bytes.fromhex("05ffff")).items == (VendApproved(None),)
    expanded = CASHLESS_EXPANDED.decode_answer(Poll(), bytes.fromhex("03ffffffff"))
    assert expanded.items == (BeginSession(None, wide=True),)


def test_expanded_prices_carry_the_currency_code() -> None:
    block = SetupPrices(100_000, 0, 0x1704).to_block(0x10)
    assert block == bytes.fromhex("1101 000186a0 00000000 1704")
    assert CASHLESS_EXPANDED.command_length(block[:2]) == 12
    assert CASHLESS.command_length(block[:2]) == 6
    # Commands are read by their length, whatever the codec's mode.
    assert CASHLESS.decode_command(block) == SetupPrices(100_000, 0, 0x1704)


def test_expanded_vend_approved_is_32_bit() -> None:
    answer = CASHLESS_EXPANDED.decode_answer(
        VendRequest(0, 1, wide=True), bytes.fromhex("05000186a0")
    )
    assert answer.items == (VendApproved(100_000, wide=True),)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("0c", "unknown cashless answer item"),
        ("05 00", "cut short"),
        ("0a", "cut short"),
        ("01 01 19 78", "cut short"),
        ("03 00 64 12 34", "cut inside media_id"),
        ("10", "unknown cashless answer item"),
    ],
)
def test_bad_answers_name_the_problem(payload: str, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        CASHLESS.decode_answer(Poll(), bytes.fromhex(payload))


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ("", "empty"),
        ("30", "not a cashless reader"),
        ("16", "unused"),
        ("13 09", "unknown VEND sub-command"),
        ("13 00 00 64", "needs 4 or 6 data bytes"),
        ("10 00", "RESET needs 0"),
        ("11", "needs a sub-command"),
    ],
)
def test_bad_commands_name_the_problem(block: str, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        CASHLESS.decode_command(bytes.fromhex(block))


def test_values_that_do_not_fit_are_refused_when_built() -> None:
    with pytest.raises(ValueError, match="price 70000 does not fit in 2 bytes"):
        VendRequest(70_000, 1)
    assert VendRequest(70_000, 1, wide=True).to_block(0x10) == bytes.fromhex("1300 00011170 0001")
    with pytest.raises(ValueError, match="own command class"):
        ExpansionRaw(0x04)


# --- properties ----------------------------------------------------------------------


@settings(max_examples=200)
@given(
    st.booleans().flatmap(lambda w: st.tuples(st.just(w), commands(w))),
    st.sampled_from([0x10, 0x60]),
)
def test_every_command_round_trips(case: tuple[bool, Command], address: int) -> None:
    wide, command = case
    block = command.to_block(address)
    codec = codec_for(wide)
    assert codec.decode_command(block) == command
    assert codec.command_length(block) == len(block)
    assert encode_command(block)[0] == 0x100 | address | (block[0] & 7)


@settings(max_examples=100)
@given(raw_expansions)
def test_raw_expansion_commands_round_trip(command: ExpansionRaw) -> None:
    assert CASHLESS.decode_command(command.to_block(0x60)) == command


@settings(max_examples=200)
@given(
    st.booleans().flatmap(
        lambda w: st.tuples(
            st.just(w), st.lists(fixed_items(w), max_size=4), st.none() | tail_items(w)
        )
    )
)
def test_multi_item_answers_split_into_their_items(
    case: tuple[bool, list[Item], Item | None],
) -> None:
    wide, head, last = case
    items = tuple(head) + (() if last is None else (last,))
    answer = PollAnswer(items)
    assert codec_for(wide).decode_answer(Poll(), answer.to_bytes()) == answer


@settings(max_examples=200)
@given(st.binary(max_size=40), st.booleans())
def test_garbage_answers_raise_only_our_errors(payload: bytes, wide: bool) -> None:
    try:
        answer = codec_for(wide).decode_answer(Poll(), payload)
    except MdbError:
        return
    assert answer.to_bytes() == payload or any(isinstance(i, PeripheralId) for i in answer.items)


@settings(max_examples=200)
@given(st.binary(max_size=40), st.booleans())
def test_garbage_commands_raise_only_our_errors(block: bytes, wide: bool) -> None:
    codec = codec_for(wide)
    codec.command_length(block)
    try:
        command = codec.decode_command(block)
    except MdbError:
        return
    assert command.to_block(block[0] & 0xF8)[0] == block[0]
