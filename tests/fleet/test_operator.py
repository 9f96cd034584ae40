"""Operator input parsing: prices as people write them, planogram files, command words."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.operator import InvalidInputError, parse_command_args, parse_planogram, parse_price
from protocols.money import CURRENCIES


def written(minor: int, digits: int) -> str:
    whole, frac = divmod(minor, 10**digits)
    return f"{whole}.{frac:0{digits}d}" if digits else str(whole)


@settings(max_examples=150, deadline=None)
@given(currency=st.sampled_from(sorted(CURRENCIES)), minor=st.integers(1, 10**12))
def test_a_price_written_in_major_units_reads_back_exactly(currency: str, minor: int) -> None:
    text = written(minor, CURRENCIES[currency].minor_digits)
    assert parse_price(text, currency) == minor
    assert parse_price(f"{text} {currency}", currency) == minor


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=12))
def test_garbage_prices_raise_only_our_error(text: str) -> None:
    try:
        value = parse_price(text, "EUR")
    except InvalidInputError:
        return
    assert value > 0


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [("12000", "VND", 12000), ("1.5", "EUR", 150), ("1.50", "EUR", 150), ("12_000", "VND", 12000)],
)
def test_prices(text: str, currency: str, expected: int) -> None:
    assert parse_price(text, currency) == expected


def test_a_planogram_numbers_items_by_position_unless_given() -> None:
    planogram = parse_planogram(
        '[[selection]]\ncode = "A1"\nproduct = "x"\nprice = 1\ncapacity = 2\npar = 1\nmotor = 4\n'
        '[[selection]]\ncode = "A2"\nproduct = "y"\nprice = 1\ncapacity = 2\npar = 1\nmotor = 5\n'
        "item_number = 40\n"
    )
    assert [(e.code, e.item_number) for e in planogram.entries] == [("A1", 1), ("A2", 40)]
    assert (planogram.currency, planogram.config_version) == (None, None)


@pytest.mark.parametrize("text", ["", "[machine]\nid = 'x'\n", "selection = 3\n"])
def test_a_planogram_without_selections_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match=r"no \[\[selection\]\]"):
        parse_planogram(text)


def test_command_words_are_typed_by_the_schema() -> None:
    assert parse_command_args("resync", ["after_seq=12"]) == {"after_seq": 12}
    assert parse_command_args("machine_service", ["in_service=no", "reason=Bảo trì"]) == {
        "in_service": False,
        "reason": "Bảo trì",
    }
    assert parse_command_args("reboot", []) == {}
