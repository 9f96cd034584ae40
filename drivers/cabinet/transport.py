"""Byte pipes to a cabinet: a serial port, or the simulator in this process.

``serial:///dev/ttyUSB0?baudrate=9600&address=32``, a bare ``/dev/pts/3`` (19200
baud, address 0x20), or ``memory://?shelves=4&count=5&rfid=1`` for a
:class:`SimCabinet` answering in-process (tests and demos without a pty).
"""

from __future__ import annotations

import abc
import asyncio
from urllib.parse import parse_qs, urlsplit

from drivers.cabinet.errors import CabinetDriverError
from drivers.sim.cabinet import SimCabinet, stocked_shelves
from protocols.cabinet.client import DEFAULT_ADDRESS

BAUDRATES = (9600, 19200)
DEFAULT_BAUDRATE = 19200


class Transport(abc.ABC):
    """Write frames, read whatever bytes came back; a lost port is an error, not silence."""

    def __init__(self) -> None:
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
            raise CabinetDriverError(self._lost)
        try:
            return await asyncio.wait_for(self._incoming.get(), max(timeout, 0.0))
        except TimeoutError:
            if self._lost is not None:
                raise CabinetDriverError(self._lost) from None
            return b""


class _SerialProtocol(asyncio.Protocol):
    def __init__(self, owner: SerialTransport) -> None:
        self.owner = owner

    def data_received(self, data: bytes) -> None:
        self.owner.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost(exc)


class SerialTransport(Transport):
    def __init__(self, port: str, baudrate: int = DEFAULT_BAUDRATE) -> None:
        super().__init__()
        if baudrate not in BAUDRATES:
            raise CabinetDriverError(
                f"baud rate {baudrate} not supported by the cabinet protocol "
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
            raise CabinetDriverError(f"cannot open cabinet port {self.port}: {exc}") from exc
        self._transport = transport
        self._lost = None

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            await asyncio.sleep(0)  # let the transport finish closing the fd

    def write(self, data: bytes) -> None:
        if self._transport is None:
            raise CabinetDriverError(f"cabinet port {self.port} is not open")
        self._transport.write(data)

    def received(self, data: bytes) -> None:
        self._incoming.put_nowait(data)

    def lost(self, exc: Exception | None) -> None:
        self._lost = f"cabinet port {self.port} closed" + (f": {exc}" if exc else "")
        self._transport = None


class MemoryTransport(Transport):
    """The simulated cabinet's firmware called directly, on the event loop's clock."""

    def __init__(self, cabinet: SimCabinet) -> None:
        super().__init__()
        self.cabinet = cabinet
        self._open = False

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    def write(self, data: bytes) -> None:
        if not self._open:
            raise CabinetDriverError("in-memory cabinet is not open")
        answer = self.cabinet.receive(data, asyncio.get_running_loop().time())
        if answer:
            self._incoming.put_nowait(answer)


def _query_int(query: dict[str, list[str]], key: str, default: int) -> int:
    values = query.get(key)
    if not values:
        return default
    try:
        return int(values[-1], 0)
    except ValueError:
        raise CabinetDriverError(f"{key}={values[-1]!r} is not an integer") from None


def transport_for_url(url: str, cabinet: SimCabinet | None = None) -> tuple[Transport, int]:
    """The transport a URL names, and the cabinet address it asks for (default 0x20)."""
    if not url:
        raise CabinetDriverError("empty cabinet URL")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    address = _query_int(query, "address", DEFAULT_ADDRESS)
    if parts.scheme == "memory":
        if cabinet is None:
            try:
                shelves = stocked_shelves(
                    _query_int(query, "shelves", 4),
                    _query_int(query, "count", 5),
                    rfid=bool(_query_int(query, "rfid", 0)),
                )
                cabinet = SimCabinet(shelves, address=address)
            except ValueError as exc:
                raise CabinetDriverError(f"bad simulator parameters in {url!r}: {exc}") from None
        return MemoryTransport(cabinet), address
    if parts.scheme == "serial" or (parts.scheme == "" and url.startswith("/")):
        if not parts.path:
            raise CabinetDriverError(f"no device path in {url!r}")
        baudrate = _query_int(query, "baudrate", DEFAULT_BAUDRATE)
        return SerialTransport(parts.path, baudrate), address
    raise CabinetDriverError(
        f"unknown cabinet URL {url!r} (use serial:///dev/ttyX?baudrate=19200, a path, or memory://)"
    )
