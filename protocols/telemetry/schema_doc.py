"""The text of docs/telemetry.md, generated from the models so it cannot drift from them.

Pure: ``build_document()`` returns the markdown; ``scripts/gen-telemetry-doc`` writes it
and a test checks the committed file equals a fresh build.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from protocols.telemetry import envelope as envelope_module
from protocols.telemetry import replay, signing
from protocols.telemetry.codec import MAX_PAYLOAD_BYTES, encode
from protocols.telemetry.commands import COMMANDS, CommandEnvelope
from protocols.telemetry.envelope import ENVELOPES, Envelope
from protocols.telemetry.examples import EXAMPLE_KEY, MACHINE, example_commands, example_envelopes
from protocols.telemetry.fields import MACHINE_ID_PATTERN
from protocols.telemetry.signing import sign, signing_bytes
from protocols.telemetry.topics import QOS, CommandName, Kind, command_topic, fleet_filters

Schema = dict[str, Any]


class _Tables:
    """Renders JSON-schema objects as field tables; each nested object once per document."""

    def __init__(self) -> None:
        self.rendered: set[str] = set()

    def model(
        self, model: type[BaseModel], *, skip: tuple[str, ...] = (), all_required: bool = False
    ) -> list[str]:
        """``all_required``: headers whose defaults only serve Python callers; the wire
        form must carry every field."""
        schema = model.model_json_schema(by_alias=True)
        if all_required:
            schema = {**schema, "required": list(schema["properties"])}
        return self._object(schema, schema.get("$defs", {}), skip)

    def _object(self, schema: Schema, defs: dict[str, Schema], skip: tuple[str, ...]) -> list[str]:
        required = set(schema.get("required", []))
        nested: list[str] = []
        lines = ["| field | type | required | description |", "|---|---|---|---|"]
        for name, prop in schema.get("properties", {}).items():
            if name in skip:
                continue
            kind = self._type(prop, defs, nested)
            need = "yes" if name in required else "no"
            if name not in required and "default" in prop:
                need = f"no (default `{_json(prop['default'])}`)"
            text = prop.get("description", "").replace("|", "\\|")
            lines.append(f"| `{name}` | {kind} | {need} | {text} |")
        for ref in nested:
            if ref in self.rendered:
                continue
            self.rendered.add(ref)
            sub = defs[ref]
            lines += ["", f"#### {ref}", ""]
            if sub.get("description"):
                lines += [_oneline(sub["description"]), ""]
            lines += self._object(sub, defs, ())
        return lines

    def _type(self, prop: Schema, defs: dict[str, Schema], nested: list[str]) -> str:
        if "$ref" in prop:
            name = prop["$ref"].rsplit("/", 1)[-1]
            target = defs[name]
            if "enum" in target:
                return "one of " + ", ".join(f"`{v}`" for v in target["enum"])
            if name not in nested:
                nested.append(name)
            return f"[{name}](#{name.lower()})"
        if "anyOf" in prop:
            return " or ".join(self._type(p, defs, nested) for p in prop["anyOf"])
        if "const" in prop:
            return f"`{_json(prop['const'])}`"
        if "enum" in prop:
            return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
        kind = prop.get("type")
        if kind == "array":
            return "list of " + self._type(prop.get("items", {}), defs, nested)
        if kind == "object":
            values = prop.get("additionalProperties")
            if isinstance(values, dict):
                return "object of string → " + self._type(values, defs, nested)
            return "object"
        if kind == "integer":
            return "integer" + _bounds(prop)
        if kind == "string":
            return _string(prop)
        if kind in {"boolean", "null"}:
            return str(kind)
        return "any JSON value"


def _bounds(prop: Schema) -> str:
    low = prop.get("minimum", prop.get("ge"))
    high = prop.get("maximum", prop.get("le"))
    if low is not None and high is not None:
        return f" {low}-{high}"
    if low is not None:
        return f" ≥ {low}"
    return ""


def _string(prop: Schema) -> str:
    if prop.get("format") == "date-time":
        return "timestamp"
    if "pattern" in prop:
        return f"string `{prop['pattern']}`"
    low, high = prop.get("minLength"), prop.get("maxLength")
    if low is not None and high is not None:
        return f"string ({low}-{high} chars)"
    if low is not None:
        return f"string (≥ {low} chars)"
    return "string"


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _oneline(text: str) -> str:
    return " ".join(text.split()).replace("``", "`")


def _pretty(payload: bytes) -> list[str]:
    text = json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    return ["```json", text, "```"]


def _transport() -> list[str]:
    lines = [
        "## Transport",
        "",
        (
            "JSON objects in UTF-8 (non-ASCII text such as Vietnamese is written as is), "
            f"QoS {QOS} on every topic, at most {MAX_PAYLOAD_BYTES} bytes per payload. "
            f"Machine ids match `{MACHINE_ID_PATTERN}`; "
            "the MQTT username of a machine is its id, "
            "so the broker ACL pins each machine to its own topics."
        ),
        "",
        "| kind | topic | retained | schema | body |",
        "|---|---|---|---|---|",
    ]
    for kind, cls in ENVELOPES.items():
        body = cls.model_fields["body"].annotation
        assert isinstance(body, type)
        retained = "yes (and the last will)" if kind.retained else "no"
        lines.append(
            f"| {kind.value} | `vend/v1/<machine_id>/{kind.value}` | {retained} | "
            f"`{kind.schema}` | [{body.__name__}](#{kind.value}) |"
        )
    lines += [
        "",
        (
            "Commands go to `vend/v1/<machine_id>/cmd/<name>`; a machine subscribes to "
            "`vend/v1/<machine_id>/cmd/+`."
        ),
        "",
        "The fleet subscribes to " + ", ".join(f"`{f}`" for f in fleet_filters()) + ".",
        (
            "Ingest workers that share the load use the MQTT 5 shared form, e.g. "
            f"`{fleet_filters((Kind.SALE,), group='ingest')[0]}`."
        ),
    ]
    return lines


def _envelope(tables: _Tables) -> list[str]:
    doc = envelope_module.__doc__ or ""
    return [
        "## Envelope",
        "",
        (
            "Every telemetry payload is one envelope. The `schema` names the body type and "
            "must match the topic's kind; the `machine_id` must match the topic's machine."
        ),
        "",
        *tables.model(Envelope, skip=("body",), all_required=True),
        "| `body` | object | yes | The body for this schema (below). |",
        "",
        *[line for part in doc.split("\n\n")[1:] for line in (_oneline(part), "")][:-1],
    ]


def _messages(tables: _Tables) -> list[str]:
    lines = ["## Messages"]
    examples = example_envelopes()
    for kind, cls in ENVELOPES.items():
        body = cls.model_fields["body"].annotation
        assert isinstance(body, type)
        assert issubclass(body, BaseModel)
        retained = "retained" if kind.retained else "not retained"
        lines += [
            "",
            f"### {kind.value}",
            "",
            (
                f"`vend/v1/<machine_id>/{kind.value}`, schema `{kind.schema}`, QoS {QOS}, "
                f"{retained}. Body: **{body.__name__}**."
            ),
            "",
            _oneline(body.__doc__ or ""),
            "",
            *tables.model(body),
            "",
            "Example:",
            "",
            *_pretty(encode(examples[kind])),
        ]
    return lines


def _commands(tables: _Tables) -> list[str]:
    lines = [
        "## Commands",
        "",
        _oneline((CommandEnvelope.__doc__ or "").strip()),
        "",
        *tables.model(CommandEnvelope, skip=("args",), all_required=True),
        "| `args` | object | yes | The command's arguments (below). |",
    ]
    examples = example_commands()
    for name, cls in COMMANDS.items():
        args = cls.model_fields["args"].annotation
        assert isinstance(args, type)
        assert issubclass(args, BaseModel)
        signed = sign(examples[name], EXAMPLE_KEY)
        table = tables.model(args)
        lines += [
            "",
            f"### {name.value}",
            "",
            f"`{_cmd_topic(name)}`. " + _oneline(cls.__doc__ or ""),
            "",
            *(table if len(table) > 2 else ["No arguments: `args` is `{}`."]),
            "",
            f"Example (signed with the test key below, for machine `{MACHINE}`):",
            "",
            *_pretty(encode(signed)),
        ]
    return lines


def _cmd_topic(name: CommandName) -> str:
    return command_topic(MACHINE, name).replace(MACHINE, "<machine_id>")


def _signing() -> list[str]:
    example = example_commands()[CommandName.PRICE_CHANGE]
    signed = sign(example, EXAMPLE_KEY)
    return [
        "## Signing a command",
        "",
        "HMAC-SHA256 with a key shared by the fleet and that one machine:",
        "",
        (
            "1. Write the command as a JSON object with every field you send except `sig` "
            "(`name` and `v` included). Timestamps are strings `YYYY-MM-DDTHH:MM:SSZ` (UTC, "
            "whole seconds); money and counts are JSON integers."
        ),
        (
            "2. Serialise it canonically: keys sorted by code point at every level, no "
            "whitespace (separators `,` and `:`), non-ASCII characters written as themselves "
            "(not `\\u` escapes), control characters escaped as JSON requires; encode as UTF-8."
        ),
        (
            "3. Compute HMAC-SHA256 of those bytes with the machine's key (at least "
            f"{signing.MIN_KEY_BYTES} bytes)."
        ),
        f"4. Set `sig` to `{signing.SIG_PREFIX}` followed by the 64 lowercase hex digits.",
        (
            "5. Publish exactly the fields you signed plus `sig`: a receiver re-serialises what "
            "it received, so a field added after signing breaks the signature."
        ),
        "",
        "Test vector (the `price_change` example above):",
        "",
        f"- key (ASCII): `{EXAMPLE_KEY.decode('ascii')}`",
        "- canonical bytes (UTF-8):",
        "",
        "```",
        signing_bytes(example).decode("utf-8"),
        "```",
        "",
        f"- sig: `{signed.sig}`",
        "",
        (
            "A machine checks, in this order, and acknowledges every command on "
            "`vend/v1/<machine_id>/ack` with the outcome:"
        ),
        "",
        "1. addressed to this machine, else `wrong_machine`;",
        "2. signature, else `bad_signature`;",
        "3. not expired (`now < expires_at`), else `expired`;",
        (
            f"4. valid for at most {_duration(signing.MAX_LIFETIME)} and issued no more than "
            f"{_duration(signing.MAX_CLOCK_SKEW)} ahead of the machine's clock, else `rejected`;"
        ),
        (
            "5. id not accepted before, else `replayed`. Accepted ids are kept until their "
            f"command expires (plus {_duration(replay.PRUNE_GRACE)}), "
            f"at most {replay.DEFAULT_CAPACITY}; "
            "a full guard refuses new commands (`rejected`) rather than forget an id."
        ),
        "",
        (
            "Then the machine applies the command and acks `applied`, `deferred` (e.g. a "
            "planogram for the next service visit), `rejected` (authentic but impossible, "
            "reason in `detail`) or `failed`."
        ),
    ]


def _compatibility() -> list[str]:
    return [
        "## Compatibility",
        "",
        (
            "- Readers ignore fields they do not know: a newer minor revision adds optional "
            "fields and old readers keep working. Commands keep unknown fields so the "
            "signature still covers them."
        ),
        (
            "- An unknown alarm `code` or service `action` is read as `other` (the alarm's "
            "original code is kept at the front of `detail`)."
        ),
        (
            "- A breaking change (field removed, renamed, retyped or made required) bumps the "
            "major version `v` and the schema; readers reject a major version they do not "
            "know, with a reason. A new contract generation moves to `vend/v2/...` topics so "
            "both can run side by side."
        ),
        (
            "- Money is always an integer of minor units next to an ISO 4217 code; a float, "
            "even `12000.0`, is rejected."
        ),
        (
            "- Timestamps must carry a zone; they are normalised to UTC. A naive timestamp is "
            "rejected."
        ),
        (
            "- Delivery is at least once: consumers deduplicate on `msg_id` "
            "(`(machine_id, seq)`) and detect loss by gaps in `seq`; a `resync` command "
            "asks a machine to re-send."
        ),
    ]


def build_document() -> str:
    tables = _Tables()
    parts = [
        [
            "# vendfleet MQTT contract, v1",
            "",
            (
                "<!-- Generated from protocols/telemetry by scripts/gen-telemetry-doc. "
                "Do not edit by hand. -->"
            ),
            "",
            "The topics and JSON payloads a vending machine and the fleet service exchange.",
        ],
        _transport(),
        _envelope(tables),
        _messages(tables),
        _commands(tables),
        _signing(),
        _compatibility(),
    ]
    return "\n\n".join("\n".join(part) for part in parts) + "\n"
