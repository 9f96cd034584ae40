"""Driver for smart cabinets speaking our own protocol (docs/cabinet-protocol.md)."""

from __future__ import annotations

from drivers.cabinet.driver import Cabinet, open_cabinet
from drivers.cabinet.errors import (
    CabinetBusyError,
    CabinetDriverError,
    CabinetNotAnsweringError,
    CabinetResetPendingError,
)
from protocols.cabinet.messages import CabinetStatus, Identity, SessionRecord
from protocols.cabinet.procedures import SessionVerdict

__all__ = [
    "Cabinet",
    "CabinetBusyError",
    "CabinetDriverError",
    "CabinetNotAnsweringError",
    "CabinetResetPendingError",
    "CabinetStatus",
    "Identity",
    "SessionRecord",
    "SessionVerdict",
    "open_cabinet",
]
