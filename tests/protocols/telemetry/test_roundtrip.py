from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from protocols.dex import parse_dex_bytes, summarize
from protocols.telemetry import (
    AlarmCode,
    DexReadBody,
    Kind,
    SaleBody,
    ServiceAction,
    StatusBody,
    TelemetryEnvelope,
    TelemetryError,
    decode,
    encode,
    kind_of,
    make_envelope,
    topic_for,
)
from protocols.telemetry.examples import example_envelopes
from tests.protocols.telemetry.strategies import envelopes

DEX_DATA = Path(__file__).resolve().parents[1] / "dex" / "data"
AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def roundtrip(envelope: TelemetryEnvelope) -> TelemetryEnvelope:
    return decode(topic_for(envelope.machine_id, envelope.KIND), encode(envelope))


def wire(envelope: TelemetryEnvelope) -> dict[str, Any]:
    data = json.loads(encode(envelope))
    assert isinstance(data, dict)
    return data


def sale(**changes: Any) -> SaleBody:
    fields: dict[str, Any] = {
        "vend_id": 5,
        "selection": "A1",
        "product": "Trà xanh Không Độ",
        "price": 12000,
        "currency": "VND",
        "method": "cash",
    }
    return SaleBody(**(fields | changes))


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_survives_encode_decode(kind: Kind) -> None:
    original = example_envelopes()[kind]
    decoded = roundtrip(original)
    assert decoded == original
    assert decoded.KIND is kind
    assert type(decoded.body) is type(original.body)


@settings(max_examples=150, deadline=None)
@given(envelopes())
def test_random_valid_envelopes_survive_encode_decode(envelope: TelemetryEnvelope) -> None:
    assert roundtrip(envelope) == envelope


def test_wire_form_is_compact_utf8_and_keeps_vietnamese_unescaped() -> None:
    payload = encode(make_envelope(sale(), machine_id="vm-1", boot_id=1, seq=9, ts=AT))
    assert "Trà xanh Không Độ".encode() in payload
    assert b"\\u" not in payload
    compact = json.dumps(json.loads(payload), separators=(",", ":"), ensure_ascii=False)
    assert payload == compact.encode()


def test_timestamps_are_normalised_to_utc_and_written_with_z() -> None:
    local = datetime(2025, 1, 2, 10, 4, 5, tzinfo=timezone(timedelta(hours=7)))
    envelope = make_envelope(sale(), machine_id="vm-1", boot_id=1, seq=9, ts=local)
    assert wire(envelope)["ts"] == "2025-01-02T03:04:05Z"
    decoded = roundtrip(envelope)
    assert decoded.ts == local
    assert decoded.ts.utcoffset() == timedelta(0)


def test_make_envelope_picks_the_schema_and_derives_msg_id() -> None:
    envelope = make_envelope(sale(), machine_id="vm-7", boot_id=3, seq=41, ts=AT)
    assert kind_of(sale()) is Kind.SALE
    assert wire(envelope)["schema"] == "vend.sale"
    assert envelope.msg_id == "vm-7:41"
    status = StatusBody(online=False, firmware="f", config_version="c", started_at=AT)
    will = make_envelope(status, machine_id="vm-7", boot_id=3, seq=0, ts=AT)
    assert will.msg_id == "vm-7:status:3:0"
    assert roundtrip(will) == will


def test_events_need_a_sequence_number_from_one() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        make_envelope(sale(), machine_id="vm-1", boot_id=1, seq=0, ts=AT)


def test_unknown_fields_from_a_newer_minor_version_are_ignored() -> None:
    original = example_envelopes()[Kind.SALE]
    data = wire(original)
    data["region"] = "south"
    data["body"]["loyalty_points"] = 12
    data["body"]["cash"]["coins"][0]["mint_year"] = 2019
    decoded = decode(topic_for(original.machine_id, Kind.SALE), json.dumps(data).encode())
    assert decoded == original


def test_unknown_alarm_code_reads_as_other_and_keeps_the_code() -> None:
    original = example_envelopes()[Kind.ALARM]
    data = wire(original)
    data["body"]["code"] = "coin_return_lever_stuck"
    data["body"]["detail"] = "lever"
    decoded = decode(topic_for(original.machine_id, Kind.ALARM), json.dumps(data).encode())
    assert decoded.body.code is AlarmCode.OTHER  # type: ignore[union-attr]
    assert decoded.body.detail == "coin_return_lever_stuck: lever"  # type: ignore[union-attr]


def test_unknown_service_action_reads_as_other() -> None:
    original = example_envelopes()[Kind.SERVICE]
    data = wire(original)
    data["body"]["actions"][0]["action"] = "sanitise"
    decoded = decode(topic_for(original.machine_id, Kind.SERVICE), json.dumps(data).encode())
    actions = decoded.body.actions  # type: ignore[union-attr]
    assert actions[0].action is ServiceAction.OTHER
    assert actions[1].action is ServiceAction.COLLECT


@pytest.mark.parametrize("name", ["coffee_lf.dex", "jofemar_sentinels_bad_crc.dex"])
def test_a_real_dex_summary_fits_the_dex_body(name: str) -> None:
    raw = (DEX_DATA / name).read_bytes()
    summary = summarize(parse_dex_bytes(raw))
    body = DexReadBody(raw=raw.decode("latin-1"), summary=summary, reset=True, read_at=AT)
    envelope = make_envelope(body, machine_id="vm-1", boot_id=1, seq=3, ts=AT)
    decoded = roundtrip(envelope)
    assert decoded == envelope
    on_wire = wire(envelope)["body"]["summary"]
    assert on_wire == json.loads(json.dumps(summary))


def test_money_helpers_give_money_values() -> None:
    assert sale(price=15000).price_money.minor == 15000
    assert sale(currency="EUR").price_money.currency == "EUR"


def test_duplicate_selection_codes_in_stock_are_refused() -> None:
    original = example_envelopes()[Kind.STOCK]
    data = wire(original)
    data["body"]["selections"].append(dict(data["body"]["selections"][0]))
    with pytest.raises(TelemetryError, match="duplicate selection codes"):
        decode(topic_for(original.machine_id, Kind.STOCK), json.dumps(data).encode())
