"""The bodies of the business messages a machine publishes: status, sale, refund, cash, stock.

Plain fields on purpose: the controller builds them straight from the vend session's facts
(``protocols.vend.outputs.Sale`` and friends) and the fleet stores them column by column.
Alarms, service visits, DEX reads and command acks are in :mod:`.bodies_ops`.
"""

from __future__ import annotations

import enum
from collections import Counter
from typing import Self

from pydantic import Field, model_validator

from protocols.einvoice import Receipt
from protocols.money import Money
from protocols.telemetry.fields import (
    Count,
    CurrencyCode,
    MinorUnits,
    SelectionCode,
    StrictBool,
    StrictInt,
    UtcTime,
    WireModel,
)


class StatusBody(WireModel):
    """Whether the machine is connected, what it runs and how far behind its outbox is.

    Published retained right after connecting (``online: true``), registered as the MQTT
    last will (``online: false``) and published again before a clean disconnect.
    """

    online: StrictBool = Field(description="True while the machine is connected.")
    firmware: str = Field(description="Controller software version.")
    config_version: str = Field(description="Version of the planogram/configuration in force.")
    started_at: UtcTime = Field(description="When the controller process started (UTC).")
    outbox_backlog: Count | None = Field(
        default=None, description="Events journaled but not yet acknowledged by the broker."
    )
    devices: dict[str, str] | None = Field(
        default=None, description='Peripheral states by name, e.g. {"changer": "ready"}.'
    )


class PaymentMethod(enum.StrEnum):
    CASH = "cash"
    CASHLESS = "cashless"
    TEST = "test"  # service-mode test vend: product out, no money


class CoinCount(WireModel):
    value: MinorUnits = Field(description="Value of one coin, minor units.")
    count: Count = Field(description="How many such coins.")
    to_tube: StrictBool = Field(description="True: routed to a change tube; false: cash box.")


class BillCount(WireModel):
    value: MinorUnits = Field(description="Value of one bill, minor units.")
    count: Count = Field(description="How many such bills.")


class CashTender(WireModel):
    """The coins and bills the customer inserted for this sale."""

    coins: list[CoinCount] = Field(default_factory=list, description="Coins by value.")
    bills: list[BillCount] = Field(default_factory=list, description="Bills by value (stacked).")


class SaleLine(WireModel):
    """One line of a basket sale (automated stores); single vends leave ``lines`` empty."""

    selection: SelectionCode = Field(description="Selection or article code.")
    product: str = Field(description="Product name.")
    quantity: Count = Field(description="Units sold.")
    unit_price: MinorUnits = Field(description="Price of one unit, minor units.")


class SaleBody(WireModel):
    """A delivered product: one vend the drop sensor confirmed, and how it was paid."""

    vend_id: StrictInt = Field(ge=0, description="The machine's vend id (unique per journal).")
    selection: SelectionCode = Field(description="Selection code pressed, e.g. A1.")
    product: str = Field(description="Product name as configured (UTF-8, any language).")
    price: MinorUnits = Field(description="Price charged, minor units (0 for test vends).")
    currency: CurrencyCode = Field(description="ISO 4217 code of every amount in this body.")
    method: PaymentMethod = Field(description="cash, cashless or test.")
    reader: StrictInt | None = Field(
        default=None, ge=1, description="Cashless reader number (1 or 2) for cashless sales."
    )
    payment_ref: str | None = Field(
        default=None, description="The reader's transaction reference, for settlement matching."
    )
    settled: StrictBool = Field(
        default=True,
        description="False: delivered but the reader could not be told VEND SUCCESS.",
    )
    cash: CashTender | None = Field(default=None, description="Coins and bills, for cash sales.")
    receipt_number: str | None = Field(
        default=None, description="E-receipt symbol and number, e.g. 1C26MAB-00000042, if issued."
    )
    receipt: Receipt | None = Field(
        default=None,
        description="The e-receipt issued at the moment of sale; optional, so readers and "
        "machines that predate it ignore or omit it.",
    )
    lines: list[SaleLine] | None = Field(default=None, description="Basket lines, if any.")

    @property
    def price_money(self) -> Money:
        return Money(self.price, self.currency)


class RefundKind(enum.StrEnum):
    CASHLESS_FAILED_VEND = "cashless_failed_vend"  # VEND FAILURE: the reader refunds
    CASH_REFUND = "cash_refund"  # credit returned in coins
    IOU = "iou"  # change the changer could not pay: owed to the customer


class RefundBody(WireModel):
    """Money given back, or owed, to a customer."""

    kind: RefundKind = Field(description="cashless_failed_vend, cash_refund or iou.")
    amount: MinorUnits = Field(description="Amount refunded or owed, minor units.")
    currency: CurrencyCode = Field(description="ISO 4217 code.")
    vend_id: StrictInt | None = Field(default=None, ge=0, description="The failed vend, if any.")
    payout_id: StrictInt | None = Field(default=None, ge=0, description="The payout, if any.")
    reason: str = Field(default="", description="Why, in words.")

    @property
    def amount_money(self) -> Money:
        return Money(self.amount, self.currency)


class CashKind(enum.StrEnum):
    COLLECTION = "collection"  # cash box emptied by a route driver
    TUBE_FILL = "tube_fill"  # coins loaded into the changer tubes by hand
    TUBE_PAYOUT = "tube_payout"  # coins taken out of the tubes by hand
    CHANGE_PAYOUT = "change_payout"  # change paid to a customer


class TubeCount(WireModel):
    coin_type: StrictInt = Field(ge=0, le=15, description="MDB coin type (0-15).")
    value: MinorUnits = Field(description="Value of one coin, minor units.")
    count: Count = Field(description="Coins in the tube (after the event).")


class CashBoxCount(WireModel):
    """What the machine believes was in the cash box when it was collected."""

    coins_value: MinorUnits = Field(description="Coins routed to the cash box, minor units.")
    bills_value: MinorUnits = Field(description="Bills stacked, minor units.")
    bills: list[BillCount] = Field(default_factory=list, description="Bills by value.")


class CashBody(WireModel):
    """Cash moved by people or by the changer outside a sale."""

    kind: CashKind = Field(description="collection, tube_fill, tube_payout or change_payout.")
    amount: MinorUnits = Field(description="Amount moved, minor units.")
    currency: CurrencyCode = Field(description="ISO 4217 code.")
    tubes: list[TubeCount] | None = Field(default=None, description="Tube levels afterwards.")
    cash_box: CashBoxCount | None = Field(default=None, description="For collections.")
    detail: str = Field(default="", description="Free text, e.g. the collector's name.")

    @property
    def amount_money(self) -> Money:
        return Money(self.amount, self.currency)


class StockKind(enum.StrEnum):
    SNAPSHOT = "snapshot"  # every selection (after connect, resync, planogram change)
    CHANGE = "change"  # only the selections that changed


class SelectionStock(WireModel):
    """The full state of one selection; absolute values, so a lost or repeated change
    message cannot make the fleet's estimate drift."""

    code: SelectionCode = Field(description="Selection code.")
    product: str = Field(description="Product name.")
    count: Count = Field(description="Units the machine believes are in the selection.")
    capacity: Count = Field(description="Units the selection holds when full.")
    par: Count = Field(description="Target fill level for restocking.")
    price: MinorUnits = Field(description="Current price, minor units.")
    in_service: StrictBool = Field(description="False when the selection is out of service.")
    reason: str | None = Field(default=None, description="Why it is out of service.")
    delta: StrictInt | None = Field(
        default=None, description="For change messages: the signed change that led here."
    )


class StockBody(WireModel):
    """Stock levels: a snapshot of every selection, or the rows that changed."""

    kind: StockKind = Field(description="snapshot or change.")
    currency: CurrencyCode = Field(description="ISO 4217 code of the prices.")
    selections: list[SelectionStock] = Field(description="One row per selection.")

    @model_validator(mode="after")
    def _unique_codes(self) -> Self:
        seen = Counter(row.code for row in self.selections)
        duplicates = sorted(code for code, n in seen.items() if n > 1)
        if duplicates:
            raise ValueError(f"duplicate selection codes {duplicates}")
        return self
