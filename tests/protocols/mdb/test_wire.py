from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.mdb.errors import FrameError
from protocols.mdb.wire import (
    MAX_DATA,
    MODE_BIT,
    Ack,
    AnswerCorrupt,
    AnswerReader,
    AnswerReceived,
    CommandCorrupt,
    CommandReader,
    CommandReceived,
    Data,
    PeripheralNak,
    VmcResponse,
    WordStream,
    checksum,
    encode_answer,
    encode_command,
    words_to_bytes,
)

payloads = st.binary(min_size=1, max_size=MAX_DATA)


def test_checksum_drops_the_carry() -> None:
    # The spec reference's example: 11 01 00 C8 00 64 sums to 0x13E.
    assert checksum(bytes.fromhex("110100c80064")) == 0x3E


def test_cashless_vend_request_matches_the_recorded_wire_words() -> None:
    assert encode_command(bytes.fromhex("13000064" "0001")) == (
        0x113, 0x000, 0x000, 0x064, 0x000, 0x001, 0x078,
    )  # fmt: skip


def test_empty_answer_is_a_lone_ack_word() -> None:
    assert encode_answer(b"") == (MODE_BIT,)


def test_blocks_over_the_limit_are_refused() -> None:
    with pytest.raises(FrameError):
        encode_command(bytes(MAX_DATA + 1))
    with pytest.raises(FrameError):
        encode_answer(bytes(MAX_DATA + 1))


@given(payloads, st.lists(st.integers(1, 8), min_size=1, max_size=40))
def test_any_split_of_an_answer_gives_the_same_reply(data: bytes, cuts: list[int]) -> None:
    words = list(encode_answer(data))
    reader = AnswerReader()
    events = []
    i = 0
    for cut in cuts * (len(words) + 1):
        if i >= len(words):
            break
        events += reader.feed(words[i : i + cut])
        i += cut
    assert events == [AnswerReceived(Data(data))]


@given(payloads, st.integers(0, MAX_DATA), st.integers(1, 255))
def test_a_bad_checksum_never_yields_data(data: bytes, where: int, flip: int) -> None:
    words = list(encode_answer(data))
    pos = where % len(words)
    words[pos] ^= flip
    events = AnswerReader().feed(words)
    assert all(not isinstance(e, AnswerReceived) for e in events)


def test_lone_words_from_the_peripheral() -> None:
    reader = AnswerReader()
    assert reader.feed([MODE_BIT | 0x00]) == [AnswerReceived(Ack())]
    assert reader.feed([MODE_BIT | 0xFF]) == [PeripheralNak()]
    assert isinstance(reader.feed([MODE_BIT | 0x42])[0], AnswerCorrupt)


def _length_of(prefix: bytes) -> int | None:
    # A toy table: address 0x0B is a 1-byte POLL, 0x0C carries four data bytes.
    return {0x0B: 1, 0x0C: 5}.get(prefix[0], 1)


@given(st.binary(min_size=4, max_size=4), st.lists(st.integers(1, 3), min_size=1))
def test_command_reader_rebuilds_commands_from_any_split(data: bytes, cuts: list[int]) -> None:
    block = bytes([0x0C]) + data
    words = [*encode_command(bytes([0x0B])), *encode_command(block), 0x00]
    reader = CommandReader(_length_of)
    events = []
    i = 0
    while i < len(words):
        cut = cuts[i % len(cuts)]
        events += reader.feed(words[i : i + cut])
        i += cut
    assert events == [CommandReceived(b"\x0b"), CommandReceived(block), VmcResponse(0x00)]


def test_command_reader_reports_a_corrupt_command() -> None:
    words = list(encode_command(bytes.fromhex("0c00ffff00")))
    words[-1] ^= 1
    events = CommandReader(_length_of).feed(words)
    assert len(events) == 1
    assert isinstance(events[0], CommandCorrupt)


@given(st.lists(st.integers(0, 0x1FF), max_size=50), st.integers(1, 7))
def test_word_serialisation_survives_any_chunking(words: list[int], size: int) -> None:
    raw = words_to_bytes(words)
    stream = WordStream()
    out = []
    for i in range(0, len(raw), size):
        out += stream.feed(raw[i : i + size])
    assert out == words


def test_word_out_of_range_is_refused() -> None:
    with pytest.raises(FrameError):
        words_to_bytes([0x200])
