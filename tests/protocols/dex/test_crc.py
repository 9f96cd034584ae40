from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dex.crc import crc16_arc, crc16_arc_bytewise, dex_bytes


def test_check_value_of_the_crc16_arc_catalogue() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D
    assert crc16_arc_bytewise(b"123456789") == 0xBB3D


def test_empty_and_single_bytes() -> None:
    assert crc16_arc(b"") == 0
    # One byte through the reflected 0xA001 register, worked by hand: 0x01 -> 0xC0C1.
    assert crc16_arc(b"\x01") == 0xC0C1


@settings(max_examples=200)
@given(st.binary(max_size=5000))
def test_big_integer_fold_equals_the_textbook_table(data: bytes) -> None:
    assert crc16_arc(data) == crc16_arc_bytewise(data)


@settings(max_examples=100)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_continuing_a_crc_equals_one_pass(head: bytes, tail: bytes) -> None:
    assert crc16_arc(tail, crc16_arc(head)) == crc16_arc(head + tail)


def test_dex_bytes_keeps_latin1_byte_for_byte_and_falls_back_to_utf8() -> None:
    assert dex_bytes("CAF\xc9") == b"CAF\xc9"
    assert dex_bytes("Cà phê sữa") == "Cà phê sữa".encode()
