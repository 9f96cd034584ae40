"""``[cabinet]`` in machine.toml: a smart cabinet (locked door, sensing shelves) sold from
by card: pre-authorise, unlock, count what left, charge for exactly that.

Example::

    [cabinet]
    url = "serial:///dev/ttyUSB2?baudrate=19200"
    pre_auth = 200000                 # VEND REQUEST amount before the door unlocks
    disagreement_rule = "charge_confident_only"   # or charge_maximum_plausible, hold_for_review
    held_open_rule = "charge_confident_only"
    power_loss_rule = "hold_for_review"
    open_window_s = 30                # the door must open within this, or it relocks
    held_open_limit_s = 60            # open longer: alarm, and held_open_rule applies
    resume_window_s = 120             # after a restart: charge the same card if tapped again

    [[cabinet.shelf]]
    shelf = 0
    sku = "COLA"                      # up to 8 characters; the receipt's article code
    product = "Coca-Cola 330ml"
    unit_weight_g = 355
    tolerance_g = 10                  # per unit; under half the unit weight
    price = 15000                     # or selection = "A1": the price of that selection
    rfid = false                      # true: tags on this shelf at unlock are this product
    capacity = 12                     # optional: units the shelf holds (stock telemetry)
    par = 8                           # optional: restock target

A machine may have dispensing units, a cabinet, or both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocols.cabinet.errors import SessionError
from protocols.cabinet.model import CabinetPolicy, ChargeRule, Planogram, Product, ShelfReading
from protocols.money import Money

RuleName = Literal["charge_confident_only", "charge_maximum_plausible", "hold_for_review"]
UNKNOWN_ITEM = 0xFFFF  # MDB item number "unknown": a cabinet sale is several products


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShelfEntry(_Section):
    shelf: int = Field(ge=0, le=31)
    sku: str | None = Field(
        default=None, min_length=1, max_length=8, description="default: the selection code"
    )
    product: str = Field(min_length=1)
    unit_weight_g: int = Field(gt=0)
    tolerance_g: int = Field(default=0, ge=0)
    price: int | None = Field(default=None, gt=0, description="minor units; or `selection`")
    selection: str | None = Field(default=None, min_length=1, max_length=8)
    rfid: bool = False
    capacity: int | None = Field(
        default=None, ge=1, le=1000, description="units the shelf holds (stock telemetry)"
    )
    par: int | None = Field(default=None, ge=0, description="fill target for restocking")

    @model_validator(mode="after")
    def _priced_and_named(self) -> ShelfEntry:
        if self.price is None and self.selection is None:
            raise ValueError(f"shelf {self.shelf}: give a price or the selection it costs as")
        if self.sku is None and self.selection is None:
            raise ValueError(f"shelf {self.shelf}: give a sku (up to 8 characters)")
        if 2 * self.tolerance_g >= self.unit_weight_g:
            raise ValueError(
                f"shelf {self.shelf}: tolerance_g {self.tolerance_g} must be under half "
                f"the unit weight {self.unit_weight_g} g"
            )
        if self.par is not None and self.capacity is not None and self.par > self.capacity:
            raise ValueError(f"shelf {self.shelf}: par {self.par} is above capacity")
        return self

    @property
    def code(self) -> str:
        code = self.sku or self.selection
        assert code is not None
        return code


class CabinetSection(_Section):
    url: str = Field(min_length=1)
    pre_auth: int = Field(gt=0, description="minor units asked of the reader before unlocking")
    item_number: int = Field(default=UNKNOWN_ITEM, ge=0, le=0xFFFF)
    disagreement_rule: RuleName = "charge_confident_only"
    held_open_rule: RuleName = "charge_confident_only"
    power_loss_rule: RuleName = "charge_confident_only"
    open_window_s: int = Field(default=30, ge=1, le=0xFFFF)
    held_open_limit_s: int = Field(default=60, ge=1, le=0xFFFF)
    min_confidence: int = Field(default=80, ge=0, le=100)
    noise_g: int = Field(default=5, ge=0)
    poll_interval: float = Field(default=0.2, gt=0, le=5)
    resume_window_s: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="after a restart lost the authorisation: seconds to wait for the same "
        "card (Level-3 media id) to be tapped again and charged; 0 = review only",
    )
    shelf: tuple[ShelfEntry, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _shelves_unique(self) -> CabinetSection:
        numbers = [s.shelf for s in self.shelf]
        dup = sorted({n for n in numbers if numbers.count(n) > 1})
        if dup:
            raise ValueError(f"cabinet shelves repeat: {', '.join(map(str, dup))}")
        products: dict[str, tuple[str, int, int, int | None]] = {}
        for s in self.shelf:
            key = (s.product, s.unit_weight_g, s.tolerance_g, s.price)
            if products.setdefault(s.code, key) != key:
                raise ValueError(f"sku {s.code} is on two shelves with different details")
        return self

    def policy(self, currency: str) -> CabinetPolicy:
        return CabinetPolicy(
            pre_auth=Money(self.pre_auth, currency),
            disagreement_rule=ChargeRule(self.disagreement_rule),
            held_open_rule=ChargeRule(self.held_open_rule),
            power_loss_rule=ChargeRule(self.power_loss_rule),
            open_window_s=self.open_window_s,
            held_open_limit_s=self.held_open_limit_s,
            min_confidence=self.min_confidence,
            noise_g=self.noise_g,
        )

    def planogram(
        self,
        currency: str,
        prices: dict[str, int],
        baseline: tuple[ShelfReading, ...] | None = None,
        known: Mapping[str, str] | None = None,
    ) -> Planogram:
        """Products by shelf; ``prices`` by selection code; RFID shelves adopt the tags
        the ``baseline`` inventory found on them, except the ``known`` ones (tag -> sku:
        an item left on another product's shelf is still its own product)."""
        shelves: dict[int, Product] = {}
        for s in self.shelf:
            price = s.price if s.price is not None else prices.get(s.selection or "")
            if price is None:
                raise SessionError(f"shelf {s.shelf}: selection {s.selection} has no price")
            shelves[s.shelf] = Product(
                s.code, s.product, Money(price, currency), s.unit_weight_g, s.tolerance_g
            )
        tags: dict[str, str] = {}
        rfid = {s.shelf for s in self.shelf if s.rfid}
        for reading in baseline or ():
            if reading.shelf in rfid and reading.tags:
                tags.update(dict.fromkeys(reading.tags, shelves[reading.shelf].sku))
        skus = {p.sku for p in shelves.values()}
        tags.update({t: sku for t, sku in (known or {}).items() if t in tags and sku in skus})
        return Planogram(shelves, tags)

    def shelf_code(self, shelf: int | None) -> str | None:
        """The code (sku) of the product ``shelf`` holds; None for no such shelf."""
        return next((s.code for s in self.shelf if s.shelf == shelf), None)
