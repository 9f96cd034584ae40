from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.money import (
    MdbScaling,
    Money,
    MoneyError,
    currency,
    currency_from_mdb,
    currency_to_mdb,
)

VND = currency("VND")
EUR = currency("EUR")


def test_mdb_currency_codes() -> None:
    assert currency_from_mdb(0x1704) == VND
    assert currency_from_mdb(0x1978) == EUR
    assert currency_from_mdb(0x0001) == currency("USD")  # telephone-code form
    assert currency_from_mdb(0xFFFF) is None
    assert currency_to_mdb(VND) == 0x1704


def test_scaling_vnd_coin() -> None:
    # A changer reporting scale 100, 0 decimals: credit 5 is a 500 VND coin.
    assert MdbScaling(100, 0, VND).to_money(5) == Money(500, "VND")


def test_scaling_eur_with_two_decimals() -> None:
    scaling = MdbScaling(5, 2, EUR)
    assert scaling.to_money(10) == Money(50, "EUR")
    assert scaling.to_units(Money(150, "EUR")) == 30


def test_device_finer_than_the_currency_is_an_error() -> None:
    # A VND device claiming 2 decimals with scale 1: 1 unit = 0.01 VND, not representable.
    with pytest.raises(MoneyError):
        MdbScaling(1, 2, VND).to_money(1)
    assert MdbScaling(1, 2, VND).to_money(300) == Money(3, "VND")


def test_amount_not_a_multiple_of_the_device_step() -> None:
    scaling = MdbScaling(100, 0, VND)
    with pytest.raises(MoneyError):
        scaling.to_units(Money(250, "VND"))
    assert not scaling.representable(Money(250, "VND"))


def test_mixing_currencies_is_refused() -> None:
    with pytest.raises(MoneyError):
        _ = Money(1, "VND") + Money(1, "EUR")
    with pytest.raises(MoneyError):
        MdbScaling(1, 0, VND).to_units(Money(1, "EUR"))


def test_floats_are_refused() -> None:
    with pytest.raises(MoneyError):
        Money(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        _ = Money(1, "EUR") * 1.5  # type: ignore[operator]


def test_format() -> None:
    assert Money(12000, "VND").format() == "12,000 VND"
    assert Money(-150, "EUR").format() == "-1.50 EUR"


@given(st.integers(1, 255), st.integers(0, 4), st.integers(0, 65535))
def test_units_round_trip(scale: int, decimals: int, units: int) -> None:
    scaling = MdbScaling(scale, decimals, EUR)
    try:
        money = scaling.to_money(units)
    except MoneyError:
        return  # finer than a cent: correctly refused
    assert scaling.to_units(money) == units
