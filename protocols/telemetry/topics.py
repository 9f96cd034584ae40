"""MQTT topic names: ``vend/v1/<machine_id>/<kind>`` and ``vend/v1/<machine_id>/cmd/<name>``.

The version sits in the topic so a v2 contract can run beside v1, and the machine id sits
at a fixed level so a broker ACL (``%u`` = username = machine id) pins each machine to its
own subtree. Machine ids therefore may not contain the MQTT wildcards ``+`` and ``#`` or
the level separator ``/``.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from protocols.telemetry.errors import TelemetryError
from protocols.telemetry.fields import MACHINE_ID_PATTERN, is_machine_id

ROOT = "vend"
VERSION = "v1"
COMMAND_LEVEL = "cmd"
QOS = 1  # every topic: at least once, deduplicated by (machine_id, seq) / command id


class Kind(enum.StrEnum):
    """What a machine publishes; the schema name of each is ``vend.<kind>``."""

    STATUS = "status"  # retained; also the MQTT last will
    SALE = "sale"
    REFUND = "refund"
    CASH = "cash"
    STOCK = "stock"
    ALARM = "alarm"
    SERVICE = "service"
    DEX = "dex"
    ACK = "ack"
    REVIEW = "review"  # a smart-cabinet session held for a person to decide

    @property
    def schema(self) -> str:
        return f"{ROOT}.{self.value}"

    @property
    def retained(self) -> bool:
        return self is Kind.STATUS


class CommandName(enum.StrEnum):
    """What the fleet may ask a machine to do."""

    PRICE_CHANGE = "price_change"
    PLANOGRAM_CHANGE = "planogram_change"
    SELECTION_SERVICE = "selection_service"
    MACHINE_SERVICE = "machine_service"
    REQUEST_DEX = "request_dex"
    RESYNC = "resync"
    REBOOT = "reboot"


class ParsedTopic(NamedTuple):
    machine_id: str
    subject: Kind | CommandName  # a CommandName means a command topic


def validate_machine_id(machine_id: str) -> str:
    if not isinstance(machine_id, str) or not is_machine_id(machine_id):
        raise TelemetryError(
            f"invalid machine id {machine_id!r}: expected {MACHINE_ID_PATTERN} "
            "(letters, digits, '_', '.', '-'; no '/', '+' or '#')"
        )
    return machine_id


def topic_for(machine_id: str, kind: Kind | str) -> str:
    return f"{ROOT}/{VERSION}/{validate_machine_id(machine_id)}/{_kind(kind)}"


def command_topic(machine_id: str, name: CommandName | str) -> str:
    machine = validate_machine_id(machine_id)
    return f"{ROOT}/{VERSION}/{machine}/{COMMAND_LEVEL}/{_command(name)}"


def command_filter(machine_id: str) -> str:
    """What a machine subscribes to: every command addressed to it."""
    return f"{ROOT}/{VERSION}/{validate_machine_id(machine_id)}/{COMMAND_LEVEL}/+"


def fleet_filters(kinds: tuple[Kind, ...] = tuple(Kind), group: str | None = None) -> list[str]:
    """Subscription filters for the fleet, one per kind.

    With ``group`` they use the MQTT 5 shared form ``$share/<group>/vend/v1/+/<kind>`` so
    several ingest workers split the messages between them.
    """
    prefix = ""
    if group is not None:
        if not group or any(c in group for c in "/+#") or group.startswith("$"):
            raise TelemetryError(f"invalid shared-subscription group {group!r}")
        prefix = f"$share/{group}/"
    return [f"{prefix}{ROOT}/{VERSION}/+/{_kind(kind)}" for kind in kinds]


def parse_topic(topic: str) -> ParsedTopic:
    """Split a received topic into machine id and kind (or command name)."""
    if not isinstance(topic, str):
        raise TelemetryError(f"topic must be a string, got {type(topic).__name__}")
    levels = topic.split("/")
    if len(levels) < 4 or levels[0] != ROOT:
        raise TelemetryError(f"foreign topic {topic!r}: expected {ROOT}/{VERSION}/<machine_id>/...")
    if levels[1] != VERSION:
        raise TelemetryError(
            f"topic {topic!r} is contract {levels[1]!r}; this build reads {VERSION}"
        )
    machine = validate_machine_id(levels[2])
    rest = levels[3:]
    if rest[0] == COMMAND_LEVEL:
        if len(rest) != 2:
            raise TelemetryError(f"command topic {topic!r}: expected .../{COMMAND_LEVEL}/<name>")
        return ParsedTopic(machine, _command(rest[1]))
    if len(rest) != 1:
        raise TelemetryError(f"topic {topic!r} has extra levels after the kind")
    return ParsedTopic(machine, _kind(rest[0]))


def _kind(kind: Kind | str) -> Kind:
    try:
        return Kind(kind)
    except ValueError:
        known = ", ".join(k.value for k in Kind)
        raise TelemetryError(f"unknown kind {kind!r} (known: {known})") from None


def _command(name: CommandName | str) -> CommandName:
    try:
        return CommandName(name)
    except ValueError:
        known = ", ".join(c.value for c in CommandName)
        raise TelemetryError(f"unknown command {name!r} (known: {known})") from None
