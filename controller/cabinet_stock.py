"""A cabinet's stock as the fleet sees a machine's: ``stock`` telemetry rows, one per sku.

The shelves are counted from a SHELF INVENTORY: an RFID shelf by its tags, a weighing
shelf by whole unit weights (within the product's tolerance per unit). Shelves that
hold the same sku add up to one row -- one product to restock -- whose code is the
sku, so the fleet's stock levels, `vend fleet stores` and restock planning treat a
cabinet sku like a machine's selection.

A row is left out (the fleet keeps the level it had) when a shelf of its sku cannot be
counted: a sensor fault, or a weight that is no whole number of units (something else
lies on the shelf). A sku that is also one of the machine's vend selection codes (a
shelf priced by ``selection`` without a ``sku`` of its own) is not reported: the
selection's own row would be overwritten by it.

An item put back on another product's shelf (a :class:`~protocols.cabinet.strays.Stray`,
an open planogram notice) still counts as its own sku: its weight (or tag) is taken off
the shelf it lies on before that shelf is counted. Otherwise a 355 g can on a shelf of
40 x 520 g bottles (tolerance 10 g per unit: 400 g) would read as one bottle more, and
its own sku one unit short -- two phantom inventory mismatches at the fleet.

Rows are ``change`` messages with absolute counts, never a ``snapshot`` (a snapshot
would delete the vend selections' rows at the fleet).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from controller.cabinet_config import CabinetSection
from protocols.cabinet.model import Planogram, ShelfReading
from protocols.cabinet.settle import whole_units
from protocols.cabinet.strays import Stray
from protocols.telemetry import SelectionStock, StockBody, StockKind


@dataclass(frozen=True, slots=True)
class SkuLevel:
    """One sku across its shelves, as counted now."""

    sku: str
    product: str
    count: int
    capacity: int
    par: int
    price: int


def shelf_count(
    reading: ShelfReading, planogram: Planogram, *, rfid: bool, strays: Iterable[Stray] = ()
) -> int | None:
    """Units of the shelf's own product on one shelf (``strays`` lying on it left out),
    or None when the reading cannot say."""
    product = planogram.shelves.get(reading.shelf)
    if product is None or reading.fault:
        return None
    foreign = tuple(strays)
    if rfid and reading.tags is not None:
        tagged = {t for s in foreign for t in s.tags}
        tags = len(reading.tags - tagged) - sum(s.quantity for s in foreign if not s.tags)
        return None if tags < 0 else tags
    if reading.weight_g is None:
        return None
    units = whole_units(reading.weight_g - sum(s.weight_g for s in foreign), product)
    return None if units is None or units < 0 else units


def levels(
    settings: CabinetSection,
    planogram: Planogram,
    readings: Iterable[ShelfReading],
    *,
    skip: Iterable[str] = (),
    strays: Sequence[Stray] = (),
) -> dict[str, SkuLevel]:
    """Stock by sku from one inventory; skus with a shelf that cannot be counted are left
    out, as are the codes in ``skip``; ``strays`` count as their own sku."""
    by_shelf = {r.shelf: r for r in readings}
    misplaced: Counter[str] = Counter()
    for stray in strays:
        misplaced[stray.sku] += stray.quantity
    counted: dict[str, list[int | None]] = {}
    capacity: dict[str, int] = {}
    par: dict[str, int] = {}
    for entry in settings.shelf:
        product = planogram.shelves.get(entry.shelf)
        if product is None:
            continue
        reading = by_shelf.get(entry.shelf)
        here = [s for s in strays if s.shelf == entry.shelf]
        count = (
            None
            if reading is None
            else shelf_count(reading, planogram, rfid=entry.rfid, strays=here)
        )
        counted.setdefault(product.sku, []).append(count)
        # No capacity configured: the shelf is taken to be full at its present count.
        capacity[product.sku] = capacity.get(product.sku, 0) + (entry.capacity or count or 0)
        par[product.sku] = par.get(product.sku, 0) + (entry.par or 0)
    skipped = set(skip)
    out: dict[str, SkuLevel] = {}
    for sku, counts in counted.items():
        if sku in skipped or any(c is None for c in counts):
            continue
        product = planogram.products[sku]
        total = sum(c for c in counts if c is not None) + misplaced[sku]
        out[sku] = SkuLevel(
            sku,
            product.name,
            total,
            max(capacity[sku], total),
            min(par[sku], max(capacity[sku], total)),
            product.unit_price.minor,
        )
    return out


def stock_body(
    now: Mapping[str, SkuLevel], before: Mapping[str, SkuLevel], currency: str
) -> StockBody | None:
    """A ``change`` body for the skus whose level differs from ``before`` (all of them
    when ``before`` is empty); None when nothing changed."""
    rows: list[SelectionStock] = []
    for sku, level in sorted(now.items()):
        old = before.get(sku)
        if old == level:
            continue
        rows.append(
            SelectionStock(
                code=sku,
                product=level.product,
                count=level.count,
                capacity=level.capacity,
                par=level.par,
                price=level.price,
                in_service=True,
                delta=None if old is None else level.count - old.count,
            )
        )
    if not rows:
        return None
    return StockBody(kind=StockKind.CHANGE, currency=currency, selections=rows)
