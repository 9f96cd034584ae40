"""What the vend session asks the controller to do, and the facts it reports.

Commands are carried out by the controller after the input that produced them was
journaled (write-ahead); facts (``Sale``, ``Refund`` ...) go to telemetry and receipts.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.money import Money
from protocols.vend.model import Method


@dataclass(frozen=True, slots=True)
class StackBill:
    pass


@dataclass(frozen=True, slots=True)
class ReturnBill:
    pass


@dataclass(frozen=True, slots=True)
class Dispense:
    vend_id: int
    code: str
    motor: int
    unit: str = ""  # the dispensing unit (board); "" is the machine's first unit


@dataclass(frozen=True, slots=True)
class RequestCardVend:
    reader: int
    price: Money
    item_number: int


@dataclass(frozen=True, slots=True)
class RequestCardRefund:
    """MDB NEGATIVE VEND REQUEST (Level 3): give ``amount`` back to the card in this session."""

    reader: int
    amount: Money
    item_number: int


@dataclass(frozen=True, slots=True)
class CancelCardVend:
    reader: int


@dataclass(frozen=True, slots=True)
class ConfirmCardVend:
    """MDB VEND SUCCESS: the reader may charge."""

    reader: int
    item_number: int


@dataclass(frozen=True, slots=True)
class FailCardVend:
    """MDB VEND FAILURE: the reader must refund the approved amount."""

    reader: int


@dataclass(frozen=True, slots=True)
class EndCardSession:
    reader: int


@dataclass(frozen=True, slots=True)
class ReportCashSale:
    reader: int
    price: Money
    item_number: int


@dataclass(frozen=True, slots=True)
class PayOut:
    payout_id: int
    amount: Money
    reason: str  # "change" or "refund"


@dataclass(frozen=True, slots=True)
class SetAcceptance:
    """Which coin and bill types may be accepted now, and whether cards may start sessions."""

    coins: frozenset[int]
    bills: frozenset[int]
    cards: bool
    exact_change: bool


@dataclass(frozen=True, slots=True)
class Show:
    """Text for the display / kiosk; ``credit`` is what the customer has to spend."""

    message: str
    credit: Money


# --- facts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sale:
    vend_id: int
    code: str
    product: str
    price: Money
    method: Method
    reader: int | None = None
    settled: bool = True  # False: delivered but the reader could not be told VEND SUCCESS


@dataclass(frozen=True, slots=True)
class VendFailed:
    vend_id: int
    code: str
    outcome: str
    method: Method


@dataclass(frozen=True, slots=True)
class IouIssued:
    payout_id: int
    amount: Money


@dataclass(frozen=True, slots=True)
class SelectionOutOfService:
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class SoldLine:
    code: str
    product: str
    quantity: int
    unit_price: Money


@dataclass(frozen=True, slots=True)
class BasketSold:
    """A basket settled with at least one item delivered: one sale, one receipt."""

    basket_id: int
    lines: tuple[SoldLine, ...]
    total: Money  # the delivered value: what the customer pays in the end
    method: Method
    reader: int | None = None
    settled: bool = True  # False: delivered but the reader could not be charged


@dataclass(frozen=True, slots=True)
class BasketRefunded:
    """Card money for undelivered items: given back (``owed`` False) or still owed."""

    basket_id: int
    amount: Money
    reader: int
    owed: bool
    reason: str


Output = (
    StackBill
    | ReturnBill
    | Dispense
    | RequestCardVend
    | RequestCardRefund
    | CancelCardVend
    | ConfirmCardVend
    | FailCardVend
    | EndCardSession
    | ReportCashSale
    | PayOut
    | SetAcceptance
    | Show
    | Sale
    | VendFailed
    | IouIssued
    | SelectionOutOfService
    | BasketSold
    | BasketRefunded
)
