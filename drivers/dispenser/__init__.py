"""Driver for spiral/lift motor boards speaking our own protocol (docs/dispenser-protocol.md)."""

from __future__ import annotations

from drivers.dispenser.driver import Dispenser, open_dispenser
from drivers.dispenser.errors import (
    BoardBusyError,
    BoardNotAnsweringError,
    BoardResetPendingError,
    DispenserError,
)
from protocols.dispense.messages import BoardStatus
from protocols.dispense.results import Delivery, VendOutcome, VendResult

__all__ = [
    "BoardBusyError",
    "BoardNotAnsweringError",
    "BoardResetPendingError",
    "BoardStatus",
    "Delivery",
    "Dispenser",
    "DispenserError",
    "VendOutcome",
    "VendResult",
    "open_dispenser",
]
