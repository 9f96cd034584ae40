"""Cabinet stock as telemetry rows (controller/cabinet_stock.py): shelves counted from an
inventory, skus summed across shelves, and only what changed reported again."""

from __future__ import annotations

from typing import Any

import pytest

from controller.cabinet_config import CabinetSection
from controller.cabinet_stock import SkuLevel, levels, shelf_count, stock_body
from protocols.cabinet.model import ShelfReading

SHELVES: list[dict[str, Any]] = [
    {"shelf": 0, "sku": "COLA", "product": "Coca-Cola", "unit_weight_g": 355,
     "tolerance_g": 10, "price": 15000, "capacity": 8, "par": 6},
    {"shelf": 1, "sku": "COLA", "product": "Coca-Cola", "unit_weight_g": 355,
     "tolerance_g": 10, "price": 15000, "capacity": 8, "par": 6},
    {"shelf": 2, "sku": "WATER", "product": "Nước suối", "unit_weight_g": 520,
     "tolerance_g": 10, "price": 8000},
    {"shelf": 3, "sku": "TAGGED", "product": "Salad", "unit_weight_g": 260,
     "tolerance_g": 8, "price": 30000, "rfid": True},
]  # fmt: skip


def _section(**changes: Any) -> CabinetSection:
    return CabinetSection.model_validate(
        {"url": "memory://", "pre_auth": 100000, "shelf": SHELVES, **changes}
    )


def _levels(readings: tuple[ShelfReading, ...], **kw: Any) -> dict[str, SkuLevel]:
    section = _section()
    planogram = section.planogram("VND", {}, readings)
    return levels(section, planogram, readings, **kw)


FULL = (
    ShelfReading(0, 3 * 355 + 12),
    ShelfReading(1, 2 * 355 - 4),
    ShelfReading(2, 4 * 520),
    ShelfReading(3, 999, frozenset({"T1", "T2"})),
)


def test_shelves_of_one_sku_add_up_to_one_row() -> None:
    got = _levels(FULL)
    assert {sku: (lv.count, lv.capacity, lv.par) for sku, lv in got.items()} == {
        "COLA": (5, 16, 12),
        "WATER": (4, 4, 0),  # no capacity configured: full at its count
        "TAGGED": (2, 2, 0),  # RFID shelves count their tags, not their weight
    }
    assert (got["WATER"].product, got["WATER"].price) == ("Nước suối", 8000)


@pytest.mark.parametrize(
    "bad",
    [
        ShelfReading(1, None),  # no weight
        ShelfReading(1, 355, fault=True),  # sensor fault
        ShelfReading(1, 355 + 120),  # not a whole number of cans: something else lies there
    ],
    ids=["no-weight", "fault", "not-whole"],
)
def test_a_sku_with_a_shelf_that_cannot_be_counted_is_left_out(bad: ShelfReading) -> None:
    readings = (FULL[0], bad, FULL[2], FULL[3])
    assert sorted(_levels(readings)) == ["TAGGED", "WATER"]


def test_a_missing_shelf_reading_leaves_its_sku_out() -> None:
    assert sorted(_levels(FULL[1:])) == ["TAGGED", "WATER"]


def test_codes_of_vend_selections_are_never_reported() -> None:
    assert "COLA" not in _levels(FULL, skip={"COLA": 1})


def test_shelf_count_without_a_product_is_unknown() -> None:
    planogram = _section().planogram("VND", {})
    assert shelf_count(ShelfReading(9, 355), planogram, rfid=False) is None
    assert shelf_count(ShelfReading(2, 0), planogram, rfid=False) == 0


def test_only_changed_skus_are_reported_with_their_delta() -> None:
    first = _levels(FULL)
    body = stock_body(first, {}, "VND")
    assert body is not None
    assert [(r.code, r.count, r.delta) for r in body.selections] == [
        ("COLA", 5, None),
        ("TAGGED", 2, None),
        ("WATER", 4, None),
    ]
    after = _levels((ShelfReading(0, 2 * 355), *FULL[1:]))
    again = stock_body(after, first, "VND")
    assert again is not None
    assert again.kind.value == "change"  # never a snapshot: the vend rows must survive
    assert [(r.code, r.count, r.delta) for r in again.selections] == [("COLA", 4, -1)]
    assert stock_body(after, after, "VND") is None


def test_par_above_capacity_is_refused() -> None:
    shelf = {**SHELVES[2], "capacity": 4, "par": 5}
    with pytest.raises(ValueError, match="par 5 is above capacity"):
        _section(shelf=[shelf])
