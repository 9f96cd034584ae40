"""Coin changer codec: spec vectors (mdb.md section 3), round trips and garbage."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.mdb.changer import (
    CHANGER,
    Acknowledged,
    AlternativePayout,
    ChangerIdentification,
    ChangerSetup,
    ChangerStatus,
    CoinDeposited,
    CoinType,
    DiagnosticStatus,
    DiagnosticStatusRequest,
    Dispense,
    FeatureEnable,
    Identification,
    ManualFillReport,
    ManualFillReportRequest,
    ManualPayoutReport,
    ManualPayoutReportRequest,
    PayoutStatusAnswer,
    PayoutStatusRequest,
    PayoutValue,
    PayoutValuePoll,
    Poll,
    PollAnswer,
    Reset,
    Route,
    Setup,
    StatusCode,
    TubeStatus,
    TubeStatusAnswer,
)
from protocols.mdb.changer.poll import CoinsDispensedManually, SlugsDetected
from protocols.mdb.errors import DecodeError, MdbError
from protocols.mdb.message import Answer, Command
from protocols.money import CURRENCIES, Money

# --- spec vectors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "block"),
    [
        (Reset(), "08"),
        (Setup(), "09"),
        (TubeStatus(), "0a"),
        (Poll(), "0b"),
        (CoinType(frozenset(), frozenset()), "0c00000000"),
        (CoinType(frozenset(range(5)), frozenset(range(16))), "0c001fffff"),
        (Dispense(coin_type=2, count=15), "0df2"),
        (Identification(), "0f00"),
        (FeatureEnable(0x3), "0f0100000003"),
        (AlternativePayout(7), "0f0207"),
        (PayoutStatusRequest(), "0f03"),
        (PayoutValuePoll(), "0f04"),
        (DiagnosticStatusRequest(), "0f05"),
        (ManualFillReportRequest(), "0f06"),
        (ManualPayoutReportRequest(), "0f07"),
    ],
)
def test_command_bytes(command: Command, block: str) -> None:
    raw = bytes.fromhex(block)
    assert command.to_block(0x08) == raw
    assert CHANGER.decode_command(raw) == command
    assert CHANGER.command_length(raw[:2]) == len(raw)


def test_vender_setup_vector() -> None:
    payload = bytes.fromhex("021643640200170102050a0a19" + "00" * 10)
    setup = CHANGER.decode_answer(Setup(), payload)
    assert isinstance(setup, ChangerSetup)
    assert setup.level == 2
    assert setup.currency == CURRENCIES["RUB"]
    assert (setup.scale_factor, setup.decimal_places) == (100, 2)
    assert setup.routing == frozenset({0, 1, 2, 4})
    assert setup.coin_credits[:7] == (1, 2, 5, 10, 10, 25, 0)
    scaling = setup.scaling(CURRENCIES["RUB"])
    assert setup.coin_value(5, scaling) == Money(2500, "RUB")  # 25 x 1.00
    assert setup.coin_value(6, scaling) is None


def test_short_setup_pads_unused_types() -> None:
    # VND changer with five coin types: 7 header bytes + 5 credits.
    setup = CHANGER.decode_answer(Setup(), bytes.fromhex("0317046400001f02050a1432"))
    assert isinstance(setup, ChangerSetup)
    assert setup.coin_types == frozenset(range(5))
    assert setup.routing == frozenset(range(5))
    assert setup.coin_credits[5:] == (0,) * 11
    values = setup.coin_values(setup.scaling(CURRENCIES["VND"]))
    assert [v.minor if v else None for v in values[:6]] == [200, 500, 1000, 2000, 5000, None]


def test_short_tube_status_pads_with_zero() -> None:
    tubes = CHANGER.decode_answer(TubeStatus(), bytes.fromhex("00020a3c00"))
    assert tubes == TubeStatusAnswer(frozenset({1}), (10, 60, 0))
    assert len(tubes.counts) == 16
    flagged = CHANGER.decode_answer(TubeStatus(), bytes.fromhex("00040a3c00"))
    assert isinstance(flagged, TubeStatusAnswer)
    assert flagged.suspect == frozenset({2})  # full flag, count 0


@pytest.mark.parametrize(
    ("hexdata", "items"),
    [
        ("", ()),
        ("0b", (ChangerStatus(StatusCode.CHANGER_WAS_RESET),)),
        ("5214", (CoinDeposited(2, Route.TUBE, 20),)),
        ("4403", (CoinDeposited(4, Route.CASH_BOX, 3),)),
        ("7100", (CoinDeposited(1, Route.REJECTED, 0),)),
        ("b20c", (CoinsDispensedManually(2, 3, 12),)),
        ("23", (SlugsDetected(3),)),
        ("02", (ChangerStatus(StatusCode.PAYOUT_BUSY),)),
        ("0e", (ChangerStatus(0x0E),)),
        (
            "015015210c",
            (
                ChangerStatus(StatusCode.ESCROW_REQUEST),
                CoinDeposited(0, Route.TUBE, 21),
                SlugsDetected(1),
                ChangerStatus(StatusCode.COIN_JAM),
            ),
        ),
    ],
)
def test_poll_item_patterns(hexdata: str, items: tuple[object, ...]) -> None:
    answer = CHANGER.decode_answer(Poll(), bytes.fromhex(hexdata))
    assert answer == PollAnswer(items)  # type: ignore[arg-type]
    assert answer.to_bytes().hex() == hexdata


def test_all_thirteen_statuses_have_names() -> None:
    assert [int(s) for s in StatusCode] == list(range(1, 14))


@pytest.mark.parametrize("hexdata", ["50", "0b52", "80", "2150"])
def test_cut_off_poll_item_raises_decode_error(hexdata: str) -> None:
    with pytest.raises(DecodeError, match="cut off"):
        CHANGER.decode_answer(Poll(), bytes.fromhex(hexdata))


def test_payout_sequence_from_vender() -> None:
    assert AlternativePayout(7).to_block(0x08).hex() == "0f0207"
    busy = CHANGER.decode_answer(Poll(), b"\x02")
    assert isinstance(busy, PollAnswer)
    assert busy.has_status(StatusCode.PAYOUT_BUSY)
    assert CHANGER.decode_answer(Poll(), b"") == PollAnswer()
    status = CHANGER.decode_answer(PayoutStatusRequest(), bytes.fromhex("07000000"))
    assert status == PayoutStatusAnswer((7,))


def test_identification_with_and_without_feature_bytes() -> None:
    raw = b"VFSSN0000000042MODEL-X     " + bytes.fromhex("0123") + bytes.fromhex("00000003")
    ident = CHANGER.decode_answer(Identification(), raw)
    assert ident == ChangerIdentification("VFS", "SN0000000042", "MODEL-X", 0x0123, 3)
    assert isinstance(ident, ChangerIdentification)
    assert ident.version == 123
    short = CHANGER.decode_answer(Identification(), raw[:29])
    assert isinstance(short, ChangerIdentification)
    assert short.features == 0


@pytest.mark.parametrize(
    ("command", "hexdata"),
    [
        (Setup(), "021643"),
        (TubeStatus(), "00"),
        (Identification(), "5646"),
        (DiagnosticStatusRequest(), "030000"),
        (PayoutValuePoll(), "0102"),
        (Reset(), "00"),
        (CoinType(), "01"),
        (Setup(), "00" * 24),
    ],
)
def test_malformed_answers_raise_decode_error(command: Command, hexdata: str) -> None:
    with pytest.raises(DecodeError):
        CHANGER.decode_answer(command, bytes.fromhex(hexdata))


def test_ack_only_commands_read_empty_as_acknowledged() -> None:
    assert CHANGER.decode_answer(Dispense(0, 1), b"") == Acknowledged()
    assert CHANGER.decode_answer(PayoutStatusRequest(), b"") == Acknowledged()


@pytest.mark.parametrize("hexdata", ["30", "0e", "0f", "0c0000", "0d", "0f01", "0f9900", "0b00"])
def test_bad_command_blocks(hexdata: str) -> None:
    with pytest.raises(DecodeError):
        CHANGER.decode_command(bytes.fromhex(hexdata))


def test_constructors_refuse_out_of_range_values() -> None:
    with pytest.raises(ValueError, match=r"0\.\.15 coins"):
        Dispense(0, 16)
    with pytest.raises(ValueError, match=r"0\.\.255 units"):
        AlternativePayout(256)
    with pytest.raises(ValueError, match=r"coin types must be 0\.\.15"):
        CoinType(frozenset({16}))


# --- properties ---------------------------------------------------------------------

types = st.frozensets(st.integers(0, 15))
byte = st.integers(0, 255)
per_type = st.lists(byte, max_size=16).map(tuple)
text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=3)
long_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12)

commands = st.one_of(
    st.sampled_from(
        [
            Reset(),
            Setup(),
            TubeStatus(),
            Poll(),
            Identification(),
            PayoutStatusRequest(),
            PayoutValuePoll(),
            DiagnosticStatusRequest(),
            ManualFillReportRequest(),
            ManualPayoutReportRequest(),
        ]
    ),
    st.builds(CoinType, types, types),
    st.builds(Dispense, st.integers(0, 15), st.integers(0, 15)),
    st.builds(FeatureEnable, st.integers(0, 0xFFFFFFFF)),
    st.builds(AlternativePayout, byte),
)

poll_items = st.one_of(
    st.builds(CoinsDispensedManually, st.integers(0, 15), st.integers(0, 7), byte),
    st.builds(CoinDeposited, st.integers(0, 15), st.sampled_from(Route), byte),
    st.builds(SlugsDetected, st.integers(0, 31)),
    st.builds(
        ChangerStatus, st.integers(0, 15).map(lambda c: StatusCode(c) if 1 <= c <= 13 else c)
    ),
)

answers: st.SearchStrategy[tuple[Command, Answer]] = st.one_of(
    st.builds(
        lambda *a: (Setup(), ChangerSetup(*a)),
        st.integers(2, 3),
        st.integers(0, 0xFFFF),
        byte,
        byte,
        types,
        per_type,
    ),
    st.builds(lambda f, c: (TubeStatus(), TubeStatusAnswer(f, c)), types, per_type),
    st.builds(lambda i: (Poll(), PollAnswer(tuple(i))), st.lists(poll_items, max_size=8)),
    st.builds(
        lambda *a: (Identification(), ChangerIdentification(*a)),
        text,
        long_text,
        long_text,
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFFFFFF),
    ),
    st.builds(lambda c: (PayoutStatusRequest(), PayoutStatusAnswer(c)), per_type.filter(bool)),
    st.builds(lambda c: (ManualFillReportRequest(), ManualFillReport(c)), per_type.filter(bool)),
    st.builds(
        lambda c: (ManualPayoutReportRequest(), ManualPayoutReport(c)), per_type.filter(bool)
    ),
    st.builds(lambda u: (PayoutValuePoll(), PayoutValue(u)), byte),
    st.builds(
        lambda p: (DiagnosticStatusRequest(), DiagnosticStatus(tuple(p))),
        st.lists(st.tuples(byte, byte), min_size=1, max_size=8),
    ),
)


@settings(max_examples=200)
@given(commands)
def test_commands_round_trip(command: Command) -> None:
    block = command.to_block(0x08)
    assert CHANGER.command_length(block[:2]) == len(block)
    assert CHANGER.decode_command(block) == command


@settings(max_examples=200)
@given(answers)
def test_answers_round_trip(pair: tuple[Command, Answer]) -> None:
    command, answer = pair
    assert CHANGER.decode_answer(command, answer.to_bytes()) == answer


@settings(max_examples=200)
@given(st.binary(max_size=40))
def test_garbage_commands_raise_only_mdb_errors(block: bytes) -> None:
    with contextlib.suppress(MdbError):
        CHANGER.decode_command(block)


@settings(max_examples=200)
@given(commands, st.binary(max_size=40))
def test_garbage_answers_raise_only_mdb_errors(command: Command, payload: bytes) -> None:
    with contextlib.suppress(MdbError):
        CHANGER.decode_answer(command, payload)


@settings(max_examples=100)
@given(st.binary(min_size=1, max_size=4))
def test_command_length_never_fails(prefix: bytes) -> None:
    length = CHANGER.command_length(prefix)
    assert length is None or 1 <= length <= 6


@settings(max_examples=100)
@given(
    st.builds(ChangerSetup, st.integers(2, 3), st.integers(0, 0xFFFF), byte, byte, types, per_type),
    st.integers(0, 16),
)
def test_any_short_setup_decodes_as_unused_types(setup: ChangerSetup, kept: int) -> None:
    short = CHANGER.decode_answer(Setup(), setup.to_bytes()[: 7 + kept])
    assert isinstance(short, ChangerSetup)
    assert short.coin_credits == setup.coin_credits[:kept] + (0,) * (16 - kept)


@settings(max_examples=100)
@given(st.builds(TubeStatusAnswer, types, per_type), st.integers(0, 16))
def test_any_short_tube_status_decodes_as_empty_tubes(tubes: TubeStatusAnswer, kept: int) -> None:
    short = CHANGER.decode_answer(TubeStatus(), tubes.to_bytes()[: 2 + kept])
    assert short == TubeStatusAnswer(tubes.full, tubes.counts[:kept])
