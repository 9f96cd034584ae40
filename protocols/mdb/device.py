"""The VMC's view of one peripheral: a sans-I/O state machine shared by every device class.

The scheduler (:mod:`protocols.mdb.bus`) asks each device when it next wants the bus
(:meth:`DeviceMaster.next_time`), takes one command from it (:meth:`request`) and
hands back what the link reported (:meth:`on_reply`). Nothing here sleeps or reads a
clock: ``now`` is always an argument, in seconds on any monotonic scale.

Life cycle, common to changers, validators and readers::

    ABSENT --RESET acked--> RESETTING --"was reset" or ACK on POLL--> INITIALISING
    INITIALISING --device steps done--> READY
    any --silent longer than non_response--> ABSENT (probe with RESET every probe_interval)
    READY/INITIALISING --unexpected "was reset"--> INITIALISING (configuration was lost)

Rules every subclass inherits:

* one command in flight per device; silence or a NAK retries the *same* command
  (MDB forbids sending a different one until the first was answered or given up);
* a device is declared offline only after ``non_response`` seconds of silence;
* an answer that fails to decode is reported and dropped, never credited.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from protocols.mdb.errors import DecodeError
from protocols.mdb.events import (
    DeviceOffline,
    DeviceOnline,
    DeviceReset,
    MdbEvent,
    ProtocolViolation,
)
from protocols.mdb.message import Command, Message
from protocols.mdb.wire import Ack, Data, NoReply, Reply


class DeviceState(enum.Enum):
    ABSENT = "absent"
    RESETTING = "resetting"
    INITIALISING = "initialising"
    READY = "ready"


@dataclass(frozen=True, slots=True)
class Timing:
    """Per-device timing policy, in seconds. Defaults follow the spec and field practice."""

    poll_interval: float = 0.1  # spec: every 25-200 ms
    retry_interval: float = 0.01
    non_response: float = 2.0  # changer 2 s; validator 5 s; reader: its own Z7
    probe_interval: float = 5.0
    reset_settle: float = 0.2  # t_setup after RESET before the first POLL
    reset_polls: int = 20  # POLLs to wait for "was reset" before carrying on anyway
    busy_interval: float = 0.05  # re-poll sooner while the device reports busy


ReplyHandler = Callable[[Ack | Data, float], None]

_MAX_DRAINED = 8  # POLL answers collected before the first RESET


@dataclass(slots=True)
class Step:
    """One queued command and what to do with its (non-silent) answer."""

    command: Command
    on_reply: ReplyHandler


class DeviceMaster:
    """Base of the VMC-side state machines. Subclasses provide the device's commands."""

    device: str = "device"

    def __init__(self, address: int, timing: Timing | None = None) -> None:
        self.address = address
        self.timing = timing or Timing()
        self.state = DeviceState.ABSENT
        self._queue: deque[Step] = deque()
        self._inflight: Step | None = None
        self._events: list[MdbEvent] = []
        self._next_at = 0.0
        self._last_heard: float | None = None
        self._reset_polls = 0
        self._ever_online = False
        self._draining = False
        self._drained: list[Data] = []

    # --- what a subclass provides -------------------------------------------------

    def reset_command(self) -> Command:
        raise NotImplementedError

    def poll_command(self) -> Command:
        raise NotImplementedError

    def poll_shows_reset(self, reply: Ack | Data) -> bool:
        """True if this POLL answer contains the device's JUST RESET / "was reset" item."""
        raise NotImplementedError

    def start_init(self, now: float) -> None:
        """Queue the initialisation steps; the last one must call :meth:`ready`."""
        raise NotImplementedError

    def handle_poll(self, reply: Ack | Data, now: float) -> None:
        """React to a POLL answer once the device is initialising or ready."""
        raise NotImplementedError

    def on_lost(self, reason: str, now: float) -> None:
        """The device went offline or lost its configuration: abort what was in progress."""

    def drain_before_reset(self) -> None:
        """On first contact, POLL before RESET and keep what the device says.

        A controller that restarts (crash, watchdog, update) would otherwise wipe with
        its RESET the events the device queued while nobody listened -- a coin
        inserted as we went down. The answers go to :meth:`replay_drained` once SETUP
        tells what they are worth. Call before the bus starts.
        """
        if self.state is DeviceState.ABSENT and not self._ever_online:
            self._draining = True

    def replay_drained(self, answers: list[Data], now: float) -> None:
        """POLL answers collected before our first RESET; credit what they prove arrived.

        Called once, right after the first :meth:`ready`. Only events that moved money
        into the machine matter (a coin in a tube, a stacked bill); sessions and escrows
        did not survive the reset anyway.
        """

    # --- scheduler side -----------------------------------------------------------

    def next_time(self) -> float:
        """When this device next wants the bus."""
        return self._next_at

    def request(self, now: float) -> bytes:
        """The command block (address + data, no checksum) to send now."""
        if self._inflight is None:
            self._inflight = self._queue.popleft() if self._queue else self._idle_step()
        return self._inflight.command.to_block(self.address)

    @property
    def inflight(self) -> Command | None:
        return self._inflight.command if self._inflight else None

    def on_reply(self, reply: Reply, now: float) -> None:
        step = self._inflight
        if step is None:
            return
        if isinstance(reply, NoReply):
            self._on_silence(reply.reason, now)
            return
        self._inflight = None
        self._last_heard = now
        self._next_at = now + self.timing.poll_interval
        try:
            step.on_reply(reply, now)
        except DecodeError as exc:
            self.emit(ProtocolViolation(self.address, self.device, f"{step.command.name}: {exc}"))

    def drain_events(self) -> list[MdbEvent]:
        events, self._events = self._events, []
        return events

    # --- helpers for subclasses ---------------------------------------------------

    @property
    def is_ready(self) -> bool:
        return self.state is DeviceState.READY

    def emit(self, event: MdbEvent) -> None:
        self._events.append(event)

    def queue(self, command: Command, on_reply: ReplyHandler | None = None) -> None:
        """Send ``command`` before the next POLL; ``on_reply`` sees its answer."""
        self._queue.append(Step(command, on_reply or _ignore))
        # Commands go out promptly; they do not wait for the poll interval.
        self._next_at = min(self._next_at, self._last_heard or 0.0)

    def defer(self, now: float, delay: float) -> None:
        """Do not use the bus for this device before ``now + delay``."""
        self._next_at = now + delay

    def ready(self, now: float, info: Message) -> None:
        self.state = DeviceState.READY
        self._ever_online = True
        self.emit(DeviceOnline(self.address, self.device, info))
        self._next_at = now + self.timing.poll_interval
        drained, self._drained = self._drained, []
        if drained:
            self.replay_drained(drained, now)

    def restart(self, now: float, reason: str) -> None:
        """Forget the device's configuration and run the init sequence again."""
        self._queue.clear()
        self.on_lost(reason, now)
        self.state = DeviceState.ABSENT
        self._next_at = now

    # --- internals ----------------------------------------------------------------

    def _idle_step(self) -> Step:
        if self.state is DeviceState.ABSENT and self._draining:
            return Step(self.poll_command(), self._after_drain_poll)
        if self.state is DeviceState.ABSENT:
            return Step(self.reset_command(), self._after_reset)
        return Step(self.poll_command(), self._after_poll)

    def _after_drain_poll(self, reply: Ack | Data, now: float) -> None:
        if isinstance(reply, Data) and len(self._drained) < _MAX_DRAINED:
            self._drained.append(reply)
            self._next_at = now  # keep polling until the device has nothing more
            return
        self._draining = False
        self._next_at = now

    def _after_reset(self, _reply: Ack | Data, now: float) -> None:
        self.state = DeviceState.RESETTING
        self._reset_polls = 0
        self.defer(now, self.timing.reset_settle)

    def _after_poll(self, reply: Ack | Data, now: float) -> None:
        shows_reset = self.poll_shows_reset(reply)
        if self.state is DeviceState.RESETTING:
            self._reset_polls += 1
            if shows_reset or self._reset_polls >= self.timing.reset_polls:
                if shows_reset:
                    self.emit(DeviceReset(self.address, self.device, unexpected=False))
                self.state = DeviceState.INITIALISING
                self.start_init(now)
            return
        if shows_reset:
            # Power blip or watchdog: the device forgot its enables. Whatever it was
            # doing (escrow, session) is over; the subclass must not credit it twice.
            self.emit(DeviceReset(self.address, self.device, unexpected=True))
            self._queue.clear()
            self.on_lost("device reset unexpectedly", now)
            self.state = DeviceState.INITIALISING
            self.start_init(now)
            # Any other items in the same answer still count (e.g. a coin after reset).
        self.handle_poll(reply, now)

    def _on_silence(self, reason: str, now: float) -> None:
        if self.state is DeviceState.ABSENT:
            self._inflight = None
            self._draining = False
            self.defer(now, self.timing.probe_interval if self._ever_online else 0.5)
            return
        if self._last_heard is None or now - self._last_heard >= self.timing.non_response:
            self._inflight = None
            self._queue.clear()
            self.state = DeviceState.ABSENT
            self.on_lost(f"no answer for {self.timing.non_response:g} s ({reason})", now)
            self.emit(DeviceOffline(self.address, self.device, reason))
            self.defer(now, self.timing.probe_interval)
            return
        self.defer(now, self.timing.retry_interval)


def _ignore(_reply: Ack | Data, _now: float) -> None:
    return None
