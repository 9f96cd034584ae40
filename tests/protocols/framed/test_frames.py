"""The shared framing: CRC, frame layout, and a decoder that resyncs on any chunking."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.framed.errors import FrameError
from protocols.framed.frames import (
    MAX_PAYLOAD,
    SOF,
    Frame,
    FrameDecoder,
    crc16,
    decode_frame,
    encode_frame,
)

frames = st.builds(
    Frame,
    address=st.integers(0, 255),
    seq=st.integers(0, 255),
    code=st.integers(0, 255),
    payload=st.binary(max_size=MAX_PAYLOAD),
)


def test_crc_is_ccitt_false_check_value() -> None:
    # The catalogue check value of CRC-16/CCITT-FALSE over "123456789".
    assert crc16(b"123456789") == 0x29B1


def test_documented_example_frame() -> None:
    # docs/dispenser-protocol.md, example 1: GET STATUS to board 1, SEQ 0.
    assert encode_frame(Frame(0x01, 0x00, 0x01)) == bytes.fromhex("a5 01 00 01 00 c1 45")


@settings(max_examples=200)
@given(frames)
def test_every_frame_round_trips(frame: Frame) -> None:
    assert decode_frame(encode_frame(frame)) == frame


@settings(max_examples=200)
@given(st.binary(max_size=120))
def test_garbage_raises_only_frame_error(data: bytes) -> None:
    with contextlib.suppress(FrameError):
        decode_frame(data)
    FrameDecoder().feed(data)  # skips what it cannot use, never raises


@settings(max_examples=150)
@given(
    st.lists(st.tuples(st.binary(max_size=12), frames), max_size=6),
    st.lists(st.integers(1, 40), min_size=1, max_size=20),
)
def test_any_chunking_gives_the_same_frames(
    items: list[tuple[bytes, Frame]], cuts: list[int]
) -> None:
    # Garbage without start bytes between frames, so the expected frames are known.
    stream = b"".join(junk.replace(bytes((SOF,)), b"") + encode_frame(f) for junk, f in items)
    whole = FrameDecoder().feed(stream)
    assert whole == [f for _, f in items]
    decoder, got, pos, i = FrameDecoder(), [], 0, 0
    while pos < len(stream):
        size = cuts[i % len(cuts)]
        got += decoder.feed(stream[pos : pos + size])
        pos, i = pos + size, i + 1
    assert got == whole


@settings(max_examples=200)
@given(frames, st.data())
def test_a_damaged_frame_never_yields_a_frame(frame: Frame, data: st.DataObject) -> None:
    raw = bytearray(encode_frame(frame))
    index = data.draw(st.integers(1, len(raw) - 1), label="byte")  # damage after SOF
    raw[index] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(FrameError):
        decode_frame(bytes(raw))
    assert FrameDecoder().feed(bytes(raw)) == []


def test_decoder_resyncs_after_a_truncated_frame() -> None:
    good = encode_frame(Frame(1, 5, 0x81, b"\x01\x02"))
    cut = encode_frame(Frame(1, 4, 0x82, bytes(11)))[:9]  # lost its tail on the wire
    decoder = FrameDecoder()
    assert decoder.feed(cut + good) == [Frame(1, 5, 0x81, b"\x01\x02")]
    assert decoder.discarded == len(cut)


def test_oversized_length_is_rejected_at_once() -> None:
    decoder = FrameDecoder()
    # LEN 0xFF cannot be valid: the decoder must not sit waiting for 255 more bytes.
    assert decoder.feed(bytes((SOF, 1, 0, 0x81, 0xFF))) == []
    assert decoder.pending == 0


@pytest.mark.parametrize(
    ("frame_args", "problem"),
    [((256, 0, 0), "address"), ((0, -1, 0), "seq"), ((0, 0, 300), "code")],
)
def test_frame_fields_must_be_bytes(frame_args: tuple[int, int, int], problem: str) -> None:
    with pytest.raises(FrameError, match=problem):
        Frame(*frame_args)


def test_payload_limit() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        Frame(1, 0, 1, bytes(MAX_PAYLOAD + 1))
