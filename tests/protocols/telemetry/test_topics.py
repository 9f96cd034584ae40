from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.telemetry import (
    CommandName,
    Kind,
    TelemetryError,
    command_filter,
    command_topic,
    fleet_filters,
    parse_topic,
    topic_for,
    validate_machine_id,
)
from tests.protocols.telemetry.strategies import machine_ids


@settings(max_examples=100)
@given(machine_ids, st.sampled_from(Kind))
def test_telemetry_topics_parse_back(machine: str, kind: Kind) -> None:
    topic = topic_for(machine, kind)
    assert topic == f"vend/v1/{machine}/{kind.value}"
    assert parse_topic(topic) == (machine, kind)


@settings(max_examples=100)
@given(machine_ids, st.sampled_from(CommandName))
def test_command_topics_parse_back(machine: str, name: CommandName) -> None:
    topic = command_topic(machine, name)
    assert topic == f"vend/v1/{machine}/cmd/{name.value}"
    parsed = parse_topic(topic)
    assert parsed.machine_id == machine
    assert parsed.subject is name


def test_only_status_is_retained_and_schemas_follow_the_kind() -> None:
    assert [kind for kind in Kind if kind.retained] == [Kind.STATUS]
    assert Kind.SALE.schema == "vend.sale"
    assert Kind.ACK.schema == "vend.ack"


def test_fleet_filters_plain_and_shared() -> None:
    plain = fleet_filters()
    assert "vend/v1/+/sale" in plain
    assert len(plain) == len(Kind)
    shared = fleet_filters((Kind.STOCK, Kind.SALE), group="ingest")
    assert shared == ["$share/ingest/vend/v1/+/stock", "$share/ingest/vend/v1/+/sale"]
    assert command_filter("vm-1") == "vend/v1/vm-1/cmd/+"


@pytest.mark.parametrize("group", ["", "a/b", "a+", "#", "$share"])
def test_bad_share_groups_are_refused(group: str) -> None:
    with pytest.raises(TelemetryError, match="group"):
        fleet_filters(group=group)


@pytest.mark.parametrize(
    "machine", ["", "+", "#", "vm/1", "vm+1", "-vm", ".vm", "vm 1", "v" * 65, "máy-1"]
)
def test_bad_machine_ids_are_refused(machine: str) -> None:
    with pytest.raises(TelemetryError, match="invalid machine id"):
        validate_machine_id(machine)
    with pytest.raises(TelemetryError, match="invalid machine id"):
        topic_for(machine, Kind.SALE)


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("spBv1.0/g/NDATA/n", "foreign topic"),
        ("vend", "foreign topic"),
        ("vend/v1/vm-1", "foreign topic"),
        ("vend/v2/vm-1/sale", "this build reads v1"),
        ("vend/v1/+/sale", "invalid machine id"),
        ("vend/v1/vm-1/sales", "unknown kind 'sales'"),
        ("vend/v1/vm-1/sale/extra", "extra levels"),
        ("vend/v1/vm-1/cmd", "expected .../cmd/<name>"),
        ("vend/v1/vm-1/cmd/open_door", "unknown command 'open_door'"),
        ("vend/v1/vm-1/cmd/reboot/now", "expected .../cmd/<name>"),
    ],
)
def test_foreign_and_malformed_topics_are_named(topic: str, reason: str) -> None:
    with pytest.raises(TelemetryError, match=None) as caught:
        parse_topic(topic)
    assert reason in caught.value.reason


def test_unknown_kind_and_command_names_are_refused_when_building() -> None:
    with pytest.raises(TelemetryError, match="unknown kind"):
        topic_for("vm-1", "audit")
    with pytest.raises(TelemetryError, match="unknown command"):
        command_topic("vm-1", "open_door")


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_arbitrary_topics_parse_or_raise_our_error(topic: str) -> None:
    try:
        machine, _ = parse_topic(topic)
    except TelemetryError:
        return
    assert validate_machine_id(machine) == machine
