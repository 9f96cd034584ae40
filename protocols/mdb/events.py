"""Events the VMC-side state machines report to the application (past-tense nouns).

Device-specific events (coins, bills, cashless sessions) live in each device
package and derive from :class:`MdbEvent` too, so one queue can carry them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.mdb.message import Message


@dataclass(frozen=True, slots=True)
class MdbEvent(Message):
    address: int


@dataclass(frozen=True, slots=True)
class DeviceOnline(MdbEvent):
    """Initialisation finished; ``info`` is the device's own description (setup, IDs)."""

    device: str
    info: Message


@dataclass(frozen=True, slots=True)
class DeviceOffline(MdbEvent):
    """The device stopped answering for longer than its non-response time."""

    device: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeviceReset(MdbEvent):
    """The device reported JUST RESET / "was reset". ``unexpected`` = not after our RESET."""

    device: str
    unexpected: bool


@dataclass(frozen=True, slots=True)
class DeviceFault(MdbEvent):
    """A status the device reported that needs attention (jam, sensor, unplugged...)."""

    device: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class ProtocolViolation(MdbEvent):
    """A well-framed answer that made no sense; it was dropped, nothing was credited."""

    device: str
    detail: str
