"""Client + procedures against the simulated board's firmware on a fake clock."""

from __future__ import annotations

import pytest

from drivers.sim.dispenser import SimDispenserBoard
from protocols.dispense.client import ClientTiming, DispenserClient, NoAnswer
from protocols.dispense.errors import (
    BoardBusyError,
    BoardResetPendingError,
    ClientError,
    ProcedureError,
)
from protocols.dispense.messages import (
    BoardFlags,
    BoardStatus,
    ErrorCode,
    ErrorReply,
    Fault,
    GetStatus,
    QueryVend,
    ResetFault,
    RunMotor,
    VendRecord,
    VendState,
    encode_response,
)
from protocols.dispense.procedures import VendProcedure
from protocols.dispense.results import Delivery, VendOutcome
from protocols.framed.frames import Frame, encode_frame
from tests.protocols.dispense.harness import Wire, ready_board


def _turns(board: SimDispenserBoard, motor: int) -> int:
    return board.counters.turns.get(motor, 0)


def test_vend_success_takes_one_product() -> None:
    board = ready_board(stock=3)
    result = Wire(board).vend(12, 1001)
    assert result.outcome is VendOutcome.DISPENSED
    assert result.delivery is Delivery.DELIVERED
    assert (result.vend_id, result.motor, result.board_boot) == (1001, 12, board.boot_count)
    assert board.stock[12] == 2
    assert _turns(board, 12) == 1


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ("jam", VendOutcome.JAM),
        ("empty", VendOutcome.EMPTY),
        ("motor_not_home", VendOutcome.MOTOR_NOT_HOME),
        ("over_current", VendOutcome.OVER_CURRENT),
        ("no_drop", VendOutcome.NOT_DROPPED),
    ],
)
def test_each_fault_maps_to_its_outcome(fault: str, outcome: VendOutcome) -> None:
    board = ready_board(stock=3)
    wire = Wire(board)
    board.control("fault", {"motor": 7, "fault": fault}, wire.now)
    result = wire.vend(7, 55)
    assert result.outcome is outcome
    assert result.delivery is Delivery.NOT_DELIVERED
    assert result.out_of_service
    assert board.stock[7] == 3  # nothing left the machine
    # The machine stays up: another selection still sells.
    assert wire.vend(8, 56).outcome is VendOutcome.DISPENSED


def test_invalid_slot() -> None:
    board = ready_board(motors=60)
    result = Wire(board).vend(75, 3)
    assert result.outcome is VendOutcome.INVALID_SLOT
    assert result.out_of_service
    assert board.counters.turns == {}


def test_sold_out_column_reports_empty() -> None:
    board = ready_board(stock=1)
    wire = Wire(board)
    assert wire.vend(4, 1).outcome is VendOutcome.DISPENSED
    assert wire.vend(4, 2).outcome is VendOutcome.EMPTY
    assert _turns(board, 4) == 1


def test_a_jammed_motor_stays_out_until_serviced() -> None:
    board = ready_board()
    wire = Wire(board)
    board.control("fault", {"motor": 3, "fault": "jam", "once": True}, wire.now)
    assert wire.vend(3, 10).outcome is VendOutcome.JAM
    # Latched: the board refuses to turn it again, even though the jam was "once".
    assert wire.vend(3, 11).outcome is VendOutcome.JAM
    assert _turns(board, 3) == 1
    wire.answer(ResetFault(3))
    assert wire.vend(3, 12).outcome is VendOutcome.DISPENSED


def test_product_dropped_despite_motor_not_home_is_a_sale() -> None:
    board = ready_board(stock=2)
    wire = Wire(board)
    board.control("fault", {"motor": 9, "fault": "motor_not_home", "drops": True}, wire.now)
    result = wire.vend(9, 70)
    assert result.outcome is VendOutcome.DISPENSED
    assert result.fault is Fault.MOTOR_NOT_HOME
    assert result.out_of_service
    assert board.stock[9] == 1


def test_repeated_run_never_turns_the_motor_twice() -> None:
    board = ready_board(stock=5)
    wire = Wire(board)
    first = wire.answer(RunMotor(2, 42))
    again = wire.answer(RunMotor(2, 42))  # while in progress
    assert isinstance(first, VendRecord)
    assert isinstance(again, VendRecord)
    assert again.state is VendState.IN_PROGRESS
    assert wire.vend(2, 42).outcome is VendOutcome.DISPENSED  # and after it finished
    assert _turns(board, 2) == 1
    assert board.stock[2] == 4


def test_lost_answer_is_retried_and_gets_the_stored_result() -> None:
    board = ready_board(stock=5)
    wire = Wire(board)
    board.control("drop_answers", {"count": 1}, wire.now)
    result = wire.vend(6, 900)
    assert result.outcome is VendOutcome.DISPENSED
    assert board.counters.answers_dropped == 1
    assert _turns(board, 6) == 1
    assert board.stock[6] == 4


def test_lost_request_is_retried() -> None:
    board = ready_board()
    wire = Wire(board)
    wire.lose_requests = 2
    assert isinstance(wire.answer(GetStatus()), BoardStatus)
    assert wire.last is not None
    assert wire.last.attempts == 3


def test_query_after_controller_restart() -> None:
    board = ready_board(stock=5)
    wire = Wire(board)
    wire.answer(RunMotor(1, 77))  # ...and the controller dies here, mid-vend
    reborn = Wire(board, DispenserClient(seq=200))
    reborn.now = wire.now
    result = reborn.query(77)
    assert result is not None
    assert result.outcome is VendOutcome.DISPENSED
    assert _turns(board, 1) == 1


def test_unseen_vend_id_is_voided_and_can_never_run() -> None:
    board = ready_board()
    wire = Wire(board)
    assert wire.query(500) is None
    with pytest.raises(ProcedureError, match="voided"):
        wire.vend(1, 500)  # a RUN that was stuck somewhere arrives late
    assert board.counters.turns == {}


def test_board_power_cycle_mid_vend_is_unknown_never_guessed() -> None:
    board = ready_board(stock=5)
    wire = Wire(board)
    boot = board.boot_count
    procedure = VendProcedure(5, 31, wire.now, 10.0, 0.2)
    first = wire.answer(procedure.start().request)
    step = procedure.on_answer(first, wire.now)
    board.power_cycle(wire.now, dropped=True)  # the product fell just before the cut
    result = wire.run(procedure, step)
    assert result is not None
    assert result.outcome is VendOutcome.UNKNOWN
    assert result.delivery is Delivery.UNRESOLVED
    # The board shows it was reset, and says so for the vend id too.
    status = wire.answer(GetStatus())
    assert isinstance(status, BoardStatus)
    assert status.was_reset
    assert status.boot_count == boot + 1
    resolved = wire.query(31)
    assert resolved is not None
    assert resolved.outcome is VendOutcome.UNKNOWN
    # No new vend until someone acknowledged the reset.
    with pytest.raises(BoardResetPendingError):
        wire.vend(5, 32)
    wire.acknowledge()
    # Even with the flag cleared, the journaled boot count keeps the old id ambiguous.
    late = wire.query(31, since_boot=boot)
    assert late is not None
    assert late.outcome is VendOutcome.UNKNOWN
    assert wire.vend(5, 32).outcome is VendOutcome.DISPENSED


def test_slow_vend_past_the_deadline_is_board_timeout() -> None:
    board = ready_board()
    wire = Wire(board)
    board.control("fault", {"motor": 0, "fault": "slow", "seconds": 30.0}, wire.now)
    result = wire.vend(0, 8, timeout=5.0)
    assert result.outcome is VendOutcome.BOARD_TIMEOUT
    assert result.delivery is Delivery.UNRESOLVED
    wire.now += 40.0
    settled = wire.query(8)
    assert settled is not None
    assert settled.outcome is VendOutcome.DISPENSED


def test_board_busy_with_another_vend() -> None:
    board = ready_board()
    wire = Wire(board)
    wire.answer(RunMotor(1, 1))
    with pytest.raises(BoardBusyError):
        wire.vend(2, 2)


def test_silent_board_gives_no_answer_after_every_retry() -> None:
    board = ready_board()
    board.control("unplug", {}, 0.0)
    wire = Wire(board, DispenserClient(timing=ClientTiming(retries=2)))
    answer = wire.transact(GetStatus())
    assert isinstance(answer, NoAnswer)
    assert answer.attempts == 3
    assert not wire.client.busy


def test_late_duplicate_and_foreign_frames_are_ignored() -> None:
    client = DispenserClient()
    client.send(QueryVend(5), 0.0)  # seq 0
    record = VendRecord(
        5,
        VendState.NOT_SEEN,
        None,
        Fault.NONE,
        dropped=False,
        boot_count=1,
        board_flags=BoardFlags.NONE,
    )
    payload = encode_response(record)
    stale = encode_frame(Frame(1, 9, 0x83, payload))  # another seq
    other_board = encode_frame(Frame(2, 0, 0x83, payload))
    echo = encode_frame(Frame(1, 0, 0x03, bytes(5)))  # our own request on RS-485
    wrong_code = encode_frame(Frame(1, 0, 0x81, bytes(13)))
    assert client.receive(stale + other_board + echo + wrong_code, 0.01) is None
    assert client.counters.ignored == 4
    good = encode_frame(Frame(1, 0, 0x83, payload))
    answered = client.receive(good + good, 0.02)
    assert answered is not None
    assert answered.response == record
    assert client.counters.ignored == 5  # the duplicate


def test_error_reply_for_another_request_is_ignored() -> None:
    client = DispenserClient()
    client.send(GetStatus(), 0.0)
    foreign = encode_frame(Frame(1, 0, 0xFF, encode_response(ErrorReply(2, ErrorCode.BUSY))))
    assert client.receive(foreign, 0.01) is None
    mine = encode_frame(Frame(1, 0, 0xFF, encode_response(ErrorReply(1, ErrorCode.BUSY))))
    assert client.receive(mine, 0.02) is not None


def test_one_request_in_flight() -> None:
    client = DispenserClient()
    client.send(GetStatus(), 0.0)
    with pytest.raises(ClientError, match="still in flight"):
        client.send(GetStatus(), 0.0)


def test_retry_resends_the_same_frame_and_nothing_before_the_deadline() -> None:
    client = DispenserClient(timing=ClientTiming(response_timeout=0.25, retries=1))
    frame = client.send(RunMotor(1, 2), 10.0)
    assert client.on_timeout(10.1) is None
    assert client.on_timeout(10.25) == frame
    assert isinstance(client.on_timeout(10.5), NoAnswer)
