"""Planogram entries, payment methods and the accounting counters of one machine."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field

from protocols.money import Money


class Method(enum.StrEnum):
    CASH = "cash"
    CASHLESS = "cashless"
    TEST = "test"  # service-mode test vend: product out, no money


class Selection(BaseModel):
    """One selection of the planogram: what the customer presses and what it dispenses."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(min_length=1, max_length=8)
    product: str
    price: Money
    capacity: int = Field(ge=1)
    par: int = Field(ge=0)
    motor: int = Field(ge=0)
    item_number: int = Field(default=0, ge=0, le=0xFFFE)  # the MDB item number sent to readers
    unit: str = Field(default="", max_length=32)  # dispensing unit; "" = the first one


class Counters(BaseModel):
    """Cumulative money and product counters (what DEX calls "since initialisation").

    The cash identity the machine must always satisfy::

        cash_in == cash_sales + change_paid + refunds_paid + ious + credit + payout_in_flight
    """

    cash_in: int = 0  # coins and stacked bills credited
    coins_in: int = 0
    coins_to_tubes: int = 0
    coins_to_cash_box: int = 0
    bills_in: int = 0
    cash_sales_value: int = 0
    cash_sales_count: int = 0
    cashless_sales_value: int = 0
    cashless_sales_count: int = 0
    cashless_unsettled_value: int = 0  # delivered but the reader could not be told
    cashless_refunds_owed: int = 0  # charged for undelivered items, the reader refused a refund
    change_paid: int = 0
    refunds_paid: int = 0
    ious: int = 0  # change the changer could not pay: owed to customers
    test_vends: int = 0
    failed_vends: int = 0
    manual_fill_value: int = 0
    manual_payout_value: int = 0


class SelectionCounters(BaseModel):
    vends: int = 0
    sales_value: int = 0
    test_vends: int = 0
    filled: int = 0
    removed: int = 0
    failures: int = 0
