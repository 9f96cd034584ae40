"""TraceDecoder: answers read in the light of their command, per-reader currency mode."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.mdb.bill import messages as bill
from protocols.mdb.cashless import FEATURE_32BIT, FEATURE_NEGATIVE_VEND
from protocols.mdb.cashless import answers as a
from protocols.mdb.cashless import commands as c
from protocols.mdb.changer import ChangerSetup
from protocols.mdb.changer import Poll as ChangerPoll
from protocols.mdb.changer import Setup as ChangerSetupCommand
from protocols.mdb.decode import DecodedBlock, TraceDecoder
from protocols.mdb.errors import TraceError
from protocols.mdb.trace import read_trace
from protocols.mdb.wire import encode_answer, encode_command

FIXTURES = Path(__file__).parents[2] / "fixtures" / "mdb"


def vp(block: bytes) -> str:
    return "V>P " + " ".join(f"{w:03X}" for w in encode_command(block))


def pv(data: bytes) -> str:
    return "P>V " + " ".join(f"{w:03X}" for w in encode_answer(data))


def decode(*lines: str) -> list[DecodedBlock]:
    decoder = TraceDecoder()
    return [
        decoder.error(item) if isinstance(item, TraceError) else decoder.decode(item)
        for item in read_trace("\n".join(lines) + "\n")
    ]


def test_the_reference_wire_examples() -> None:
    rows = decode((FIXTURES / "reader_5_1.words").read_text(encoding="utf-8"))
    assert [(r.device, r.message) for r in rows] == [
        ("cashless1", "Reset"),
        ("cashless1", "ACK"),
        ("cashless1", "SetupConfig"),
        ("cashless1", "SetupPrices"),
        ("cashless1", "ReaderEnable"),
        ("cashless1", "VendRequest"),
        ("cashless1", "VendSuccess"),
        ("cashless1", "SessionComplete"),
    ]
    assert all(r.error is None for r in rows)
    assert {r.checksum for r in rows if r.message != "ACK"} == {"ok"}
    prices = rows[3].fields
    assert (prices["max_price"], prices["min_price"]) == (200, 100)
    assert (rows[5].fields["price"], rows[5].fields["item"]) == (100, 1)
    assert rows[6].fields["item"] == 1


def test_an_answer_is_read_as_the_answer_to_the_command_before_it() -> None:
    # The same byte 0B means "changer was reset" to a changer POLL and CMD OUT OF
    # SEQUENCE to a reader POLL.
    changer_poll = decode(vp(ChangerPoll().to_block(0x08)), pv(b"\x0b"))[1]
    reader_poll = decode(vp(c.Poll().to_block(0x10)), pv(b"\x0b"))[1]
    assert (changer_poll.device, changer_poll.direction) == ("changer", "P>V")
    assert changer_poll.message == "PollAnswer"
    assert reader_poll.device == "cashless1"
    assert reader_poll.message == "PollAnswer"
    assert changer_poll.fields != reader_poll.fields
    assert "CmdOutOfSequence" in str(reader_poll.fields)


def test_setup_answers_decode_by_their_command() -> None:
    setup = ChangerSetup(3, 0x1704, 100, 0, frozenset(range(5)), (2, 5, 10, 20, 50)).to_bytes()
    row = decode(vp(ChangerSetupCommand().to_block(0x08)), pv(setup))[1]
    assert row.message == "ChangerSetup"
    assert row.fields["level"] == 3
    assert row.fields["scale_factor"] == 100
    # The bytes mean something else entirely as an answer to a bill validator STACKER.
    other = decode(vp(bill.Stacker().to_block(0x30)), pv(setup))[1]
    assert other.message != "ChangerSetup"


def test_32_bit_money_after_optional_feature_enabled() -> None:
    approved = a.VendApproved(1_500_000, wide=True).to_bytes()
    request = c.VendRequest(1_500_000, 7, wide=True).to_block(0x10)
    rows = decode(
        vp(c.OptionalFeatureEnabled(FEATURE_32BIT | FEATURE_NEGATIVE_VEND).to_block(0x10)),
        pv(b""),
        vp(request),
        pv(b""),
        vp(c.Poll().to_block(0x10)),
        pv(approved),
    )
    assert rows[2].message == "VendRequest"
    assert (rows[2].fields["price"], rows[2].fields["item"]) == (1_500_000, 7)
    assert rows[5].message == "PollAnswer"
    assert "1500000" in str(rows[5].fields)


WIDE_APPROVAL = a.VendApproved(1_500_000, wide=True).to_bytes()


def poll_approval(address: int) -> list[str]:
    return [vp(c.Poll().to_block(address)), pv(WIDE_APPROVAL)]


def test_without_the_32_bit_feature_the_reader_stays_16_bit() -> None:
    rows = decode(
        vp(c.OptionalFeatureEnabled(FEATURE_NEGATIVE_VEND).to_block(0x10)),
        pv(b""),
        *poll_approval(0x10),
    )
    assert rows[3].message is None  # 05 0016 then a stray E3: not a 16-bit answer
    assert rows[3].error is not None
    assert "1500000" not in str(rows[3].fields)


def test_currency_mode_is_per_reader_and_reset_ends_it() -> None:
    rows = decode(
        vp(c.OptionalFeatureEnabled(FEATURE_32BIT).to_block(0x10)),
        *poll_approval(0x60),  # reader #2 was not switched
        *poll_approval(0x10),
        vp(c.Reset().to_block(0x10)),
        *poll_approval(0x10),
    )
    assert rows[2].device == "cashless2"
    assert rows[2].error is not None
    assert rows[4].device == "cashless1"
    assert rows[4].error is None
    assert "1500000" in str(rows[4].fields)
    assert rows[7].error is not None


def test_an_answer_without_a_command() -> None:
    (row,) = decode(pv(b"\x0b"))
    assert row.direction == "P>V"
    assert row.message is None
    assert row.error == "answer without a preceding command"


def test_unknown_addresses_are_named_and_not_decoded() -> None:
    rows = decode(vp(b"\x21\x01"), pv(b"\x01\x02"), vp(b"\x80"), vp(b"\xc3\x01\x02"))
    assert (rows[0].device, rows[0].message, rows[0].error) == (
        "display",
        None,
        "no codec for this address",
    )
    assert rows[1].device == "display"
    assert rows[1].error == "answer to a command that was not decoded"
    assert rows[2].device == "addr_80"
    assert rows[3].device == "addr_c0"
    assert rows[3].raw == "c30102"


def test_a_bad_checksum_is_reported_not_decoded() -> None:
    good = vp(c.VendRequest(100, 1, wide=False).to_block(0x10))
    bad = good[:-3] + f"{(int(good[-3:], 16) ^ 0x01):03X}"
    (row,) = decode(bad)
    assert row.checksum == "bad"
    assert row.message is None
    assert row.error == "checksum mismatch: not decoded"
    assert row.device == "cashless1"


def test_control_words_name_the_device_they_answer() -> None:
    rows = decode(vp(ChangerPoll().to_block(0x08)), pv(b"\x0b"), "V>P 000", "V>P 0AA")
    assert [(r.device, r.message) for r in rows[2:]] == [("changer", "ACK"), ("changer", "RET")]


def test_malformed_lines_keep_their_numbers_and_decoding_goes_on() -> None:
    rows = decode("V>P 10B 00B", "garbage here", "P>V 100")
    assert [r.line for r in rows] == [1, 2, 3]
    assert rows[1].direction == "?"
    assert rows[1].error is not None
    assert "line 2" in rows[1].error
    assert rows[2].message == "ACK"


def test_a_recorded_session_decodes_without_errors_in_both_formats() -> None:
    words = decode((FIXTURES / "session.words").read_text(encoding="utf-8"))
    sniffed = decode((FIXTURES / "session.sniff").read_text(encoding="utf-8"))
    assert [r.error for r in words if r.error] == []
    assert [r.error for r in sniffed if r.error] == []
    # The two formats carry the same blocks (the word trace adds the VMC's ACKs).
    named = [(r.direction, r.device, r.message) for r in sniffed]
    vmc_acks = [r for r in words if r.direction == "V>P" and r.message == "ACK"]
    assert len(vmc_acks) == sum(1 for r in sniffed if r.direction == "P>V" and r.raw)
    assert named == [(r.direction, r.device, r.message) for r in words if r not in vmc_acks]
    messages = {r.message for r in sniffed}
    assert {"ChangerSetup", "BillSetup", "VendRequest", "VendSuccess"} <= messages
    assert all(r.timestamp is not None for r in sniffed)


@st.composite
def blocks(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from([0x08, 0x10, 0x30, 0x60]))
    block = bytes([base | draw(st.integers(0, 7)), *draw(st.binary(max_size=20))])
    lines = [vp(block)]
    if draw(st.booleans()):
        lines.append(pv(draw(st.binary(max_size=30))))
    return "\n".join(lines)


@settings(max_examples=200)
@given(st.lists(blocks(), max_size=8))
def test_well_framed_garbage_never_raises(lines: list[str]) -> None:
    for row in decode(*lines):
        assert row.message is not None or row.error is not None


def test_an_empty_peripheral_sniffer_line_is_its_ack() -> None:
    # How the adapter's sniffer logs a peripheral that answered with ACK only.
    rows = decode("x,00,0000000100,08,", "x,80,0000000101,", "x,00,0000000160,,")
    assert [(r.direction, r.device, r.message) for r in rows[:2]] == [
        ("V>P", "changer", "Reset"),
        ("P>V", "changer", "ACK"),
    ]
    assert rows[1].timestamp == 0.0101
    assert rows[2].error is not None  # a master line still needs its address byte
