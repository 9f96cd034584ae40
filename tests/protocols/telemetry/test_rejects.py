"""Malformed payloads are refused through `decode` with a reason that names the problem."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.telemetry import Kind, TelemetryError, decode, decode_command, encode, topic_for
from protocols.telemetry.codec import MAX_PAYLOAD_BYTES
from protocols.telemetry.examples import MACHINE, example_envelopes

SALE_TOPIC = topic_for(MACHINE, Kind.SALE)


def sale_document() -> dict[str, Any]:
    data = json.loads(encode(example_envelopes()[Kind.SALE]))
    assert isinstance(data, dict)
    return data


def reason_for(document: Any, topic: str = SALE_TOPIC) -> str:
    payload = document if isinstance(document, bytes) else json.dumps(document).encode()
    with pytest.raises(TelemetryError) as caught:
        decode(topic, payload)
    return caught.value.reason


def with_body(**changes: Any) -> dict[str, Any]:
    data = sale_document()
    data["body"].update(changes)
    return data


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", "not JSON"),
        (b"sale", "not JSON"),
        (b'{"schema": "vend.sale"', "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b"42", "must be a JSON object, got int"),
        (b"{}", "missing field 'schema'"),
        (b"[" * 5000, "not JSON"),
    ],
)
def test_not_an_envelope(payload: bytes, expected: str) -> None:
    assert expected in reason_for(payload)


@pytest.mark.parametrize("price", [12000.5, 12000.0, 1e400])
def test_float_money_is_refused_by_name(price: float) -> None:
    data = sale_document()
    text = json.dumps(data).replace('"price": 12000', f'"price": {price!r}'.replace("inf", "1e400"))
    reason = reason_for(text.encode())
    assert "body.price" in reason
    assert "float" in reason


def test_money_as_a_string_is_refused() -> None:
    reason = reason_for(with_body(price="12000"))
    assert "body.price" in reason
    assert "valid integer" in reason


def test_negative_money_is_refused() -> None:
    assert "body.price" in reason_for(with_body(price=-1))


def test_naive_timestamp_is_refused() -> None:
    data = sale_document()
    data["ts"] = "2025-03-14T02:30:05"
    reason = reason_for(data)
    assert reason.startswith("invalid vend.sale: ts:")
    assert "timezone" in reason


def test_not_a_timestamp_is_refused() -> None:
    data = sale_document()
    data["ts"] = "yesterday"
    assert "ts:" in reason_for(data)


@pytest.mark.parametrize("field", ["machine_id", "boot_id", "seq", "msg_id", "ts", "body"])
def test_missing_envelope_fields_are_named(field: str) -> None:
    data = sale_document()
    del data[field]
    reason = reason_for(data)
    assert f"{field}: Field required" in reason


def test_missing_version_is_named() -> None:
    data = sale_document()
    del data["v"]
    assert "missing field 'v'" in reason_for(data)


@pytest.mark.parametrize("field", ["selection", "price", "currency", "method"])
def test_missing_body_fields_are_named(field: str) -> None:
    data = sale_document()
    del data["body"][field]
    assert f"body.{field}: Field required" in reason_for(data)


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"method": "bitcoin"}, "body.method"),
        ({"currency": "vnd"}, "body.currency"),
        ({"settled": "yes"}, "body.settled"),
        ({"selection": ""}, "body.selection"),
        (
            {"cash": {"coins": [{"value": 1000, "count": 1.5, "to_tube": True}]}},
            "body.cash.coins.0",
        ),
    ],
)
def test_wrong_body_types_are_named(changes: dict[str, Any], where: str) -> None:
    assert where in reason_for(with_body(**changes))


def test_booleans_are_not_numbers() -> None:
    data = sale_document()
    data["seq"] = True
    assert "seq:" in reason_for(data)


def test_a_machine_publishing_as_another_machine_is_refused() -> None:
    reason = reason_for(sale_document(), topic_for("vm-other", Kind.SALE))
    assert "does not match topic machine 'vm-other'" in reason


def test_inconsistent_msg_id_is_refused() -> None:
    data = sale_document()
    data["msg_id"] = f"{MACHINE}:1"
    assert "msg_id" in reason_for(data)


def test_unknown_schema_is_refused() -> None:
    data = sale_document()
    data["schema"] = "vend.audit"
    assert "unknown schema 'vend.audit'" in reason_for(data)


def test_schema_must_match_the_topic_kind() -> None:
    reason = reason_for(sale_document(), topic_for(MACHINE, Kind.STOCK))
    assert "'vend.sale' does not belong on topic kind 'stock'" in reason


@pytest.mark.parametrize("version", [2, 0, 99])
def test_unknown_major_version_is_refused(version: int) -> None:
    data = sale_document()
    data["v"] = version
    assert f"unsupported major version v={version}" in reason_for(data)


def test_version_must_be_an_integer() -> None:
    data = sale_document()
    data["v"] = "1"
    assert "v:" in reason_for(data)


def test_oversized_payload_is_refused_before_parsing() -> None:
    payload = b" " * (MAX_PAYLOAD_BYTES + 1)
    assert "exceeds" in reason_for(payload)


def test_command_and_telemetry_topics_are_not_mixed_up() -> None:
    payload = encode(example_envelopes()[Kind.SALE])
    with pytest.raises(TelemetryError, match="command topic"):
        decode(f"vend/v1/{MACHINE}/cmd/reboot", payload)
    with pytest.raises(TelemetryError, match="not a command topic"):
        decode_command(SALE_TOPIC, payload)


def test_a_non_bytes_payload_is_refused() -> None:
    with pytest.raises(TelemetryError, match="payload must be bytes"):
        decode(SALE_TOPIC, "{}")  # type: ignore[arg-type]


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_our_error(payload: bytes) -> None:
    with contextlib.suppress(TelemetryError):
        decode(SALE_TOPIC, payload)
    with contextlib.suppress(TelemetryError):
        decode_command(f"vend/v1/{MACHINE}/cmd/price_change", payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200)
@given(st.data())
def test_mutated_valid_payloads_decode_or_raise_only_our_error(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(list(Kind)))
    document = json.loads(encode(example_envelopes()[kind]))
    target = document if data.draw(st.booleans()) else document["body"]
    key = data.draw(st.sampled_from([*target.keys(), "extra"]))
    target[key] = data.draw(json_values)
    payload = json.dumps(document).encode()
    try:
        decoded = decode(topic_for(MACHINE, kind), payload)
    except TelemetryError as exc:
        reason = exc.reason
        assert reason
        return
    assert decoded.KIND is kind
