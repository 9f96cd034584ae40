"""The reader states of the cashless state machine (spec 5.3), shared by VMC and simulator."""

from __future__ import annotations

import enum

from protocols.mdb.errors import MdbError


class CashlessState(enum.Enum):
    """The reader's state as the VMC tracks it (spec 5.3), plus our SESSION_ENDING."""

    INACTIVE = "inactive"
    DISABLED = "disabled"
    ENABLED = "enabled"
    SESSION_IDLE = "session_idle"
    VEND = "vend"
    NEGATIVE_VEND = "negative_vend"
    REVALUE = "revalue"
    SESSION_ENDING = "session_ending"  # SESSION COMPLETE sent, END SESSION not seen yet


IN_SESSION = frozenset(
    {
        CashlessState.SESSION_IDLE,
        CashlessState.VEND,
        CashlessState.NEGATIVE_VEND,
        CashlessState.REVALUE,
        CashlessState.SESSION_ENDING,
    }
)
VENDING = frozenset({CashlessState.VEND, CashlessState.NEGATIVE_VEND})


class CashlessUsageError(MdbError):
    """The application asked for something the reader cannot do in its current state."""


# How a Level 2+ reader numbers its state in the CMD OUT OF SEQUENCE status byte.
STATUS_CODES = {
    CashlessState.INACTIVE: 1,
    CashlessState.DISABLED: 2,
    CashlessState.ENABLED: 3,
    CashlessState.SESSION_IDLE: 4,
    CashlessState.VEND: 5,
    CashlessState.REVALUE: 6,
    CashlessState.NEGATIVE_VEND: 7,
}
