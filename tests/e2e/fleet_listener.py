"""A blocking test fleet for whole-machine tests: paho on its own network thread, so the
test can wait on the machine's panel and on what reached the broker at the same time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocols.telemetry import (
    AckEnvelope,
    Command,
    Kind,
    TelemetryEnvelope,
    command_topic,
    decode,
    encode,
    sign,
)
from tests.support.servers import Broker


class FleetListener:
    """Subscribed to ``vend/v1/<machine_id>/#`` as user fleet; decodes every message."""

    def __init__(self, broker: Broker, machine_id: str, *, session: str | None = None) -> None:
        self.broker = broker
        self.machine_id = machine_id
        self.envelopes: list[TelemetryEnvelope] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=session or "",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set("fleet", broker.users["fleet"])
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if session is not None:
            properties.SessionExpiryInterval = 600
        self.client.connect(
            broker.host, broker.port, clean_start=session is None, properties=properties
        )
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("fleet listener could not subscribe")

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        client.subscribe(f"vend/v1/{self.machine_id}/#", qos=1)

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if "/cmd/" in msg.topic:
            return
        envelope = decode(msg.topic, bytes(msg.payload))
        with self._lock:
            self.envelopes.append(envelope)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # --- reading --------------------------------------------------------------------------

    def all(self) -> list[TelemetryEnvelope]:
        with self._lock:
            return list(self.envelopes)

    def of(self, kind: Kind) -> list[Any]:
        return [e for e in self.all() if e.KIND is kind]

    def events(self) -> list[TelemetryEnvelope]:
        return [e for e in self.all() if e.KIND is not Kind.STATUS]

    def wait(self, what: Callable[[], Any], timeout: float = 20.0, message: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = what()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {message or what}")

    def acks(self, command_id: str) -> list[str]:
        """Outcomes acknowledged for one command, deduplicated by seq as the fleet does."""
        seen: dict[int, str] = {}
        for e in self.of(Kind.ACK):
            if isinstance(e, AckEnvelope) and e.body.command_id == command_id:
                seen.setdefault(e.seq, e.body.outcome.value)
        return list(seen.values())

    def wait_ack(self, command_id: str, count: int = 1) -> list[str]:
        found: list[str] = self.wait(
            lambda: len(a := self.acks(command_id)) >= count and a, message=f"ack {command_id}"
        )
        return found

    # --- commanding -----------------------------------------------------------------------

    def send(self, command: Command, key: bytes | None) -> None:
        signed = sign(command, key) if key is not None else command
        info = self.client.publish(
            command_topic(self.machine_id, command.name), encode(signed), qos=1
        )
        info.wait_for_publish(10)


def command_times(
    valid_for: timedelta = timedelta(minutes=5), issued_ago: timedelta = timedelta(0)
) -> dict[str, datetime]:
    issued = datetime.now(UTC).replace(microsecond=0) - issued_ago
    return {"issued_at": issued, "expires_at": issued + valid_for}
