"""Periods, interval splitting and rollups that add up across grains."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.audit.periods import date_period, month_period, rollups, split_machine
from fleet.audit.records import AuditError, CashCount, MachineActivity, ReconcileConfig
from fleet.audit.report import GRAINS, BoundaryKind, Category, Discrepancy, IntervalResult, Totals

TZ = "Asia/Ho_Chi_Minh"


def test_a_month_is_local_midnight_to_local_midnight() -> None:
    period = month_period("2026-03", TZ)
    assert period.label == "2026-03"
    assert period.start == datetime(2026, 2, 28, 17, tzinfo=UTC)
    assert period.end == datetime(2026, 3, 31, 17, tzinfo=UTC)
    assert month_period("2026-12", "UTC").end == datetime(2027, 1, 1, tzinfo=UTC)
    assert date_period(date(2026, 3, 1), date(2026, 3, 15), TZ).label == "2026-03-01..2026-03-15"


@pytest.mark.parametrize("label", ["2026-13", "2026-3", "march", ""])
def test_bad_months_are_named(label: str) -> None:
    with pytest.raises(AuditError, match="YYYY-MM"):
        month_period(label, TZ)


def test_bad_ranges_and_zones_are_named() -> None:
    with pytest.raises(AuditError, match="before it starts"):
        date_period(date(2026, 3, 2), date(2026, 3, 1), TZ)
    with pytest.raises(AuditError, match="366 days"):
        date_period(date(2024, 1, 1), date(2026, 1, 1), TZ)
    with pytest.raises(AuditError, match="time zone"):
        month_period("2026-03", "Mars/Olympus")


def test_intervals_run_between_collections_and_cut_at_month_starts() -> None:
    period = date_period(date(2026, 3, 20), date(2026, 4, 10), "UTC")
    counts = (
        CashCount("m", "before", datetime(2026, 3, 15, tzinfo=UTC), 0, 0),
        CashCount("m", "a", datetime(2026, 3, 25, tzinfo=UTC), 0, 0),
        CashCount("m", "b", datetime(2026, 4, 5, tzinfo=UTC), 0, 0),
    )
    items = split_machine(MachineActivity("m", counts=counts), period, ReconcileConfig())
    assert [(i.start.day, i.end.day) for i in items] == [(20, 25), (25, 1), (1, 5), (5, 11)]
    assert [i.end_kind for i in items] == [
        BoundaryKind.COLLECTION, BoundaryKind.PERIOD, BoundaryKind.COLLECTION, BoundaryKind.PERIOD
    ]  # fmt: skip
    assert [i.month for i in items] == ["2026-03", "2026-03", "2026-04", "2026-04"]
    # the first count's cash window starts at the count before the period
    assert items[0].cash_start == counts[0].at
    assert items[2].cash_start == counts[1].at


_amount = st.integers(min_value=-(10**9), max_value=10**9)
_totals = st.builds(Totals, *(_amount for _ in range(21)))


@st.composite
def _rows(draw: st.DrawFn) -> list[IntervalResult]:
    rows = []
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    for index in range(draw(st.integers(0, 12))):
        machine = draw(st.sampled_from(["m1", "m2", "m3", "m4"]))
        found = tuple(
            Discrepancy(
                machine,
                index,
                draw(st.sampled_from(list(Category))),
                draw(_amount),
                t0,
                f"r{k}",
                "",
            )
            for k in range(draw(st.integers(0, 3)))
        )
        rows.append(
            IntervalResult(
                machine=machine, index=index, location=draw(st.sampled_from(["L1", "L2"])),
                route=draw(st.sampled_from(["R1", "R2", "R3"])), start=t0,
                end=t0 + timedelta(days=1), start_kind=BoundaryKind.PERIOD,
                end_kind=BoundaryKind.PERIOD, dex_reads=None, dex_window=None, cash_visit=None,
                cash_window=None, expected_cash_source=None, totals=draw(_totals),
                discrepancies=found, month=draw(st.sampled_from(["2026-03", "2026-04"])),
            )
        )  # fmt: skip
    return rows


@settings(max_examples=60, deadline=None)
@given(_rows())
def test_rollups_add_up_across_every_grain(rows: list[IntervalResult]) -> None:
    result = rollups(rows)
    (total,) = result["total"]
    assert total.totals == sum((r.totals for r in rows), start=Totals())
    assert total.rows == len(rows)
    for grain in GRAINS:
        parts = result[grain]
        assert sum((p.totals for p in parts), start=Totals()) == total.totals
        assert sum(p.rows for p in parts) == len(rows)
        for category in Category:
            assert sum(p.by_category.get(category.value, 0) for p in parts) == sum(
                d.amount for r in rows for d in r.discrepancies if d.category is category
            )
