"""Arbitrary input never raises anything but DexError, and every view of what parses works."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dex import DexError, DexFile, parse_dex, parse_dex_bytes, summarize

SEGMENT_IDS = ["DXS", "ST", "ID1", "ID4", "VA1", "CA2", "CA17", "DA2", "PA1", "PA2", "PA3", "EA1"]
SEGMENT_IDS += ["EA3", "G85", "SE", "DXE", "MA5", "ZZ9", "pa1", " PA2"]


def touch_everything(dex: DexFile) -> None:
    summarize(dex)
    for name in (
        "segments", "machine", "currency", "machine_time", "control_board", "paid_vends",
        "test_vends", "free_vends", "changer", "cash_sales", "cash_in", "cash_out", "tube_fill",
        "tube_value", "tubes", "cashless", "selections", "events", "event_counts", "read_info",
    ):  # fmt: skip
        getattr(dex, name)


def check(text: str) -> None:
    try:
        dex = parse_dex(text)
    except DexError:
        return
    touch_everything(dex)


@settings(max_examples=200)
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    check(text)


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    try:
        dex = parse_dex_bytes(data)
    except DexError:
        return
    touch_everything(dex)


field_text = st.text(st.sampled_from("0123456789*9F -x\r\n"), max_size=14)
dex_like_lines = st.lists(
    st.builds(lambda sid, rest: sid + "*" + rest, st.sampled_from(SEGMENT_IDS), field_text),
    max_size=30,
)


@settings(max_examples=200)
@given(dex_like_lines, st.sampled_from(["\r\n", "\n", "\r"]))
def test_dex_shaped_garbage(lines: list[str], eol: str) -> None:
    check(eol.join(lines))
