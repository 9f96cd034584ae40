# ruff: noqa: DTZ001 -- DEX times are the machine's wall clock: naive by design.
from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dex import (
    AuditCounters,
    CashIn,
    CashlessDevice,
    CashOut,
    CoinTube,
    DeviceId,
    DexError,
    Event,
    Selection,
    Tally,
    TubeFill,
    after_read,
    parse_dex,
    write_dex,
)
from protocols.dex.crc import crc16_arc_bytewise

READ_AT = datetime(2025, 3, 8, 14, 30)

COUNTERS = AuditCounters(
    machine_serial="VND0000042",
    machine_model="SNACK-7",
    firmware="4.12.0",
    location="HCMC D1",
    decimal_places=0,
    currency_numeric="1704",
    currency_alpha="VND",
    paid_vends=Tally(1_250_000, 125, 50_000, 5),
    test_vends=Tally(0, 3, 0, 1),
    free_vends=Tally(0, 2, 0, 0),
    changer=DeviceId("CHG1", "MCM5", "1.2"),
    cash_sales=Tally(1_000_000, 100, 40_000, 4),
    cash_in=CashIn(40_000, 10_000, 30_000, 20_000, 1_100_000, 300_000, 800_000, 700_000),
    cash_out=CashOut(5_000, 0, 95_000, 10_000),
    tube_fill=TubeFill(0, 50_000),
    tubes=(CoinTube(0, 500, 20), CoinTube(1, 1000, 7)),
    cashless=(CashlessDevice("DA", DeviceId("R1", "QR", "2"), Tally(250_000, 25, 10_000, 1)),),
    selections=(
        Selection("11", 10_000, "TRA XANH", Tally(600_000, 60, 20_000, 2), Tally(0, 1, 0, 0)),
        Selection("12", 12_000, "COLA", Tally(650_000, 65, 30_000, 3), None, Tally(0, 2, 0, 0)),
    ),
    events=(Event("EGS", datetime(2025, 3, 7, 9, 15), 4),),
    reads_with_reset=7,
    last_read_at=datetime(2025, 3, 1, 14, 0),
    last_read_terminal="H1",
)


def write(counters: AuditCounters = COUNTERS, *, reset: bool = True) -> str:
    return write_dex(
        counters, read_at=READ_AT, reset_interim=reset, communication_id="VND0000042", terminal="H2"
    )


def test_envelope_crc_and_segment_count() -> None:
    text = write()
    lines = text.split("\r\n")
    assert lines[0] == "DXS*VND0000042*VA*V0/6*1"
    assert lines[1] == "ST*001*0001"
    assert lines[-1] == ""  # every line ends with CR LF
    assert lines[-2] == "DXE*1*1"
    g85 = next(i for i, line in enumerate(lines) if line.startswith("G85*"))
    covered = "".join(line + "\r\n" for line in lines[1:g85]).encode()
    assert lines[g85] == f"G85*{crc16_arc_bytewise(covered):04X}"
    se = lines[g85 + 1].split("*")
    assert se[0] == "SE"
    assert int(se[1]) == g85 + 1 - 1 + 1  # ST (line 1) through SE (line g85 + 1)
    dex = parse_dex(text)
    assert dex.crc == "ok"
    assert dex.warnings == ()


def test_segments_written() -> None:
    text = write()
    ids = [line.split("*")[0] for line in text.split("\r\n") if line]
    for sid in ("ID1", "ID4", "CB1", "VA1", "VA2", "VA3", "CA1", "CA2", "CA3", "CA4", "CA10"):
        assert sid in ids
    assert ids.count("CA17") == 2
    assert "CA15*17000" in text
    assert ids.count("PA1") == 2
    assert "PA2*60*600000*2*20000" in text  # count before value in PA2
    assert "VA1*1250000*125*50000*5" in text  # value before count in VA1
    assert "CB1***4.12.0" in text


def test_read_with_reset_counts_itself_and_records_the_previous_read() -> None:
    dex = parse_dex(write(reset=True))
    info = dex.read_info
    assert info is not None
    assert info.reads_with_reset == 8
    assert info.read_at == READ_AT
    assert info.terminal == "H2"
    assert (info.previous_read_at, info.previous_terminal) == (datetime(2025, 3, 1, 14, 0), "H1")
    plain = parse_dex(write(reset=False)).read_info
    assert plain is not None
    assert plain.reads_with_reset == 7


def test_after_read_with_reset_clears_interim_and_keeps_cumulative() -> None:
    after = after_read(COUNTERS, read_at=READ_AT, reset_interim=True, terminal="H2")
    assert after.paid_vends == Tally(1_250_000, 125, 0, 0)
    assert after.cash_in == CashIn(0, 0, 0, 0, 1_100_000, 300_000, 800_000, 700_000)
    assert after.cash_out == CashOut(0, 0, 95_000, 10_000)
    assert after.tube_fill == TubeFill(0, 50_000)
    assert after.cashless[0].sales == Tally(250_000, 25, 0, 0)
    assert after.selections[0].paid == Tally(600_000, 60, 0, 0)
    assert after.selections[0].free is None
    assert after.selections[1].free == Tally(0, 2, 0, 0)
    assert (after.reads_with_reset, after.last_read_at, after.last_read_terminal) == (
        8,
        READ_AT,
        "H2",
    )
    again = parse_dex(
        write_dex(
            after,
            read_at=datetime(2025, 3, 15, 9, 0),
            reset_interim=False,
            communication_id="X",
        )
    )
    assert again.paid_vends == Tally(1_250_000, 125, 0, 0)
    assert again.read_info is not None
    assert again.read_info.previous_read_at == READ_AT


def test_after_read_without_reset_keeps_the_interim_counters() -> None:
    after = after_read(COUNTERS, read_at=READ_AT, reset_interim=False)
    assert after.paid_vends == COUNTERS.paid_vends
    assert after.reads_with_reset == 7
    assert after.last_read_at == READ_AT


@pytest.mark.parametrize("bad", ["A*B", "A\r\nB", "A\nB", "A\x00B"])
def test_text_that_would_break_the_file_is_refused(bad: str) -> None:
    with pytest.raises(DexError):
        write(AuditCounters(machine_serial=bad))
    with pytest.raises(DexError):
        write(AuditCounters(machine_serial="S", selections=(Selection("1", 1, bad),)))


def test_unknown_cashless_slot_is_refused() -> None:
    with pytest.raises(DexError, match="slot"):
        write(AuditCounters(machine_serial="S", cashless=(CashlessDevice("DC"),)))


# -- round trip ------------------------------------------------------------------------------


def _not_a_sentinel(value: int) -> bool:
    # 4294967295 and all-nines read back as "not available"; no writer should emit them.
    return value != 4294967295 and (value < 99_999_999 or set(str(value)) != {"9"})


counts = st.one_of(
    st.none(), st.integers(0, 99_999_998), st.integers(0, 2**40).filter(_not_a_sentinel)
)
tallies = st.builds(Tally, counts, counts, counts, counts)
words = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="*"), max_size=12
)
names = st.builds(lambda a, b: f"{a} {b}".strip(), words, words)
moments = st.datetimes(datetime(1970, 1, 1), datetime(2069, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
selections = st.builds(
    Selection,
    words,
    counts,
    names,
    tallies,
    st.one_of(st.none(), tallies),
    st.one_of(st.none(), tallies),
)
audit_counters = st.builds(
    AuditCounters,
    machine_serial=words,
    machine_model=names,
    location=names,
    decimal_places=st.integers(0, 3),
    currency_alpha=st.sampled_from(["", "VND", "EUR"]),
    paid_vends=tallies,
    test_vends=tallies,
    free_vends=tallies,
    changer=st.builds(DeviceId, words, words, words),
    cash_sales=tallies,
    cash_in=st.builds(CashIn, counts, counts, counts, counts, counts, counts, counts, counts),
    cash_out=st.builds(CashOut, counts, counts, counts, counts),
    tube_fill=st.builds(TubeFill, counts, counts),
    tubes=st.lists(
        st.builds(CoinTube, st.integers(0, 15), st.integers(1, 50_000), st.integers(0, 999)),
        max_size=6,
    ).map(tuple),
    cashless=st.lists(
        st.builds(CashlessDevice, st.just("DA"), st.builds(DeviceId, words, words), tallies),
        max_size=1,
    ).map(tuple),
    selections=st.lists(selections, max_size=12, unique_by=lambda s: s.selection).map(tuple),
    events=st.lists(st.builds(Event, words, st.one_of(st.none(), moments), counts), max_size=4).map(
        tuple
    ),
    reads_with_reset=st.integers(0, 10_000),
    last_read_at=st.one_of(st.none(), moments),
)


@settings(max_examples=150, deadline=None)
@given(audit_counters, moments, st.booleans())
def test_writer_then_reader_gives_the_counters_back(
    counters: AuditCounters, read_at: datetime, reset: bool
) -> None:
    text = write_dex(counters, read_at=read_at, reset_interim=reset, communication_id="ABC1234567")
    dex = parse_dex(text)
    assert dex.crc == "ok"
    assert dex.warnings == ()
    assert dex.machine_serial == (counters.machine_serial or None)
    assert dex.currency is not None
    assert dex.currency.decimal_places == counters.decimal_places
    assert dex.paid_vends == counters.paid_vends
    assert dex.test_vends == counters.test_vends
    assert dex.free_vends == counters.free_vends
    assert dex.cash_sales == counters.cash_sales
    assert dex.cash_in == counters.cash_in
    assert dex.cash_out == counters.cash_out
    assert dex.tube_fill == counters.tube_fill
    assert dex.tubes == counters.tubes
    assert dex.tube_value == counters.tube_value
    assert dex.changer == counters.changer
    assert dex.cashless == counters.cashless
    assert dex.selections == counters.selections
    assert dex.events == counters.events
    info = dex.read_info
    assert info is not None
    assert info.reads_with_reset == counters.reads_with_reset + (1 if reset else 0)
    assert info.read_at == read_at
    assert info.previous_read_at == counters.last_read_at
