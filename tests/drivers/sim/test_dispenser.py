"""The simulated board's firmware, spoken to in frames and decoded requests."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.sim.dispenser import SimDispenserBoard
from protocols.dispense.messages import (
    AcknowledgeReset,
    BoardStatus,
    ErrorCode,
    ErrorReply,
    Fault,
    GetStatus,
    QueryVend,
    ResetAcknowledged,
    ResetFault,
    Response,
    RunMotor,
    VendRecord,
    VendState,
    decode_response,
    encode_request,
)
from protocols.framed.frames import Frame, FrameDecoder, encode_frame


def _frame(request: GetStatus | RunMotor | QueryVend | AcknowledgeReset, seq: int = 0) -> bytes:
    code, payload = encode_request(request)
    return encode_frame(Frame(1, seq, code, payload))


def _answers(raw: bytes) -> list[Response]:
    return [decode_response(f.code, f.payload) for f in FrameDecoder().feed(raw)]


def _record(board: SimDispenserBoard, request: RunMotor | QueryVend, now: float) -> VendRecord:
    answer = board.handle(request, now)
    assert isinstance(answer, VendRecord)
    return answer


def _ready(**kwargs: float) -> SimDispenserBoard:
    board = SimDispenserBoard(vend_time=kwargs.get("vend_time", 1.0))
    board.handle(AcknowledgeReset(board.boot_count), 0.0)
    return board


def test_power_up_sets_the_reset_flag_and_refuses_run() -> None:
    board = SimDispenserBoard(boot_count=41)
    status = board.handle(GetStatus(), 0.0)
    assert isinstance(status, BoardStatus)
    assert (status.boot_count, status.was_reset, status.motors) == (42, True, 60)
    assert board.handle(RunMotor(1, 1), 0.0) == ErrorReply(0x02, ErrorCode.RESET_PENDING)
    assert board.handle(AcknowledgeReset(41), 0.0) == ErrorReply(0x05, ErrorCode.STALE_BOOT)
    assert board.handle(AcknowledgeReset(42), 0.0) == ResetAcknowledged(42)
    assert _record(board, RunMotor(1, 1), 0.0).state is VendState.IN_PROGRESS


def test_motor_runs_for_the_vend_time_then_reports_the_drop() -> None:
    board = _ready(vend_time=1.5)
    assert _record(board, RunMotor(10, 5), 100.0).state is VendState.IN_PROGRESS
    assert _record(board, QueryVend(5), 101.0).state is VendState.IN_PROGRESS
    done = _record(board, QueryVend(5), 101.5)
    assert (done.state, done.dropped, done.fault) == (VendState.DONE, True, Fault.NONE)
    assert board.stock[10] == 4


def test_slow_motor_takes_longer() -> None:
    board = _ready(vend_time=1.0)
    board.control("fault", {"motor": 3, "fault": "slow", "seconds": 2.0}, 0.0)
    _record(board, RunMotor(3, 9), 0.0)
    assert _record(board, QueryVend(9), 2.5).state is VendState.IN_PROGRESS
    assert _record(board, QueryVend(9), 3.0).state is VendState.DONE


def test_once_fault_clears_itself() -> None:
    board = _ready()
    board.control("fault", {"motor": 4, "fault": "no_drop", "once": True}, 0.0)
    _record(board, RunMotor(4, 1), 0.0)
    assert _record(board, QueryVend(1), 10.0).fault is Fault.NO_DROP
    _record(board, RunMotor(4, 2), 10.0)  # NO_DROP does not latch: the motor is fine
    assert _record(board, QueryVend(2), 20.0).dropped


def test_power_cycle_forgets_vends_but_keeps_stock() -> None:
    board = _ready()
    _record(board, RunMotor(2, 70), 0.0)
    board.control("power_cycle", {"dropped": True}, 0.5)
    assert board.stock[2] == 4
    assert board.status()["reset_pending"] is True
    unseen = _record(board, QueryVend(70, void_if_unseen=True), 1.0)
    # No void while the reset is pending: the id may have run before the cut.
    assert unseen.state is VendState.NOT_SEEN
    assert unseen.board_was_reset


def test_memory_keeps_the_last_n_vends() -> None:
    board = SimDispenserBoard(memory=3, vend_time=0.1)
    board.handle(AcknowledgeReset(board.boot_count), 0.0)
    for vend_id in range(1, 6):
        _record(board, RunMotor(0, vend_id), float(vend_id))
    assert _record(board, QueryVend(2), 10.0).state is VendState.NOT_SEEN
    assert _record(board, QueryVend(5), 10.0).state is VendState.DONE


def test_reset_fault_for_every_motor() -> None:
    board = _ready()
    for motor in (1, 2):
        board.control("fault", {"motor": motor, "fault": "jam", "once": True}, 0.0)
    _record(board, RunMotor(1, 1), 0.0)
    _record(board, RunMotor(2, 2), 5.0)
    status = board.handle(GetStatus(), 10.0)
    assert isinstance(status, BoardStatus)
    assert [(f.motor, f.fault) for f in status.faults] == [(1, Fault.JAM), (2, Fault.JAM)]
    board.handle(ResetFault(None), 10.0)
    assert board.latched == {}


def test_answers_carry_the_request_seq() -> None:
    board = _ready()
    raw = board.receive(_frame(GetStatus(), seq=0x3C), 0.0)
    [frame] = FrameDecoder().feed(raw)
    assert (frame.seq, frame.code) == (0x3C, 0x81)


@pytest.mark.parametrize(
    ("code", "payload", "error"),
    [
        (0x07, b"", ErrorCode.UNKNOWN_COMMAND),
        (0x02, b"\x01", ErrorCode.BAD_LENGTH),
        (0x02, bytes.fromhex("01 00 00 00 00"), ErrorCode.BAD_ARGUMENT),
    ],
)
def test_bad_requests_get_an_error_naming_the_problem(
    code: int, payload: bytes, error: ErrorCode
) -> None:
    board = _ready()
    answers = _answers(board.receive(encode_frame(Frame(1, 0, code, payload)), 0.0))
    assert answers == [ErrorReply(code, error)]


def test_echo_other_boards_and_unplugged_get_no_answer() -> None:
    board = _ready()
    code, payload = encode_request(GetStatus())
    assert board.receive(encode_frame(Frame(1, 0, 0x81, bytes(13))), 0.0) == b""
    assert board.receive(encode_frame(Frame(2, 0, code, payload)), 0.0) == b""
    board.control("unplug", {}, 0.0)
    assert board.receive(_frame(GetStatus()), 0.0) == b""
    board.control("plug", {}, 0.0)
    assert len(_answers(board.receive(_frame(GetStatus()), 0.0))) == 1


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_garbage_then_a_request_still_gets_its_answer(junk: bytes) -> None:
    board = _ready()
    board.receive(junk, 0.0)
    # Whatever the junk left half-parsed, a few requests later the board answers.
    answers: list[Response] = []
    for seq in range(30):  # enough bytes to outlast the longest half-frame (103 bytes)
        answers += _answers(board.receive(_frame(GetStatus(), seq), 0.0))
    assert any(isinstance(a, BoardStatus) for a in answers)


@pytest.mark.parametrize(
    ("action", "args", "problem"),
    [
        ("explode", {}, "no action 'explode'"),
        ("fault", {"motor": 3, "fault": "fire"}, "unknown fault 'fire'"),
        ("fault", {"motor": 60, "fault": "jam"}, "motor 60 outside 0..59"),
        ("stock", {"motor": 1, "count": -1}, "'count' must be an integer >= 0"),
    ],
)
def test_bad_control_requests_name_the_problem(
    action: str, args: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        SimDispenserBoard().control(action, args, 0.0)


def test_control_status_is_plain_json() -> None:
    board = _ready()
    board.control("stock", {"motor": 5, "count": 9}, 0.0)
    status = json.loads(json.dumps(board.control("status", {}, 0.0)))
    assert status["stock"]["5"] == 9
    assert status["boot_count"] == 1


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [({"motors": 0}, "motors"), ({"stock": -1}, "stock"), ({"vend_time": 0.0}, "vend time")],
)
def test_bad_board_parameters(kwargs: dict[str, float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SimDispenserBoard(**kwargs)  # type: ignore[arg-type]
