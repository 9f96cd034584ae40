"""docs/telemetry.md is the generated text, and what it shows works on the wire."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

from pydantic import BaseModel

from protocols.telemetry import (
    CommandName,
    Kind,
    ReplayGuard,
    decode,
    decode_command,
    verify,
)
from protocols.telemetry.commands import COMMANDS
from protocols.telemetry.envelope import ENVELOPES
from protocols.telemetry.examples import AT, EXAMPLE_KEY, MACHINE
from protocols.telemetry.schema_doc import build_document

DOC = Path(__file__).resolve().parents[3] / "docs" / "telemetry.md"


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    rest = text[start + len(heading) + 2 :]
    end = re.search(r"\n#{2,3} ", rest)
    return rest[: end.start()] if end else rest


def json_blocks(text: str) -> list[str]:
    return re.findall(r"```json\n(.*?)\n```", text, flags=re.DOTALL)


def test_the_committed_document_is_up_to_date() -> None:
    # If this fails: run scripts/gen-telemetry-doc and commit docs/telemetry.md.
    assert DOC.read_text(encoding="utf-8") == build_document()


def test_every_body_field_is_documented_in_its_section() -> None:
    text = build_document()
    for kind, cls in ENVELOPES.items():
        part = section(text, f"### {kind.value}")
        body = cls.model_fields["body"].annotation
        assert isinstance(body, type)
        assert issubclass(body, BaseModel)
        for name in body.model_fields:
            assert f"| `{name}` |" in part, (kind, name)


def test_every_command_and_its_arguments_are_documented() -> None:
    text = build_document()
    for name, cls in COMMANDS.items():
        part = section(text, f"### {name.value}")
        args = cls.model_fields["args"].annotation
        assert isinstance(args, type)
        assert issubclass(args, BaseModel)
        for field in args.model_fields:
            assert f"| `{field}` |" in part, (name, field)


def test_message_examples_in_the_document_decode() -> None:
    text = build_document()
    for kind in Kind:
        (example,) = json_blocks(section(text, f"### {kind.value}"))
        envelope = decode(f"vend/v1/{MACHINE}/{kind.value}", example.encode())
        assert envelope.KIND is kind


def test_command_examples_in_the_document_verify_with_the_published_key() -> None:
    text = build_document()
    for name in CommandName:
        (example,) = json_blocks(section(text, f"### {name.value}"))
        cmd = decode_command(f"vend/v1/{MACHINE}/cmd/{name.value}", example.encode())
        verdict = verify(cmd, key=EXAMPLE_KEY, machine_id=MACHINE, now=AT, guard=ReplayGuard())
        assert verdict.ok, (name, verdict.reason)


def test_the_published_test_vector_is_plain_hmac_sha256() -> None:
    part = section(build_document(), "## Signing a command")
    key = re.search(r"key \(ASCII\): `([^`]+)`", part)
    canonical = re.search(r"```\n(\{.*?\})\n```", part, flags=re.DOTALL)
    sig = re.search(r"sig: `hmac-sha256:([0-9a-f]{64})`", part)
    assert key is not None
    assert canonical is not None
    assert sig is not None
    document = json.loads(canonical.group(1))
    assert "sig" not in document
    recanonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert recanonical == canonical.group(1)
    mac = hmac.new(key.group(1).encode(), canonical.group(1).encode(), hashlib.sha256)
    assert mac.hexdigest() == sig.group(1)
