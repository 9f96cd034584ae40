"""The versioned envelope around every body, one class per kind, and the union over them.

``seq`` numbers a machine's events 1, 2, 3 ... without gaps for the life of its journal,
so the fleet can see what it missed; ``msg_id`` (``<machine_id>:<seq>``) is the
idempotency key that turns QoS 1 duplicates and outbox re-sends into no-ops.

Status is state, not an event: its payload is also the MQTT last will, composed when the
machine connects and perhaps never sent, so it must not use up a sequence number. A
status carries the last event seq assigned so far (0 before the first) and the msg_id
``<machine_id>:status:<boot_id>:<seq>``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from protocols.telemetry.bodies import CashBody, RefundBody, SaleBody, StatusBody, StockBody
from protocols.telemetry.bodies_ops import AlarmBody, CommandAckBody, DexReadBody, ServiceVisitBody
from protocols.telemetry.bodies_review import ReviewBody
from protocols.telemetry.fields import MachineId, StrictInt, UtcTime, WireModel
from protocols.telemetry.topics import Kind

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})  # major versions this build reads


class Envelope(BaseModel):
    """Fields every message carries around its body."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
    KIND: ClassVar[Kind]

    schema_name: str = Field(alias="schema", description="`vend.<kind>`, names the body type.")
    v: StrictInt = Field(
        default=SCHEMA_VERSION, description="Major schema version; breaking changes bump it."
    )
    machine_id: MachineId = Field(description="The publishing machine; equals its MQTT username.")
    boot_id: StrictInt = Field(ge=0, description="Journal boot counter, +1 on every start.")
    seq: StrictInt = Field(ge=1, description="Event number, gap-free per machine from 1.")
    msg_id: str = Field(description="`<machine_id>:<seq>`: the idempotency key.")
    ts: UtcTime = Field(description="When the event happened, UTC (RFC 3339).")
    body: WireModel = Field(description="The body for this schema.")

    @field_validator("v")
    @classmethod
    def _supported(cls, v: int) -> int:
        if v not in SUPPORTED_VERSIONS:
            readable = ", ".join(str(n) for n in sorted(SUPPORTED_VERSIONS))
            raise ValueError(f"unsupported major version {v} (this build reads v{readable})")
        return v

    @classmethod
    def expected_msg_id(cls, machine_id: str, boot_id: int, seq: int) -> str:  # noqa: ARG003
        return f"{machine_id}:{seq}"

    @model_validator(mode="after")
    def _msg_id_matches(self) -> Self:
        expected = self.expected_msg_id(self.machine_id, self.boot_id, self.seq)
        if self.msg_id != expected:
            raise ValueError(f"msg_id {self.msg_id!r} should be {expected!r}")
        return self


class StatusEnvelope(Envelope):
    KIND = Kind.STATUS
    schema_name: Literal["vend.status"] = Field(default="vend.status", alias="schema")
    seq: StrictInt = Field(ge=0, description="Last event seq assigned (status takes none).")
    body: StatusBody

    @classmethod
    def expected_msg_id(cls, machine_id: str, boot_id: int, seq: int) -> str:
        return f"{machine_id}:status:{boot_id}:{seq}"


class SaleEnvelope(Envelope):
    KIND = Kind.SALE
    schema_name: Literal["vend.sale"] = Field(default="vend.sale", alias="schema")
    body: SaleBody


class RefundEnvelope(Envelope):
    KIND = Kind.REFUND
    schema_name: Literal["vend.refund"] = Field(default="vend.refund", alias="schema")
    body: RefundBody


class CashEnvelope(Envelope):
    KIND = Kind.CASH
    schema_name: Literal["vend.cash"] = Field(default="vend.cash", alias="schema")
    body: CashBody


class StockEnvelope(Envelope):
    KIND = Kind.STOCK
    schema_name: Literal["vend.stock"] = Field(default="vend.stock", alias="schema")
    body: StockBody


class AlarmEnvelope(Envelope):
    KIND = Kind.ALARM
    schema_name: Literal["vend.alarm"] = Field(default="vend.alarm", alias="schema")
    body: AlarmBody


class ServiceEnvelope(Envelope):
    KIND = Kind.SERVICE
    schema_name: Literal["vend.service"] = Field(default="vend.service", alias="schema")
    body: ServiceVisitBody


class DexEnvelope(Envelope):
    KIND = Kind.DEX
    schema_name: Literal["vend.dex"] = Field(default="vend.dex", alias="schema")
    body: DexReadBody


class AckEnvelope(Envelope):
    KIND = Kind.ACK
    schema_name: Literal["vend.ack"] = Field(default="vend.ack", alias="schema")
    body: CommandAckBody


class ReviewEnvelope(Envelope):
    KIND = Kind.REVIEW
    schema_name: Literal["vend.review"] = Field(default="vend.review", alias="schema")
    body: ReviewBody


TelemetryEnvelope = (
    StatusEnvelope
    | SaleEnvelope
    | RefundEnvelope
    | CashEnvelope
    | StockEnvelope
    | AlarmEnvelope
    | ServiceEnvelope
    | DexEnvelope
    | AckEnvelope
    | ReviewEnvelope
)
Body = (
    StatusBody
    | SaleBody
    | RefundBody
    | CashBody
    | StockBody
    | AlarmBody
    | ServiceVisitBody
    | DexReadBody
    | CommandAckBody
    | ReviewBody
)
ENVELOPES: dict[Kind, type[TelemetryEnvelope]] = {
    cls.KIND: cls
    for cls in (
        StatusEnvelope,
        SaleEnvelope,
        RefundEnvelope,
        CashEnvelope,
        StockEnvelope,
        AlarmEnvelope,
        ServiceEnvelope,
        DexEnvelope,
        AckEnvelope,
        ReviewEnvelope,
    )
}
SCHEMAS: dict[str, Kind] = {kind.schema: kind for kind in ENVELOPES}
_BY_BODY: dict[type[WireModel], type[TelemetryEnvelope]] = {
    cls.model_fields["body"].annotation: cls  # type: ignore[misc]
    for cls in ENVELOPES.values()
}
ANY_ENVELOPE: TypeAdapter[TelemetryEnvelope] = TypeAdapter(
    Annotated[TelemetryEnvelope, Field(discriminator="schema_name")]
)


def kind_of(body: Body) -> Kind:
    return _BY_BODY[type(body)].KIND


def make_envelope(
    body: Body, *, machine_id: str, boot_id: int, seq: int, ts: datetime
) -> TelemetryEnvelope:
    """Wrap a body: picks the schema from the body's type and derives ``msg_id``."""
    cls = _BY_BODY[type(body)]
    return cls(
        machine_id=machine_id,
        boot_id=boot_id,
        seq=seq,
        msg_id=cls.expected_msg_id(machine_id, boot_id, seq),
        ts=ts,
        body=body,
    )
