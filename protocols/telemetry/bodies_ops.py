"""The bodies of operational messages: alarms, service visits, DEX reads and command acks."""

from __future__ import annotations

import enum
from typing import Any, Self

from pydantic import Field, model_validator

from protocols.telemetry.fields import (
    CommandId,
    Count,
    CurrencyCode,
    MinorUnits,
    SelectionCode,
    StrictBool,
    StrictInt,
    UtcTime,
    WireModel,
)


class AlarmCode(enum.StrEnum):
    JAM = "jam"
    EMPTY = "empty"
    CHANGER_FAULT = "changer_fault"
    VALIDATOR_FAULT = "validator_fault"
    READER_FAULT = "reader_fault"
    DISPENSER_FAULT = "dispenser_fault"
    DOOR_OPEN = "door_open"
    CASH_BOX_FULL = "cash_box_full"
    TUBES_LOW = "tubes_low"
    OUTBOX_BACKLOG = "outbox_backlog"
    OTHER = "other"


class AlarmState(enum.StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


_ALARM_CODES = frozenset(code.value for code in AlarmCode)


class AlarmBody(WireModel):
    """A condition that needs attention was raised, or has cleared.

    A code this build does not know (added by a newer machine) is read as ``other`` with
    the original code kept at the front of ``detail``, so one new alarm does not make a
    whole message unreadable.
    """

    code: AlarmCode = Field(description="What is wrong; unknown codes read as `other`.")
    state: AlarmState = Field(description="raised or cleared.")
    severity: Severity = Field(description="info, warning or critical.")
    device: str | None = Field(default=None, description="Peripheral concerned, e.g. changer.")
    detail: str = Field(default="", description="Human-readable detail.")
    selection: SelectionCode | None = Field(default=None, description="Selection concerned.")

    @model_validator(mode="before")
    @classmethod
    def _unknown_code_is_other(cls, data: Any) -> Any:
        if isinstance(data, dict):
            code = data.get("code")
            if isinstance(code, str) and code not in _ALARM_CODES:
                detail = data.get("detail", "")
                text = f"{code}: {detail}" if isinstance(detail, str) and detail else code
                return {**data, "code": AlarmCode.OTHER.value, "detail": text}
        return data


class ServiceAction(enum.StrEnum):
    FILL = "fill"  # product added to a selection
    REMOVE = "remove"  # product taken out (expired, damaged)
    COUNT = "count"  # selection counted and corrected
    COLLECT = "collect"  # cash box emptied
    TUBE_FILL = "tube_fill"
    TUBE_PAYOUT = "tube_payout"
    TEST_VEND = "test_vend"
    PRICE_CHANGE = "price_change"
    CLEAN = "clean"
    REPAIR = "repair"
    OTHER = "other"


_SERVICE_ACTIONS = frozenset(action.value for action in ServiceAction)


class ServiceActionEntry(WireModel):
    action: ServiceAction = Field(description="What was done; unknown actions read as `other`.")
    selection: SelectionCode | None = Field(default=None, description="Selection, if any.")
    count: StrictInt | None = Field(default=None, description="Units (signed for corrections).")
    amount: MinorUnits | None = Field(default=None, description="Money moved, minor units.")

    @model_validator(mode="before")
    @classmethod
    def _unknown_action_is_other(cls, data: Any) -> Any:
        if isinstance(data, dict):
            action = data.get("action")
            if isinstance(action, str) and action not in _SERVICE_ACTIONS:
                return {**data, "action": ServiceAction.OTHER.value}
        return data


class ServiceVisitBody(WireModel):
    """A technician or route driver opened the machine; sent when the visit closes (and,
    with ``closed_at`` null, when it opens)."""

    opened_at: UtcTime = Field(description="Service mode entered / door opened (UTC).")
    closed_at: UtcTime | None = Field(default=None, description="Null while still open.")
    operator: str | None = Field(default=None, description="Who, if the machine knows.")
    currency: CurrencyCode | None = Field(default=None, description="Code of the amounts.")
    actions: list[ServiceActionEntry] = Field(default_factory=list, description="In order.")

    @model_validator(mode="after")
    def _closes_after_opening(self) -> Self:
        if self.closed_at is not None and self.closed_at < self.opened_at:
            raise ValueError("closed_at is before opened_at")
        if self.currency is None and any(a.amount is not None for a in self.actions):
            raise ValueError("actions with an amount need the body's currency")
        return self


class DexTotals(WireModel):
    paid_vends_value: StrictInt | None = Field(default=None, description="VA101.")
    paid_vends_count: StrictInt | None = Field(default=None, description="VA102.")
    cash_sales_value: StrictInt | None = Field(default=None, description="CA201.")
    cashless_sales_value: StrictInt | None = Field(default=None, description="DA201.")


class DexSelectionSummary(WireModel):
    selection: str = Field(description="PA101.")
    price: StrictInt | None = Field(default=None, description="PA102.")
    vends: StrictInt | None = Field(default=None, description="PA201.")
    sales_value: StrictInt | None = Field(default=None, description="PA202.")


class DexSummary(WireModel):
    """The shape of ``protocols.dex.summarize(dex)``; money in the file's own minor units."""

    machine_serial: str | None = Field(default=None, description="ID101.")
    crc: str = Field(description="ok, mismatch or absent.")
    totals: DexTotals = Field(description="Since-initialisation totals.")
    selections: list[DexSelectionSummary] = Field(default_factory=list, description="PA rows.")
    warnings: list[str] = Field(default_factory=list, description="What the reader tolerated.")
    decimal_places: StrictInt | None = Field(default=None, description="ID105 or similar.")
    currency: str | None = Field(default=None, description="Currency from the file, if any.")
    segments: Count = Field(description="Number of segments read.")


class DexReadBody(WireModel):
    """An EVA-DTS/DEX audit file read from the machine, verbatim plus its parsed summary."""

    raw: str = Field(description="The DEX text exactly as produced (ASCII, CR LF lines).")
    summary: DexSummary = Field(description="`protocols.dex.summarize` of the file.")
    reset: StrictBool = Field(description="True if interim counters were reset by this read.")
    read_at: UtcTime = Field(description="When the file was read (UTC).")


class AckOutcome(enum.StrEnum):
    APPLIED = "applied"
    DEFERRED = "deferred"  # accepted; takes effect later (e.g. at the next service visit)
    REJECTED = "rejected"  # valid and authentic, but cannot be done (reason in detail)
    FAILED = "failed"  # tried and failed
    EXPIRED = "expired"
    REPLAYED = "replayed"
    BAD_SIGNATURE = "bad_signature"
    WRONG_MACHINE = "wrong_machine"


class CommandAckBody(WireModel):
    """What the machine did with a command from the fleet."""

    command_id: CommandId = Field(description="The command's id.")
    name: str = Field(description="The command's name, e.g. price_change.")
    outcome: AckOutcome = Field(description="What became of it.")
    detail: str = Field(default="", description="Reason or result, in words.")
