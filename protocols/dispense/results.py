"""What a vend's outcome means for the customer's money and for the selection.

The drop sensor is the authority on delivery: a record that says "dropped" is a
sale even if the motor also reported a fault (the fault still takes the selection
out of service). Anything the board cannot vouch for is UNKNOWN or BOARD_TIMEOUT
and must be resolved later with QUERY VEND, never guessed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.dispense.messages import Fault, VendRecord, VendState


class VendOutcome(enum.Enum):
    DISPENSED = "dispensed"
    NOT_DROPPED = "not_dropped"  # motor turned, the drop sensor saw nothing
    JAM = "jam"
    EMPTY = "empty"
    MOTOR_NOT_HOME = "motor_not_home"
    OVER_CURRENT = "over_current"
    INVALID_SLOT = "invalid_slot"
    BOARD_TIMEOUT = "board_timeout"  # the board still reported "in progress" at our deadline
    UNKNOWN = "unknown"  # the board lost its memory (reset) and cannot say


class Delivery(enum.Enum):
    """What the vend session does with the money."""

    DELIVERED = "delivered"  # record the sale, VEND SUCCESS
    NOT_DELIVERED = "not_delivered"  # VEND FAILURE / refund or keep cash credit
    UNRESOLVED = "unresolved"  # hold the money; resolve with QUERY VEND before deciding


_DELIVERY = {
    VendOutcome.DISPENSED: Delivery.DELIVERED,
    VendOutcome.BOARD_TIMEOUT: Delivery.UNRESOLVED,
    VendOutcome.UNKNOWN: Delivery.UNRESOLVED,
}

# A hanging product (NOT_DROPPED) also needs a person: the next turn could drop two.
_OUT_OF_SERVICE = frozenset(
    {
        VendOutcome.NOT_DROPPED,
        VendOutcome.JAM,
        VendOutcome.EMPTY,
        VendOutcome.MOTOR_NOT_HOME,
        VendOutcome.OVER_CURRENT,
        VendOutcome.INVALID_SLOT,
    }
)

_FAULT_OUTCOME = {
    Fault.NO_DROP: VendOutcome.NOT_DROPPED,
    Fault.JAM: VendOutcome.JAM,
    Fault.EMPTY: VendOutcome.EMPTY,
    Fault.MOTOR_NOT_HOME: VendOutcome.MOTOR_NOT_HOME,
    Fault.OVER_CURRENT: VendOutcome.OVER_CURRENT,
    Fault.INVALID_SLOT: VendOutcome.INVALID_SLOT,
}


def delivery(outcome: VendOutcome) -> Delivery:
    return _DELIVERY.get(outcome, Delivery.NOT_DELIVERED)


def takes_slot_out_of_service(outcome: VendOutcome) -> bool:
    """True if the selection must not be sold again until someone services it."""
    return outcome in _OUT_OF_SERVICE


def outcome_of_fault(fault: Fault) -> VendOutcome:
    if fault is Fault.NONE:
        # A finished vend with no fault and no drop: the board's own rule is to say
        # NO_DROP, so a board that does not is treated as "not dropped", not as a sale.
        return VendOutcome.NOT_DROPPED
    return _FAULT_OUTCOME[fault]


@dataclass(frozen=True, slots=True)
class VendResult:
    """The controller's verdict on one vend id."""

    vend_id: int
    motor: int | None
    outcome: VendOutcome
    fault: Fault = Fault.NONE  # a motor fault seen even when the product dropped
    board_boot: int | None = None

    @property
    def delivery(self) -> Delivery:
        return delivery(self.outcome)

    @property
    def delivered(self) -> bool:
        return self.outcome is VendOutcome.DISPENSED

    @property
    def out_of_service(self) -> bool:
        """The selection goes out of service: a failed vend, or a fault beside a drop."""
        if takes_slot_out_of_service(self.outcome):
            return True
        return self.fault not in (Fault.NONE, Fault.NO_DROP)

    def describe(self) -> dict[str, object]:
        return {
            "vend_id": self.vend_id,
            "motor": self.motor,
            "outcome": self.outcome.value,
            "delivery": self.delivery.value,
            "fault": self.fault.name.lower(),
            "out_of_service": self.out_of_service,
            "board_boot": self.board_boot,
        }


def result_of_record(record: VendRecord) -> VendResult:
    """Verdict for a DONE record (the caller handles the other states)."""
    if record.state is not VendState.DONE:
        raise ValueError(f"record for vend id {record.vend_id} is {record.state.name}, not DONE")
    if record.dropped:
        outcome = VendOutcome.DISPENSED
    else:
        outcome = outcome_of_fault(record.fault)
    return VendResult(record.vend_id, record.motor, outcome, record.fault, record.boot_count)
