"""Drive VMC state machines against simulated peripherals with no link at all.

The fastest back-to-back harness: each command block goes straight to the
simulator's firmware and its answer straight back, on a fake clock. Link-level
behaviour (checksums, split bytes, RET) is tested separately over real links.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.sim.base import Silence, SimBus
from protocols.mdb.bus import BusSchedule
from protocols.mdb.device import DeviceMaster
from protocols.mdb.events import MdbEvent
from protocols.mdb.wire import Ack, Data, NoReply, Reply

# Wire time of a typical transaction; keeps the fake clock moving like a real bus.
TRANSACTION_TIME = 0.004


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class DirectBus:
    """A scheduler and a simulated bus joined back to back."""

    def __init__(self, sim: SimBus, *devices: DeviceMaster, clock: FakeClock | None = None):
        self.sim = sim
        self.schedule = BusSchedule(devices)
        self.clock = clock or FakeClock()
        self.events: list[MdbEvent] = []
        self.lose_next_ack = False  # fault: the VMC's ACK to the next data never arrives
        self.transactions = 0

    def step(self) -> bool:
        """One transaction if a device is due, else advance the clock to the next deadline."""
        now = self.clock.now
        device = self.schedule.due(now)
        if device is None:
            deadline = self.schedule.next_deadline()
            self.clock.now = max(now, deadline)
            return False
        block = device.request(now)
        answer = self.sim.handle(block, now)
        reply: Reply
        if isinstance(answer, Silence):
            reply = NoReply("timeout")
        elif isinstance(answer, Data):
            reply = answer
            self.sim.acked(not self.lose_next_ack)
            self.lose_next_ack = False
        else:
            reply = Ack()
        self.clock.now += TRANSACTION_TIME
        device.on_reply(reply, self.clock.now)
        self.events.extend(device.drain_events())
        self.transactions += 1
        return True

    def run_for(self, seconds: float) -> list[MdbEvent]:
        """Run the bus for ``seconds`` of fake time; return the events seen meanwhile."""
        start = len(self.events)
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.step()
        return self.events[start:]

    def run_until(
        self, predicate: Callable[[list[MdbEvent]], bool], timeout: float = 30.0
    ) -> list[MdbEvent]:
        """Run until ``predicate(events so far)`` holds; fail loudly after ``timeout``."""
        start = len(self.events)
        end = self.clock.now + timeout
        while not predicate(self.events[start:]):
            if self.clock.now >= end:
                seen = [e.name for e in self.events[start:]]
                raise AssertionError(f"condition not met within {timeout} s; events: {seen}")
            self.step()
        return self.events[start:]
