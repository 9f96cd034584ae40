"""A tiny changer-like peripheral for link and adapter tests (not the real simulator).

It ACKs RESET, queues a "just reset" item (0x0B) for the next POLL, keeps answer
data until it learns it was ACKed (as the MDB spec demands), and records what the
links told it, so tests can check what reached the peripheral.
"""

from __future__ import annotations

from collections import deque

from drivers.sim.base import SimAnswer, SimPeripheral
from protocols.mdb.wire import Ack, Data

JUST_RESET = b"\x0b"
RESET, POLL, COIN_TYPE = 0x08, 0x0B, 0x0C


class FakeChanger(SimPeripheral):
    addresses = (0x08,)

    def __init__(self) -> None:
        super().__init__()
        self.pending: deque[bytes] = deque()
        self.sent: list[bytes] = []  # every data answer, repeats included
        self.acks: list[bool] = []  # what acked() was told, in order
        self.handled: list[bytes] = []  # every command block that reached the firmware
        self.power_cycles = 0
        self.enabled = b""

    def command_length(self, prefix: bytes) -> int | None:
        return 5 if prefix[0] == COIN_TYPE else 1

    def handle(self, block: bytes, now: float) -> SimAnswer:
        self.handled.append(block)
        if block[0] == RESET:
            self.pending = deque([JUST_RESET])
            return Ack()
        if block[0] == COIN_TYPE:
            self.enabled = block[1:]
            return Ack()
        if block[0] == POLL and self.pending:
            self.sent.append(self.pending[0])
            return Data(self.pending[0])
        return Ack()

    def acked(self, ok: bool) -> None:
        self.acks.append(ok)
        if ok and self.pending:
            self.pending.popleft()

    def control(self, action: str, args: dict[str, object], now: float) -> dict[str, object]:
        if action == "deposit":
            self.pending.append(bytes((0x40 | int(str(args.get("type", 0))), 0x05)))
            return {"queued": len(self.pending)}
        if action == "power_cycle":
            self.power_cycles += 1
            self.pending = deque([JUST_RESET])
            return {}
        raise ValueError(f"FakeChanger has no action {action!r}")

    def status(self) -> dict[str, object]:
        return {"pending": len(self.pending), "enabled": self.enabled.hex()}


class PlainPeripheral(SimPeripheral):
    """A reader-like device at 0x10 with no control actions at all (no power_cycle)."""

    addresses = (0x10,)

    def __init__(self) -> None:
        super().__init__()
        self.handled: list[bytes] = []

    def command_length(self, prefix: bytes) -> int | None:
        return 1

    def handle(self, block: bytes, now: float) -> SimAnswer:
        self.handled.append(block)
        return Ack()
