"""What the bill validator state machine reports to the application.

Only :class:`BillStacked` is credit. :class:`BillEscrowed` means the customer's bill
is held and can still come back; the application answers it with ``stack()`` or
``return_bill()``. Status problems (jam, cash box out...) are reported as the shared
:class:`protocols.mdb.events.DeviceFault` with the codes in :data:`FAULT_CODES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.mdb.bill.messages import (
    BillIdentification,
    BillRouting,
    BillSetup,
    StackerAnswer,
    StatusCode,
)
from protocols.mdb.events import MdbEvent
from protocols.mdb.message import Message
from protocols.money import Money

# Stable DeviceFault codes for the POLL statuses that need attention.
FAULT_CODES: dict[int, str] = {
    StatusCode.DEFECTIVE_MOTOR: "defective_motor",
    StatusCode.SENSOR_PROBLEM: "sensor_problem",
    StatusCode.ROM_CHECKSUM_ERROR: "rom_checksum_error",
    StatusCode.VALIDATOR_JAMMED: "validator_jammed",
    StatusCode.CASH_BOX_OUT_OF_POSITION: "cash_box_out_of_position",
    StatusCode.POSSIBLE_CREDITED_BILL_REMOVAL: "possible_credited_bill_removal",
}
# Faults the state machine raises itself rather than reading them from a status byte.
STACKER_FULL = "stacker_full"
CURRENCY_MISMATCH = "currency_mismatch"
BAD_SETUP = "bad_setup"
INVALID_ESCROW_REQUEST = "invalid_escrow_request"
ESCROW_OUTCOME_UNKNOWN = "escrow_outcome_unknown"
UNVALUED_BILL_STACKED = "unvalued_bill_stacked"


@dataclass(frozen=True, slots=True)
class BillValidatorInfo(Message):
    """What :class:`~protocols.mdb.events.DeviceOnline` carries for a bill validator."""

    setup: BillSetup
    identification: BillIdentification | None
    stacker: StackerAnswer | None


@dataclass(frozen=True, slots=True)
class BillEscrowed(MdbEvent):
    """A bill is held in escrow. Not credit yet: stack it or return it."""

    bill_type: int
    value: Money


@dataclass(frozen=True, slots=True)
class BillStacked(MdbEvent):
    """A bill reached the cash box (or the recycler): credit ``value`` now, exactly once."""

    bill_type: int
    value: Money


@dataclass(frozen=True, slots=True)
class BillReturned(MdbEvent):
    """An escrowed bill went back to the customer (asked for, timed out, or lost in a reset).

    ``value`` is None for a bill type the SETUP table gives no value.
    """

    bill_type: int
    value: Money | None
    reason: str = "returned"


@dataclass(frozen=True, slots=True)
class BillRejected(MdbEvent):
    """A bill was refused: ``unknown_bill``, ``disabled`` (type off), ``validator_disabled``
    (offered while acceptance was off; ``count`` attempts) or ``no_value``."""

    bill_type: int | None
    reason: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class EscrowedBillRemoved(MdbEvent):
    """Status 07: the customer pulled the escrowed bill back out. No credit."""

    bill_type: int | None
    value: Money | None


@dataclass(frozen=True, slots=True)
class StackerRead(MdbEvent):
    """A STACKER answer: shown when asked for, or when it changed."""

    full: bool
    count: int


@dataclass(frozen=True, slots=True)
class RecyclerBillMoved(MdbEvent):
    """A recycler moved a bill without customer credit (manual fill, dispense, transfer)."""

    bill_type: int
    routing: BillRouting
    value: Money | None
