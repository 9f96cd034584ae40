"""Items left on the wrong shelf, and when they are gone: the end of a planogram notice.

A wrong-shelf put-back (a :class:`ReturnedItem` with ``wrong_shelf``; settle raises one
``planogram`` alarm for each) leaves a :class:`Stray` on that shelf. The controller
shows every later inventory to :meth:`StrayBook.observe`, which compares each shelf
holding strays with its last reading:

* a stray with known tags (an RFID put-back) is the tags still on the shelf: exact;
* otherwise the weight change since the last reading must be explained as whole units
  of the shelf's own product plus some strays leaving. What *every* explanation removes
  is taken off; what only *some* remove (a 355 g can and two 180 g sandwiches weigh
  alike) is taken off only as far as as many units of the stray's sku appeared on its
  own shelves meanwhile (the can seen back home). A change nothing explains, or a
  sensor fault, leaves the strays where they were (conservative: the notice stays
  while the item may still be there).

A stray whose quantity reaches 0 is returned as cleared: its notice ends.

Why not "the shelf weighs a whole number of its own product": the tolerance is per unit,
so 40 bottles of 520 g +- 10 g admit 400 g either way, and a 355 g can hides in that. The
change between two readings is a few units, so its tolerance is tight.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from protocols.cabinet.errors import SessionError
from protocols.cabinet.model import Planogram, Product, Settlement, ShelfChange, ShelfReading
from protocols.cabinet.settle import whole_units

MAX_EXPLANATIONS = 512  # more ways to remove strays than this: the change is not judged


@dataclass(frozen=True, slots=True)
class Stray:
    """``quantity`` units of ``sku`` on ``shelf``, which holds another product."""

    session_id: int  # the session whose put-back left it (its notice)
    shelf: int
    sku: str
    quantity: int
    unit_weight_g: int
    tolerance_g: int
    tags: frozenset[str] = frozenset()  # RFID put-back: exactly these items

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise SessionError(f"a stray needs a quantity >= 1, got {self.quantity}")
        if self.unit_weight_g <= 0 or self.tolerance_g < 0:
            raise SessionError(f"stray {self.sku}: bad unit weight or tolerance")
        if self.tags and len(self.tags) != self.quantity:
            raise SessionError(f"stray {self.sku}: {len(self.tags)} tags for {self.quantity}")

    @property
    def weight_g(self) -> int:
        return self.quantity * self.unit_weight_g


@dataclass(frozen=True, slots=True)
class StrayBook:
    """The strays in the cabinet, and each of their shelves' weight at its last reading."""

    strays: tuple[Stray, ...] = ()
    weights: Mapping[int, int] = field(default_factory=dict)  # shelf -> grams

    def on(self, shelf: int) -> tuple[Stray, ...]:
        return tuple(s for s in self.strays if s.shelf == shelf)

    def placed(self, new: Iterable[Stray], baseline: Sequence[ShelfReading] | None) -> StrayBook:
        """The book after a session left ``new`` strays; ``baseline``: its inventory at
        the start. A shelf's reference weight becomes what it weighed before that session
        plus the strays put on it, so the session's own put-back is no change."""
        added = tuple(new)
        if not added:
            return self
        weights = dict(self.weights)
        for reading in baseline or ():
            grams = _weight(reading)
            if grams is not None:
                weights.setdefault(reading.shelf, grams)
        for stray in added:
            if stray.shelf in weights:
                weights[stray.shelf] += stray.weight_g
        return StrayBook((*self.strays, *added), weights)

    def observe(
        self, readings: Iterable[ShelfReading], planogram: Planogram
    ) -> tuple[StrayBook, tuple[Stray, ...]]:
        """The book after a fresh inventory, and the strays found gone (whole ones)."""
        if not self.strays:
            return self, ()
        by_shelf = {r.shelf: r for r in readings}
        judged: list[tuple[Stray, int, int]] = []
        for shelf in sorted({s.shelf for s in self.strays}):
            judged += _judge(
                self.on(shelf),
                by_shelf.get(shelf),
                self.weights.get(shelf),
                planogram.shelves.get(shelf),
            )
        now = {n: g for n, r in by_shelf.items() if (g := _weight(r)) is not None}
        # What may have left counts as gone when as many of its sku arrived on its own
        # shelves meanwhile: a can of 355 g and two 180 g sandwiches weigh alike.
        home = self._arrived(now, planogram, {s.sku for s, _, _ in judged})
        for stray, surely, _ in judged:
            home[stray.sku] -= surely
        kept: list[Stray] = []
        cleared: list[Stray] = []
        for stray, surely, maybe in judged:
            extra = max(0, min(maybe - surely, home[stray.sku]))
            home[stray.sku] -= extra
            left = stray.quantity - surely - extra
            if left <= 0:
                cleared.append(stray)
            else:
                kept.append(replace(stray, quantity=left))
        weights = {**self.weights, **now} if kept else {}
        return StrayBook(tuple(kept), weights), tuple(cleared)

    def _arrived(
        self, now: Mapping[int, int], planogram: Planogram, skus: Iterable[str]
    ) -> Counter[str]:
        """Whole units of each sku that appeared on the shelves holding it, since the last
        reading (none when a shelf of it cannot be weighed, or holds strays itself)."""
        out: Counter[str] = Counter()
        busy = {s.shelf for s in self.strays}
        for sku in skus:
            shelves = [n for n, p in planogram.shelves.items() if p.sku == sku]
            if not shelves or any(n in busy or n not in now or n not in self.weights
                                  for n in shelves):  # fmt: skip
                continue
            gain = sum(now[n] - self.weights[n] for n in shelves)
            units = whole_units(gain, planogram.shelves[shelves[0]])
            out[sku] = max(0, units or 0)
        return out


def strays_of(
    settlement: Settlement, changes: Sequence[ShelfChange], planogram: Planogram
) -> tuple[Stray, ...]:
    """The strays a settled session left: one per wrong-shelf put-back (as its alarms).
    An RFID put-back carries its tags: those added to the shelf that left another."""
    removed = {t for c in changes if c.rfid for t in c.removed_tags}
    pools: dict[tuple[int, str], list[str]] = {}
    for change in changes:
        for tag in sorted(change.added_tags & removed if change.rfid else ()):
            sku = planogram.tags.get(tag)
            if sku is not None:
                pools.setdefault((change.shelf, sku), []).append(tag)
    products = planogram.products
    out: list[Stray] = []
    for item in settlement.returned:
        product = products.get(item.sku)
        if not item.wrong_shelf or product is None:
            continue
        pool = pools.get((item.to_shelf, item.sku), [])
        tags = frozenset(pool[: item.quantity]) if len(pool) >= item.quantity else frozenset()
        del pool[: len(tags)]
        out.append(
            Stray(
                settlement.session_id, item.to_shelf, item.sku, item.quantity,
                product.unit_weight_g, product.tolerance_g, tags,
            )
        )  # fmt: skip
    return tuple(out)


def _weight(reading: ShelfReading | None) -> int | None:
    if reading is None or reading.fault:
        return None
    return reading.weight_g


def _judge(
    group: Sequence[Stray],
    reading: ShelfReading | None,
    before_g: int | None,
    own: Product | None,
) -> list[tuple[Stray, int, int]]:
    """Each stray of one shelf with the units that surely left and that may have left.
    A tagged stray is first cut down to the tags still there (exact)."""
    if reading is None or reading.fault:
        return [(s, 0, 0) for s in group]
    out: list[tuple[Stray, int, int]] = []
    known_gone_g = 0
    weighed: list[Stray] = []
    for stray in group:
        if not stray.tags:
            weighed.append(stray)
        elif reading.tags is None:
            out.append((stray, 0, 0))  # tags are exact; its weight alone says nothing
        elif there := stray.tags & reading.tags:
            known_gone_g += (stray.quantity - len(there)) * stray.unit_weight_g
            out.append((replace(stray, quantity=len(there), tags=there), 0, 0))
        else:
            known_gone_g += stray.weight_g
            out.append((stray, stray.quantity, stray.quantity))
    if not weighed:
        return out
    if reading.weight_g is None or before_g is None or own is None:
        return out + [(s, 0, 0) for s in weighed]
    delta = reading.weight_g - before_g + known_gone_g
    lo, hi = _gone(weighed, delta, own)
    return out + list(zip(weighed, lo, hi, strict=True))


def _gone(strays: Sequence[Stray], delta_g: int, own: Product) -> tuple[list[int], list[int]]:
    """Units of each stray that left in every explanation of ``delta_g`` (as whole units
    of ``own`` taken or added, plus strays leaving), and in some; none when nothing
    explains it."""
    none = [0] * len(strays)
    ranges = [range(s.quantity + 1) for s in strays]
    if math.prod(len(r) for r in ranges) > MAX_EXPLANATIONS:
        return none, none
    fits = [combo for combo in itertools.product(*ranges) if _explains(strays, combo, delta_g, own)]
    if not fits:
        return none, none
    lo = [min(combo[i] for combo in fits) for i in range(len(strays))]
    hi = [max(combo[i] for combo in fits) for i in range(len(strays))]
    return lo, hi


def _explains(strays: Sequence[Stray], gone: Sequence[int], delta_g: int, own: Product) -> bool:
    residual = delta_g + sum(n * s.unit_weight_g for n, s in zip(gone, strays, strict=True))
    w = own.unit_weight_g
    units = (2 * residual + w) // (2 * w)  # nearest whole number of the shelf's product
    allowed = own.tolerance_g * max(1, abs(units))
    allowed += sum(n * s.tolerance_g for n, s in zip(gone, strays, strict=True))
    return abs(residual - units * w) <= allowed
