"""Bytes on the wire to typed envelopes and back: the one entry point for received payloads.

``decode`` and ``decode_command`` take the topic a message arrived on and its payload and
either return a typed model or raise :class:`TelemetryError` whose reason names the
problem (not JSON, which field, float money, a naive timestamp, a machine publishing as
another machine, an unknown schema or major version). Nothing else escapes them.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel, ValidationError

from protocols.telemetry.commands import COMMANDS, Command, CommandEnvelope
from protocols.telemetry.envelope import ENVELOPES, SCHEMAS, SUPPORTED_VERSIONS, TelemetryEnvelope
from protocols.telemetry.errors import TelemetryError
from protocols.telemetry.signing import canonical_json
from protocols.telemetry.topics import CommandName, Kind, parse_topic

# A DEX file is the largest body (tens of kB); anything near this is not ours.
MAX_PAYLOAD_BYTES = 1 << 20
_MAX_ERRORS = 3
M = TypeVar("M", bound=BaseModel)


def encode(message: TelemetryEnvelope | Command) -> bytes:
    """Compact JSON in UTF-8 (Vietnamese text stays as UTF-8, not ``\\u`` escapes).

    A command is written exactly as signed: the fields it was given, no filled-in defaults.
    """
    if isinstance(message, CommandEnvelope):
        return canonical_json(message.wire_document())
    return message.model_dump_json(by_alias=True).encode("utf-8")


def decode(topic: str, payload: bytes) -> TelemetryEnvelope:
    """A telemetry message from the topic it arrived on; raises TelemetryError."""
    machine_id, subject = parse_topic(topic)
    if isinstance(subject, CommandName):
        raise TelemetryError(f"{topic!r} is a command topic; use decode_command")
    data = _object(payload)
    schema = data.get("schema")
    if schema is None:
        raise TelemetryError("missing field 'schema'")
    if not isinstance(schema, str) or schema not in SCHEMAS:
        known = ", ".join(sorted(SCHEMAS))
        raise TelemetryError(f"unknown schema {schema!r} (known: {known})")
    if SCHEMAS[schema] is not subject:
        raise TelemetryError(f"schema {schema!r} does not belong on topic kind {subject.value!r}")
    if "v" not in data:
        raise TelemetryError(f"missing field 'v' (major version of {schema})")
    version = data.get("v")
    known_type = isinstance(version, int) and not isinstance(version, bool)
    if known_type and version not in SUPPORTED_VERSIONS:
        raise TelemetryError(
            f"unsupported major version v={version} of {schema} (this build reads "
            f"{', '.join(f'v{n}' for n in sorted(SUPPORTED_VERSIONS))})"
        )
    envelope = _validate(ENVELOPES[subject], data, schema)
    if envelope.machine_id != machine_id:
        raise TelemetryError(
            f"envelope machine_id {envelope.machine_id!r} does not match "
            f"topic machine {machine_id!r}"
        )
    return envelope


def decode_command(topic: str, payload: bytes) -> Command:
    """A command from the topic it arrived on; raises TelemetryError. Not yet verified."""
    machine_id, subject = parse_topic(topic)
    if isinstance(subject, Kind):
        raise TelemetryError(f"{topic!r} is a telemetry topic, not a command topic")
    data = _object(payload)
    name = data.get("name")
    if name != subject.value:
        raise TelemetryError(
            f"command name {name!r} does not match topic command {subject.value!r}"
        )
    for field in ("v", "sig"):
        if field not in data:
            raise TelemetryError(f"missing field {field!r}")
    command = _validate(COMMANDS[subject], data, f"command {subject.value}")
    if command.machine_id != machine_id:
        raise TelemetryError(
            f"command machine_id {command.machine_id!r} does not match topic machine {machine_id!r}"
        )
    return command


def _object(payload: bytes) -> dict[str, Any]:
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TelemetryError(f"payload must be bytes, got {type(payload).__name__}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise TelemetryError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        data = pydantic_core.from_json(bytes(payload), allow_inf_nan=False)
    except (ValueError, RecursionError) as exc:
        raise TelemetryError(f"payload is not JSON (UTF-8): {exc}") from None
    if not isinstance(data, dict):
        raise TelemetryError(f"payload must be a JSON object, got {type(data).__name__}")
    return data


def _validate(cls: type[M], data: dict[str, Any], what: str) -> M:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise TelemetryError(f"invalid {what}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """The first few problems as ``path: message (got value)``."""
    problems = []
    errors = exc.errors(include_url=False)
    for error in errors[:_MAX_ERRORS]:
        path = ".".join(str(part) for part in error["loc"]) or "payload"
        text = f"{path}: {error['msg']}"
        if error["type"] not in {"missing", "model_type", "value_error"}:
            got = repr(error.get("input"))
            text += f" (got {got[:40]}{'...' if len(got) > 40 else ''})"
        problems.append(text)
    if len(errors) > _MAX_ERRORS:
        problems.append(f"and {len(errors) - _MAX_ERRORS} more")
    return "; ".join(problems)
