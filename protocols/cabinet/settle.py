"""What the customer took, from the shelves' changes: pure arithmetic, no state.

:func:`assess` turns shelf changes into two counts per product: ``confident`` (what
the sensors vouch for) and ``plausible`` (the most it can have been), plus returns,
alarms and the doubts that make the two differ. :func:`settle` applies the
operator's :class:`ChargeRule` and the pre-authorisation cap.

Rules (docs/cabinet-protocol.md, section 8):

* RFID is exact: a removed tag is a taken item, a tag removed and added anywhere
  else is a returned item (on a shelf of another product: a planogram alarm);
* weight becomes a count of the shelf's product when the change is a whole number of
  unit weights within ``tolerance_g`` per unit; anything else is a doubt;
* on a shelf with both sensors the weight must match the tags; if not, the count
  lies between the two readings (a doubt);
* weight that appears on a weight-only shelf is matched against the products taken
  in this session (the shelf's own first): a match is a return, never charged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from protocols.cabinet.model import (
    Alarm,
    AlarmKind,
    ChargeRule,
    LineKind,
    Planogram,
    Product,
    ReturnedItem,
    ReviewRecord,
    SaleLine,
    Settlement,
    SettlementOutcome,
    ShelfChange,
)
from protocols.money import Money

CAP_SKU = "pre-auth-cap"


def whole_units(delta_g: int, product: Product) -> int | None:
    """``delta_g`` as a whole number of units of ``product``, or ``None`` if it is not one."""
    w = product.unit_weight_g
    n = (2 * delta_g + w) // (2 * w)  # nearest integer, exact in integers
    if abs(delta_g - n * w) <= product.tolerance_g * max(1, abs(n)):
        return n
    return None


def _ceil_units(delta_g: int, product: Product) -> int:
    return max(0, -(-delta_g // product.unit_weight_g))


@dataclass(frozen=True, slots=True)
class Assessment:
    confident: dict[str, int]
    plausible: dict[str, int]
    returned: tuple[ReturnedItem, ...] = ()
    alarms: tuple[Alarm, ...] = ()
    doubts: tuple[str, ...] = ()
    doubtful_shelves: tuple[int, ...] = ()

    @property
    def certain(self) -> bool:
        return not self.doubts


@dataclass(slots=True)
class _Tally:
    planogram: Planogram
    session_id: int
    confident: Counter[str] = field(default_factory=Counter)
    plausible: Counter[str] = field(default_factory=Counter)
    returned: list[ReturnedItem] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    doubts: list[str] = field(default_factory=list)
    doubtful: set[int] = field(default_factory=set)
    expected_g: Counter[int] = field(default_factory=Counter)  # weight RFID says left a shelf
    rfid_taken: dict[int, Counter[str]] = field(default_factory=dict)

    def alarm(self, kind: AlarmKind, detail: str, shelf: int | None = None) -> None:
        self.alarms.append(Alarm(kind, self.session_id, detail, shelf))

    def doubt(self, shelf: int, reason: str) -> None:
        self.doubts.append(reason)
        self.doubtful.add(shelf)

    def take(self, sku: str, low: int, high: int) -> None:
        self.confident[sku] += low
        self.plausible[sku] += high

    def product_on(self, shelf: int) -> Product | None:
        return self.planogram.shelves.get(shelf)

    def weight_of(self, sku: str) -> int:
        return self.planogram.products[sku].unit_weight_g


def assess(
    changes: Sequence[ShelfChange], planogram: Planogram, session_id: int, *,
    min_confidence: int = 80, noise_g: int = 5,
) -> Assessment:  # fmt: skip
    tally = _Tally(planogram, session_id)
    _tags(tally, [c for c in changes if c.rfid])
    additions: list[tuple[int, int]] = []
    for change in changes:
        additions += _weight(tally, change, min_confidence, noise_g)
    for shelf, added_g in additions:
        _addition(tally, shelf, added_g)
    return Assessment(
        confident={k: v for k, v in tally.confident.items() if v > 0},
        plausible={k: v for k, v in tally.plausible.items() if v > 0},
        returned=tuple(tally.returned),
        alarms=tuple(tally.alarms),
        doubts=tuple(tally.doubts),
        doubtful_shelves=tuple(sorted(tally.doubtful)),
    )


def _tags(tally: _Tally, changes: Iterable[ShelfChange]) -> None:
    removed: dict[str, int] = {}
    added: dict[str, int] = {}
    for change in changes:
        removed.update(dict.fromkeys(change.removed_tags, change.shelf))
        added.update(dict.fromkeys(change.added_tags, change.shelf))
    for tag, shelf in sorted(removed.items()):
        sku = tally.planogram.tags.get(tag)
        if sku is None:
            tally.alarm(AlarmKind.UNKNOWN_TAG, f"tag {tag} left shelf {shelf}", shelf)
            tally.doubt(shelf, f"unknown tag {tag} removed from shelf {shelf}")
            continue
        tally.expected_g[shelf] += tally.weight_of(sku)
        to_shelf = added.get(tag)
        if to_shelf is None:
            tally.take(sku, 1, 1)
            tally.rfid_taken.setdefault(shelf, Counter())[sku] += 1
            continue
        tally.expected_g[to_shelf] -= tally.weight_of(sku)
        _returned(tally, sku, 1, to_shelf)
    for tag, shelf in sorted(added.items()):
        if tag in removed:
            continue
        sku = tally.planogram.tags.get(tag)
        if sku is None:
            tally.alarm(AlarmKind.UNKNOWN_TAG, f"tag {tag} appeared on shelf {shelf}", shelf)
            tally.doubt(shelf, f"unknown tag {tag} added to shelf {shelf}")
            continue
        tally.expected_g[shelf] -= tally.weight_of(sku)
        tally.alarm(
            AlarmKind.UNEXPECTED_ADDITION, f"{sku} (tag {tag}) appeared on shelf {shelf}", shelf
        )


def _returned(tally: _Tally, sku: str, quantity: int, to_shelf: int) -> None:
    own = tally.product_on(to_shelf)
    wrong = own is not None and own.sku != sku
    tally.returned.append(ReturnedItem(sku, quantity, to_shelf, wrong))
    if wrong:
        tally.alarm(
            AlarmKind.PLANOGRAM, f"{quantity} x {sku} put back on shelf {to_shelf}", to_shelf
        )


def _weight(tally: _Tally, change: ShelfChange, min_confidence: int, noise_g: int) -> list[
    tuple[int, int]
]:  # fmt: skip
    """Count one shelf by weight; returns the weight that appeared on it, to match later."""
    shelf = change.shelf
    delta = change.weight_removed_g
    if change.fault:
        tally.alarm(AlarmKind.SENSOR_FAULT, f"shelf {shelf} sensor fault", shelf)
        if not change.rfid:
            tally.doubt(shelf, f"shelf {shelf}: sensor fault, nothing to count with")
            return []
    if delta is None:
        if not change.rfid:
            tally.doubt(shelf, f"shelf {shelf}: no weight and no RFID reading")
        return []
    trusted = change.confidence >= min_confidence
    if not trusted:
        tally.alarm(
            AlarmKind.LOW_CONFIDENCE,
            f"shelf {shelf}: weight confidence {change.confidence} < {min_confidence}",
            shelf,
        )
    if change.rfid:
        if trusted:
            _cross_check(tally, change, delta, noise_g)
        return []
    product = tally.product_on(shelf)
    if abs(delta) <= noise_g:
        return []
    if product is None:
        tally.alarm(AlarmKind.SENSOR_DISAGREEMENT, f"{delta} g changed on empty shelf", shelf)
        tally.doubt(shelf, f"shelf {shelf}: {delta} g changed on a shelf with no product")
        return []
    count = whole_units(delta, product)
    if not trusted:
        tally.doubt(shelf, f"shelf {shelf}: weight confidence {change.confidence}")
        tally.take(product.sku, 0, _ceil_units(delta, product))
        return []
    if count is not None and count >= 0:
        tally.take(product.sku, count, count)
        return []
    if delta < 0:
        return [(shelf, -delta)]
    tally.alarm(
        AlarmKind.SENSOR_DISAGREEMENT,
        f"{delta} g is no whole number of {product.sku} ({product.unit_weight_g} g)",
        shelf,
    )
    tally.doubt(shelf, f"shelf {shelf}: {delta} g is no whole number of {product.sku}")
    tally.take(product.sku, 0, _ceil_units(delta, product))
    return []


def _cross_check(tally: _Tally, change: ShelfChange, delta: int, noise_g: int) -> None:
    """Weight against tags on a shelf with both sensors; the tags were counted already."""
    shelf = change.shelf
    expected = tally.expected_g[shelf]
    product = tally.product_on(shelf)
    tolerance = max(noise_g, product.tolerance_g if product else 0)
    taken = tally.rfid_taken.get(shelf, Counter())
    tolerance *= max(1, sum(taken.values()))
    if abs(delta - expected) <= tolerance:
        return
    tally.alarm(
        AlarmKind.SENSOR_DISAGREEMENT,
        f"weight says {delta} g left, tags say {expected} g",
        shelf,
    )
    tally.doubt(shelf, f"shelf {shelf}: weight {delta} g vs tags {expected} g")
    if product is None:
        return
    # Put the unexplained weight on the shelf's own product: the count lies between.
    by_tags = taken[product.sku]
    residual = delta - expected + by_tags * product.unit_weight_g
    by_weight = whole_units(residual, product)
    low = by_weight if by_weight is not None else residual // product.unit_weight_g
    high = by_weight if by_weight is not None else _ceil_units(residual, product)
    tally.confident[product.sku] += max(0, min(by_tags, low)) - by_tags
    tally.plausible[product.sku] += max(by_tags, high) - by_tags


def _addition(tally: _Tally, shelf: int, added_g: int) -> None:
    own = tally.product_on(shelf)
    candidates = sorted(
        (sku for sku, n in tally.plausible.items() if n > 0),
        key=lambda sku: (own is None or sku != own.sku, sku),
    )
    for sku in candidates:
        count = whole_units(added_g, tally.planogram.products[sku])
        if count is not None and 1 <= count <= tally.plausible[sku]:
            tally.confident[sku] = max(0, tally.confident[sku] - count)
            tally.plausible[sku] -= count
            _returned(tally, sku, count, shelf)
            return
    if own is not None and (count := whole_units(added_g, own) or 0) >= 1:
        tally.alarm(
            AlarmKind.UNEXPECTED_ADDITION, f"{count} x {own.sku} appeared on shelf {shelf}", shelf
        )
        return
    tally.alarm(AlarmKind.UNIDENTIFIED_ADDITION, f"{added_g} g appeared on shelf {shelf}", shelf)
    tally.doubt(shelf, f"shelf {shelf}: {added_g} g appeared that matches no product taken")


# --- settlement -------------------------------------------------------------------


def lines_for(counts: dict[str, int], planogram: Planogram) -> tuple[SaleLine, ...]:
    products = planogram.products
    return tuple(
        SaleLine(sku, products[sku].name, n, products[sku].unit_price)
        for sku, n in sorted(counts.items())
        if n > 0
    )


def _total(lines: Iterable[SaleLine], currency: str) -> Money:
    return Money(sum(line.total.minor for line in lines), currency)


def settle(
    assessment: Assessment,
    planogram: Planogram,
    *,
    session_id: int,
    authorised: Money,
    rules: Sequence[tuple[ChargeRule, str]] = (),
    disagreement_rule: ChargeRule = ChargeRule.CHARGE_CONFIDENT_ONLY,
    alarms: Sequence[Alarm] = (),
) -> Settlement:
    """The sale: ``rules`` are the conditions of this session (held open, power lost)."""
    applied = list(rules)
    if not assessment.certain:
        applied += [(disagreement_rule, doubt) for doubt in assessment.doubts]
    all_alarms = [*alarms, *assessment.alarms]
    confident = lines_for(assessment.confident, planogram)
    plausible = lines_for(assessment.plausible, planogram)
    zero = Money(0, authorised.currency)
    if not applied:
        rule = None
        lines = confident
    else:
        rule = min((r for r, _ in applied), key=lambda r: r.leniency)
        lines = {
            ChargeRule.HOLD_FOR_REVIEW: (),
            ChargeRule.CHARGE_CONFIDENT_ONLY: confident,
            ChargeRule.CHARGE_MAXIMUM_PLAUSIBLE: plausible,
        }[rule]
    total = _total(lines, authorised.currency)
    if total > authorised:
        excess = total - authorised
        cap = Money(-excess.minor, excess.currency)
        lines = (
            *lines,
            SaleLine(
                CAP_SKU, "Reduced to the pre-authorised amount", 1, cap, LineKind.CAP_ADJUSTMENT
            ),
        )
        all_alarms.append(
            Alarm(
                AlarmKind.OVER_PRE_AUTH,
                session_id,
                f"items cost {total.minor}, authorised {authorised.minor}",
            )
        )
    charge = _total(lines, authorised.currency)
    reviews: tuple[ReviewRecord, ...] = ()
    if rule is not None:
        shelves = tuple(sorted({*assessment.doubtful_shelves}))
        reviews = (
            ReviewRecord(
                session_id, rule, tuple(reason for _, reason in applied), charge,
                confident, plausible, shelves,
            ),
        )  # fmt: skip
    if rule is ChargeRule.HOLD_FOR_REVIEW:
        outcome = SettlementOutcome.HELD_FOR_REVIEW
    elif charge > zero:
        outcome = SettlementOutcome.CHARGED
    else:
        outcome = SettlementOutcome.NOTHING_TAKEN
    return Settlement(
        session_id=session_id,
        outcome=outcome,
        authorised=authorised,
        charge=charge,
        lines=lines,
        returned=assessment.returned,
        alarms=tuple(all_alarms),
        reviews=reviews,
    )
