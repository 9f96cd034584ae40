"""Simulated MDB peripherals: the peripheral's side of each transaction, no I/O.

A simulated peripheral answers one command block at a time, as the real device's
firmware does. Time is passed in so that busy periods, escrow time-outs and payout
durations follow a clock the caller controls (real time in ``vend sim mdb``, a fake
clock in unit tests).

Answer data that the VMC did not ACK is kept and sent again on the next POLL, as
the spec demands; :meth:`SimPeripheral.acked` tells the peripheral whether the ACK
arrived. Links whose adapter ACKs in firmware (Qibixx) report ACK unless a fault
script says the ACK was lost.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from protocols.mdb.wire import Ack, Data


@dataclass(frozen=True, slots=True)
class Silence:
    """The peripheral does not answer (unplugged, busy in firmware, bad checksum)."""


SimAnswer = Ack | Data | Silence


class PollData:
    """POLL answer data a peripheral keeps until the VMC ACKs it.

    MDB: a peripheral that gets no ACK for its data sends the same data again on the
    next POLL. Only POLL data is kept; other answers are simply asked for again.
    """

    def __init__(self) -> None:
        self._unacked: bytes | None = None
        self._sent = False

    def command_received(self) -> None:
        """Any new command: the last answer's ACK can no longer arrive."""
        self._sent = False

    def answer(self, build: Callable[[], bytes]) -> Ack | Data:
        """The data owed (again) or, when nothing is owed, fresh data from ``build``."""
        if self._unacked is None:
            data = build()
            if not data:
                return Ack()
            self._unacked = data
        self._sent = True
        return Data(self._unacked)

    def acked(self, ok: bool) -> None:
        if self._sent and ok:
            self._unacked = None

    def clear(self) -> None:
        self._unacked = None
        self._sent = False


class SimPeripheral(abc.ABC):
    """One simulated device on the bus. Subclasses implement the device's firmware."""

    #: Base addresses this peripheral answers to (address byte & 0xF8).
    addresses: tuple[int, ...] = ()

    def __init__(self) -> None:
        self.plugged = True

    @abc.abstractmethod
    def command_length(self, prefix: bytes) -> int | None:
        """Length of the command block starting with ``prefix`` (for 9-bit word links)."""

    @abc.abstractmethod
    def handle(self, block: bytes, now: float) -> SimAnswer:
        """Answer one command block (address byte + data, checksum already verified)."""

    def acked(self, ok: bool) -> None:
        """The VMC ACKed (``ok``) or did not ACK the data we last sent."""

    def control(self, action: str, args: dict[str, object], now: float) -> dict[str, object]:
        """Scripted customer actions and faults (insert a coin, jam, present a card...)."""
        raise ValueError(f"{type(self).__name__} has no action {action!r}")

    def status(self) -> dict[str, object]:
        """What a test or an operator wants to see of the simulated device."""
        return {}


class SimBus:
    """Several simulated peripherals behind one bus; routes blocks by address."""

    def __init__(self, *peripherals: SimPeripheral) -> None:
        self.peripherals = list(peripherals)
        self._last: SimPeripheral | None = None

    def find(self, address_byte: int) -> SimPeripheral | None:
        base = address_byte & 0xF8
        for p in self.peripherals:
            if base in p.addresses:
                return p
        return None

    def command_length(self, prefix: bytes) -> int | None:
        p = self.find(prefix[0])
        # An unknown address: one-byte guess; the next mode-bit word resynchronises.
        return p.command_length(prefix) if p else 1

    def handle(self, block: bytes, now: float) -> SimAnswer:
        p = self.find(block[0])
        self._last = p
        if p is None or not p.plugged:
            return Silence()
        return p.handle(block, now)

    def acked(self, ok: bool) -> None:
        if self._last is not None:
            self._last.acked(ok)
