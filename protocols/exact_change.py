"""Exact-change policy: which coins and bills are safe to accept with the tubes as they are.

MDB asks the VMC to disable acceptors when change cannot be made. The rule here,
for a credit ``C`` already held and a coin or bill of value ``v`` offered:

* the credit after accepting it is ``C' = C + v``;
* the tubes after accepting it are the tubes now, plus one coin in the coin's own
  tube if (and only if) the caller says that coin type is routed to its tube now
  (routing bit set and tube not full); bills and cash-box coins add nothing;
* the *spends* the customer can still choose are every in-service price ``p ≤ C'``
  (single vend, the default) or, with ``multi_vend=True``, every sum of one or
  more in-service prices ``≤ C'`` (a selection may be bought again); the change
  for a spend ``s`` is ``C' - s``;
* with ``refund_on_cancel=True`` (the default) the customer may also cancel (the
  escrow return): that refunds ``C'`` for a coin; for a bill it refunds only the
  earlier credit ``C`` when ``bill_escrow=True`` (the default: the validator holds
  the note in escrow until a selection is made, so cancelling hands the note back)
  and ``C'`` when bills are stacked at once;
* the offer is **safe** iff every such change and the refund can be paid exactly
  from the tubes after accepting it. Prices above ``C'`` are not checked: the
  customer must insert more first, and that next coin or bill is judged then.

``exact_change_only`` is True when any coin or bill type the acceptors could take
is refused, which is what the display should then say. Each refused type carries
a :class:`Refusal` naming the refund it could not pay or, if the refund is fine,
the largest change it could not pay.

Pass ``refund_on_cancel=False`` for machines that force a vend once credit is in.
With no price in service and no refund to check, everything counts as safe — a
machine with nothing to sell should disable its acceptors for that reason.

Cost: one bitset of payable amounts per tube state (binary-split counts, one shift
per chunk, in units of the gcd of every value involved), one extra shift per
tube-routed coin type, then a bit test per spend. Cheap enough to run after every
coin; the result agrees with :func:`protocols.change.plan_change` by construction
and by test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from math import gcd
from typing import Literal

from protocols.change import ChangeError, Tube
from protocols.money import Money, MoneyError


@dataclass(frozen=True, slots=True)
class PayableAmounts:
    """Every amount up to ``limit`` that the tubes can pay exactly, as a bitset.

    Bit ``i`` of ``bits`` is set iff ``i * unit`` minor units can be paid. ``unit``
    divides every tube value, so amounts off the unit grid are never payable.
    """

    currency: str
    unit: int
    limit: int  # the largest amount asked about, in minor units
    bits: int

    @classmethod
    def of(cls, tubes: Iterable[Tube], up_to: Money, unit: int | None = None) -> PayableAmounts:
        tubes = tuple(tubes)
        if not all(isinstance(tube, Tube) for tube in tubes):
            raise ChangeError("payable amounts need Tube values")
        if up_to.minor < 0:
            raise ChangeError(f"limit of payable amounts cannot be negative: {up_to}")
        if len({tube.coin_type for tube in tubes}) != len(tubes):
            raise ChangeError("a coin type appears in two tubes")
        for tube in tubes:
            if tube.value.currency != up_to.currency:
                raise MoneyError(f"coin type {tube.coin_type} is not in {up_to.currency}")
        if unit is None:
            unit = 0
            for tube in tubes:
                unit = gcd(unit, tube.value.minor)
            unit = unit or 1
        if unit < 1 or any(tube.value.minor % unit for tube in tubes):
            raise ChangeError(f"unit {unit} does not divide every tube value")
        cells = up_to.minor // unit
        mask = (1 << (cells + 1)) - 1
        bits = 1  # zero is always payable: pay nothing
        for tube in tubes:
            size = tube.value.minor // unit
            left, chunk = min(tube.count, cells // size), 1
            while left > 0:
                take = min(chunk, left)
                bits |= (bits << (take * size)) & mask
                left -= take
                chunk *= 2
        return cls(up_to.currency, unit, up_to.minor, bits)

    def with_coin(self, value: Money) -> PayableAmounts:
        """The payable amounts once one more coin of ``value`` sits in a tube.

        Sums using at most n+1 coins of a value are the sums using at most n, plus
        those same sums with one more coin: a single shift, no rebuild.
        """
        self._check(value)
        if value.minor <= 0 or value.minor % self.unit:
            raise ChangeError(f"coin value {value} is not a positive multiple of {self.unit}")
        mask = (1 << (self.limit // self.unit + 1)) - 1
        bits = self.bits | ((self.bits << (value.minor // self.unit)) & mask)
        return PayableAmounts(self.currency, self.unit, self.limit, bits)

    def can_pay(self, amount: Money) -> bool:
        self._check(amount)
        if amount.minor < 0 or amount.minor > self.limit:
            raise ChangeError(f"{amount} is outside the precomputed range 0..{self.limit}")
        if amount.minor % self.unit:
            return False
        return bool(self.bits >> (amount.minor // self.unit) & 1)

    def _check(self, money: Money) -> None:
        if money.currency != self.currency:
            raise MoneyError(f"payable amounts are in {self.currency}, got {money.currency}")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one coin or bill type is not safe to accept now."""

    kind: Literal["coin", "bill"]
    type: int
    value: Money
    change: Money  # the refund or change that could not be paid
    spent: Money | None  # what the customer would have bought; None = cancel and refund

    @property
    def text(self) -> str:
        what = f"{self.value} {self.kind} (type {self.type}) refused: "
        if self.spent is None:
            return what + f"a refund of {self.change} could not be paid"
        return what + f"change of {self.change} after a {self.spent} sale could not be paid"


@dataclass(frozen=True, slots=True)
class ExactChangeDecision:
    """Which coin and bill types to enable now, and why the others are not."""

    exact_change_only: bool
    accept_coins: frozenset[int]
    accept_bills: frozenset[int]
    refusals: tuple[Refusal, ...]  # coins first, then bills, by type

    @property
    def coin_mask(self) -> int:
        """The 16-bit coin enable mask for COIN TYPE."""
        return sum(1 << t for t in self.accept_coins)

    @property
    def bill_mask(self) -> int:
        """The 16-bit bill enable mask for BILL TYPE."""
        return sum(1 << t for t in self.accept_bills)


def _spends(prices: tuple[int, ...], credit: int, unit: int, multi_vend: bool) -> int:
    """Bitset (in units) of what the customer can spend from ``credit``."""
    cells = credit // unit
    mask = (1 << (cells + 1)) - 1
    sizes = sorted({p // unit for p in prices if p <= credit})
    once = 0
    for size in sizes:
        once |= 1 << size
    spends = once
    if multi_vend:
        for size in sizes:
            if size == 0:
                continue
            step = size  # doubling shifts: after k rounds every multiple < 2**k is added
            while step <= cells:
                spends |= (spends << step) & mask
                step *= 2
    return spends


def _check_offer(
    payable: PayableAmounts, spends: int, credit: int, currency: str
) -> tuple[Money, Money] | None:
    """The largest change (and its spend) that cannot be paid, or None if all can."""
    unit = payable.unit
    while spends:  # lowest spend first, so the largest change is reported
        lowest = spends & -spends
        spends ^= lowest
        spent = (lowest.bit_length() - 1) * unit
        if not payable.bits >> ((credit - spent) // unit) & 1:
            return Money(credit - spent, currency), Money(spent, currency)
    return None


def _values(kind: str, offers: Mapping[int, Money], currency: str) -> list[tuple[int, Money]]:
    result = []
    for type_, value in sorted(offers.items()):
        if not isinstance(type_, int) or not 0 <= type_ <= 15:
            raise ChangeError(f"{kind} type must be 0..15, got {type_!r}")
        if not isinstance(value, Money) or value.minor <= 0:
            raise ChangeError(f"{kind} type {type_} needs a positive Money value, got {value!r}")
        if value.currency != currency:
            raise MoneyError(f"{kind} type {type_} is in {value.currency}, credit in {currency}")
        result.append((type_, value))
    return result


def decide_exact_change(
    tubes: Iterable[Tube],
    prices: Iterable[Money],
    coins: Mapping[int, Money],
    bills: Mapping[int, Money],
    credit: Money,
    *,
    routed_to_tubes: Iterable[int] = (),
    refund_on_cancel: bool = True,
    bill_escrow: bool = True,
    multi_vend: bool = False,
) -> ExactChangeDecision:
    """Decide which ``coins`` and ``bills`` (type → value) are safe to accept now.

    ``prices`` are the prices of the selections in service; ``routed_to_tubes`` the
    coin types that would land in their tube right now (when in doubt leave a type
    out: that only makes the decision more cautious). See the module docstring.
    """
    if not isinstance(credit, Money):
        raise ChangeError(f"credit must be Money, got {credit!r}")
    currency = credit.currency
    if credit.minor < 0:
        raise ChangeError(f"credit cannot be negative: {credit}")
    tubes = tuple(tubes)
    price_list = tuple(prices)
    for price in price_list:
        if not isinstance(price, Money) or price.minor < 0:
            raise ChangeError(f"a price must be non-negative Money, got {price!r}")
        if price.currency != currency:
            raise MoneyError(f"a price is in {price.currency}, credit in {currency}")
    coin_offers = _values("coin", coins, currency)
    bill_offers = _values("bill", bills, currency)
    routed = frozenset(routed_to_tubes)
    price_minors = tuple(p.minor for p in price_list)

    unit = credit.minor
    for money in (*price_list, *(v for _, v in coin_offers + bill_offers)):
        unit = gcd(unit, money.minor)
    for tube in tubes:
        unit = gcd(unit, tube.value.minor)
    unit = unit or 1
    largest = max((v.minor for _, v in coin_offers + bill_offers), default=0)
    payable = PayableAmounts.of(tubes, Money(credit.minor + largest, currency), unit)

    refusals: list[Refusal] = []
    accepted: dict[str, set[int]] = {"coin": set(), "bill": set()}
    kinds: tuple[tuple[Literal["coin", "bill"], list[tuple[int, Money]]], ...] = (
        ("coin", coin_offers),
        ("bill", bill_offers),
    )
    for kind, offers in kinds:
        for type_, value in offers:
            after = payable
            if kind == "coin" and type_ in routed:
                after = payable.with_coin(value)
            total = credit + value
            refund = credit if kind == "bill" and bill_escrow else total
            if refund_on_cancel and not after.can_pay(refund):
                refusals.append(Refusal(kind, type_, value, refund, None))
                continue
            spends = _spends(price_minors, total.minor, unit, multi_vend)
            failure = _check_offer(after, spends, total.minor, currency)
            if failure is None:
                accepted[kind].add(type_)
            else:
                refusals.append(Refusal(kind, type_, value, *failure))
    return ExactChangeDecision(
        exact_change_only=bool(refusals),
        accept_coins=frozenset(accepted["coin"]),
        accept_bills=frozenset(accepted["bill"]),
        refusals=tuple(refusals),
    )
