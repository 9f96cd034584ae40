"""Sharing one bus between devices: the earliest-due device gets the next transaction."""

from __future__ import annotations

from collections.abc import Sequence

from protocols.mdb.device import DeviceMaster


class BusSchedule:
    """Round-robin by due time. One transaction at a time; the caller owns the link."""

    def __init__(self, devices: Sequence[DeviceMaster]) -> None:
        if len({d.address for d in devices}) != len(devices):
            raise ValueError("two devices share an MDB address")
        self.devices = list(devices)

    def due(self, now: float) -> DeviceMaster | None:
        """The device whose turn it is, or None if nobody wants the bus before ``next_deadline``."""
        best: DeviceMaster | None = None
        for device in self.devices:
            t = device.next_time()
            if t <= now and (best is None or t < best.next_time()):
                best = device
        return best

    def next_deadline(self) -> float:
        return min((d.next_time() for d in self.devices), default=float("inf"))

    def by_address(self, address: int) -> DeviceMaster:
        for device in self.devices:
            if device.address == address:
                return device
        raise KeyError(address)
