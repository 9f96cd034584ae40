from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.planning.forecast import DemandForecast, forecast_selection
from fleet.planning.model import SaleRecord
from fleet.planning.stock_estimate import Interval

START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


def daily_sales(days: int, per_day: list[int], skip: range = range(0)) -> list[SaleRecord]:
    out = []
    for d in range(days):
        if d in skip:
            continue
        n = per_day[(START + timedelta(days=d)).weekday()]
        out += [
            SaleRecord("m", "A1", START + timedelta(days=d, hours=8 + 10 * k / max(n, 1)))
            for k in range(n)
        ]
    return out


def fc(sales: list[SaleRecord], days: int, outs: Sequence[Interval] = ()) -> DemandForecast:
    return forecast_selection(
        "m",
        "A1",
        sales,
        outs,
        history_start=START,
        history_end=START + timedelta(days=days),
        tz=UTC,
    )


def test_sold_out_days_are_censored_not_zero_demand() -> None:
    empty = range(10, 13)  # three days standing empty, then refilled
    sales = daily_sales(21, [6] * 7, skip=empty)
    outs = [Interval(START + timedelta(days=10), START + timedelta(days=13))]
    censored = fc(sales, 21, outs)
    naive = fc(sales, 21)
    assert censored.daily_rate == pytest.approx(6.0, rel=0.02)
    assert censored.censored_days == pytest.approx(3.0)
    assert naive.daily_rate < 5.4  # without censoring the empty days drag the rate down


def test_day_of_week_shape_is_recovered() -> None:
    shape = [10, 10, 10, 10, 10, 2, 0]  # office: quiet weekend
    f = fc(daily_sales(56, shape), 56)
    assert f.dow_rates[0] == pytest.approx(10, rel=0.1)
    assert f.dow_rates[5] == pytest.approx(2, abs=1.0)
    assert f.dow_rates[6] < 0.2 * f.dow_rates[0]  # shrinkage keeps a little, not a weekday
    assert f.dow_rates[6] < f.dow_rates[5] < f.dow_rates[0]


def test_thin_weekday_is_shrunk_toward_overall() -> None:
    sales = daily_sales(7, [4, 4, 4, 4, 4, 4, 20])  # one odd Sunday
    f = fc(sales, 7)
    assert 4 < f.dow_rates[6] < 20


def test_hour_profile_and_partial_day_demand() -> None:
    f = fc(daily_sales(28, [10] * 7), 28)
    day = START + timedelta(days=40)
    morning = f.expected_demand(day, day + timedelta(hours=8))  # sales start at 08:00
    working = f.expected_demand(day + timedelta(hours=8), day + timedelta(hours=18))
    assert morning < 1.0 < working
    assert f.expected_demand(day, day + timedelta(days=1)) == pytest.approx(10, rel=0.05)


def test_days_until_empty_and_threshold() -> None:
    f = fc(daily_sales(28, [5] * 7), 28)
    t = START + timedelta(days=30)
    assert f.days_until(10, t) == pytest.approx(2.0, abs=0.5)
    assert f.days_until(0, t) == 0.0
    assert f.days_until_below(10, 5, t) == pytest.approx(1.0, abs=0.5)
    none = fc([], 28)
    assert none.days_until(5, t) is None


@settings(max_examples=50, deadline=None)
@given(
    rate=st.integers(min_value=0, max_value=30),
    hours=st.floats(min_value=0, max_value=24 * 9),
    offset=st.floats(min_value=0, max_value=48),
)
def test_expected_demand_adds_up_over_split_intervals(
    rate: int, hours: float, offset: float
) -> None:
    f = fc(daily_sales(14, [rate] * 7), 14)
    a = START + timedelta(days=20, hours=offset)
    mid = a + timedelta(hours=hours / 3)
    b = a + timedelta(hours=hours)
    whole = f.expected_demand(a, b)
    assert whole >= 0
    assert whole == pytest.approx(f.expected_demand(a, mid) + f.expected_demand(mid, b), abs=1e-6)
