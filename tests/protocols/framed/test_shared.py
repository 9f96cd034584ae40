"""What the dispensing-board and cabinet protocols share, checked against both."""

from __future__ import annotations

import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.cabinet import codec as cabinet
from protocols.cabinet import errors as cabinet_errors
from protocols.cabinet import messages as cabinet_messages
from protocols.cabinet.client import CabinetClient
from protocols.dispense import errors as dispense_errors
from protocols.dispense import messages as dispense
from protocols.dispense.client import DispenserClient
from protocols.framed.codec import FramedCodec
from protocols.framed.fields import FieldRules, get16, get32, u16, u32
from protocols.framed.frames import MAX_PAYLOAD
from protocols.framed.message import CommonError, FramedMessage, answer_code

CODECS: list[FramedCodec[FramedMessage, FramedMessage]] = [dispense.CODEC, cabinet.CODEC]  # type: ignore[list-item]
RULES = [
    (dispense.FIELDS, dispense_errors.DecodeError, dispense.FieldError),
    (cabinet_messages.FIELDS, cabinet_errors.DecodeError, cabinet_errors.FieldError),
]


@pytest.mark.parametrize("error_codes", [dispense.ErrorCode, cabinet_messages.ErrorCode])
def test_both_error_tables_start_with_the_common_codes(error_codes: type[enum.IntEnum]) -> None:
    # The shared simulator refuses with these, so they must mean the same in both tables.
    for common in CommonError:
        assert error_codes(int(common)).name == common.name


@pytest.mark.parametrize(("rules", "decode_error", "field_error"), RULES)
def test_field_rules_raise_the_protocols_own_errors(
    rules: FieldRules, decode_error: type[Exception], field_error: type[Exception]
) -> None:
    with pytest.raises(field_error, match=r"boot count 70000 outside 0\.\.65535"):
        rules.check("boot count", 70000, 0, 0xFFFF)
    with pytest.raises(decode_error, match="unknown CommonError code 0x09"):
        rules.enum(CommonError, 9)
    with pytest.raises(decode_error, match="payload is 3 bytes, expected 2"):
        rules.expect_len("ACK", b"abc", 2)
    with pytest.raises(decode_error, match="at least 4 expected"):
        rules.at_least("STATUS", b"abc", 4)
    with pytest.raises(decode_error, match="exceeds"):
        rules.fits(bytes(MAX_PAYLOAD + 1))
    rules.fits(bytes(MAX_PAYLOAD))


@pytest.mark.parametrize("kind", [dispense.BoardFlags, cabinet_messages.CabinetFlags])
def test_flags_refuse_bits_no_member_names(kind: type[dispense.BoardFlags]) -> None:
    known = 0
    for member in kind:
        known |= int(member)
    for rules, decode_error, _ in RULES:
        assert rules.flags(kind, known) == kind(known)
        unknown = (~known) & 0xFF
        with pytest.raises(decode_error, match="unknown bits"):
            rules.flags(kind, unknown)


@settings(max_examples=100)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_big_endian_helpers_round_trip(short: int, long: int) -> None:
    data = b"\x00" + u16(short) + u32(long)
    assert (get16(data, 1), get32(data, 3)) == (short, long)


def test_none_goes_on_the_wire_as_zero() -> None:
    assert u32(None) == b"\x00\x00\x00\x00"


@pytest.mark.parametrize("codec", CODECS, ids=["dispense", "cabinet"])
def test_refusals_answer_with_the_error_code(
    codec: FramedCodec[FramedMessage, FramedMessage],
) -> None:
    refusal = codec.refuse(0x02, CommonError.BAD_ARGUMENT)
    assert answer_code(refusal, 0x02) == 0xFF
    assert codec.decode_response(0xFF, codec.encode_response(refusal)) == refusal
    assert refusal.describe()["error"] == "bad_argument"


def test_answers_carry_the_request_code_with_bit_7() -> None:
    assert answer_code(dispense.ResetAcknowledged(3), dispense.AcknowledgeReset.CODE) == 0x85
    assert answer_code(cabinet_messages.ResetAcknowledged(3), 0x09) == 0x89


@pytest.mark.parametrize(
    ("client", "error", "device"),
    [
        (DispenserClient, dispense_errors.ClientError, "board"),
        (CabinetClient, cabinet_errors.ClientError, "cabinet"),
    ],
)
def test_a_bad_address_is_the_protocols_client_error(
    client: type[DispenserClient], error: type[Exception], device: str
) -> None:
    with pytest.raises(error, match=f"{device} address 256 is not a byte"):
        client(256)
