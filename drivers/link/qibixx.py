"""Qibixx MDB-USB / MDB Pi Hat in master mode: ``qibixx:///dev/ttyACM0[?baudrate=115200]``.

The adapter does the 9-bit framing, the checksum, the ACK to the peripheral and the
retries in firmware; we exchange ASCII lines with it at 115200 8N1 (grammar in
:mod:`drivers.link.qibixx_lines`). One reader task sorts incoming lines: sniffer
lines go to :meth:`QibixxLink.sniff`, everything else to the transaction waiting
for its answer. A garbled answer is a NoReply naming the line; only a vanished
port raises (:class:`LinkError`).

The answer deadline is the caller's MDB timeout plus ``latency``: the adapter
itself waits t_response and may retry before it answers, and USB adds its own
delay, so a host-side 5 ms would never be met.

The adapter answers every ``R`` line exactly once, in order, with no request id,
and it has already ACKed the peripheral's data by then. So an answer that misses
the deadline is still owed: read as the answer to the *next* request it would
credit one device's coin to another, and dropped it would lose the coin. The link
remembers owed requests, collects their late answers before it sends anything
new, and keeps each one for its own block: when the device retries that block
(what MDB prescribes after silence) the late answer is returned instead of
sending the command again -- just what the peripheral's resend would give on a
bus where the VMC ACKs. A late answer is forgotten once its device sends a
different command (it gave up on that one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from drivers.link.base import DEFAULT_TIMEOUT, LinkError, MdbLink
from drivers.link.qibixx_lines import format_request, parse_answer
from protocols.mdb.wire import NoReply, Reply

BAUDRATE = 115200
LATENCY = 0.25  # seconds added to each MDB timeout for the adapter's work and USB
OPEN_TIMEOUT = 1.0
RESET_SETTLE = 0.3  # the adapter holds break >= 100 ms, then the bus needs >= 200 ms
ANSWER_LIMIT = 2.0  # seconds after which an owed answer is not coming (the adapter lost it)
_LOST = "\x00lost"  # sentinel queued when the port goes away


def parse_url(url: str) -> tuple[str, int]:
    """The device path and baud rate a ``qibixx://`` URL names."""
    parts = urlsplit(url)
    if parts.scheme != "qibixx" or parts.netloc or not parts.path:
        raise LinkError(f"bad Qibixx link URL {url!r} (expected qibixx:///dev/ttyACM0)")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"baudrate"})
    if unknown:
        raise LinkError(f"unknown option {unknown[0]!r} in {url!r} (known: baudrate)")
    baud_text = query.get("baudrate", [str(BAUDRATE)])[-1]
    if not baud_text.isdigit() or int(baud_text) <= 0:
        raise LinkError(f"baudrate must be a positive integer, not {baud_text!r} in {url!r}")
    return parts.path, int(baud_text)


@dataclass(frozen=True, slots=True)
class _Owed:
    """A request whose answer missed its deadline but may still arrive."""

    block: bytes
    until: float  # loop time after which we stop expecting it


class QibixxLink(MdbLink):
    """An :class:`MdbLink` through a Qibixx adapter in generic master mode."""

    def __init__(
        self, url: str, latency: float = LATENCY, open_timeout: float = OPEN_TIMEOUT
    ) -> None:
        self.url = url
        self.path, self.baudrate = parse_url(url)
        self.latency = latency
        self.open_timeout = open_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._answers: asyncio.Queue[str] = asyncio.Queue()
        self._sniffed: asyncio.Queue[str] = asyncio.Queue()
        self._sniffers = 0
        self._owed: deque[_Owed] = deque()  # requests reported as timed out, answer pending
        self._late: dict[bytes, Reply] = {}  # late answers, kept for their block's retry
        self._lost: str | None = None
        self._lock = asyncio.Lock()

    # --- life cycle ---------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            return
        import serial_asyncio_fast  # noqa: PLC0415 - pyserial only when a port is opened

        try:
            self._reader, self._writer = await serial_asyncio_fast.open_serial_connection(
                url=self.path, baudrate=self.baudrate
            )
        except (OSError, ValueError) as exc:
            raise LinkError(f"cannot open Qibixx adapter port {self.path}: {exc}") from exc
        self._lost = None
        self._owed.clear()
        self._late.clear()
        self._pump = asyncio.create_task(self._read_lines(self._reader))
        try:
            await self._start_master()
        except LinkError:
            await self.close()
            raise

    async def _start_master(self) -> None:
        async with self._lock:
            self._drain(self._answers)
            await self._send("M,1")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.open_timeout
            while (remaining := deadline - loop.time()) > 0:
                try:
                    line = await asyncio.wait_for(self._answers.get(), remaining)
                except TimeoutError:
                    break
                self._check_lost(line)
                if line == "m,ACK":
                    return
                if line == "m,NACK":
                    raise LinkError(f"Qibixx adapter on {self.path} refused master mode (m,NACK)")
            raise LinkError(
                f"no Qibixx adapter answered M,1 on {self.path} within {self.open_timeout} s"
            )

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(b"M,0\n")
            writer.close()
            with contextlib.suppress(OSError, RuntimeError):
                await writer.wait_closed()
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    # --- transactions -------------------------------------------------------------

    async def transact(self, block: bytes, timeout: float = DEFAULT_TIMEOUT) -> Reply:
        request = format_request(block)
        window = timeout + self.latency
        async with self._lock:
            if not await self._collect_owed(block, window):
                return NoReply("timeout")  # the adapter is still busy with this very block
            late = self._late.pop(block, None)
            for other in [b for b in self._late if b[0] & 0xF8 == block[0] & 0xF8]:
                del self._late[other]  # the device moved on from that command
            if late is not None:
                return late
            self._drain(self._answers)  # lines nobody asked for
            await self._send(request)
            reply = await self._next_answer(window)
            if reply is None:
                loop = asyncio.get_running_loop()
                self._owed.append(_Owed(block, loop.time() + ANSWER_LIMIT))
                return NoReply("timeout")
            return reply

    async def _collect_owed(self, block: bytes, window: float) -> bool:
        """Keep late answers for their blocks; False if ``block``'s own is still due."""
        loop = asyncio.get_running_loop()
        while self._owed:
            owed = self._owed[0]
            mine = owed.block == block
            limit = owed.until - loop.time()
            reply = await self._next_answer(min(limit, window) if mine else limit)
            if reply is None:
                if mine and loop.time() < owed.until:
                    return False
                self._owed.clear()  # the adapter lost it; nothing queued behind it is coming
                return True
            self._owed.popleft()
            self._late[owed.block] = reply
        return True

    async def _next_answer(self, within: float) -> Reply | None:
        """The next answer line as a Reply, or None if none came ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (remaining := deadline - loop.time()) > 0:
            try:
                # asyncio.timeout, not wait_for: no extra task, so one loop hop less
                # between the answer arriving and the state machine seeing it.
                async with asyncio.timeout(remaining):
                    line = await self._answers.get()
            except TimeoutError:
                break
            self._check_lost(line)
            reply = parse_answer(line)
            if reply is not None:
                return reply
        return None

    async def reset_bus(self) -> None:
        async with self._lock:
            await self._send("R,RESET")
            await asyncio.sleep(RESET_SETTLE)
            self._drain(self._answers)  # whatever the adapter said about the reset
            self._owed.clear()
            self._late.clear()

    async def sniff(self) -> AsyncGenerator[str, None]:
        """Raw sniffer lines (``x,...``) while iterating; sniffer mode is on meanwhile."""
        self._sniffers += 1
        try:
            if self._sniffers == 1:
                await self._send("X,1")
            while True:
                line = await self._sniffed.get()
                self._check_lost(line)
                yield line
        finally:
            self._sniffers -= 1
            if self._sniffers == 0 and self._writer is not None:
                with contextlib.suppress(LinkError):
                    await self._send("X,0")

    # --- plumbing -----------------------------------------------------------------

    async def _send(self, line: str) -> None:
        if self._lost is not None:
            raise LinkError(f"Qibixx adapter port {self.path} is gone: {self._lost}")
        if self._writer is None:
            raise LinkError(f"{self.url}: link is not open")
        try:
            self._writer.write(line.encode("ascii") + b"\n")
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            raise LinkError(f"cannot write to Qibixx adapter port {self.path}: {exc}") from exc

    async def _read_lines(self, reader: asyncio.StreamReader) -> None:
        reason = "end of file"
        while True:
            try:
                raw = await reader.readline()
            except ValueError:  # a line over the reader's limit; the rest was discarded
                self._answers.put_nowait("<overlong line>")
                continue
            except OSError as exc:
                reason = str(exc) or type(exc).__name__
                break
            if not raw:
                break
            line = raw.decode("ascii", errors="replace").strip()
            if line.startswith("x,") and line not in ("x,ACK", "x,NACK"):
                if self._sniffers:
                    self._sniffed.put_nowait(line)
                continue
            self._answers.put_nowait(line)
        self._lost = reason
        self._answers.put_nowait(_LOST)
        self._sniffed.put_nowait(_LOST)

    def _check_lost(self, line: str) -> None:
        if line == _LOST:
            raise LinkError(f"Qibixx adapter port {self.path} is gone: {self._lost}")

    @staticmethod
    def _drain(queue: asyncio.Queue[str]) -> None:
        while not queue.empty():
            if queue.get_nowait() == _LOST:
                queue.put_nowait(_LOST)
                return
