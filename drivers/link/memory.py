"""The in-memory link: real word-level MDB between the VMC and simulated peripherals.

Nothing is short-cut: the command is encoded to 9-bit words with its checksum,
serialised two bytes per word, passed through a :class:`FaultHook`, and rebuilt on
the peripheral's side by a :class:`WordStream` and a :class:`CommandReader` that
knows the command lengths. The answer travels back the same way into an
:class:`AnswerReader`. The VMC then ACKs data, or sends RET for a corrupt block
(the peripheral repeats it) up to ``ret_limit`` times before giving up with NAK.

Timing is virtual: chunk delays are awaited with ``asyncio.sleep`` but counted
against the transaction's ``timeout`` by their nominal length, so a fault test
gives the same reply on a busy machine. Silence is reported at once (no wire time
is simulated for a peripheral that never answers).

Peripheral-side rules followed here, from the MDB spec:

* a command whose checksum fails (or that never completes) gets no answer, so the
  VMC sees a time-out and retries the same command;
* data that the VMC did not ACK is kept by the peripheral (``acked(False)``) and
  sent again on the next POLL; it learns ``acked(True)`` only if the ACK arrives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from drivers.link.base import DEFAULT_TIMEOUT, LinkError, MdbLink
from drivers.link.fault_hook import Direction, FaultHook, Transmission
from drivers.sim.base import Silence, SimAnswer, SimBus
from protocols.mdb.wire import (
    ACK,
    NAK,
    RET,
    AnswerReader,
    AnswerReceived,
    CommandReader,
    CommandReceived,
    Data,
    NoReply,
    PeripheralNak,
    Reply,
    VmcResponse,
    Word,
    WordStream,
    encode_answer,
    encode_command,
    words_to_bytes,
)

_MEMORY_BUSES: dict[str, SimBus] = {}


def register_memory_bus(name: str, bus: SimBus) -> None:
    """Make ``memory://<name>`` (``memory://`` for name "") open a link to ``bus``."""
    _MEMORY_BUSES[name] = bus


def unregister_memory_bus(name: str) -> None:
    _MEMORY_BUSES.pop(name, None)


def memory_bus(name: str) -> SimBus:
    """The bus registered under ``name``; a fresh default bus (then registered) if none."""
    bus = _MEMORY_BUSES.get(name)
    if bus is None:
        from drivers.sim.presets import default_bus  # noqa: PLC0415 - needs the simulators

        bus = _MEMORY_BUSES[name] = default_bus()
    return bus


class _Arrival:
    """What reached the far side of one transmission, and how long it took."""

    def __init__(self, words: list[Word], spent: float, late: bool) -> None:
        self.words = words
        self.spent = spent
        self.late = late


class MemoryLink(MdbLink):
    """An :class:`MdbLink` to a :class:`SimBus` in the same process."""

    def __init__(
        self,
        bus: SimBus,
        faults: FaultHook | None = None,
        clock: Callable[[], float] | None = None,
        ret_limit: int = 2,
        url: str = "memory://",
    ) -> None:
        if ret_limit < 0:
            raise ValueError(f"ret_limit cannot be negative ({ret_limit})")
        self.bus = bus
        self.faults = faults
        self.clock = clock or time.monotonic
        self.ret_limit = ret_limit
        self.url = url
        self._commands = CommandReader(bus.command_length)  # the peripherals' UART
        self._open = False
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def reset_bus(self) -> None:
        from drivers.sim.presets import bus_reset  # noqa: PLC0415 - avoids an import cycle

        self._check_open()
        async with self._lock:
            self._commands = CommandReader(self.bus.command_length)
            bus_reset(self.bus, self.clock())

    async def transact(self, block: bytes, timeout: float = DEFAULT_TIMEOUT) -> Reply:
        self._check_open()
        async with self._lock:
            return await self._transact(block, timeout)

    def _check_open(self) -> None:
        if not self._open:
            raise LinkError(f"{self.url}: link is not open")

    async def _transact(self, block: bytes, timeout: float) -> Reply:
        sent = await self._carry(
            encode_command(block), "to_peripheral", Transmission.COMMAND, 0.0, timeout
        )
        command = self._command_heard(sent.words)
        if command is None:
            return NoReply("timeout")  # a damaged or incomplete command gets no answer
        answer = self.bus.handle(command, self.clock())
        if isinstance(answer, Silence):
            return NoReply("timeout")
        if sent.late:
            # The peripheral acted, but the VMC had given up before the answer came.
            self._peripheral_learns(answer, ok=False)
            return NoReply("timeout")
        words = encode_answer(answer.payload if isinstance(answer, Data) else b"")
        spent = sent.spent
        rets = 0
        while True:
            got = await self._carry(words, "to_vmc", Transmission.ANSWER, spent, timeout)
            events = AnswerReader().feed(got.words)
            if got.late or not events:
                self._peripheral_learns(answer, ok=False)
                return NoReply("timeout")
            event = events[0]
            if isinstance(event, AnswerReceived):
                if isinstance(event.reply, Data):
                    ok = await self._respond(ACK) == ACK
                    self.bus.acked(ok)
                return event.reply
            if isinstance(event, PeripheralNak):
                return NoReply("nak")
            if rets >= self.ret_limit:
                await self._respond(NAK)
                self._peripheral_learns(answer, ok=False)
                return NoReply("checksum")
            rets += 1
            if await self._respond(RET) != RET:
                # The peripheral never heard the RET, so it does not repeat.
                self._peripheral_learns(answer, ok=False)
                return NoReply("timeout")
            spent = 0.0  # the VMC waits t_response afresh after each RET

    async def _carry(
        self,
        words: Sequence[Word],
        direction: Direction,
        what: Transmission,
        spent: float,
        timeout: float,
    ) -> _Arrival:
        data = words_to_bytes(words)
        if self.faults is None:
            return _Arrival(WordStream().feed(data), spent, late=False)
        chunks = self.faults.carry(data, direction, what)
        stream = WordStream()  # a real UART frames each word; halves never span transmissions
        received: list[Word] = []
        for chunk in chunks:
            if chunk.delay and spent <= timeout:
                # Once past the deadline nobody waits any longer; the bytes still arrive.
                await asyncio.sleep(min(chunk.delay, timeout - spent + 1e-3))
            spent += chunk.delay
            received += stream.feed(chunk.data)
        return _Arrival(received, spent, late=spent > timeout)

    def _command_heard(self, words: list[Word]) -> bytes | None:
        for event in self._commands.feed(words):
            if isinstance(event, CommandReceived):
                return event.block
        return None

    async def _respond(self, code: int) -> int | None:
        """Send the VMC's ACK / RET / NAK; return what the peripheral heard, if anything."""
        got = await self._carry((code,), "to_peripheral", Transmission.RESPONSE, 0.0, float("inf"))
        for event in self._commands.feed(got.words):
            if isinstance(event, VmcResponse):
                return event.code
        return None

    def _peripheral_learns(self, answer: SimAnswer, *, ok: bool) -> None:
        if isinstance(answer, Data):
            self.bus.acked(ok)


__all__ = [
    "MemoryLink",
    "memory_bus",
    "register_memory_bus",
    "unregister_memory_bus",
]
