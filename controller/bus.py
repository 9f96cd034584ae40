"""The one loop that owns the MDB link and drives the device state machines.

Everything protocol-shaped lives in :mod:`protocols.mdb`; this module only does
what a sans-I/O core cannot: read the clock, wait, and move blocks over the link.
One transaction is in flight at a time (the bus is half duplex and MDB forbids a
second command to a device before the first is answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from drivers.link.base import DEFAULT_TIMEOUT, MdbLink
from protocols.mdb.bus import BusSchedule
from protocols.mdb.device import DeviceMaster
from protocols.mdb.events import MdbEvent
from protocols.mdb.wire import NoReply

EventSink = Callable[[MdbEvent], None]


@dataclass
class BusStats:
    transactions: int = 0
    silent: int = 0


class BusRunner:
    """Polls and commands every device on one link until cancelled."""

    def __init__(
        self,
        link: MdbLink,
        devices: Sequence[DeviceMaster],
        *,
        on_event: EventSink | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.link = link
        self.schedule = BusSchedule(devices)
        self.clock = clock
        self.timeout = timeout
        self.stats = BusStats()
        self.events: asyncio.Queue[MdbEvent] = asyncio.Queue()
        self._on_event = on_event or self.events.put_nowait
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Call after queueing a command on a device so it goes out without waiting a poll."""
        self._wake.set()

    async def step(self) -> bool:
        """One transaction if a device is due; otherwise wait for the next deadline."""
        now = self.clock()
        device = self.schedule.due(now)
        if device is None:
            delay = self.schedule.next_deadline() - now
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, 0.0)):
                    await self._wake.wait()
            return False
        block = device.request(now)
        reply = await self.link.transact(block, self.timeout)
        device.on_reply(reply, self.clock())
        self.stats.transactions += 1
        self.stats.silent += isinstance(reply, NoReply)
        for event in device.drain_events():
            self._on_event(event)
        return True

    async def run(self) -> None:
        while True:
            await self.step()

    async def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Run until ``done()`` holds or ``timeout`` seconds pass; True if it held."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not done():
                    await self.step()
                return True
        return done()
