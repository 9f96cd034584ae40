"""Native 9-bit MDB on a Linux UART, with stick parity standing in for the mode bit.

``ninebit:///dev/ttyAMA0``: the VMC sends the address byte in MARK parity (mode
bit 1), then data and CHK in SPACE parity (mode bit 0); it receives in SPACE parity
with ``INPCK | PARMRK | IGNBRK`` so that the peripheral's mode-bit word (CHK, ACK,
NAK) arrives marked ``FF 00 xx`` (see :mod:`drivers.link.parmrk`). ACK, RET and NAK
go out in SPACE parity. The checksum, the ACK within t_response and the RET retries
are all ours here, unlike on adapters that do them in firmware.

Parity is switched with our own ``tcsetattr(TCSADRAIN)`` rather than pyserial's
property, because pyserial's reconfiguration clears ``PARMRK`` (and waiting for the
drain is exactly what the address byte needs before the switch). The blocking port
I/O runs in one dedicated thread so the event loop never waits on the UART.

Needs real hardware end to end: a pseudo-terminal drops ``PARENB`` and never
reports parity errors, so the mode bit cannot be exercised on a pty. What can be
checked without hardware -- segment planning, the termios flags, PARMRK decoding
and the transaction logic against a port double -- is unit-tested; the hardware
test is marked ``hardware`` and runs only when ``VEND_MDB_HARDWARE`` names a port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import termios
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from drivers.link.base import DEFAULT_TIMEOUT, LinkError, MdbLink
from drivers.link.parmrk import ParmrkDecoder
from protocols.mdb.wire import (
    ACK,
    MODE_BIT,
    NAK,
    RET,
    AnswerEvent,
    AnswerReader,
    AnswerReceived,
    Data,
    NoReply,
    PeripheralNak,
    Reply,
    encode_command,
)

CMSPAR = 0o10000000000  # stick parity; Python's termios does not export it
BAUDRATE = 9600
BREAK_HOLD = 0.1  # t_break >= 100 ms
BREAK_SETTLE = 0.2  # t_setup >= 200 ms


@dataclass(frozen=True, slots=True)
class Segment:
    """Bytes sent back to back with one value of the mode bit."""

    mode: bool
    data: bytes


def plan_command(block: bytes) -> list[Segment]:
    """The command's words grouped by mode bit: address in MARK, data + CHK in SPACE."""
    segments: list[Segment] = []
    for word in encode_command(block):
        mode = bool(word & MODE_BIT)
        if segments and segments[-1].mode == mode:
            segments[-1] = Segment(mode, segments[-1].data + bytes((word & 0xFF,)))
        else:
            segments.append(Segment(mode, bytes((word & 0xFF,))))
    return segments


def plan_response(code: int) -> Segment:
    """The VMC's ACK / RET / NAK: one byte, mode bit 0."""
    if code not in (ACK, RET, NAK):
        raise ValueError(f"{code:#04x} is not ACK, RET or NAK")
    return Segment(mode=False, data=bytes((code,)))


def receive_iflag(iflag: int) -> int:
    """Input flags for reading mode bits as PARMRK marks, breaks ignored, no translation."""
    iflag |= termios.INPCK | termios.PARMRK | termios.IGNBRK
    clear = termios.IGNPAR | termios.ISTRIP | termios.BRKINT | termios.INLCR
    clear |= termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF
    return iflag & ~clear


def stick_parity_cflag(cflag: int, mark: bool) -> int:
    """Control flags for MARK (mode bit 1) or SPACE (mode bit 0) stick parity."""
    cflag |= termios.PARENB | CMSPAR
    return cflag | termios.PARODD if mark else cflag & ~termios.PARODD


class NineBitPort(Protocol):
    """The few blocking operations a 9-bit transaction needs from a UART."""

    def send(self, segment: Segment) -> None:
        """Write the bytes with the segment's mode bit and wait until they have left."""

    def read(self, timeout: float) -> bytes:
        """Whatever arrived within ``timeout`` seconds (PARMRK-encoded); b"" if nothing."""

    def discard_input(self) -> None: ...

    def send_break(self, hold: float, settle: float) -> None: ...

    def close(self) -> None: ...


class SerialNineBitPort:
    """:class:`NineBitPort` on a real tty via pyserial plus our own termios calls."""

    def __init__(self, path: str) -> None:
        import serial  # noqa: PLC0415 - only this backend needs pyserial at import

        self.path = path
        self._serial = serial.Serial(
            path, BAUDRATE, bytesize=serial.EIGHTBITS, parity=serial.PARITY_SPACE, timeout=0
        )
        self._fd: int = self._serial.fileno()
        self._mark: bool | None = None
        self._set_mode(mark=False)

    def _set_mode(self, *, mark: bool) -> None:
        if self._mark is mark:
            return
        attrs = termios.tcgetattr(self._fd)
        attrs[0] = receive_iflag(attrs[0])
        attrs[2] = stick_parity_cflag(attrs[2], mark)
        # TCSADRAIN: bytes already written leave with the old parity first.
        termios.tcsetattr(self._fd, termios.TCSADRAIN, attrs)
        self._mark = mark

    def send(self, segment: Segment) -> None:
        self._set_mode(mark=segment.mode)
        self._serial.write(segment.data)
        termios.tcdrain(self._fd)
        if segment.mode:
            self._set_mode(mark=False)  # always listen in SPACE

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._fd], [], [], max(timeout, 0.0))
        return os.read(self._fd, 4096) if ready else b""

    def discard_input(self) -> None:
        termios.tcflush(self._fd, termios.TCIFLUSH)

    def send_break(self, hold: float, settle: float) -> None:
        self._serial.break_condition = True
        time.sleep(hold)
        self._serial.break_condition = False
        time.sleep(settle)

    def close(self) -> None:
        self._serial.close()


def run_transaction(
    port: NineBitPort,
    block: bytes,
    timeout: float,
    ret_limit: int = 2,
    clock: Callable[[], float] = time.monotonic,
) -> Reply:
    """One blocking VMC transaction: command, answer, then ACK / RET / NAK."""
    port.discard_input()
    for segment in plan_command(block):
        port.send(segment)
    rets = 0
    while True:
        event = _await_answer(port, timeout, clock)
        if event is None:
            return NoReply("timeout")
        if isinstance(event, AnswerReceived):
            if isinstance(event.reply, Data):
                port.send(plan_response(ACK))
            return event.reply
        if isinstance(event, PeripheralNak):
            return NoReply("nak")
        if rets >= ret_limit:
            port.send(plan_response(NAK))
            return NoReply("checksum")
        rets += 1
        port.send(plan_response(RET))


def _await_answer(
    port: NineBitPort, timeout: float, clock: Callable[[], float]
) -> AnswerEvent | None:
    decoder, reader = ParmrkDecoder(), AnswerReader()
    deadline = clock() + timeout
    while (remaining := deadline - clock()) > 0:
        data = port.read(remaining)
        if not data:
            continue
        events: Sequence[AnswerEvent] = reader.feed(decoder.feed(data))
        if events:
            return events[0]
        # An answer in progress may take 41 ms on the wire; keep waiting while it flows.
        deadline = max(deadline, clock() + timeout)
    return None


PortFactory = Callable[[str], NineBitPort]
_T = TypeVar("_T")


class NineBitLink(MdbLink):
    """An :class:`MdbLink` on a native UART: ``ninebit:///dev/ttyAMA0``."""

    def __init__(
        self, url: str, ret_limit: int = 2, port_factory: PortFactory | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ninebit" or parts.netloc or not parts.path:
            raise LinkError(f"bad native link URL {url!r} (expected ninebit:///dev/ttyAMA0)")
        self.url = url
        self.path = parts.path
        self.ret_limit = ret_limit
        self._factory: PortFactory = port_factory or SerialNineBitPort
        self._port: NineBitPort | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        if self._port is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mdb-ninebit")
        try:
            self._port = await self._run(self._factory, self.path)
        except LinkError:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(LinkError):
                await self._run(port.close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def transact(self, block: bytes, timeout: float = DEFAULT_TIMEOUT) -> Reply:
        port = self._require_port()
        return await self._run(run_transaction, port, block, timeout, self.ret_limit)

    async def reset_bus(self) -> None:
        port = self._require_port()
        await self._run(port.send_break, BREAK_HOLD, BREAK_SETTLE)

    def _require_port(self) -> NineBitPort:
        if self._port is None:
            raise LinkError(f"{self.url}: link is not open")
        return self._port

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except OSError as exc:  # pyserial's SerialException is an OSError too
            raise LinkError(f"{self.path}: {exc}") from exc
