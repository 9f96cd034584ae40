# ruff: noqa: DTZ001 -- DEX times are the machine's wall clock: naive by design.
from __future__ import annotations

from datetime import date, datetime, time

import pytest

from protocols.dex.fields import (
    format_date,
    format_time,
    number,
    parse_date,
    parse_datetime,
    parse_time,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("586530", 586530),
        (" 42 ", 42),
        ("", None),
        ("4294967295", None),  # 2^32-1: "not available" in Jofemar PA7 rows
        ("99999999", None),  # all nines, eight digits or more
        ("999999999", None),
        ("99999998", 99999998),
        ("9999", 9999),  # short runs of nines are real counts
        ("FFFF", None),
        ("12.5", None),
        ("abc", None),
        ("-40", -40),  # negative vend counters exist in newer versions
    ],
)
def test_number(text: str, expected: int | None) -> None:
    assert number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("231127", date(2023, 11, 27)),
        ("20231127", date(2023, 11, 27)),
        ("980829", date(1998, 8, 29)),  # two-digit years pivot at 70
        ("691231", date(2069, 12, 31)),
        ("700101", date(1970, 1, 1)),
        ("231327", None),
        ("2311", None),
        ("", None),
        ("20x31127", None),
    ],
)
def test_parse_date_both_widths(text: str, expected: date | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1011", time(10, 11)),
        ("140717", time(14, 7, 17)),
        ("2460", None),
        ("101", None),
        ("", None),
    ],
)
def test_parse_time_both_widths(text: str, expected: time | None) -> None:
    assert parse_time(text) == expected


def test_parse_datetime_without_time_means_midnight() -> None:
    assert parse_datetime("240312", "") == datetime(2024, 3, 12)
    assert parse_datetime("240312", "99") is None
    assert parse_datetime("", "1200") is None


def test_formatting_round_trips() -> None:
    moment = datetime(2031, 2, 3, 4, 5, 6)
    assert format_date(moment) == "310203"
    assert format_time(moment) == "040506"
    assert format_time(moment.replace(second=0)) == "0405"
    assert parse_datetime(format_date(moment), format_time(moment)) == moment
