"""Strays: an item on another product's shelf stays noted until the shelves show it gone."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.cabinet.model import ShelfChange, ShelfReading
from protocols.cabinet.settle import assess, settle
from protocols.cabinet.strays import Stray, StrayBook, strays_of
from protocols.money import Money
from tests.protocols.cabinet.catalogue import COLA, WATER, make_tag, planogram

PLANOGRAM = planogram()
FULL = 40  # bottles on the water shelf: its per-unit tolerance adds up to 480 g


def _cola_on_water(water: int = FULL) -> tuple[StrayBook, int]:
    """A cola put back on the water shelf (shelf 1) by session 7; the shelf's weight."""
    baseline = [ShelfReading(1, water * WATER.unit_weight_g)]
    stray = Stray(7, 1, "COLA", 1, COLA.unit_weight_g, COLA.tolerance_g)
    book = StrayBook().placed([stray], baseline)
    return book, water * WATER.unit_weight_g + COLA.unit_weight_g


def _water(grams: int) -> list[ShelfReading]:
    return [ShelfReading(0, 10 * COLA.unit_weight_g), ShelfReading(1, grams)]


def test_a_wrong_shelf_put_back_leaves_a_stray_per_planogram_alarm() -> None:
    changes = [ShelfChange(0, 3550, 3195), ShelfChange(1, 2600, 2955)]
    settlement = settle(
        assess(changes, PLANOGRAM, 7), PLANOGRAM, session_id=7, authorised=Money(100_000)
    )
    (stray,) = strays_of(settlement, changes, PLANOGRAM)
    assert (stray.session_id, stray.shelf, stray.sku, stray.quantity) == (7, 1, "COLA", 1)
    assert len([a for a in settlement.alarms if a.kind.value == "planogram"]) == 1


def test_the_stray_hides_in_a_full_shelfs_tolerance_but_is_still_there() -> None:
    book, weight = _cola_on_water()
    assert WATER.unit_weight_g * FULL - weight < WATER.tolerance_g * FULL  # the trap
    for grams in (weight, weight - 2 * WATER.unit_weight_g, weight + 5 * WATER.unit_weight_g):
        book, gone = book.observe(_water(grams), PLANOGRAM)
        assert gone == ()
        assert [s.sku for s in book.strays] == ["COLA"]


def test_the_stray_moved_back_clears_it_even_with_water_taken_too() -> None:
    book, weight = _cola_on_water()
    book, gone = book.observe(_water(weight - 3 * WATER.unit_weight_g), PLANOGRAM)
    assert gone == ()
    book, gone = book.observe(
        _water(weight - 3 * WATER.unit_weight_g - COLA.unit_weight_g - WATER.unit_weight_g),
        PLANOGRAM,
    )
    assert [(s.session_id, s.sku) for s in gone] == [(7, "COLA")]
    assert book == StrayBook()


def test_a_change_nothing_explains_or_a_fault_keeps_the_notice() -> None:
    book, weight = _cola_on_water()
    for reading in (ShelfReading(1, weight - 100), ShelfReading(1, None, fault=True)):
        after, gone = book.observe([reading], PLANOGRAM)
        assert (gone, [s.quantity for s in after.strays]) == ((), [1])
    # The reference stays the last good reading: the cola leaving later still shows.
    after, _ = book.observe([ShelfReading(1, None, fault=True)], PLANOGRAM)
    assert after.observe(_water(weight - COLA.unit_weight_g), PLANOGRAM)[1] != ()


def test_two_strays_one_leaves_only_that_one_clears() -> None:
    book, weight = _cola_on_water()
    sandwich = Stray(8, 1, "SANDWICH", 2, 180, 15)
    book = book.placed([sandwich], [ShelfReading(1, weight)])
    book, gone = book.observe(_water(weight + 2 * 180 - 180), PLANOGRAM)
    assert gone == ()
    assert sorted((s.sku, s.quantity) for s in book.strays) == [("COLA", 1), ("SANDWICH", 1)]
    book, gone = book.observe(_water(weight - COLA.unit_weight_g + 180), PLANOGRAM)
    assert [s.sku for s in gone] == ["COLA"]


def test_a_can_that_weighs_like_two_sandwiches_is_gone_once_seen_back_home() -> None:
    """355 g off the sandwich shelf is the can, or two 180 g sandwiches: undecided until
    a can turns up on the cola shelf."""
    cola_g, sandwiches_g = 10 * COLA.unit_weight_g, 30 * 180
    baseline = [ShelfReading(0, cola_g + COLA.unit_weight_g), ShelfReading(2, sandwiches_g)]
    can = Stray(7, 2, "COLA", 1, COLA.unit_weight_g, COLA.tolerance_g)
    book = StrayBook().placed([can], baseline)
    book, gone = book.observe(
        [ShelfReading(0, cola_g), ShelfReading(2, sandwiches_g + 355)], PLANOGRAM
    )
    assert (gone, len(book.strays)) == ((), 1)
    # Two sandwiches sold: the same grams, but no can came home -- the notice stays.
    sold, _ = book.observe([ShelfReading(0, cola_g), ShelfReading(2, sandwiches_g - 5)], PLANOGRAM)
    assert len(sold.strays) == 1
    # The can moved back: the cola shelf gained one can.
    tidy = [ShelfReading(0, cola_g + COLA.unit_weight_g), ShelfReading(2, sandwiches_g)]
    assert book.observe(tidy, PLANOGRAM) == (StrayBook(), (can,))


def test_rfid_strays_are_their_tags() -> None:
    tag = make_tag(0, 3)
    tagged = planogram(tags_per_shelf=5)
    changes = [
        ShelfChange(0, None, None, removed_tags=frozenset({tag}), rfid=True),
        ShelfChange(1, None, None, added_tags=frozenset({tag}), rfid=True),
    ]
    settlement = settle(assess(changes, tagged, 9), tagged, session_id=9, authorised=Money(1))
    (stray,) = strays_of(settlement, changes, tagged)
    assert stray.tags == {tag}
    book = StrayBook().placed([stray], None)
    still, gone = book.observe([ShelfReading(1, None, frozenset({tag, "X"}))], tagged)
    assert (gone, still.strays) == ((), (stray,))
    assert book.observe([ShelfReading(1, None, frozenset({"X"}))], tagged)[1] == (stray,)


@settings(max_examples=100, deadline=None)
@given(
    water=st.integers(1, 60),
    moves=st.lists(st.integers(-5, 5).filter(bool), max_size=6),
)
def test_water_bought_or_restocked_never_clears_it(water: int, moves: list[int]) -> None:
    """Whatever whole bottles come and go, the cola is still there: never cleared."""
    book, _ = _cola_on_water(water)
    for n in moves:
        water = max(0, water + n)
        book, gone = book.observe(
            _water(water * WATER.unit_weight_g + COLA.unit_weight_g), PLANOGRAM
        )
        assert gone == ()
    assert len(book.strays) == 1
