"""The body of a smart-cabinet session held for human review (``vend/v1/<machine>/review``).

A cabinet session lands here whenever the machine could not vouch for the charge on its
own: the sensors disagreed, the door was held open, the power went during the session,
the card could not be charged as settled (its authorisation was lost at a restart, a
refund or new charge was refused). The body carries what a person needs to decide:
the reasons, the rule the machine applied, what it charged and what it had authorised,
the confident and the maximum plausible lines, and each shelf's sensor evidence.

Tolerant like every body: fields a newer machine adds are ignored, and ``rule`` and
``outcome`` are plain strings so a value this build does not know still reads.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from protocols.telemetry.bodies import SaleLine
from protocols.telemetry.fields import (
    Count,
    CurrencyCode,
    MinorUnits,
    StrictBool,
    StrictInt,
    WireModel,
)


class ShelfEvidence(WireModel):
    """What one shelf's sensors said about the session."""

    shelf: Count = Field(description="Shelf number, from 0.")
    weight_before_g: Count | None = Field(default=None, description="Grams at unlock.")
    weight_after_g: Count | None = Field(default=None, description="Grams at door close.")
    removed_tags: list[str] = Field(default_factory=list, description="RFID tags gone.")
    added_tags: list[str] = Field(default_factory=list, description="RFID tags new.")
    confidence: Count | None = Field(default=None, description="0..100, weight trust.")
    fault: StrictBool = Field(default=False, description="A sensor faulted in the session.")


class ReviewBody(WireModel):
    """A cabinet session a person must look at; the fleet keeps it in its review queue."""

    session_id: StrictInt = Field(ge=1, description="The cabinet session id (unique per machine).")
    reasons: list[str] = Field(min_length=1, description="Why it needs a person, in words.")
    rule: str = Field(
        description="Charge rule applied: charge_confident_only, charge_maximum_plausible, "
        "hold_for_review (or the machine's own word for a payment problem)."
    )
    outcome: str = Field(
        description="held_for_review, charged, nothing_taken, unsettled (items taken, card "
        "not charged), refund_owed (charged more than the items) or uncertain."
    )
    currency: CurrencyCode = Field(description="ISO 4217 code of every amount here.")
    authorised: MinorUnits = Field(description="Amount the reader authorised (held).")
    charged: MinorUnits = Field(description="Amount actually charged to the card so far.")
    due: MinorUnits | None = Field(
        default=None, description="What the items taken are worth by the machine's count."
    )
    reader: StrictInt | None = Field(default=None, ge=1, description="Cashless reader number.")
    confident_lines: list[SaleLine] = Field(
        default_factory=list, description="Items the sensors vouch for."
    )
    plausible_lines: list[SaleLine] = Field(
        default_factory=list, description="The most the customer can have taken."
    )
    shelves: list[Count] = Field(default_factory=list, description="Shelves in doubt.")
    evidence: list[ShelfEvidence] = Field(
        default_factory=list, description="Each shelf's sensor readings for the session."
    )
    alarms: list[str] = Field(default_factory=list, description="Alarms raised, as kind: detail.")

    @model_validator(mode="after")
    def _charged_within_authorised(self) -> Self:
        if self.charged > self.authorised:
            raise ValueError(f"charged {self.charged} is more than authorised {self.authorised}")
        return self
