"""Signed commands verify; any change, wrong key, expiry, replay or wrong machine does not."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings

from protocols.telemetry import (
    AckOutcome,
    Command,
    CommandName,
    ReplayGuard,
    TelemetryError,
    Verdict,
    VerdictOutcome,
    command_topic,
    decode_command,
    encode,
    sign,
    verify,
)
from protocols.telemetry.examples import AT, EXAMPLE_KEY, MACHINE, example_commands
from tests.protocols.telemetry.strategies import commands

KEY = b"k" * 32
OTHER_KEY = b"j" * 32


def received(cmd: Command) -> Command:
    """What the machine gets after the command crossed the broker."""
    return decode_command(command_topic(cmd.machine_id, cmd.name), encode(cmd))


def check(
    cmd: Command, *, now: datetime = AT, key: bytes = KEY, guard: ReplayGuard | None = None
) -> Verdict:
    return verify(
        cmd,
        key=key,
        machine_id=MACHINE,
        now=now,
        guard=guard if guard is not None else ReplayGuard(),
    )


def example(name: CommandName = CommandName.PRICE_CHANGE, key: bytes = KEY) -> Command:
    return sign(example_commands()[name], key)


@settings(max_examples=100, deadline=None)
@given(commands(machine_id=MACHINE))
def test_signed_commands_verify_after_crossing_the_wire(cmd: Command) -> None:
    signed = sign(cmd, KEY)
    arrived = received(signed)
    verdict = check(arrived, now=cmd.issued_at)
    assert verdict.ok, verdict.reason
    assert verdict.ack_outcome is None


@pytest.mark.parametrize("name", list(CommandName))
def test_every_command_kind_signs_and_verifies(name: CommandName) -> None:
    assert check(received(example(name))).ok


def leaves(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(document, dict):
        return [p for key, value in document.items() for p in leaves(value, (*path, key))]
    if isinstance(document, list):
        return [p for i, value in enumerate(document) for p in leaves(value, (*path, i))]
    return [path]


def changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    swaps = {"VND": "USD", "now": "next_service", "next_service": "now"}
    if value in swaps:  # values with a closed set of spellings
        return swaps[value]
    if value.endswith("Z"):  # a timestamp: one second later
        moment = datetime.fromisoformat(value) + timedelta(seconds=1)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value + "x" if value.isascii() else value + "ạ"


@pytest.mark.parametrize("name", list(CommandName))
def test_any_change_to_any_field_breaks_the_signature(name: CommandName) -> None:
    signed = example(name)
    document = json.loads(encode(signed))
    tried = 0
    for path in leaves(document):
        if path in {("sig",), ("name",), ("v",)}:
            continue  # the topic / version checks refuse these before the signature
        tampered = json.loads(json.dumps(document))
        target = tampered
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = changed(target[path[-1]])
        machine = tampered["machine_id"]
        cmd = decode_command(command_topic(machine, name), json.dumps(tampered).encode())
        verdict = verify(cmd, key=KEY, machine_id=machine, now=AT, guard=ReplayGuard())
        assert verdict.outcome is VerdictOutcome.BAD_SIGNATURE, path
        tried += 1
    assert tried >= 4  # id, machine_id, issued_at, expires_at at least


def test_added_or_removed_fields_break_the_signature() -> None:
    signed = example(CommandName.SELECTION_SERVICE)
    topic = command_topic(MACHINE, CommandName.SELECTION_SERVICE)
    for edit in ("add_top", "add_args", "drop_reason"):
        document = json.loads(encode(signed))
        if edit == "add_top":
            document["priority"] = 1
        elif edit == "add_args":
            document["args"]["note"] = "x"
        else:
            del document["args"]["reason"]
        cmd = decode_command(topic, json.dumps(document).encode())
        assert check(cmd).outcome is VerdictOutcome.BAD_SIGNATURE, edit


def test_wrong_key_or_malformed_signature_is_a_bad_signature() -> None:
    signed = example()
    assert check(signed, key=OTHER_KEY).outcome is VerdictOutcome.BAD_SIGNATURE
    digest = signed.sig.removeprefix("hmac-sha256:")
    for sig in ("", digest, "ed25519:" + digest, signed.sig.upper(), signed.sig[:-1] + "0"):
        if sig == signed.sig:
            continue
        verdict = check(signed.model_copy(update={"sig": sig}))
        assert verdict.outcome is VerdictOutcome.BAD_SIGNATURE, sig
        assert verdict.ack_outcome is AckOutcome.BAD_SIGNATURE


def test_a_third_party_following_the_published_recipe_is_accepted() -> None:
    # Signed here with nothing but json + hmac, as another implementation would; it also
    # carries a field this build does not know, which the signature covers.
    document = {
        "id": "7d1f9c2e-0000-4000-8000-000000000001",
        "name": "machine_service",
        "v": 1,
        "machine_id": MACHINE,
        "issued_at": "2025-03-14T02:30:05Z",
        "expires_at": "2025-03-14T02:40:05Z",
        "args": {"in_service": False, "reason": "Bảo trì định kỳ"},
        "operator": "Phạm Thị Lan",
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    mac = hmac.new(KEY, canonical.encode("utf-8"), hashlib.sha256).hexdigest()
    payload = json.dumps({**document, "sig": f"hmac-sha256:{mac}"}).encode()
    cmd = decode_command(command_topic(MACHINE, "machine_service"), payload)
    assert check(cmd).ok


def test_commands_only_accept_the_canonical_timestamp_spelling() -> None:
    document = json.loads(encode(example()))
    document["issued_at"] = "2025-03-14T09:30:05+07:00"
    with pytest.raises(TelemetryError, match="YYYY-MM-DDTHH:MM:SSZ"):
        decode_command(command_topic(MACHINE, "price_change"), json.dumps(document).encode())


def test_missing_signature_is_refused_by_decode() -> None:
    document = json.loads(encode(example_commands()[CommandName.REBOOT]))
    with pytest.raises(TelemetryError, match="missing field 'sig'"):
        decode_command(command_topic(MACHINE, "reboot"), json.dumps(document).encode())


def test_expired_commands_are_refused() -> None:
    signed = example()
    assert check(signed, now=signed.expires_at).outcome is VerdictOutcome.EXPIRED
    late = check(signed, now=signed.expires_at + timedelta(days=1))
    assert late.outcome is VerdictOutcome.EXPIRED
    assert check(signed, now=signed.expires_at - timedelta(seconds=1)).ok


def test_the_same_id_twice_is_a_replay() -> None:
    guard = ReplayGuard()
    signed = example()
    assert check(signed, guard=guard).ok
    again = check(signed, now=AT + timedelta(minutes=5), guard=guard)
    assert again.outcome is VerdictOutcome.REPLAYED
    assert again.ack_outcome is AckOutcome.REPLAYED


def test_refused_commands_do_not_use_up_their_id() -> None:
    guard = ReplayGuard()
    signed = example()
    forged = signed.model_copy(update={"sig": "hmac-sha256:" + "0" * 64})
    assert check(forged, guard=guard).outcome is VerdictOutcome.BAD_SIGNATURE
    assert len(guard) == 0
    assert check(signed, guard=guard).ok


def test_a_command_for_another_machine_is_refused() -> None:
    signed = sign(
        example_commands()[CommandName.REBOOT].model_copy(update={"machine_id": "vm-x"}), KEY
    )
    verdict = check(signed)
    assert verdict.outcome is VerdictOutcome.WRONG_MACHINE
    assert "vm-x" in verdict.reason


def test_overlong_lifetime_and_future_issue_are_rejected() -> None:
    base = example_commands()[CommandName.PRICE_CHANGE]
    forever = sign(base.model_copy(update={"expires_at": AT + timedelta(days=30)}), KEY)
    assert check(forever).outcome is VerdictOutcome.REJECTED
    assert check(example(), now=AT - timedelta(minutes=5)).ok  # small clock skew is fine
    ahead = check(example(), now=AT - timedelta(hours=2))
    assert ahead.outcome is VerdictOutcome.REJECTED
    assert "ahead of this machine's clock" in ahead.reason


def test_a_full_guard_refuses_rather_than_forgets() -> None:
    guard = ReplayGuard(capacity=1)
    assert check(example(CommandName.REBOOT), guard=guard).ok
    verdict = check(example(CommandName.RESYNC), guard=guard)
    assert verdict.outcome is VerdictOutcome.REJECTED
    assert "full" in verdict.reason
    # Once the first command's expiry has passed, there is room again.
    later = AT + timedelta(hours=1, minutes=11)
    fresh = sign(
        example_commands()[CommandName.RESYNC].model_copy(
            update={"issued_at": later, "expires_at": later + timedelta(hours=1)}
        ),
        KEY,
    )
    assert check(fresh, now=later, guard=guard).ok


def test_command_time_rules() -> None:
    base = example_commands()[CommandName.REBOOT]
    document = base.wire_document()
    with pytest.raises(ValueError, match="later than issued_at"):
        type(base).model_validate({**document, "expires_at": document["issued_at"]})
    with pytest.raises(ValueError, match="whole number of seconds"):
        type(base).model_validate({**document, "issued_at": AT.replace(microsecond=5)})


def test_bad_keys_and_naive_clocks_are_programming_errors() -> None:
    with pytest.raises(TelemetryError, match="at least 16 bytes"):
        sign(example_commands()[CommandName.REBOOT], b"short")
    with pytest.raises(TelemetryError, match="at least 16 bytes"):
        check(example(), key=b"short")
    with pytest.raises(TelemetryError, match="timezone-aware"):
        check(example(), now=datetime(2025, 3, 14, 2, 30))  # noqa: DTZ001


def test_signature_does_not_depend_on_the_clock_zone_of_the_signer() -> None:
    plain = example_commands()[CommandName.REBOOT]
    hanoi = timezone(timedelta(hours=7))
    local = type(plain).model_validate({**plain.wire_document(), "issued_at": AT.astimezone(hanoi)})
    assert local.issued_at.utcoffset() == timedelta(0)
    assert sign(plain, EXAMPLE_KEY).sig == sign(local, EXAMPLE_KEY).sig
