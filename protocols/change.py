"""Exact change making from a coin changer's tubes, and what a payout really paid.

The changer's coin set is whatever the SETUP answer says: it can be non-canonical
(1, 3, 4 — greedy pays 6 as 4+1+1 instead of 3+3), repeat one value under several
coin types, or have empty tubes. So change is planned by a bounded-knapsack dynamic
programme, never by greedy:

* amounts are measured in units of ``g``, the gcd of the values of the tubes that
  hold coins, so the table has ``amount / g`` cells (a few hundred in practice);
* each tube's count is split in binary chunks (1, 2, 4, ..., rest), which turns the
  bounded problem into a 0/1 knapsack over ``sum(log2(count))`` items;
* a count is first capped at ``amount // value`` — no plan can use more.

Which plan wins, precisely: the **fewest coins**; among plans with equally few
coins, the smallest sum of *tube ranks*, where the tubes holding coins are ranked
0, 1, 2, ... by (count descending, value descending, coin type ascending) — so
change leans on the fullest tubes and keeps the low ones for later; any remaining
tie goes to the plan the fixed item order reaches first. The result depends only
on the arguments, never on dict or set ordering.

When no exact plan exists, :func:`plan_best_effort` pays the largest amount not
above the one owed (fewest coins among those); the rest is ``unpaid`` and becomes
the customer's IOU credit in the controller, so no money is ever silently lost.
After a payout, :func:`reconcile_payout` compares tube counts before and after to
find what really left the machine; a shortfall (tube ran dry, jam) is an IOU too.

For a Level 2 changer the controller sends :func:`split_dispense_commands`
(DISPENSE carries at most 15 coins of one type). A Level 3 changer with the
alternative-payout feature picks the coins itself; :func:`alternative_payout_units`
cuts a plan into ALTERNATIVE PAYOUT values (one byte of scaled units each) that
are each a sum of whole planned coins, so every request is known to be payable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from math import gcd
from typing import NamedTuple

from protocols.money import MdbScaling, Money, MoneyError

MAX_COIN_TYPE = 15
DISPENSE_MAX_COINS = 15  # DISPENSE Y1 = nnnn tttt: four bits of count
ALTERNATIVE_PAYOUT_MAX_UNITS = 255  # ALTERNATIVE PAYOUT Y1: one byte of scaled units


class ChangeError(ValueError):
    """Tubes, plans or counts that do not describe a possible changer state."""


class CoinCount(NamedTuple):
    """A number of coins of one coin type (also one Level 2 DISPENSE command)."""

    coin_type: int
    quantity: int  # not `count`: that name belongs to tuple.count


def _check_coin_type(coin_type: object) -> int:
    if not isinstance(coin_type, int) or isinstance(coin_type, bool):
        raise ChangeError(f"coin type must be an integer, got {coin_type!r}")
    if not 0 <= coin_type <= MAX_COIN_TYPE:
        raise ChangeError(f"coin type must be 0..{MAX_COIN_TYPE}, got {coin_type}")
    return coin_type


def _check_count(count: object, what: str) -> int:
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ChangeError(f"{what} must be a non-negative integer, got {count!r}")
    return count


@dataclass(frozen=True, slots=True)
class Tube:
    """One coin type's tube: the value of its coins and how many it holds now."""

    coin_type: int
    value: Money
    count: int

    def __post_init__(self) -> None:
        _check_coin_type(self.coin_type)
        if not isinstance(self.value, Money):
            raise ChangeError(f"tube value must be Money, got {self.value!r}")
        if self.value.minor <= 0:
            raise ChangeError(f"coin type {self.coin_type} has non-positive value {self.value}")
        _check_count(self.count, f"count of coin type {self.coin_type}")


def tubes_from(values: Mapping[int, Money], counts: Mapping[int, int]) -> tuple[Tube, ...]:
    """Tubes from SETUP coin values and TUBE STATUS counts, by coin type.

    Types with a count of zero are dropped whatever their value (SETUP reports 0 for
    unused types); a non-zero count for a type without a positive value is an error,
    since those coins could neither be valued nor planned.
    """
    tubes = []
    for coin_type in sorted(counts):
        count = _check_count(counts[coin_type], f"count of coin type {coin_type}")
        if count == 0:
            continue
        value = values.get(coin_type)
        if value is None or value.minor <= 0:
            raise ChangeError(f"coin type {coin_type} holds {count} coins but has no value")
        tubes.append(Tube(coin_type, value, count))
    return tuple(tubes)


def _validated(amount: Money, tubes: Iterable[Tube]) -> tuple[Tube, ...]:
    if not isinstance(amount, Money):
        raise ChangeError(f"amount must be Money, got {amount!r}")
    if amount.minor < 0:
        raise ChangeError(f"cannot pay a negative amount of change: {amount}")
    result = tuple(tubes)
    seen: set[int] = set()
    for tube in result:
        if not isinstance(tube, Tube):
            raise ChangeError(f"expected a Tube, got {tube!r}")
        if tube.coin_type in seen:
            raise ChangeError(f"coin type {tube.coin_type} appears in two tubes")
        seen.add(tube.coin_type)
        if tube.value.currency != amount.currency:
            raise MoneyError(
                f"coin type {tube.coin_type} is in {tube.value.currency}, "
                f"change is owed in {amount.currency}"
            )
    return result


@dataclass(frozen=True, slots=True)
class ChangePlan:
    """Coins to pay out, sorted by coin type, and how much of the amount owed they cover."""

    coins: tuple[CoinCount, ...]
    paid: Money
    unpaid: Money

    def __post_init__(self) -> None:
        if self.paid.currency != self.unpaid.currency:
            raise MoneyError(f"paid in {self.paid.currency} but unpaid in {self.unpaid.currency}")
        if self.paid.minor < 0 or self.unpaid.minor < 0:
            raise ChangeError("paid and unpaid amounts cannot be negative")
        last = -1
        for coin_type, count in self.coins:
            if _check_coin_type(coin_type) <= last:
                raise ChangeError("plan coins must be sorted by coin type, one entry per type")
            if _check_count(count, f"count of coin type {coin_type}") == 0:
                raise ChangeError(f"plan lists coin type {coin_type} with a count of zero")
            last = coin_type

    @property
    def owed(self) -> Money:
        return self.paid + self.unpaid

    @property
    def exact(self) -> bool:
        return self.unpaid.minor == 0

    @property
    def coin_count(self) -> int:
        return sum(count for _, count in self.coins)

    def counts(self) -> dict[int, int]:
        return dict(self.coins)


class _Item(NamedTuple):
    """A binary chunk of one tube: ``coins`` coins worth ``size`` gcd-units."""

    coin_type: int
    coins: int
    size: int
    cost: int


def _items(tubes: tuple[Tube, ...], unit: int, target: int) -> list[_Item]:
    """Binary chunks of every useful tube, with costs that encode the tie-break."""
    usable = [t for t in tubes if t.count > 0 and t.value.minor // unit <= target]
    ranked = sorted(usable, key=lambda t: (-t.count, -t.value.minor, t.coin_type))
    caps = {t.coin_type: min(t.count, target // (t.value.minor // unit)) for t in ranked}
    # One coin costs `per_coin + rank`; per_coin exceeds any possible sum of ranks, so
    # the coin count always decides first and ranks only break ties.
    per_coin = MAX_COIN_TYPE * (sum(caps.values()) + 1) + 1
    items = []
    for rank, tube in enumerate(ranked):
        size, left, chunk = tube.value.minor // unit, caps[tube.coin_type], 1
        while left > 0:
            take = min(chunk, left)
            items.append(_Item(tube.coin_type, take, take * size, take * (per_coin + rank)))
            left -= take
            chunk *= 2
    return items


def _solve(items: list[_Item], target: int) -> tuple[list[int | None], list[bytearray]]:
    """0/1 knapsack: cheapest cost for every sum 0..target, and each item's take table."""
    best: list[int | None] = [None] * (target + 1)
    best[0] = 0
    takes = []
    reach = 0  # largest sum reachable so far: no need to scan above it
    for item in items:
        take = bytearray(target + 1)
        size, cost = item.size, item.cost
        for total in range(min(target, reach + size), size - 1, -1):
            before = best[total - size]
            if before is None:
                continue
            candidate = before + cost
            current = best[total]
            if current is None or candidate < current:
                best[total] = candidate
                take[total] = 1
        reach = min(target, reach + size)
        takes.append(take)
    return best, takes


def _plan(amount: Money, tubes: tuple[Tube, ...], *, exact_only: bool) -> ChangePlan | None:
    currency = amount.currency
    stocked = [t for t in tubes if t.count > 0]
    unit = 0
    for tube in stocked:
        unit = gcd(unit, tube.value.minor)
    if amount.minor == 0 or unit == 0:
        if exact_only and amount.minor:
            return None
        return ChangePlan((), Money(0, currency), amount)
    if exact_only and amount.minor % unit:
        return None
    available = sum(t.value.minor * t.count for t in stocked) // unit
    target = min(amount.minor // unit, available)
    if exact_only and target * unit != amount.minor:
        return None
    items = _items(tubes, unit, target)
    best, takes = _solve(items, target)
    reached = target
    while best[reached] is None:  # best[0] == 0, so this stops
        if exact_only:
            return None
        reached -= 1
    counts: dict[int, int] = {}
    left = reached
    for item, take in zip(reversed(items), reversed(takes), strict=True):
        if take[left]:
            counts[item.coin_type] = counts.get(item.coin_type, 0) + item.coins
            left -= item.size
    coins = tuple(CoinCount(t, counts[t]) for t in sorted(counts))
    paid = Money(reached * unit, currency)
    return ChangePlan(coins, paid, amount - paid)


def plan_change(amount: Money, tubes: Iterable[Tube]) -> ChangePlan | None:
    """The exact plan for ``amount`` with the fewest coins, or None if none exists."""
    return _plan(amount, _validated(amount, tubes), exact_only=True)


def plan_best_effort(amount: Money, tubes: Iterable[Tube]) -> ChangePlan:
    """The plan paying the most it can without exceeding ``amount``; the rest is ``unpaid``."""
    plan = _plan(amount, _validated(amount, tubes), exact_only=False)
    assert plan is not None  # best effort always has a plan, if only the empty one
    return plan


def split_dispense_commands(plan: ChangePlan) -> tuple[CoinCount, ...]:
    """Level 2 DISPENSE commands for a plan: at most 15 coins of one type each."""
    commands = []
    for coin_type, count in plan.coins:
        full, rest = divmod(count, DISPENSE_MAX_COINS)
        commands.extend([CoinCount(coin_type, DISPENSE_MAX_COINS)] * full)
        if rest:
            commands.append(CoinCount(coin_type, rest))
    return tuple(commands)


def _value_of(values: Mapping[int, Money], coin_type: int, currency: str) -> Money:
    value = values.get(coin_type)
    if value is None:
        raise ChangeError(f"no value known for coin type {coin_type}")
    if value.currency != currency:
        raise MoneyError(f"coin type {coin_type} is in {value.currency}, expected {currency}")
    return value


def alternative_payout_units(
    plan: ChangePlan,
    values: Mapping[int, Money],
    scaling: MdbScaling,
    max_units: int = ALTERNATIVE_PAYOUT_MAX_UNITS,
) -> tuple[int, ...]:
    """Level 3 ALTERNATIVE PAYOUT requests (scaled units, each ≤ ``max_units``) for a plan.

    Each request is the value of a group of whole planned coins (largest first), so
    each one is payable from the tubes even if a single request for the whole
    amount would not fit in the command's one byte.
    """
    coins: list[int] = []
    for coin_type, count in plan.coins:
        units = scaling.to_units(_value_of(values, coin_type, plan.paid.currency))
        if units > max_units:
            raise ChangeError(f"coin type {coin_type} is worth {units} units, over {max_units}")
        coins.extend([units] * count)
    requests: list[int] = []
    for units in sorted(coins, reverse=True):
        if requests and requests[-1] + units <= max_units:
            requests[-1] += units
        else:
            requests.append(units)
    return tuple(requests)


@dataclass(frozen=True, slots=True)
class PayoutResult:
    """What a payout really paid, against what was planned."""

    paid_coins: tuple[CoinCount, ...]
    paid: Money
    shortfall: Money  # planned but not paid: the controller records it as IOU credit
    excess: Money  # paid beyond the plan (e.g. a manual payout during the payout)

    @property
    def complete(self) -> bool:
        return self.shortfall.minor == 0


def _planned_amount(planned: ChangePlan | Money) -> Money:
    if isinstance(planned, ChangePlan):
        return planned.paid
    if isinstance(planned, Money):
        if planned.minor < 0:
            raise ChangeError(f"planned payout cannot be negative: {planned}")
        return planned
    raise ChangeError(f"planned payout must be a ChangePlan or Money, got {planned!r}")


def reconcile_reported_payout(
    planned: ChangePlan | Money, paid_counts: Mapping[int, int], values: Mapping[int, Money]
) -> PayoutResult:
    """Compare coins reported paid per type (e.g. Level 3 payout status) with the plan."""
    target = _planned_amount(planned)
    paid = Money(0, target.currency)
    coins = []
    for coin_type in sorted(paid_counts):
        count = _check_count(paid_counts[coin_type], f"paid count of coin type {coin_type}")
        if count:
            _check_coin_type(coin_type)
            paid += _value_of(values, coin_type, target.currency) * count
            coins.append(CoinCount(coin_type, count))
    zero = Money(0, target.currency)
    return PayoutResult(
        paid_coins=tuple(coins),
        paid=paid,
        shortfall=max(target - paid, zero),
        excess=max(paid - target, zero),
    )


def reconcile_payout(
    planned: ChangePlan | Money,
    tube_counts_before: Mapping[int, int],
    tube_counts_after: Mapping[int, int],
    values: Mapping[int, Money],
) -> PayoutResult:
    """What a payout paid according to the tube counts before and after it.

    A tube that grew (a coin deposited, a manual fill) paid nothing; it does not
    cancel coins paid from other tubes. Every tube counted before must be counted
    after, or the difference would be a guess.
    """
    paid_counts = {}
    for coin_type, before in tube_counts_before.items():
        if coin_type not in tube_counts_after:
            raise ChangeError(f"no count after the payout for coin type {coin_type}")
        _check_count(before, f"count before of coin type {coin_type}")
        after = _check_count(tube_counts_after[coin_type], f"count after of coin type {coin_type}")
        paid_counts[coin_type] = max(before - after, 0)
    return reconcile_reported_payout(planned, paid_counts, values)
