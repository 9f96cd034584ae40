from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.link.qibixx_lines import (
    FROM_MASTER,
    FROM_SLAVE,
    SniffedBlock,
    format_request,
    format_sniff,
    parse_answer,
    parse_sniff,
    ticks_at,
)
from protocols.mdb.errors import FrameError
from protocols.mdb.wire import Ack, Data, NoReply


@pytest.mark.parametrize(
    ("block", "line"),
    [
        (b"\x14\x01", "R,14,01"),  # READER ENABLE to cashless #1, as in the adapter's docs
        (b"\x0b", "R,0B"),
        (b"\x0c\x00\xff\x00\xff", "R,0C,00FF00FF"),
    ],
)
def test_format_request(block: bytes, line: str) -> None:
    assert format_request(block) == line


def test_format_request_refuses_empty_and_oversized_blocks() -> None:
    with pytest.raises(FrameError):
        format_request(b"")
    with pytest.raises(FrameError):
        format_request(bytes(36))


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("p,ACK", Ack()),
        ("p,NACK", NoReply("nack")),
        ("p,0B", Data(b"\x0b")),
        ("p,0301f4\r", Data(b"\x03\x01\xf4")),
        ("", None),
        ("x,00,0002599672,12,", None),
        ("m,ACK", None),
        ("v,4.2.0.0,sim", None),
    ],
)
def test_parse_answer(line: str, reply: object) -> None:
    assert parse_answer(line) == reply


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("p,0", "garbled adapter answer 'p,0'"),
        ("p,ZZ", "garbled adapter answer 'p,ZZ'"),
        ("p,", "adapter answer of 0 bytes"),
        ("p," + "00" * 40, "adapter answer of 40 bytes"),
        ("e,unknown command", "unexpected adapter line 'e,unknown command'"),
    ],
)
def test_garbled_answers_are_no_reply_naming_the_line(line: str, named: str) -> None:
    reply = parse_answer(line)
    assert isinstance(reply, NoReply)
    assert named in reply.reason


def test_sniffer_lines_match_the_documented_examples() -> None:
    poll = parse_sniff("x,00,0002599672,12,")
    assert poll == SniffedBlock(FROM_MASTER, 2599672, b"\x12")
    assert poll.from_master
    begin = parse_sniff("x,80,0002632404,0301f4")
    assert begin == SniffedBlock(FROM_SLAVE, 2632404, b"\x03\x01\xf4")
    assert format_sniff(poll) == "x,00,0002599672,12,"
    assert format_sniff(begin) == "x,80,0002632404,0301f4"


@pytest.mark.parametrize(
    "line",
    [
        "y,00,0002599672,12,",
        "x,0,0002599672,12,",
        "x,00,123,12,",
        "x,00,0002599672,12",
        "x,00,0002599672,1,",
        "x,80,0002599672,0,",
        "x,80,0002599672,01,02",
    ],
)
def test_malformed_sniffer_lines_raise_frame_error(line: str) -> None:
    with pytest.raises(FrameError):
        parse_sniff(line)


def test_ticks_are_tenths_of_milliseconds_and_wrap_at_ten_digits() -> None:
    assert ticks_at(1.5) == 15000
    assert ticks_at(1_000_000.0001) == 1


@settings(max_examples=100)
@given(
    slave=st.booleans(),
    ticks=st.integers(0, 9_999_999_999),
    data=st.binary(min_size=1, max_size=35),
)
def test_sniffer_lines_round_trip(slave: bool, ticks: int, data: bytes) -> None:
    block = SniffedBlock(FROM_SLAVE if slave else FROM_MASTER, ticks, data)
    assert parse_sniff(format_sniff(block)) == block


@settings(max_examples=200)
@given(line=st.text(max_size=60))
def test_any_line_parses_to_a_reply_or_none(line: str) -> None:
    assert parse_answer(line) is None or isinstance(parse_answer(line), Ack | Data | NoReply)
