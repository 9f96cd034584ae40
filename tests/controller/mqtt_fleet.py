"""A test fleet: subscribes to one machine's topics on a real broker and decodes what arrives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocols.telemetry import Kind, TelemetryEnvelope, decode
from tests.support.servers import Broker


@dataclass
class Received:
    envelopes: list[TelemetryEnvelope] = field(default_factory=list)
    retained: list[bool] = field(default_factory=list)

    def of(self, kind: Kind) -> list[TelemetryEnvelope]:
        return [e for e in self.envelopes if e.KIND is kind]

    def events(self) -> list[TelemetryEnvelope]:
        return [e for e in self.envelopes if e.KIND is not Kind.STATUS]


@contextlib.asynccontextmanager
async def fleet(
    broker: Broker, machine_id: str, *, identifier: str | None = None
) -> AsyncIterator[Received]:
    """Listen to ``vend/v1/<machine_id>/#`` as user fleet. With ``identifier`` the session
    is persistent: what is published while this fleet is away waits for it."""
    received = Received()
    properties = None
    if identifier is not None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 600
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username="fleet",
        password=broker.users["fleet"],
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=identifier is None,
        properties=properties,
    ) as client:
        await client.subscribe(f"vend/v1/{machine_id}/#", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                if "/cmd/" in message.topic.value:
                    continue
                assert isinstance(message.payload, bytes)
                received.envelopes.append(decode(message.topic.value, message.payload))
                received.retained.append(bool(message.retain))

        task = asyncio.create_task(collect())
        try:
            yield received
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


async def publish(broker: Broker, topic: str, payload: bytes) -> None:
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username="fleet",
        password=broker.users["fleet"],
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as client:
        await client.publish(topic, payload, qos=1)


async def eventually(check: Callable[[], object], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        await asyncio.sleep(0.05)
