from __future__ import annotations

import pytest

from protocols.dispense.messages import BoardFlags, Fault, VendRecord, VendState
from protocols.dispense.results import (
    Delivery,
    VendOutcome,
    VendResult,
    delivery,
    result_of_record,
    takes_slot_out_of_service,
)


@pytest.mark.parametrize(
    ("outcome", "money", "out_of_service"),
    [
        (VendOutcome.DISPENSED, Delivery.DELIVERED, False),
        (VendOutcome.NOT_DROPPED, Delivery.NOT_DELIVERED, True),
        (VendOutcome.JAM, Delivery.NOT_DELIVERED, True),
        (VendOutcome.EMPTY, Delivery.NOT_DELIVERED, True),
        (VendOutcome.MOTOR_NOT_HOME, Delivery.NOT_DELIVERED, True),
        (VendOutcome.OVER_CURRENT, Delivery.NOT_DELIVERED, True),
        (VendOutcome.INVALID_SLOT, Delivery.NOT_DELIVERED, True),
        (VendOutcome.BOARD_TIMEOUT, Delivery.UNRESOLVED, False),
        (VendOutcome.UNKNOWN, Delivery.UNRESOLVED, False),
    ],
)
def test_every_outcome_has_a_money_rule(
    outcome: VendOutcome, money: Delivery, out_of_service: bool
) -> None:
    assert delivery(outcome) is money
    assert takes_slot_out_of_service(outcome) is out_of_service


def _done(fault: Fault, dropped: bool) -> VendRecord:
    return VendRecord(7, VendState.DONE, 12, fault, dropped, 3, BoardFlags.NONE)


def test_the_drop_sensor_decides_delivery_even_beside_a_fault() -> None:
    result = result_of_record(_done(Fault.MOTOR_NOT_HOME, dropped=True))
    assert result.outcome is VendOutcome.DISPENSED
    assert result.delivered
    assert result.out_of_service  # the motor still needs a person


def test_a_finished_vend_without_drop_is_never_a_sale() -> None:
    result = result_of_record(_done(Fault.NONE, dropped=False))
    assert result.delivery is Delivery.NOT_DELIVERED


def test_only_done_records_have_a_verdict() -> None:
    record = VendRecord(
        7,
        VendState.IN_PROGRESS,
        12,
        Fault.NONE,
        dropped=False,
        boot_count=3,
        board_flags=BoardFlags.BUSY,
    )
    with pytest.raises(ValueError, match="IN_PROGRESS"):
        result_of_record(record)


def test_describe_is_plain_json() -> None:
    described = VendResult(9, 4, VendOutcome.JAM, Fault.JAM, 2).describe()
    assert described["outcome"] == "jam"
    assert described["delivery"] == "not_delivered"
    assert described["out_of_service"] is True
