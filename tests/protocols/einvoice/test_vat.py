"""protocols.einvoice.vat: rates as TSuat writes them and the per-rate rounding rule."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.einvoice import EinvoiceError, check_rate, split_by_rate, vat_included
from protocols.einvoice.vat import percent


@pytest.mark.parametrize(
    ("gross", "rate", "vat"),
    [
        (12000, "8%", 889),  # 12000 * 8/108 = 888.89
        (10000, "10%", 909),  # 909.09
        (11000, "10%", 1000),  # exact
        (21, "5%", 1),  # 1.0 exactly
        (105, "5%", 5),
        (54, "8%", 4),  # 4.0
        (27, "8%", 2),  # exactly 2.0
        (13, "8%", 1),  # 0.963
        (6, "8%", 0),  # 0.444
        (-12000, "8%", -889),  # adjustments mirror sales
        (50000, "0%", 0),
        (50000, "KCT", 0),
        (50000, "KKKNT", 0),
        (10770, "7.7%", 770),
    ],
)
def test_vat_inside_a_gross_amount(gross: int, rate: str, vat: int) -> None:
    assert vat_included(gross, rate) == vat


def test_half_rounds_away_from_zero() -> None:
    # 4% inside 13 is 13 * 4 / 104 = 0.5 exactly; 39 -> 1.5
    assert vat_included(13, "4%") == 1
    assert vat_included(39, "4%") == 2
    assert vat_included(-13, "4%") == -1
    assert vat_included(-39, "4%") == -2


def test_split_per_rate_adds_up_and_keeps_first_seen_order() -> None:
    rows = split_by_rate([("10%", 15000), ("8%", 12000), ("10%", 7000), ("KCT", 5000)])
    assert rows == [("10%", 20000, 2000), ("8%", 11111, 889), ("KCT", 5000, 0)]


@pytest.mark.parametrize("rate", ["", "10", "10 %", "100%", "-5%", "05%", "7.70%", "kct", "1e1%"])
def test_bad_rates_name_the_field(rate: str) -> None:
    with pytest.raises(EinvoiceError) as err:
        check_rate(rate, field="lines[3].vat_rate")
    assert err.value.field == "lines[3].vat_rate"


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["0%", "5%", "8%", "10%", "KCT", "7.7%", "2.5%"]),
            st.integers(-(10**12), 10**12),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_vat_reconciles_exactly_and_is_the_nearest_unit(lines: list[tuple[str, int]]) -> None:
    rows = split_by_rate(lines)
    assert sum(before + vat for _, before, vat in rows) == sum(amount for _, amount in lines)
    for rate, before, vat in rows:
        gross = before + vat
        exact = gross * percent(rate) / (100 + percent(rate))
        assert abs(Fraction(vat) - exact) <= Fraction(1, 2)
        assert vat_included(-gross, rate) == -vat  # symmetric for adjustments
