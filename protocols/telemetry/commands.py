"""Commands from the fleet to one machine, on ``vend/v1/<machine_id>/cmd/<name>``.

Each command names its target machine, carries an id the fleet chooses (a UUID), when it
was issued and when it expires, typed arguments, and a signature over all of that (see
:mod:`.signing`). Commands keep fields they do not know (``extra="allow"``) because the
signature covers every field the fleet sent: dropping one would break verification.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from protocols.telemetry.fields import (
    CommandId,
    CommandTime,
    Count,
    CurrencyCode,
    MachineId,
    MinorUnits,
    SelectionCode,
    StrictBool,
    StrictInt,
)
from protocols.telemetry.topics import CommandName

COMMAND_VERSION = 1


class CommandArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


class PriceChangeArgs(CommandArgs):
    selection: SelectionCode = Field(description="Selection whose price changes.")
    price: MinorUnits = Field(description="New price, minor units.")
    currency: CurrencyCode = Field(description="Must be the machine's currency.")


class PlanogramEntry(CommandArgs):
    """One selection of the new planogram (the fields of ``protocols.vend.model.Selection``)."""

    code: SelectionCode = Field(description="Selection code.")
    product: str = Field(description="Product name.")
    price: MinorUnits = Field(description="Price, minor units.")
    capacity: StrictInt = Field(ge=1, description="Units when full.")
    par: Count = Field(description="Target fill level.")
    motor: Count = Field(description="Motor / spiral number.")
    item_number: StrictInt = Field(default=0, ge=0, le=0xFFFE, description="MDB item number.")


class Effective(enum.StrEnum):
    NOW = "now"
    NEXT_SERVICE = "next_service"  # applied when a technician next opens the machine


class PlanogramChangeArgs(CommandArgs):
    selections: list[PlanogramEntry] = Field(min_length=1, description="The whole planogram.")
    currency: CurrencyCode = Field(description="Code of the prices.")
    effective: Effective = Field(description="now or next_service.")
    config_version: str = Field(min_length=1, description="Version name the machine reports.")


class SelectionServiceArgs(CommandArgs):
    selection: SelectionCode = Field(description="Selection to take out of / put back in.")
    in_service: StrictBool = Field(description="False: out of service.")
    reason: str = Field(default="", description="Shown to operators.")


class MachineServiceArgs(CommandArgs):
    in_service: StrictBool = Field(description="False: the whole machine stops selling.")
    reason: str = Field(default="", description="Shown to operators and on the display.")


class RequestDexArgs(CommandArgs):
    reset: StrictBool = Field(default=False, description="Reset interim counters after reading.")


class ResyncArgs(CommandArgs):
    after_seq: Count = Field(
        description="Re-send a stock snapshot, then every event with seq greater than this."
    )


class RebootArgs(CommandArgs):
    pass


class CommandEnvelope(BaseModel):
    """Fields every command carries around its arguments; ``sig`` stays empty until the
    command is signed."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: CommandId = Field(description="Chosen by the fleet (a UUID); the replay-guard key.")
    name: str = Field(description="The command, also the last topic level.")
    v: StrictInt = Field(default=COMMAND_VERSION, description="Command schema major version.")
    machine_id: MachineId = Field(description="The one machine this command is for.")
    issued_at: CommandTime = Field(description="YYYY-MM-DDTHH:MM:SSZ.")
    expires_at: CommandTime = Field(description="YYYY-MM-DDTHH:MM:SSZ; refused after this.")
    args: CommandArgs = Field(description="Arguments for this command.")
    sig: str = Field(default="", description="`hmac-sha256:<64 hex digits>`.")

    @model_validator(mode="after")
    def _expires_after_issue(self) -> Self:
        if self.v != COMMAND_VERSION:
            raise ValueError(f"unsupported command version {self.v} (this build reads v1)")
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be later than issued_at")
        return self

    @property
    def command(self) -> CommandName:
        return CommandName(self.name)

    def wire_document(self) -> dict[str, Any]:
        """The JSON object as sent: the fields given (received or passed in), never filled-in
        defaults, because the signature covers exactly what is on the wire."""
        document = self.model_dump(mode="json", exclude_unset=True)
        return {**document, "name": self.name, "v": self.v}


class ChangePrice(CommandEnvelope):
    """Set the price of one selection, at once."""

    name: Literal["price_change"] = "price_change"
    args: PriceChangeArgs


class ChangePlanogram(CommandEnvelope):
    """Replace the planogram (selections, products, prices, capacities)."""

    name: Literal["planogram_change"] = "planogram_change"
    args: PlanogramChangeArgs


class SetSelectionService(CommandEnvelope):
    """Take one selection out of service, or put it back."""

    name: Literal["selection_service"] = "selection_service"
    args: SelectionServiceArgs


class SetMachineService(CommandEnvelope):
    """Take the whole machine out of service, or put it back."""

    name: Literal["machine_service"] = "machine_service"
    args: MachineServiceArgs


class RequestDex(CommandEnvelope):
    """Read the DEX audit file now and publish it (``vend.dex``)."""

    name: Literal["request_dex"] = "request_dex"
    args: RequestDexArgs


class Resync(CommandEnvelope):
    """Re-send a stock snapshot and every journaled event after ``after_seq``."""

    name: Literal["resync"] = "resync"
    args: ResyncArgs


class Reboot(CommandEnvelope):
    """Restart the controller process (after the current vend, if any)."""

    name: Literal["reboot"] = "reboot"
    args: RebootArgs


Command = (
    ChangePrice
    | ChangePlanogram
    | SetSelectionService
    | SetMachineService
    | RequestDex
    | Resync
    | Reboot
)
COMMANDS: dict[CommandName, type[Command]] = {
    CommandName(cls.model_fields["name"].default): cls
    for cls in (
        ChangePrice,
        ChangePlanogram,
        SetSelectionService,
        SetMachineService,
        RequestDex,
        Resync,
        Reboot,
    )
}
ANY_COMMAND: TypeAdapter[Command] = TypeAdapter(Annotated[Command, Field(discriminator="name")])
