"""The pieces of vend-session state: selections, the card session, what is in flight.

They live apart from the reducer (:mod:`protocols.vend.session`) so the basket flow
(:mod:`protocols.vend.basket`) can use them without importing the reducer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.money import Money
from protocols.vend import outputs as o
from protocols.vend.model import Method, Selection, SelectionCounters


@dataclass(slots=True)
class SelectionState:
    selection: Selection
    stock: int = 0
    in_service: bool = True
    reason: str = ""
    counters: SelectionCounters = field(default_factory=SelectionCounters)
    last_fill: int = 0
    gone_since_fill: int = 0  # sold, test-vended or removed since the last fill


@dataclass(slots=True)
class CardSession:
    reader: int
    funds: Money | None
    requested: str | None = None  # selection code of an outstanding VEND REQUEST
    cancelled: bool = False  # we sent VEND CANCEL for it


@dataclass(frozen=True, slots=True)
class VendInFlight:
    vend_id: int
    code: str
    price: Money
    method: Method
    reader: int | None = None
    basket: int | None = None  # the basket id when this vend is one item of a basket


@dataclass(frozen=True, slots=True)
class PayoutInFlight:
    payout_id: int
    amount: Money
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input that made no sense in this state; it changed nothing."""

    reason: str


Result = list[o.Output | Rejected]
