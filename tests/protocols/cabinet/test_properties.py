"""Hypothesis properties of the cabinet settlement, through the whole session machine."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.cabinet.model import (
    CabinetPolicy,
    ChargeRule,
    LineKind,
    Planogram,
    Product,
    Settlement,
    ShelfChange,
)
from protocols.cabinet.session import (
    CabinetSession,
    DoorClosed,
    DoorOpened,
    DoorUnlocked,
    PaymentApproved,
    SessionReported,
)
from protocols.money import Money

# Unit weights chosen so that no count up to 5 of one looks like a count of another.
SEPARATED = Planogram(
    {
        0: Product("A", "A", Money(7_000), 100, 3),
        1: Product("B", "B", Money(13_500), 337, 5),
        2: Product("C", "C", Money(21_000), 571, 8),
        3: Product("D", "D", Money(4_500), 813, 9),
    },
    {f"{i:024X}": "ABCD"[i % 4] for i in range(1, 9)},
)
TAGS = sorted(SEPARATED.tags)


def _run(changes: tuple[ShelfChange, ...], policy: CabinetPolicy) -> Settlement:
    session = CabinetSession(1, SEPARATED, policy)
    session.start(0.0)
    for event in (PaymentApproved(), DoorUnlocked(), DoorOpened(), DoorClosed()):
        session.handle(event, 1.0)
    session.handle(SessionReported(changes), 2.0)
    assert session.settlement is not None
    return session.settlement


rules = st.sampled_from(list(ChargeRule))
weights = st.one_of(st.none(), st.integers(0, 6000))
tag_sets = st.frozensets(st.sampled_from([*TAGS, "F" * 24]), max_size=4)
any_change = st.builds(
    ShelfChange,
    shelf=st.integers(0, 4),
    weight_before_g=weights,
    weight_after_g=weights,
    removed_tags=tag_sets,
    added_tags=tag_sets,
    rfid=st.booleans(),
    confidence=st.integers(0, 100),
    fault=st.booleans(),
)


@settings(max_examples=150)
@given(
    changes=st.lists(any_change, max_size=5, unique_by=lambda c: c.shelf).map(tuple),
    pre_auth=st.integers(1, 120_000),
    rule=rules,
    held=rules,
)
def test_any_report_charges_at_most_the_pre_auth_and_exactly_the_lines(
    changes: tuple[ShelfChange, ...], pre_auth: int, rule: ChargeRule, held: ChargeRule
) -> None:
    policy = CabinetPolicy(Money(pre_auth), disagreement_rule=rule, held_open_rule=held)
    settlement = _run(changes, policy)
    assert Money(0) <= settlement.charge <= Money(pre_auth)
    assert settlement.charge == Money(sum(line.total.minor for line in settlement.lines))
    assert all(ln.quantity > 0 for ln in settlement.lines if ln.kind is LineKind.ITEM)
    for review in settlement.reviews:
        confident = {ln.sku: ln.quantity for ln in review.confident_lines}
        for line in review.plausible_lines:
            assert confident.get(line.sku, 0) <= line.quantity


@st.composite
def visits(draw: st.DrawFn) -> tuple[dict[int, int], dict[int, tuple[int, int]]]:
    """Items taken per shelf, and (how many came back, to which shelf) per shelf."""
    taken = {s: draw(st.integers(0, 3)) for s in range(4)}
    receivers = [s for s, n in taken.items() if n == 0]
    back: dict[int, tuple[int, int]] = {}
    for shelf, n in taken.items():
        if n == 0:
            continue
        count = draw(st.integers(0, n))
        to = draw(st.sampled_from([shelf, *receivers]))
        if to != shelf:
            receivers.remove(to)  # one kind of item per receiving shelf: weight can tell it
        back[shelf] = (count, to)
    return taken, back


@settings(max_examples=150)
@given(visit=visits(), noise=st.integers(-2, 2), rule=rules)
def test_returned_items_are_never_charged(
    visit: tuple[dict[int, int], dict[int, tuple[int, int]]], noise: int, rule: ChargeRule
) -> None:
    taken, back = visit
    delta: Counter[int] = Counter()
    products = SEPARATED.shelves
    for shelf, n in taken.items():
        delta[shelf] += n * products[shelf].unit_weight_g
    for shelf, (count, to) in back.items():
        delta[to] -= count * products[shelf].unit_weight_g
    changes = tuple(ShelfChange(s, 9000, 9000 - delta[s] + noise) for s in range(4))
    settlement = _run(changes, CabinetPolicy(Money(10_000_000), disagreement_rule=rule))
    charged = {ln.sku: ln.quantity for ln in settlement.lines}
    returned: Counter[str] = Counter()
    for item in settlement.returned:
        returned[item.sku] += item.quantity
    for shelf, n in taken.items():
        sku = products[shelf].sku
        came_back, to = back.get(shelf, (0, shelf))
        assert charged.get(sku, 0) == n - came_back
        # Put back where it came from, an item is as if never taken; elsewhere, a return.
        assert returned[sku] == (came_back if to != shelf else 0)
    assert settlement.reviews == ()
