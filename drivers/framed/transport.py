"""Byte pipes to a framed device: a serial port, or a simulator in this process.

``serial:///dev/ttyUSB0?baudrate=9600&address=32``, a bare ``/dev/pts/3`` (19200
baud, the kind's default address), or ``memory://?...`` for a simulator answering
in-process (tests and demos without a pty); the driver of each kind says what a
``memory://`` query may hold.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from drivers.framed.kind import DeviceKind

BAUDRATES = (9600, 19200)
DEFAULT_BAUDRATE = 19200


class ByteDevice(Protocol):
    """A simulated device's firmware: bytes and ``now`` in, answer bytes out."""

    def receive(self, data: bytes, now: float) -> bytes: ...


class Transport(abc.ABC):
    """Write frames, read whatever bytes came back; a lost port is an error, not silence."""

    def __init__(self, kind: DeviceKind) -> None:
        self.kind = kind
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self._lost: str | None = None

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    async def read(self, timeout: float) -> bytes:
        """Bytes received so far, waiting up to ``timeout``; ``b""`` if none came."""
        if self._lost is not None and self._incoming.empty():
            raise self.kind.error(self._lost)
        try:
            return await asyncio.wait_for(self._incoming.get(), max(timeout, 0.0))
        except TimeoutError:
            if self._lost is not None:
                raise self.kind.error(self._lost) from None
            return b""


class _SerialProtocol(asyncio.Protocol):
    def __init__(self, owner: SerialTransport) -> None:
        self.owner = owner

    def data_received(self, data: bytes) -> None:
        self.owner.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost(exc)


class SerialTransport(Transport):
    def __init__(self, kind: DeviceKind, port: str, baudrate: int = DEFAULT_BAUDRATE) -> None:
        super().__init__(kind)
        if baudrate not in BAUDRATES:
            raise kind.error(
                f"baud rate {baudrate} not supported by the {kind.noun} protocol "
                f"(use {' or '.join(map(str, BAUDRATES))})"
            )
        self.port = port
        self.baudrate = baudrate
        self._transport: asyncio.Transport | None = None

    async def open(self) -> None:
        import serial  # noqa: PLC0415 - keeps pyserial out of memory:// users
        import serial_asyncio_fast  # noqa: PLC0415

        loop = asyncio.get_running_loop()
        try:
            transport, _ = await serial_asyncio_fast.create_serial_connection(
                loop, lambda: _SerialProtocol(self), self.port, baudrate=self.baudrate
            )
        except (OSError, serial.SerialException) as exc:
            raise self.kind.error(f"cannot open {self.kind.noun} port {self.port}: {exc}") from exc
        self._transport = transport
        self._lost = None

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            await asyncio.sleep(0)  # let the transport finish closing the fd

    def write(self, data: bytes) -> None:
        if self._transport is None:
            raise self.kind.error(f"{self.kind.noun} port {self.port} is not open")
        self._transport.write(data)

    def received(self, data: bytes) -> None:
        self._incoming.put_nowait(data)

    def lost(self, exc: Exception | None) -> None:
        self._lost = f"{self.kind.noun} port {self.port} closed" + (f": {exc}" if exc else "")
        self._transport = None


class MemoryTransport(Transport):
    """The simulated device's firmware called directly, on the event loop's clock."""

    def __init__(self, kind: DeviceKind, device: ByteDevice) -> None:
        super().__init__(kind)
        self.device = device
        self._open = False

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    def write(self, data: bytes) -> None:
        if not self._open:
            raise self.kind.error(f"in-memory {self.kind.noun} is not open")
        answer = self.device.receive(data, asyncio.get_running_loop().time())
        if answer:
            self._incoming.put_nowait(answer)


class UrlQuery:
    """The query of a device URL; a value that is not a number is the driver's error."""

    def __init__(self, query: str, kind: DeviceKind) -> None:
        self._values = parse_qs(query)
        self._kind = kind

    def integer(self, key: str, default: int) -> int:
        values = self._values.get(key)
        if not values:
            return default
        try:
            return int(values[-1], 0)
        except ValueError:
            raise self._kind.error(f"{key}={values[-1]!r} is not an integer") from None

    def number(self, key: str, default: float) -> float:
        values = self._values.get(key)
        if not values:
            return default
        try:
            return float(values[-1])
        except ValueError:
            raise self._kind.error(f"{key}={values[-1]!r} is not a number") from None


# Builds the simulator a ``memory://`` URL asks for, from its query and address;
# raises ValueError for parameters the simulator refuses.
SimulatorFactory = Callable[[UrlQuery, int], ByteDevice]


def transport_for_url(
    url: str, kind: DeviceKind, simulator: SimulatorFactory, device: ByteDevice | None = None
) -> tuple[Transport, int]:
    """The transport a URL names, and the device address it asks for.

    A ``memory://`` URL is served by ``device`` if given, else by a new simulator.
    """
    if not url:
        raise kind.error(f"empty {kind.noun} URL")
    parts = urlsplit(url)
    query = UrlQuery(parts.query, kind)
    address = query.integer("address", kind.default_address)
    if parts.scheme == "memory":
        if device is None:
            try:
                device = simulator(query, address)
            except ValueError as exc:
                raise kind.error(f"bad simulator parameters in {url!r}: {exc}") from None
        return MemoryTransport(kind, device), address
    if parts.scheme == "serial" or (parts.scheme == "" and url.startswith("/")):
        if not parts.path:
            raise kind.error(f"no device path in {url!r}")
        baudrate = query.integer("baudrate", DEFAULT_BAUDRATE)
        return SerialTransport(kind, parts.path, baudrate), address
    raise kind.error(
        f"unknown {kind.noun} URL {url!r} (use serial:///dev/ttyX?baudrate=19200, a path, "
        "or memory://)"
    )
