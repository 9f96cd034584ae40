from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocols.mdb.errors import TraceError
from protocols.mdb.trace import (
    ChecksumStatus,
    Control,
    Direction,
    TraceBlock,
    read_trace,
    write_sniffer,
    write_words,
)


def test_reads_the_word_format_with_comments() -> None:
    text = "# a vend request\n-- another comment\nV>P 113 000 000 064 000 001 078\nP>V 100\n"
    blocks = list(read_trace(text))
    assert blocks[0] == TraceBlock(
        3, Direction.VMC_TO_PERIPHERAL, bytes.fromhex("130000640001"), ChecksumStatus.OK
    )
    assert isinstance(blocks[1], TraceBlock)
    assert blocks[1].control is Control.ACK
    assert blocks[1].line == 4


def test_bad_checksum_is_flagged_not_dropped() -> None:
    (block,) = read_trace("P>V 003 001 0F4 1F9\n")
    assert isinstance(block, TraceBlock)
    assert block.checksum is ChecksumStatus.BAD
    (good,) = read_trace("P>V 003 001 0F4 1F8\n")
    assert isinstance(good, TraceBlock)
    assert good.checksum is ChecksumStatus.OK


def test_malformed_lines_are_reported_with_line_numbers_and_reading_goes_on() -> None:
    text = "V>P 10B 00B\nXYZ 1 2\nV>P 1GG\nP>V 010 020\nV>P 10B 00B\n"
    items = list(read_trace(text))
    errors = [i for i in items if isinstance(i, TraceError)]
    assert [e.line_number for e in errors] == [2, 3, 4]
    assert isinstance(items[-1], TraceBlock)
    assert items[-1].line == 5


def test_reads_qibixx_sniffer_lines() -> None:
    text = "x,00,0002599672,12,\nx,80,0002632404,0301f4\n"
    poll, begin = read_trace(text)
    assert isinstance(poll, TraceBlock)
    assert isinstance(begin, TraceBlock)
    assert poll.direction is Direction.VMC_TO_PERIPHERAL
    assert poll.data == b"\x12"
    assert begin.direction is Direction.PERIPHERAL_TO_VMC
    assert begin.data == bytes.fromhex("0301f4")
    assert begin.timestamp == 263.2404


def test_sniffer_error_flags_mean_a_bad_block() -> None:
    (block,) = read_trace("x,81,0000000010,0301f4\n")
    assert isinstance(block, TraceBlock)
    assert block.checksum is ChecksumStatus.BAD


@st.composite
def blocks(draw: st.DrawFn) -> TraceBlock:
    direction = draw(st.sampled_from(Direction))
    control = draw(st.none() | st.sampled_from([Control.ACK, Control.NAK]))
    if control is not None:
        return TraceBlock(0, direction, b"", ChecksumStatus.ABSENT, control)
    data = draw(st.binary(min_size=1, max_size=35))
    status = draw(st.sampled_from([ChecksumStatus.OK, ChecksumStatus.BAD]))
    return TraceBlock(0, direction, data, status)


@given(st.lists(blocks(), max_size=20))
def test_word_format_round_trips(items: list[TraceBlock]) -> None:
    back = list(read_trace(write_words(items)))
    assert all(isinstance(b, TraceBlock) for b in back)
    assert [
        (b.direction, b.data, b.checksum, b.control) for b in back if isinstance(b, TraceBlock)
    ] == [(b.direction, b.data, b.checksum, b.control) for b in items]


def _unambiguous_in_sniffer_logs(block: TraceBlock) -> bool:
    # The sniffer strips checksums, so a one-byte block of 00 / AA / FF reads as a control byte.
    return block.control is not None or not (
        len(block.data) == 1 and block.data[0] in (0, 0xAA, 0xFF)
    )


@given(st.lists(blocks().filter(_unambiguous_in_sniffer_logs), max_size=20))
def test_sniffer_format_round_trips(items: list[TraceBlock]) -> None:
    back = [b for b in read_trace(write_sniffer(items)) if isinstance(b, TraceBlock)]
    assert [(b.direction, b.control, b.data) for b in back] == [
        (b.direction, b.control, b.data) for b in items
    ]
    assert [b.checksum is ChecksumStatus.BAD for b in back] == [
        b.checksum is ChecksumStatus.BAD for b in items
    ]


@given(st.text(max_size=200))
def test_arbitrary_text_yields_only_blocks_or_trace_errors(text: str) -> None:
    for item in read_trace(text):
        assert isinstance(item, TraceBlock | TraceError)
