"""Values of a cabinet sale: planogram, shelf readings and changes, policy, and the settlement.

Weights are integer grams, money is :class:`protocols.money.Money` in minor units,
RFID tags are EPC-96 as 24 upper-case hex digits.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from protocols.cabinet.errors import SessionError
from protocols.money import Money


class ChargeRule(enum.Enum):
    """What to charge when the sensors cannot vouch for everything (operator setting)."""

    CHARGE_CONFIDENT_ONLY = "charge_confident_only"  # what the sensors vouch for; review the rest
    CHARGE_MAXIMUM_PLAUSIBLE = "charge_maximum_plausible"  # the most it can have been; review
    HOLD_FOR_REVIEW = "hold_for_review"  # charge nothing now; a person decides

    @property
    def leniency(self) -> int:
        """Lower charges less; when several rules apply the most lenient one wins."""
        return _LENIENCY[self]


_LENIENCY = {
    ChargeRule.HOLD_FOR_REVIEW: 0,
    ChargeRule.CHARGE_CONFIDENT_ONLY: 1,
    ChargeRule.CHARGE_MAXIMUM_PLAUSIBLE: 2,
}


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    unit_price: Money
    unit_weight_g: int
    tolerance_g: int  # allowed error per unit when weight is turned into a count

    def __post_init__(self) -> None:
        if not self.sku:
            raise SessionError("a product needs a sku")
        if self.unit_price.minor < 0:
            raise SessionError(f"product {self.sku}: negative price {self.unit_price.minor}")
        if self.unit_weight_g <= 0:
            raise SessionError(f"product {self.sku}: unit weight must be > 0 g")
        if not 0 <= 2 * self.tolerance_g < self.unit_weight_g:
            # Otherwise n and n+1 units overlap and a count cannot be told apart.
            raise SessionError(
                f"product {self.sku}: tolerance {self.tolerance_g} g must be >= 0 and "
                f"under half the unit weight {self.unit_weight_g} g"
            )


@dataclass(frozen=True, slots=True)
class Planogram:
    """Which product each shelf holds, and which product each known RFID tag is on."""

    shelves: Mapping[int, Product]
    tags: Mapping[str, str] = field(default_factory=dict)  # tag -> sku

    def __post_init__(self) -> None:
        currencies = {p.unit_price.currency for p in self.shelves.values()}
        if len(currencies) > 1:
            raise SessionError(f"planogram mixes currencies {sorted(currencies)}")
        skus = self.products
        for tag, sku in self.tags.items():
            if sku not in skus:
                raise SessionError(f"tag {tag} names sku {sku!r}, which no shelf holds")

    @property
    def products(self) -> dict[str, Product]:
        return {p.sku: p for p in self.shelves.values()}


@dataclass(frozen=True, slots=True)
class ShelfReading:
    """One shelf at one moment: ``None`` where the shelf has no such sensor or it faulted."""

    shelf: int
    weight_g: int | None
    tags: frozenset[str] | None = None
    fault: bool = False


@dataclass(frozen=True, slots=True)
class ShelfChange:
    """One shelf between unlock and door close (the cabinet's SESSION REPORT)."""

    shelf: int
    weight_before_g: int | None
    weight_after_g: int | None
    removed_tags: frozenset[str] = frozenset()
    added_tags: frozenset[str] = frozenset()
    rfid: bool = False  # the tag lists are valid
    confidence: int = 100  # 0..100, the cabinet's trust in its weight reading
    fault: bool = False  # a sensor of this shelf faulted during the session

    @property
    def weight_removed_g(self) -> int | None:
        if self.weight_before_g is None or self.weight_after_g is None:
            return None
        return self.weight_before_g - self.weight_after_g


def diff(before: ShelfReading, after: ShelfReading) -> ShelfChange:
    """The change between two readings of one shelf (e.g. before and after a power cut)."""
    if before.shelf != after.shelf:
        raise SessionError(f"cannot compare shelf {before.shelf} with shelf {after.shelf}")
    rfid = before.tags is not None and after.tags is not None
    old = before.tags or frozenset()
    new = after.tags or frozenset()
    return ShelfChange(
        shelf=before.shelf,
        weight_before_g=before.weight_g,
        weight_after_g=after.weight_g,
        removed_tags=old - new if rfid else frozenset(),
        added_tags=new - old if rfid else frozenset(),
        rfid=rfid,
        fault=before.fault or after.fault,
    )


@dataclass(frozen=True, slots=True)
class CabinetPolicy:
    """The operator's settings for cabinet sessions."""

    pre_auth: Money  # amount asked of the reader (MDB VEND REQUEST) before unlocking
    disagreement_rule: ChargeRule = ChargeRule.CHARGE_CONFIDENT_ONLY
    held_open_rule: ChargeRule = ChargeRule.CHARGE_CONFIDENT_ONLY
    power_loss_rule: ChargeRule = ChargeRule.CHARGE_CONFIDENT_ONLY
    open_window_s: int = 30  # the door must open within this, or the lock re-engages
    held_open_limit_s: int = 60  # longer open is an alarm
    min_confidence: int = 80  # weight readings the cabinet trusts less are doubtful
    noise_g: int = 5  # weight changes this small on a shelf are no change

    def __post_init__(self) -> None:
        if self.pre_auth.minor <= 0:
            raise SessionError(f"pre-authorisation must be > 0, got {self.pre_auth.minor}")
        for name in ("open_window_s", "held_open_limit_s"):
            if not 1 <= getattr(self, name) <= 0xFFFF:
                raise SessionError(f"{name} must be 1..65535 seconds")
        if not 0 <= self.min_confidence <= 100:
            raise SessionError("min_confidence must be 0..100")
        if self.noise_g < 0:
            raise SessionError("noise_g must be >= 0")


class AlarmKind(enum.Enum):
    DOOR_HELD_OPEN = "door_held_open"
    POWER_LOST = "power_lost"  # power failed during a session
    PLANOGRAM = "planogram"  # an item was put back on a shelf that does not hold it
    SENSOR_DISAGREEMENT = "sensor_disagreement"  # weight vs RFID, or a weight of no whole count
    SENSOR_FAULT = "sensor_fault"
    LOW_CONFIDENCE = "low_confidence"
    UNKNOWN_TAG = "unknown_tag"  # a tag the planogram does not know
    UNEXPECTED_ADDITION = "unexpected_addition"  # stock appeared that was not taken this session
    UNIDENTIFIED_ADDITION = "unidentified_addition"  # weight appeared that matches no product
    OVER_PRE_AUTH = "over_pre_auth"  # the items cost more than was authorised
    TAMPER = "tamper"


@dataclass(frozen=True, slots=True)
class Alarm:
    kind: AlarmKind
    session_id: int
    detail: str
    shelf: int | None = None


class LineKind(enum.Enum):
    ITEM = "item"
    CAP_ADJUSTMENT = "cap_adjustment"  # brings the total down to the authorised amount


@dataclass(frozen=True, slots=True)
class SaleLine:
    sku: str
    name: str
    quantity: int
    unit_price: Money
    kind: LineKind = LineKind.ITEM

    @property
    def total(self) -> Money:
        return Money(self.quantity * self.unit_price.minor, self.unit_price.currency)


@dataclass(frozen=True, slots=True)
class ReturnedItem:
    """Taken and put back during the session: never charged."""

    sku: str
    quantity: int
    to_shelf: int
    wrong_shelf: bool


class SettlementOutcome(enum.Enum):
    CHARGED = "charged"
    NOTHING_TAKEN = "nothing_taken"
    HELD_FOR_REVIEW = "held_for_review"  # nothing charged now; a person decides
    CANCELLED = "cancelled"  # payment denied, unlock failed or the door never opened


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """One entry for the fleet's human review queue."""

    session_id: int
    rule: ChargeRule
    reasons: tuple[str, ...]
    charged: Money
    confident_lines: tuple[SaleLine, ...]
    plausible_lines: tuple[SaleLine, ...]  # the most the customer can have taken
    shelves: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Settlement:
    session_id: int
    outcome: SettlementOutcome
    authorised: Money
    charge: Money
    lines: tuple[SaleLine, ...] = ()
    returned: tuple[ReturnedItem, ...] = ()
    alarms: tuple[Alarm, ...] = ()
    reviews: tuple[ReviewRecord, ...] = ()

    @property
    def released(self) -> Money:
        """What the reader must give back of the pre-authorisation."""
        return self.authorised - self.charge

    def describe(self) -> dict[str, object]:
        return {
            "session_id": self.session_id,
            "outcome": self.outcome.value,
            "authorised": self.authorised.minor,
            "charge": self.charge.minor,
            "currency": self.charge.currency,
            "lines": [
                {"sku": ln.sku, "name": ln.name, "quantity": ln.quantity,
                 "unit_price": ln.unit_price.minor, "kind": ln.kind.value}
                for ln in self.lines
            ],
            "returned": [
                {"sku": r.sku, "quantity": r.quantity, "to_shelf": r.to_shelf}
                for r in self.returned
            ],
            "alarms": [{"kind": a.kind.value, "shelf": a.shelf, "detail": a.detail}
                       for a in self.alarms],
            "reviews": [{"rule": r.rule.value, "reasons": list(r.reasons)} for r in self.reviews],
        }  # fmt: skip
