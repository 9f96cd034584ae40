from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.link.parmrk import ParmrkDecoder, encode_parmrk
from protocols.mdb.errors import FrameError


@pytest.mark.parametrize(
    ("stream", "words"),
    [
        (b"\x10\xff\x00\x18", [0x10, 0x118]),  # data 10, CHK 18 with the mode bit
        (b"\xff\x00\x00", [0x100]),  # a lone ACK (IGNBRK: never a break)
        (b"\xff\x00\xff", [0x1FF]),  # a lone NAK
        (b"\xff\xff\x01\xff\x00\x00", [0xFF, 0x01, 0x100]),  # escaped data FF
        (b"\x00\x01\x02", [0x00, 0x01, 0x02]),
        (b"", []),
    ],
)
def test_decodes_parmrk_marks(stream: bytes, words: list[int]) -> None:
    decoder = ParmrkDecoder()
    assert decoder.feed(stream) == words
    assert decoder.anomalies == 0


def test_partial_sequences_carry_across_feeds() -> None:
    decoder = ParmrkDecoder()
    assert decoder.feed(b"\x05\xff") == [0x05]
    assert decoder.feed(b"\x00") == []
    assert decoder.feed(b"\x0a\xff") == [0x10A]
    assert decoder.feed(b"\xff") == [0xFF]


def test_impossible_escape_is_counted_and_passed_through() -> None:
    decoder = ParmrkDecoder()
    assert decoder.feed(b"\xff\x41") == [0xFF, 0x41]
    assert decoder.anomalies == 1


def test_reset_drops_a_pending_escape() -> None:
    decoder = ParmrkDecoder()
    decoder.feed(b"\xff\x00")
    decoder.reset()
    assert decoder.feed(b"\x07") == [0x07]


def test_encoder_rejects_non_words() -> None:
    with pytest.raises(FrameError):
        encode_parmrk([0x200])


@settings(max_examples=200)
@given(words=st.lists(st.integers(0, 0x1FF), max_size=60), data=st.data())
def test_any_chunking_of_the_stream_gives_the_same_words(
    words: list[int], data: st.DataObject
) -> None:
    stream = encode_parmrk(words)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=10)))
    decoder = ParmrkDecoder()
    out: list[int] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += decoder.feed(stream[a:b])
    assert out == words
    assert decoder.anomalies == 0


@settings(max_examples=200)
@given(garbage=st.binary(max_size=80))
def test_garbage_decodes_to_words_without_raising(garbage: bytes) -> None:
    words = ParmrkDecoder().feed(garbage)
    assert all(0 <= w <= 0x1FF for w in words)
