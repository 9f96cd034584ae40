"""Pre-kitting: what to load for each machine, and what the warehouse picks per van.

Quantity per selection = par - forecast on-hand at the planned arrival, rounded to the
product's pack (unit, half case, case) and never more than the selection can hold. A
selection that will be empty always gets at least one pack when one fits, so a small
par on a case-packed product is not left sold out by rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fleet.planning.model import PlanningError, PlanogramSlot, Product


@dataclass(frozen=True, slots=True)
class PickLine:
    machine_id: str
    selection: str
    sku: str
    on_hand: int | None  # forecast at arrival; None = unknown, treated as empty
    par: int
    capacity: int
    need: int  # par - on_hand before rounding
    quantity: int  # units to load
    pack_size: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class MachinePickList:
    machine_id: str
    lines: tuple[PickLine, ...]

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)

    def case_equivalents_milli(self, products: Mapping[str, Product]) -> int:
        """Load in thousandths of a case, for vans whose capacity is counted in cases."""
        return sum(
            -(-line.quantity * 1000 // products[line.sku].case_quantity) for line in self.lines
        )


@dataclass(frozen=True, slots=True)
class ProductTotal:
    sku: str
    name: str
    units: int
    cases: int
    loose_units: int


def pick_line(slot: PlanogramSlot, product: Product, on_hand: int | None) -> PickLine:
    if product.sku != slot.sku:
        raise PlanningError(f"slot {slot.machine_id}/{slot.selection} holds {slot.sku}")
    known = 0 if on_hand is None else max(0, min(on_hand, slot.capacity))
    note = "stock unknown: filled as if empty" if on_hand is None else ""
    need = max(0, slot.par - known)
    room = slot.capacity - known
    pack = product.pack_size
    if need == 0:
        return PickLine(
            slot.machine_id, slot.selection, slot.sku, on_hand, slot.par, slot.capacity, 0, 0,
            pack, note or "at or above par",
        )  # fmt: skip
    packs = int(need / pack + 0.5)  # nearest whole pack, halves up
    if packs == 0 and known == 0:
        packs = 1  # an empty selection never stays empty because of rounding
    quantity = packs * pack
    if quantity > room:
        quantity = (room // pack) * pack
        if quantity == 0:
            quantity = min(need, room)
            note = _join(note, f"room for {room}, less than a pack of {pack}: loose units")
        else:
            note = _join(note, f"capped at capacity {slot.capacity}")
    elif quantity == 0:
        note = _join(note, f"need {need} is under half a pack of {pack}")
    return PickLine(
        slot.machine_id, slot.selection, slot.sku, on_hand, slot.par, slot.capacity, need,
        quantity, pack, note,
    )  # fmt: skip


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def machine_pick_list(
    machine_id: str,
    slots: Sequence[tuple[PlanogramSlot, int | None]],
    products: Mapping[str, Product],
) -> MachinePickList:
    """Pick lines for one machine from (slot, forecast on-hand at arrival) pairs."""
    lines = []
    for slot, on_hand in slots:
        product = products.get(slot.sku)
        if product is None:
            raise PlanningError(f"slot {machine_id}/{slot.selection}: unknown product {slot.sku}")
        lines.append(pick_line(slot, product, on_hand))
    return MachinePickList(machine_id, tuple(lines))


def van_totals(
    lists: Iterable[MachinePickList], products: Mapping[str, Product]
) -> list[ProductTotal]:
    """Warehouse pick for one van: units per product, as whole cases plus loose units."""
    units: dict[str, int] = {}
    for picks in lists:
        for line in picks.lines:
            if line.quantity:
                units[line.sku] = units.get(line.sku, 0) + line.quantity
    out = []
    for sku in sorted(units):
        case = products[sku].case_quantity
        out.append(ProductTotal(sku, products[sku].name, units[sku], *divmod(units[sku], case)))
    return out
