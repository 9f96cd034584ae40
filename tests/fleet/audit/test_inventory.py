"""The inventory check on stock telemetry as a real controller sends it: every way stock
moves on a machine (fills and removals at the front panel, sales, baskets, test vends,
failed vends, hand corrections, planogram changes, restarts) is either explained or
reported, with the amount of product missing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fleet.audit.records import SaleMethod
from protocols.telemetry import ServiceAction
from tests.fleet.audit.stock_day import DAY, PRICES, StockDay


def _filled(day: StockDay, level: int = 8) -> StockDay:
    """The start of every day here: a snapshot of empty selections, then a visit that fills
    them to ``level`` at the front panel (the actions are reported when the door closes)."""
    day.snapshot()
    day.open_door()
    for code in PRICES:
        day.fill_to(code, level)
    day.close_door()
    return day


def _found(day: StockDay, first: date = DAY, last: date = DAY) -> list[tuple[int, str]]:
    """(amount, selection) of each inventory mismatch of the period."""
    return [(d.amount, d.ref.rpartition(":")[2]) for d in day.mismatches(first, last)]


def test_a_fill_at_the_front_panel_explains_the_counts_it_changed() -> None:
    day = _filled(StockDay())
    day.sale("A1")
    day.sale("B1", SaleMethod.CASHLESS)
    day.snapshot()
    assert _found(day) == []


def test_a_collection_in_the_middle_of_a_filling_visit_is_no_mismatch() -> None:
    day = StockDay()
    day.snapshot()
    day.open_door()
    day.fill_to("A1", 8)
    day.collect("v1")  # the interval ends here, with A2 and B1 not yet filled
    day.fill_to("A2", 8)
    day.fill_to("B1", 6)
    day.close_door()
    day.sale("A2")
    day.collect("v2")
    assert _found(day) == []


def test_product_gone_after_a_fill_is_the_only_mismatch() -> None:
    day = _filled(StockDay())
    day.sale("A1")
    day.shelf["A1"] -= 2  # two units taken without a sale; the next count shows it
    day.snapshot()
    assert _found(day) == [(-2 * PRICES["A1"], "A1")]


def test_basket_lines_count_every_unit_of_every_selection() -> None:
    day = _filled(StockDay())
    day.basket(["A1", "A1", "B1"])
    day.basket(["A2"])
    day.snapshot()
    assert _found(day) == []


def test_a_basket_split_by_the_period_end_is_counted_once_in_the_later_period() -> None:
    day = _filled(StockDay())
    day.clock = datetime(2026, 3, 5, 16, 58, tzinfo=UTC)  # 23:58 in Ho Chi Minh City
    day.basket(["A1", "B1"], pause_after=2)  # first item before midnight, the sale after
    day.snapshot()
    assert _found(day) == []
    after = DAY + timedelta(days=1)
    assert _found(day, after, after) == []


def test_a_basket_the_machine_sold_short_is_found() -> None:
    day = _filled(StockDay())
    day.basket(["A1", "B1"])
    day.change("B1", -1)  # one more B1 out, reported as a stock change with no sale
    day.snapshot()
    assert _found(day) == [(-PRICES["B1"], "B1")]


def test_test_vends_take_product_out_and_are_not_counted_twice() -> None:
    day = _filled(StockDay())
    day.open_door()
    day.sale("A1", SaleMethod.TEST)  # a sale with price 0 and a test_vend action
    day.sale("A1", SaleMethod.TEST)
    day.close_door()
    day.snapshot()
    assert _found(day) == []


def test_a_failed_vend_moves_nothing() -> None:
    day = _filled(StockDay())
    day.change("A2", 0)  # jammed: out of service, the count unchanged (and a refund)
    day.snapshot()
    assert _found(day) == []


def test_removals_at_a_visit_are_explained() -> None:
    day = _filled(StockDay())
    day.open_door()
    day.remove("B1", 3)  # expired
    day.close_door()
    day.snapshot()
    assert _found(day) == []


def test_a_count_corrected_by_hand_is_the_shrinkage_it_found() -> None:
    day = _filled(StockDay())
    day.open_door()
    day.change("A1", -2)
    day.act(ServiceAction.COUNT, "A1", -2)
    day.fill_to("A2", 6)  # a level below the machine's count: two units were not there
    day.close_door()
    day.snapshot()
    found = day.mismatches()
    assert sorted((d.amount, d.ref.rpartition(":")[2]) for d in found) == [
        (-2 * PRICES["A1"], "A1"),
        (-2 * PRICES["A2"], "A2"),
    ]
    assert all("-2 corrected by hand" in d.detail for d in found)


def test_a_planogram_that_drops_and_brings_back_a_selection_is_no_mismatch() -> None:
    day = _filled(StockDay())
    day.sale("B1")
    held = day.shelf.pop("B1")  # the new planogram has no B1: its units come out
    day.snapshot()
    day.shelf["B1"] = 0  # and the next one has B1 again, empty
    day.snapshot()
    day.open_door()
    day.fill_to("B1", 5)
    day.close_door()
    day.sale("B1")
    day.snapshot()
    assert held == 7
    assert _found(day) == []


def test_a_snapshot_after_a_restart_observes_and_moves_nothing() -> None:
    day = _filled(StockDay())
    day.sale("A1")
    day.snapshot()  # boot recovery: the same counts again
    day.sale("A1")
    day.snapshot()
    assert _found(day) == []
    day.shelf["A2"] -= 1  # the next restart reports one A2 fewer than the journal knew
    day.snapshot()
    assert _found(day) == [(-PRICES["A2"], "A2")]


def test_a_visit_whose_close_was_never_sent_leaves_its_fills_unexplained() -> None:
    day = StockDay()
    day.snapshot()
    day.open_door()
    day.fill_to("A1", 8)  # the controller restarts with the door open: no close, no actions
    day.opened = None
    day.open_door()
    day.close_door()
    day.snapshot()
    assert _found(day) == [(8 * PRICES["A1"], "A1")]
