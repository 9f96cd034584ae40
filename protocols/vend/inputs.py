"""Everything that can happen to a vend session. Each input is journaled before it applies.

Inputs are pydantic models with a ``type`` tag so the journal can store them as JSON
and read them back exactly; money fields are :class:`protocols.money.Money`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from protocols.money import Money
from protocols.vend.model import Selection


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- configuration and service ------------------------------------------------------


class JournalStarted(_Input):
    """The first entry of a new journal: where this journal's vend and payout ids start.

    Dispensing boards remember recent vend ids and never run one twice, so a controller
    with a fresh journal (new install, replaced SD card) must not reuse old ids: the
    controller draws ``id_base`` at random when it creates the journal.
    """

    type: Literal["journal_started"] = "journal_started"
    id_base: int = Field(ge=1, le=2**31)


class PlanogramLoaded(_Input):
    type: Literal["planogram_loaded"] = "planogram_loaded"
    currency: str
    selections: tuple[Selection, ...]


class PriceChanged(_Input):
    type: Literal["price_changed"] = "price_changed"
    code: str
    price: Money


class ServiceStateChanged(_Input):
    """A selection taken out of or put back into service (by an operator or the fleet)."""

    type: Literal["service_state_changed"] = "service_state_changed"
    code: str
    in_service: bool
    reason: str = ""


class StockFilled(_Input):
    """A person set the selection's count (fill to par, or a counted level)."""

    type: Literal["stock_filled"] = "stock_filled"
    code: str
    count: int = Field(ge=0)


class StockRemoved(_Input):
    type: Literal["stock_removed"] = "stock_removed"
    code: str
    count: int = Field(ge=1)
    reason: str = "removed"


class TestVendRequested(_Input):
    type: Literal["test_vend_requested"] = "test_vend_requested"
    code: str


class TubesFilled(_Input):
    """Coins put into the tubes by hand (service mode), value in minor units."""

    type: Literal["tubes_filled"] = "tubes_filled"
    value: Money


class TubesEmptied(_Input):
    type: Literal["tubes_emptied"] = "tubes_emptied"
    value: Money


# --- the changer's tubes and the acceptors' tables, for exact-change decisions ------


class TubesRead(_Input):
    """Tube contents as (coin type, coin value, count)."""

    type: Literal["tubes_read"] = "tubes_read"
    tubes: tuple[tuple[int, Money, int], ...]


class AcceptorsConfigured(_Input):
    """Which coin and bill types the acceptors know (from their SETUP answers)."""

    type: Literal["acceptors_configured"] = "acceptors_configured"
    coins: tuple[tuple[int, Money], ...] = ()
    bills: tuple[tuple[int, Money], ...] = ()
    card_readers: tuple[int, ...] = ()
    # Readers with MDB Level-3 negative vend enabled (can give part of a charge back),
    # and readers that take more than one vend per session (multivend capable).
    refund_readers: tuple[int, ...] = ()
    multivend_readers: tuple[int, ...] = ()


# --- cash ------------------------------------------------------------------------------


class CoinInserted(_Input):
    type: Literal["coin_inserted"] = "coin_inserted"
    coin_type: int
    value: Money
    to_tube: bool


class BillEscrowed(_Input):
    type: Literal["bill_escrowed"] = "bill_escrowed"
    bill_type: int
    value: Money


class BillStacked(_Input):
    type: Literal["bill_stacked"] = "bill_stacked"
    bill_type: int
    value: Money


class BillReturned(_Input):
    type: Literal["bill_returned"] = "bill_returned"
    bill_type: int | None = None
    value: Money | None = None


class ReturnRequested(_Input):
    """Return lever, cancel key, or the credit-timeout policy."""

    type: Literal["return_requested"] = "return_requested"
    reason: str = "customer"


class PayoutFinished(_Input):
    """A payout ended with ``paid``. With ``resume`` the unpaid rest is paid out again
    (a restart interrupted the changer, which can still pay); otherwise it is an IOU."""

    type: Literal["payout_finished"] = "payout_finished"
    payout_id: int
    paid: Money
    resume: bool = False


# --- cashless --------------------------------------------------------------------------


class CardSessionBegan(_Input):
    type: Literal["card_session_began"] = "card_session_began"
    reader: int
    funds: Money | None = None


class CardVendApproved(_Input):
    """VEND APPROVED; ``negative``: the approval of a NEGATIVE VEND REQUEST (a credit)."""

    type: Literal["card_vend_approved"] = "card_vend_approved"
    reader: int
    amount: Money | None = None
    negative: bool = False


class CardVendDenied(_Input):
    type: Literal["card_vend_denied"] = "card_vend_denied"
    reader: int


class CardSessionEnded(_Input):
    """END SESSION, a reader reset, or the reader going offline: the session is over."""

    type: Literal["card_session_ended"] = "card_session_ended"
    reader: int
    reason: str = "ended"


# --- selection and dispensing ----------------------------------------------------------


class SelectionPressed(_Input):
    type: Literal["selection_pressed"] = "selection_pressed"
    code: str


class DispenseFinished(_Input):
    """The board's verdict on a vend id: delivered or not, and whether the slot is usable."""

    type: Literal["dispense_finished"] = "dispense_finished"
    vend_id: int
    delivered: bool
    outcome: str
    slot_out_of_service: bool = False


# --- baskets (automated stores) -------------------------------------------------------


class BasketItemAdded(_Input):
    type: Literal["basket_item_added"] = "basket_item_added"
    code: str
    quantity: int = Field(default=1, ge=1, le=99)


class BasketItemRemoved(_Input):
    """Take ``quantity`` of ``code`` out of the basket (all of it when omitted)."""

    type: Literal["basket_item_removed"] = "basket_item_removed"
    code: str
    quantity: int | None = Field(default=None, ge=1, le=99)


class BasketCleared(_Input):
    type: Literal["basket_cleared"] = "basket_cleared"


class CheckoutRequested(_Input):
    """The customer confirms the basket: pay its total once, then dispense item by item."""

    type: Literal["checkout_requested"] = "checkout_requested"


class BasketInterrupted(_Input):
    """Stop a basket after the item in flight (a restart): nothing further is dispensed
    and whatever was paid for the rest is given back."""

    type: Literal["basket_interrupted"] = "basket_interrupted"
    reason: str = "interrupted"


VendInput = Annotated[
    JournalStarted
    | PlanogramLoaded
    | PriceChanged
    | ServiceStateChanged
    | StockFilled
    | StockRemoved
    | TestVendRequested
    | TubesFilled
    | TubesEmptied
    | TubesRead
    | AcceptorsConfigured
    | CoinInserted
    | BillEscrowed
    | BillStacked
    | BillReturned
    | ReturnRequested
    | PayoutFinished
    | CardSessionBegan
    | CardVendApproved
    | CardVendDenied
    | CardSessionEnded
    | SelectionPressed
    | DispenseFinished
    | BasketItemAdded
    | BasketItemRemoved
    | BasketCleared
    | CheckoutRequested
    | BasketInterrupted,
    Field(discriminator="type"),
]

INPUT_ADAPTER: TypeAdapter[VendInput] = TypeAdapter(VendInput)


def encode_input(event: VendInput) -> str:
    return event.model_dump_json()


def decode_input(text: str | bytes) -> VendInput:
    return INPUT_ADAPTER.validate_json(text)
