"""The fleet's one door to MQTT (the only module in fleet/ that imports aiomqtt).

What it adds to aiomqtt 2.x:

* broker URLs ``mqtt://user:password@host:port``;
* MQTT 5 first, falling back to 3.1.1 when the broker refuses v5 (amqtt, the embedded
  broker, is 3.1.1 only);
* a persistent session (fixed client id, no clean start, session expiry under v5) so
  messages published while the service is down or reconnecting wait in the broker;
* acknowledgement after the commit: incoming QoS 1 messages are PUBACKed only when the
  caller says so (:meth:`MqttLink.ack`), so a message the service received but never
  stored is redelivered after a crash or a reconnect. aiomqtt 2 has no public switch for
  this; paho's ``manual_ack`` is set on the client it wraps (aiomqtt 3 makes it public);
* our own error types, so nothing else in fleet/ needs aiomqtt's.

There is no reconnect here: aiomqtt 2 has none, and the service's loop owns it
(:class:`Backoff`).
"""

from __future__ import annotations

import contextlib
import enum
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt
from aiomqtt import ProtocolVersion
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

DEFAULT_PORT = 1883
SESSION_EXPIRY_S = 3600  # how long the broker keeps our queue while we are away
RECEIVE_MAXIMUM = 1000  # unacknowledged messages the broker may have out to us (v5)
_UNSUPPORTED_PROTOCOL = 1  # CONNACK return code under 3.1.1 (v5 reason code 132)


class BrokerError(Exception):
    """The broker connection failed or was lost."""


class BrokerUnreachableError(BrokerError):
    """No broker answered (or it refused us) when connecting."""


class BrokerUrlError(ValueError):
    """A broker URL we cannot use."""


class Protocol(enum.StrEnum):
    AUTO = "auto"  # v5, then 3.1.1 if the broker refuses v5
    V5 = "5"
    V311 = "3.1.1"


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise BrokerUrlError(f"bad broker URL {url!r}: {exc}") from None
        if parts.scheme not in {"mqtt", "tcp"}:
            raise BrokerUrlError(
                f"bad broker URL {url!r}: expected mqtt://[user:password@]host[:port]"
            )
        if not parts.hostname:
            raise BrokerUrlError(f"bad broker URL {url!r}: no host")
        if parts.path not in {"", "/"}:
            raise BrokerUrlError(f"bad broker URL {url!r}: unexpected path {parts.path!r}")
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORT,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def __str__(self) -> str:  # never shows the password
        user = f"{self.username}@" if self.username else ""
        return f"mqtt://{user}{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int


class MqttLink:
    """One live connection. Not reusable after its ``connect`` block ends."""

    def __init__(self, client: aiomqtt.Client, protocol: ProtocolVersion) -> None:
        self._client = client
        self.protocol = protocol
        client.pending_calls_threshold = 1000  # our publishes are bounded by the caller

    @property
    def shared_subscriptions(self) -> bool:
        return self.protocol is ProtocolVersion.V5

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> None:
        try:
            result = await self._client.subscribe([(topic, qos) for topic in filters])
        except aiomqtt.MqttError as exc:
            raise BrokerError(f"subscribe failed: {exc}") from None
        refused = [
            topic for topic, code in zip(filters, result, strict=False) if _code(code) >= 0x80
        ]
        if refused:
            raise BrokerError(f"broker refused the subscriptions {refused}")

    async def messages(self) -> AsyncIterator[Inbound]:
        """Messages as they arrive; raises BrokerError when the connection drops."""
        try:
            async for message in self._client.messages:
                yield Inbound(str(message.topic), message.payload, message.mid, message.qos)
        except aiomqtt.MqttError as exc:
            raise BrokerError(f"connection lost: {exc}") from None

    def ack(self, inbound: Inbound) -> None:
        """PUBACK a message once it is stored (in arrival order, as MQTT requires)."""
        if inbound.qos > 0:
            self._client._client.ack(inbound.mid, inbound.qos)  # noqa: SLF001

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, expiry_s: int | None = None
    ) -> None:
        """Publish and wait for the PUBACK; ``expiry_s`` becomes the MQTT 5 message
        expiry (the command's own expires_at is what the machine enforces)."""
        properties = None
        if expiry_s is not None and self.protocol is ProtocolVersion.V5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = max(1, expiry_s)
        try:
            await self._client.publish(topic, payload, qos=qos, properties=properties)
        except aiomqtt.MqttError as exc:
            raise BrokerError(f"publish to {topic} failed: {exc}") from None


@contextlib.asynccontextmanager
async def connect(
    address: BrokerAddress,
    *,
    client_id: str,
    protocol: Protocol = Protocol.AUTO,
    timeout: float = 10.0,
    keepalive: int = 30,
    persistent: bool = True,
) -> AsyncIterator[MqttLink]:
    """Connect (with a persistent session unless ``persistent=False``, for one-shot
    publishers that should leave nothing behind on the broker); raises
    BrokerUnreachableError."""
    versions = {
        Protocol.AUTO: (ProtocolVersion.V5, ProtocolVersion.V311),
        Protocol.V5: (ProtocolVersion.V5,),
        Protocol.V311: (ProtocolVersion.V311,),
    }[protocol]
    for index, version in enumerate(versions):
        client = _client(address, client_id, version, timeout, keepalive, persistent=persistent)
        try:
            await client.__aenter__()
        except aiomqtt.MqttCodeError as exc:
            if _unsupported(exc) and index + 1 < len(versions):
                continue
            raise BrokerUnreachableError(f"{address} refused the connection: {exc}") from None
        except aiomqtt.MqttError as exc:
            raise BrokerUnreachableError(f"cannot reach the broker at {address}: {exc}") from None
        try:
            yield MqttLink(client, version)
        finally:
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await client.__aexit__(None, None, None)
        return
    raise BrokerUnreachableError(f"{address} accepts neither MQTT 5 nor 3.1.1")  # pragma: no cover


def _code(code: object) -> int:
    value = getattr(code, "value", code)
    return value if isinstance(value, int) else 0


def _unsupported(exc: aiomqtt.MqttCodeError) -> bool:
    rc = exc.rc
    value = getattr(rc, "value", rc)
    return value in {_UNSUPPORTED_PROTOCOL, 132} or "protocol version" in str(exc).lower()


def _client(
    address: BrokerAddress,
    client_id: str,
    version: ProtocolVersion,
    timeout: float,
    keepalive: int,
    *,
    persistent: bool = True,
) -> aiomqtt.Client:
    properties = None
    if version is ProtocolVersion.V5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
    clean_start = not persistent
    client = aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=client_id,
        protocol=version,
        timeout=timeout,
        keepalive=keepalive,
        # A persistent session: v5 never starts clean, 3.1.1 keeps the session.
        clean_start=clean_start if version is ProtocolVersion.V5 else MQTT_CLEAN_START_FIRST_ONLY,
        clean_session=None if version is ProtocolVersion.V5 else not persistent,
        properties=properties,
    )
    client._client.manual_ack_set(on=True)  # noqa: SLF001  (ack after commit; module doc)
    return client


async def publish_once(
    address: BrokerAddress,
    messages: Sequence[tuple[str, bytes, int | None]],
    *,
    client_id: str,
    protocol: Protocol = Protocol.AUTO,
    timeout: float = 10.0,
) -> None:
    """Connect with a clean session, publish ``(topic, payload, expiry_s)`` at QoS 1 and
    wait for each PUBACK, then disconnect: for one-shot publishers such as the CLI."""
    async with connect(
        address, client_id=client_id, protocol=protocol, timeout=timeout, persistent=False
    ) as link:
        for topic, payload, expiry_s in messages:
            await link.publish(topic, payload, expiry_s=expiry_s)


class Backoff:
    """Exponential backoff with full jitter: 0..min(cap, base * 2**n) seconds."""

    def __init__(
        self, base: float = 0.2, cap: float = 30.0, rng: random.Random | None = None
    ) -> None:
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not secrets)

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2**self.attempts))
        self.attempts += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0
