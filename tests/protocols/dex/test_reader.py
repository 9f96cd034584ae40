"""Table tests for every tolerance rule, on small fixtures in the style of real makers."""
# ruff: noqa: DTZ001 -- DEX times are the machine's wall clock: naive by design.

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from protocols.dex import DexError, Tally, parse_dex, parse_dex_bytes
from protocols.dex.crc import crc16_arc_bytewise

DATA = Path(__file__).parent / "data"


def load(name: str):  # type: ignore[no-untyped-def]
    return parse_dex_bytes((DATA / name).read_bytes())


def envelope(*lines: str, eol: str = "\r\n", se: int | None = None) -> str:
    """A correct DXS..DXE file around data lines, CRC by the textbook table."""
    body = ["ST*001*0001", *lines]
    covered = "".join(line + "\r\n" for line in body)
    crc = crc16_arc_bytewise(covered.encode("latin-1"))
    count = len(body) + 2 if se is None else se
    out = ["DXS*ABC1234567*VA*V0/6*1", *body, f"G85*{crc:04X}", f"SE*{count}*0001", "DXE*1*1"]
    return eol.join(out) + eol


# -- fixtures from different makers --------------------------------------------------------


def test_coffee_machine_with_stripped_crs_verifies_over_crlf() -> None:
    dex = load("coffee_lf.dex")
    assert dex.crc == "ok"
    assert dex.warnings == ()
    assert dex.machine_serial == "RHV0000004711"
    assert dex.currency is not None
    assert (dex.currency.decimal_places, dex.currency.numeric, dex.currency.alpha) == (
        2,
        "1978",
        "EUR",
    )
    assert dex.paid_vends == Tally(20750, 310, 4150, 62)
    assert dex.test_vends == Tally(120, 2, 0, 0)
    assert dex.cash_sales == Tally(12300, 190, 2450, 37)
    assert dex.cash_in is not None
    assert dex.cash_in.value_init == 21890
    assert dex.cash_in.tubes_reset == 8350
    assert dex.cash_out is not None
    assert dex.cash_out.dispensed_init == 9590
    assert dex.tube_value == 2740
    assert [(t.tube, t.coin_value, t.count) for t in dex.tubes] == [
        (0, 10, 48),
        (1, 20, 37),
        (2, 50, 22),
        (3, 100, 9),
    ]
    assert [(d.slot, d.device.serial, d.sales) for d in dex.cashless] == [
        ("DA", "3491EE8F54BE", Tally(8450, 120, 1700, 25))
    ]
    assert dex.machine_time == datetime(2024, 3, 12, 8, 15)
    assert dex.segment_count_declared == dex.segment_count_actual == 55


def test_product_records_group_pa2_to_pa8_under_their_pa1() -> None:
    dex = load("coffee_lf.dex")
    assert [[row[0] for row in r] for r in dex.product_records[:2]] == [
        ["PA1", "PA2", "PA3", "PA4", "PA7", "PA7", "PA8"],
        ["PA1", "PA2", "PA3", "PA4", "PA7", "PA7", "PA8"],
    ]
    first = dex.selections[0]
    assert (first.selection, first.price, first.name) == ("1", 50, "ESPRESSO")
    assert first.paid == Tally(value_init=5100, count_init=102, value_reset=1000, count_reset=20)
    assert first.test == Tally(value_init=50, count_init=1, value_reset=0, count_reset=0)
    assert first.free == Tally(value_init=0, count_init=2, value_reset=0, count_reset=1)
    last = dex.selections[-1]
    assert (last.selection, last.name, last.test, last.free) == ("4", "HOT WATER", None, None)


def test_events_and_read_information() -> None:
    dex = load("coffee_lf.dex")
    assert [(e.code, e.occurred_at) for e in dex.events] == [
        ("EGS", datetime(2024, 3, 1, 12, 53)),
        ("OCF", datetime(2024, 3, 11, 9, 26)),
    ]
    assert dex.event_counts[0].code == "EGS"
    info = dex.read_info
    assert info is not None
    assert info.reads_with_reset == 12
    assert info.read_at == datetime(2024, 3, 12, 8, 15)
    assert info.previous_read_at == datetime(2024, 3, 5, 13, 42)


def test_unknown_and_vendor_segments_are_kept_verbatim_in_order() -> None:
    dex = load("coffee_lf.dex")
    ids = [s.id for s in dex.segments]
    assert ids[0] == "DXS"
    assert ids[-1] == "DXE"
    pp1 = dex.segments[ids.index("PP1")]
    assert pp1.text == "PP1*17*0*NO CUP ****12*0"
    assert ids.index("DA4") < ids.index("PP1") < ids.index("PA1")
    # Trailing padding inside a field is kept in the raw segment, stripped in the view.
    assert dex.first("PA1") == ("PA1", "1", "50", "ESPRESSO            ")


def test_collector_wrapper_around_dxs_and_dxe_is_cut_off_and_kept() -> None:
    dex = load("nw_wrapped.daa")
    assert dex.crc == "ok"  # lowercase hex in G85
    assert dex.warnings == ()
    assert dex.prefix.startswith("<000|Operations|N&W BlueRed")
    assert dex.suffix == "<AAAA|BBBB><AAAA|BBBB>"
    assert dex.segments[0].id == "DXS"
    assert dex.machine_serial == "NEC01190311"
    assert dex.machine_time == datetime(2019, 12, 28, 21, 33, 42)
    assert dex.selections[0].test == Tally(value_init=None, count_init=0, count_reset=0)


def test_dxs_without_transaction_set_and_text_after_dxe() -> None:
    dex = load("no_st_trailer.txt")
    assert dex.crc == "absent"
    assert any("no ST transaction set" in w for w in dex.warnings)
    assert dex.suffix.endswith("09:03:18")
    assert "XX1" not in [s.id for s in dex.segments]
    assert dex.test_vends == Tally(460, 9, 0, 0)  # VA2 late in the file
    assert [s.selection for s in dex.selections] == ["01", "02", "03"]
    assert dex.selections[1].paid == Tally(0, 0, 4200, 84)
    assert dex.event_counts[0].code == "092Fidelity azzerato"


def test_wrong_se_count_is_a_warning_with_both_numbers() -> None:
    dex = load("itl_wrong_se.dex")
    assert dex.crc == "ok"
    assert dex.segment_count_declared == 18
    assert dex.segment_count_actual == 25
    assert dex.warnings == ("SE declares 18 segments, counted 25 from ST through SE",)
    assert dex.machine_serial is None  # ID1 with every field empty
    assert dex.cash_in is not None
    assert dex.cash_in.bills_reset is None  # empty middle field
    assert dex.cash_in.tubes_init == 38600


def test_crc_mismatch_and_sentinels() -> None:
    dex = load("jofemar_sentinels_bad_crc.dex")
    assert dex.crc == "mismatch"
    assert dex.crc_declared == 0x90B8
    assert dex.crc_computed is not None
    assert dex.crc_computed != 0x90B8
    assert any("G85 CRC mismatch" in w for w in dex.warnings)
    assert dex.paid_vends == Tally(45600, 380, None, None)
    assert dex.selections[1].paid == Tally(21600, 180, None, None)
    assert dex.selections[2].paid == Tally()  # PA2 with every field empty
    assert dex.selections[2].name == ""
    assert dex.machine_time == datetime(2024, 1, 15, 10, 15)
    info = dex.read_info
    assert info is not None
    assert (info.terminal, info.previous_read_at) == ("T01", datetime(2023, 12, 15, 9, 0))


def test_truncated_file_reads_what_is_there_and_says_so() -> None:
    dex = load("truncated.dex")
    assert dex.crc == "absent"
    assert "no SE segment: the file may be truncated" in dex.warnings
    assert "no DXE segment: the file may be truncated" in dex.warnings
    assert any("may be cut off" in w and "PA2*2*2" in w for w in dex.warnings)
    assert [s.selection for s in dex.selections] == ["010", "011"]
    assert dex.selections[1].paid == Tally(value_init=2, count_init=2)
    assert dex.currency is not None
    assert dex.currency.numeric == "FFFF"


def test_vendor_line_before_dxs_is_a_wrapper_and_db_is_the_second_cashless_device() -> None:
    dex = load("sielaff_prefix_line.dex")
    assert dex.crc == "ok"
    assert dex.prefix.startswith("MC5*SiLine")
    assert dex.segments[0].line == 2
    assert [d.slot for d in dex.cashless] == ["DA", "DB"]
    assert dex.cashless[1].sales == Tally(300, 2, 300, 2)
    assert dex.machine_time == datetime(2023, 8, 21, 17, 53, 47)
    assert dex.control_board is not None
    assert dex.control_board.software == "0.15.1 r54964"


# -- line ends, envelopes and checks, inline -------------------------------------------------

DATA_LINES = (
    "ID1*ABC0001*M1",
    "ID4*2*1978*EUR",
    "VA1*500*5*100*1",
    "PA1*1*100*X",
    "PA2*5*500*1*100",
)


@pytest.mark.parametrize("eol", ["\r\n", "\n", "\r"])
def test_any_line_end_gives_the_same_result(eol: str) -> None:
    dex = parse_dex(envelope(*DATA_LINES, eol=eol))
    assert dex.crc == "ok"
    assert dex.warnings == ()
    assert dex.paid_vends == Tally(500, 5, 100, 1)
    assert dex.selections[0].paid == Tally(500, 5, 100, 1)


def test_missing_envelope_is_read_with_a_warning() -> None:
    dex = parse_dex("\n".join(DATA_LINES))
    assert dex.crc == "absent"
    assert not dex.envelope
    assert dex.warnings == ("no DXS/ST envelope: reading the segments as they come",)
    assert dex.machine_serial == "ABC0001"
    assert dex.selections[0].price == 100


def test_st_without_dxs_starts_at_st() -> None:
    text = envelope(*DATA_LINES).split("\r\n", 1)[1]
    dex = parse_dex("collector header\r\n" + text)
    assert dex.crc == "ok"
    assert dex.prefix == "collector header\n"
    assert "no DXS segment: reading from ST" in dex.warnings


def test_g85_that_only_matches_over_lf() -> None:
    body = ["ST*001*0001", *DATA_LINES]
    crc = crc16_arc_bytewise("".join(line + "\n" for line in body).encode())
    text = "\r\n".join([*body, f"G85*{crc:04X}", "SE*8*0001"]) + "\r\n"
    dex = parse_dex(text)
    assert dex.crc == "ok"
    assert "G85 matches only over LF line ends, not CR LF" in dex.warnings


def test_g85_that_is_not_hex_is_a_mismatch() -> None:
    text = envelope(*DATA_LINES).replace("G85*", "G85*ZZ")
    dex = parse_dex(text)
    assert dex.crc == "mismatch"
    assert dex.crc_declared is None


def test_se_control_number_mismatch_and_dxe_set_count() -> None:
    text = envelope(*DATA_LINES).replace("*0001\r\nDXE*1*1", "*0002\r\nDXE*1*3")
    dex = parse_dex(text)
    assert "SE control number '0002' differs from ST '0001'" in dex.warnings
    assert "DXE declares 3 transaction set(s), found 1" in dex.warnings


def test_pa_records_before_any_pa1_and_duplicate_selections() -> None:
    dex = parse_dex("ID1*S1\nPA2*1*1*1*1\nPA1*5*10\nPA2*1*10*1*10\nEA1*X\nPA3*1*10*0*0\nPA1*5*20\n")
    assert "1 product segment(s) before any PA1 (not grouped)" in dex.warnings
    assert "selection '5' appears in more than one PA1" in dex.warnings
    assert [[row[0] for row in r] for r in dex.product_records] == [["PA1", "PA2", "PA3"], ["PA1"]]


def test_control_characters_and_odd_lines_are_reported() -> None:
    dex = parse_dex("\x02ID1*S1\x03\r\n  \r\nva1*5*1\r\n<<garbage>>\r\n\x1a")
    assert dex.machine_serial == "S1"
    assert dex.paid_vends == Tally(5, 1)
    assert any("control character" in w for w in dex.warnings)
    assert any("'<<garbage>>' is not a segment id" in w for w in dex.warnings)


def test_first_occurrence_counts_when_a_segment_repeats() -> None:
    dex = parse_dex("VA1*10*1\nVA1*20*2\n")
    assert dex.paid_vends == Tally(10, 1)
    assert len(dex.by_id["VA1"]) == 2


def test_bytes_decoding_latin1_utf16_and_bom() -> None:
    text = envelope("ID1*ABC*CAF\xc9 CR\xc8ME", *DATA_LINES[1:])
    assert parse_dex_bytes(text.encode("latin-1")).crc == "ok"
    assert parse_dex_bytes(text.encode("latin-1")).machine is not None
    assert parse_dex_bytes(b"\xef\xbb\xbf" + text.encode("latin-1")).crc == "ok"
    assert parse_dex_bytes(text.encode("utf-16")).machine_serial == "ABC"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \r\n\r\n", "empty"),
        (bytes(range(256)) * 4, "binary"),
        (b"Hello, this is a letter.\nKind regards\n", "no DEX segment"),
        (b"\xff\xfe\x00\xd8", "UTF-16"),
    ],
)
def test_not_dex_raises_dex_error_naming_the_problem(data: bytes, reason: str) -> None:
    with pytest.raises(DexError, match=reason):
        parse_dex_bytes(data)


def test_dates_in_both_widths_in_events() -> None:
    dex = parse_dex("EA1*A*240101*0930\nEA1*B*20240102*093015\nEA1*C*garbage\n")
    assert [e.occurred_at for e in dex.events] == [
        datetime(2024, 1, 1, 9, 30),
        datetime(2024, 1, 2, 9, 30, 15),
        None,
    ]
    assert date(2024, 1, 1) == dex.events[0].occurred_at.date()  # type: ignore[union-attr]
