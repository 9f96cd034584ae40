from __future__ import annotations

import pytest

from fleet.planning.model import PackRule, PlanningError, PlanogramSlot, Product
from fleet.planning.picklists import machine_pick_list, pick_line, van_totals

UNIT = Product("gum", case_quantity=20)
CASE = Product("cola", case_quantity=24, pack_rule=PackRule.CASE)
HALF = Product("chips", case_quantity=12, pack_rule=PackRule.HALF_CASE)


def slot(sku: str, capacity: int, par: int) -> PlanogramSlot:
    return PlanogramSlot("m1", f"S-{sku}", sku, capacity, par)


@pytest.mark.parametrize(
    ("product", "capacity", "par", "on_hand", "qty"),
    [
        (UNIT, 10, 8, 3, 5),  # loose units: exactly par - on hand
        (UNIT, 10, 8, 9, 0),  # above par: nothing
        (HALF, 40, 30, 10, 18),  # need 20 -> nearest half case (6) = 18
        (HALF, 40, 30, 11, 18),  # need 19 -> 18
        (HALF, 40, 30, 26, 6),  # need 4 -> 6 (4/6 rounds up)
        (CASE, 60, 50, 20, 24),  # need 30 -> one case
        (CASE, 60, 50, 10, 48),  # need 40 -> two cases
        (CASE, 30, 30, 10, 20),  # need 20 rounds to a case, room 20: loose units
        (CASE, 60, 60, 0, 48),  # need 60 -> 2.5 cases rounds to 3 = 72 > room 60: floor to 2
        (CASE, 60, 10, 0, 24),  # empty: at least one case even though need 10 < half
        (CASE, 20, 10, 0, 10),  # empty, a case does not fit: loose units up to need
        (UNIT, 10, 8, None, 8),  # unknown stock: as if empty
    ],
)
def test_pack_rounding_and_capacity(
    product: Product, capacity: int, par: int, on_hand: int | None, qty: int
) -> None:
    line = pick_line(slot(product.sku, capacity, par), product, on_hand)
    assert line.quantity == qty
    known = on_hand or 0
    assert known + line.quantity <= capacity


def test_capped_case_quantity_is_noted() -> None:
    capped = pick_line(slot("cola", 60, 60), CASE, 0)
    assert "capped" in capped.note
    loose = pick_line(slot("cola", 20, 10), CASE, 0)
    assert "loose units" in loose.note


def test_van_totals_by_product_in_cases_and_units() -> None:
    products = {p.sku: p for p in (UNIT, CASE, HALF)}
    a = machine_pick_list("m1", [(slot("cola", 60, 50), 10), (slot("gum", 30, 30), 5)], products)
    b = machine_pick_list("m2", [(PlanogramSlot("m2", "X", "cola", 60, 50), 26)], products)
    totals = {t.sku: t for t in van_totals([a, b], products)}
    assert totals["cola"].units == 48 + 24
    assert (totals["cola"].cases, totals["cola"].loose_units) == (3, 0)
    assert (totals["gum"].units, totals["gum"].cases, totals["gum"].loose_units) == (25, 1, 5)
    assert a.units == 48 + 25
    assert a.case_equivalents_milli(products) == 2000 + 1250


def test_unknown_product_is_a_clear_error() -> None:
    with pytest.raises(PlanningError, match="unknown product"):
        machine_pick_list("m1", [(slot("tea", 10, 5), 0)], {})
