"""The bookkeeping of one payout, kept apart from the bus state machine.

Coins are planned by :mod:`protocols.change` (the project's one change maker); this
module turns plans into commands and counts in the changer's scaled units. The
master turns units into Money through :class:`protocols.money.MdbScaling` only when
it reports.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from protocols.mdb.changer.codec import COIN_TYPES, TOKEN_CREDIT, AlternativePayout, Dispense
from protocols.money import MdbScaling, Money, MoneyError

MAX_DISPENSE = 15  # coins per DISPENSE command
MAX_ALTERNATIVE = 255  # units per ALTERNATIVE PAYOUT command


def dispense_commands(plan: Mapping[int, int]) -> list[Dispense]:
    """Split a plan into DISPENSE commands of at most 15 coins each, by coin type."""
    out: list[Dispense] = []
    for coin_type, count in sorted(plan.items()):
        left = count
        while left > 0:
            take = min(left, MAX_DISPENSE)
            out.append(Dispense(coin_type, take))
            left -= take
    return out


def alternative_commands(units: int) -> list[AlternativePayout]:
    """Fixed chunks of at most 255 units (when no plan can group whole coins)."""
    out: list[AlternativePayout] = []
    while units > 0:
        take = min(units, MAX_ALTERNATIVE)
        out.append(AlternativePayout(take))
        units -= take
    return out


class Phase(enum.Enum):
    READ_BEFORE = "read tubes before"  # waiting for the TUBE STATUS taken first
    IDLE_WAIT = "waiting for the changer to be idle"  # next command goes when not busy
    SENT = "command sent"  # waiting for the ACK to DISPENSE / ALTERNATIVE PAYOUT
    PAYING = "paying"  # ACKed; the changer should now report busy until done
    ASK_STATUS = "asking payout status"  # SEND ALTERNATIVE PAYOUT STATUS in flight
    READ_AFTER = "read tubes after"
    INTERRUPTED = "interrupted"  # device lost; settled from the tubes after re-init


@dataclass(slots=True)
class PayoutJob:
    """One payout from request to PayoutCompleted."""

    requested_units: int  # what the application asked for, in scaled units
    alternative: bool  # Level 3 ALTERNATIVE PAYOUT, else DISPENSE
    scaling: MdbScaling  # as when the payout started; a reset may change what we know
    credits: tuple[int, ...]  # units per coin type, for the same reason
    plan: dict[int, int] | None = None  # DISPENSE plan; None = make one from the tubes
    phase: Phase = Phase.READ_BEFORE
    commands: deque[Dispense | AlternativePayout] = field(default_factory=deque)
    before: tuple[int, ...] | None = None
    # Tube coins that came or went during the payout for other reasons (deposits, manual).
    tube_delta: list[int] = field(default_factory=lambda: [0] * COIN_TYPES)
    reported: list[int] = field(default_factory=lambda: [0] * COIN_TYPES)  # PAYOUT STATUS
    sent_at: float = 0.0
    chunk_units: int = 0
    shortfall_seen: bool = False

    def coins_from_tubes(self, after: Sequence[int]) -> tuple[int, ...]:
        """Coins paid per type, from the tube counts before and after (never negative)."""
        before = self.before or tuple(after)
        return tuple(max(0, before[n] - after[n] + self.tube_delta[n]) for n in range(COIN_TYPES))

    def tube_values(self, routing: frozenset[int]) -> dict[int, Money]:
        """Money value of every coin type that has a tube and a value in minor units."""
        values: dict[int, Money] = {}
        for n, credit in enumerate(self.credits):
            if n in routing and credit not in (0, TOKEN_CREDIT):
                try:
                    values[n] = self.scaling.to_money(credit)
                except MoneyError:
                    continue
        return values

    def units_of(self, coins: Sequence[int]) -> int:
        """Scaled value of a coin count per type (tokens and unused types count nothing)."""
        return sum(
            count * self.credits[n]
            for n, count in enumerate(coins)
            if self.credits[n] not in (0, TOKEN_CREDIT)
        )
