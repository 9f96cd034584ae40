"""Bill validator codec against the spec tables (reference mdb.md section 4)."""

from __future__ import annotations

import pytest

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
    RawAnswer,
    RecyclerStatus,
    Reset,
    Security,
    Setup,
    Stacker,
    StackerAnswer,
    StatusCode,
    ValidatorStatus,
)
from protocols.mdb.errors import DecodeError
from protocols.mdb.message import Command, DeviceCodec
from protocols.money import Money, currency

# SETUP of a Vietnamese validator, byte by byte as in the table of 4.2.
VND_SETUP = bytes.fromhex(
    "02"  # Z1 level 2
    "1704"  # Z2-Z3 currency: ISO numeric 704 (VND) in BCD
    "03e8"  # Z4-Z5 scale factor 1000
    "00"  # Z6 decimal places
    "01f4"  # Z7-Z8 stacker capacity 500
    "0003"  # Z9-Z10 high security on types 0 and 1
    "ff"  # Z11 escrow capable
    "0102050a143264c8" + "00" * 8  # Z12-Z27 credits 1 2 5 10 20 50 100 200
)


def test_codec_satisfies_the_device_codec_protocol() -> None:
    codec: DeviceCodec = BILL_VALIDATOR
    assert codec.name == "bill"
    assert codec.addresses == (0x30,)


def test_setup_layout() -> None:
    setup = BILL_VALIDATOR.decode_answer(Setup(), VND_SETUP)
    assert setup == BillSetup(
        level=2,
        currency_code=0x1704,
        scale_factor=1000,
        decimal_places=0,
        stacker_capacity=500,
        high_security=frozenset({0, 1}),
        escrow_capable=True,
        bill_credits=(1, 2, 5, 10, 20, 50, 100, 200, 0, 0, 0, 0, 0, 0, 0, 0),
    )
    assert isinstance(setup, BillSetup)
    assert setup.currency == currency("VND")
    assert setup.to_bytes() == VND_SETUP


def test_setup_values_through_scaling() -> None:
    setup = BILL_VALIDATOR.decode_answer(Setup(), VND_SETUP)
    assert isinstance(setup, BillSetup)
    values = setup.bill_values(currency("VND"))
    assert values[0] == Money(1000, "VND")
    assert values[7] == Money(200000, "VND")
    assert sorted(values) == list(range(8))


def test_usd_setup_stacker_capacity_is_high_byte_first() -> None:
    # US example from the spec: scale 0x0064, 2 decimals, capacity 0x0190 = 400.
    data = bytes.fromhex("010001006402019000000001050a14")
    setup = BILL_VALIDATOR.decode_answer(Setup(), data)
    assert isinstance(setup, BillSetup)
    assert setup.stacker_capacity == 400
    assert setup.currency == currency("USD")
    assert not setup.escrow_capable
    assert setup.bill_values(currency("USD")) == {
        0: Money(100, "USD"),
        1: Money(500, "USD"),
        2: Money(1000, "USD"),
        3: Money(2000, "USD"),
    }


def test_short_setup_is_padded_with_empty_bill_types() -> None:
    setup = BILL_VALIDATOR.decode_answer(Setup(), VND_SETUP[:15])
    assert isinstance(setup, BillSetup)
    assert setup.bill_credits == (1, 2, 5, 10) + (0,) * 12


def test_setup_cut_off_before_its_fixed_fields_is_an_error() -> None:
    with pytest.raises(DecodeError, match="cut off"):
        BILL_VALIDATOR.decode_answer(Setup(), VND_SETUP[:10])


@pytest.mark.parametrize(
    ("byte", "item"),
    [
        (0x83, BillRouted(3, BillRouting.STACKED)),
        (0x93, BillRouted(3, BillRouting.ESCROW)),
        (0xA3, BillRouted(3, BillRouting.RETURNED)),
        (0xB3, BillRouted(3, BillRouting.TO_RECYCLER)),
        (0xC3, BillRouted(3, BillRouting.DISABLED_REJECTED)),
        (0xD3, BillRouted(3, BillRouting.TO_RECYCLER_MANUAL)),
        (0xE3, BillRouted(3, BillRouting.MANUAL_DISPENSE)),
        (0xF3, BillRouted(3, BillRouting.RECYCLER_TO_CASHBOX)),
        (0x8F, BillRouted(15, BillRouting.STACKED)),
        (0x45, DisabledBillAttempts(5)),
        (0x5F, DisabledBillAttempts(31)),
        (0x01, ValidatorStatus(StatusCode.DEFECTIVE_MOTOR)),
        (0x05, ValidatorStatus(StatusCode.VALIDATOR_JAMMED)),
        (0x0C, ValidatorStatus(StatusCode.POSSIBLE_CREDITED_BILL_REMOVAL)),
        (0x21, RecyclerStatus(0x21)),
        (0x2F, RecyclerStatus(0x2F)),
    ],
)
def test_poll_item_patterns(byte: int, item: object) -> None:
    answer = BILL_VALIDATOR.decode_answer(Poll(), bytes((byte,)))
    assert answer.to_bytes() == bytes((byte,))
    assert getattr(answer, "items", None) == (item,)


def test_unknown_status_is_kept_raw() -> None:
    answer = BILL_VALIDATOR.decode_answer(Poll(), b"\x0f")
    assert isinstance(answer, PollAnswer)
    (item,) = answer.items
    assert isinstance(item, ValidatorStatus)
    assert item.code == 0x0F
    assert not isinstance(item.code, StatusCode)


def test_after_reset_poll_reads_was_reset_then_disabled() -> None:
    answer = BILL_VALIDATOR.decode_answer(Poll(), bytes.fromhex("0609"))
    assert getattr(answer, "items", None) == (
        ValidatorStatus(StatusCode.VALIDATOR_WAS_RESET),
        ValidatorStatus(StatusCode.VALIDATOR_DISABLED),
    )


@pytest.mark.parametrize(
    ("command", "block"),
    [
        (Reset(), "30"),
        (Setup(), "31"),
        (Security(frozenset({0, 1})), "320003"),
        (Poll(), "33"),
        (BillType(frozenset(range(8)), frozenset(range(8))), "3400ff00ff"),
        (BillType(), "3400000000"),
        (BillType(frozenset({15}), frozenset({8})), "3480000100"),
        (Escrow(stack=True), "3501"),
        (Escrow(stack=False), "3500"),
        (Stacker(), "36"),
        (IdentificationL1(), "3700"),
        (FeatureEnable(0x00000003), "370100000003"),
        (IdentificationL2(), "3702"),
        (ExpansionRaw(0x06, bytes.fromhex("020005")), "3706020005"),
    ],
)
def test_command_blocks(command: Command, block: str) -> None:
    raw = bytes.fromhex(block)
    assert command.to_block(0x30) == raw
    assert BILL_VALIDATOR.decode_command(raw) == command
    assert BILL_VALIDATOR.command_length(raw[:1]) in (None, len(raw))
    assert BILL_VALIDATOR.command_length(raw) == len(raw)


def test_recycler_sub_commands_decode_as_raw_expansion() -> None:
    for sub in range(0x03, 0x0B):
        command = BILL_VALIDATOR.decode_command(bytes((0x37, sub)))
        assert command == ExpansionRaw(sub)
        assert BILL_VALIDATOR.decode_answer(command, b"\x01\x02") == RawAnswer(b"\x01\x02")


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ("", "empty"),
        ("08", "not the bill validator"),
        ("3502", "00 .return. or 01"),
        ("3400ff", "4 data bytes"),
        ("3301", "0 data bytes"),
        ("37", "without a sub-command"),
        ("370100", "FEATURE ENABLE"),
        ("370001", "no data"),
    ],
)
def test_bad_commands_say_what_is_wrong(block: str, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        BILL_VALIDATOR.decode_command(bytes.fromhex(block))


def test_stacker_answer() -> None:
    assert BILL_VALIDATOR.decode_answer(Stacker(), bytes.fromhex("8005")) == StackerAnswer(
        full=True, count=5
    )
    assert BILL_VALIDATOR.decode_answer(Stacker(), bytes.fromhex("0190")) == StackerAnswer(
        full=False, count=400
    )
    with pytest.raises(DecodeError):
        BILL_VALIDATOR.decode_answer(Stacker(), b"\x80")


IDENT = b"ABC" + b"SERIAL000042" + b"MODEL-X     " + b"\x01\x23"


def test_identification_level_1_and_2() -> None:
    level1 = BILL_VALIDATOR.decode_answer(IdentificationL1(), IDENT)
    assert level1 == BillIdentification("ABC", "SERIAL000042", "MODEL-X", 0x0123, None)
    assert isinstance(level1, BillIdentification)
    assert level1.version_text == "01.23"
    level2 = BILL_VALIDATOR.decode_answer(IdentificationL2(), IDENT + b"\x00\x00\x00\x02")
    assert level2 == BillIdentification("ABC", "SERIAL000042", "MODEL-X", 0x0123, 2)
    # A validator answering 37 02 with the short form has no option bits.
    short = BILL_VALIDATOR.decode_answer(IdentificationL2(), IDENT)
    assert isinstance(short, BillIdentification)
    assert short.features is None


def test_identification_cut_off() -> None:
    with pytest.raises(DecodeError, match="cut off"):
        BILL_VALIDATOR.decode_answer(IdentificationL1(), IDENT[:-1])
    with pytest.raises(DecodeError, match="option bits"):
        BILL_VALIDATOR.decode_answer(IdentificationL2(), IDENT + b"\x00\x00")


@pytest.mark.parametrize(
    "command", [Reset(), Security(), BillType(), Escrow(stack=True), FeatureEnable(0)]
)
def test_data_where_an_ack_belongs_is_an_error(command: Command) -> None:
    with pytest.raises(DecodeError, match="ACK"):
        BILL_VALIDATOR.decode_answer(command, b"\x00")


def test_encoding_refuses_impossible_values() -> None:
    with pytest.raises(ValueError, match=r"0\.\.15"):
        BillType(frozenset({16})).to_block(0x30)
    with pytest.raises(ValueError, match="15 bits"):
        StackerAnswer(full=False, count=0x8000).to_bytes()
    with pytest.raises(ValueError, match="16 bits"):
        BillSetup(
            2, 0x1704, 70000, 0, 500, frozenset(), escrow_capable=True, bill_credits=(1,)
        ).to_bytes()
