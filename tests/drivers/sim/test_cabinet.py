"""The simulated cabinet's firmware, spoken to in frames and decoded requests."""

from __future__ import annotations

import pytest

from drivers.sim.cabinet import SimCabinet, stocked_shelves
from protocols.cabinet.codec import decode_response, encode_request
from protocols.cabinet.messages import (
    AcknowledgeReset,
    CabinetFlags,
    CabinetStatus,
    DoorState,
    ErrorCode,
    ErrorReply,
    EventKind,
    Events,
    GetStatus,
    LockState,
    QuerySession,
    ReadEvents,
    ReadInventory,
    ReadSessionReport,
    Request,
    Response,
    SessionRecord,
    SessionState,
    ShelfInventory,
    ShelfReport,
    ShelfStatus,
    Unlock,
)
from protocols.framed.frames import Frame, FrameDecoder, encode_frame


def _ready(rfid: bool = False) -> SimCabinet:
    cabinet = SimCabinet(stocked_shelves(4, 5, rfid=rfid))
    cabinet.handle(AcknowledgeReset(cabinet.boot_count), 0.0)
    return cabinet


def _status(cabinet: SimCabinet, now: float = 0.0) -> CabinetStatus:
    answer = cabinet.handle(GetStatus(), now)
    assert isinstance(answer, CabinetStatus)
    return answer


def _record(cabinet: SimCabinet, request: Request, now: float = 0.0) -> SessionRecord:
    answer = cabinet.handle(request, now)
    assert isinstance(answer, SessionRecord), answer
    return answer


def _report(cabinet: SimCabinet, session: int, shelf: int) -> ShelfReport:
    answer = cabinet.handle(ReadSessionReport(session, shelf), 0.0)
    assert isinstance(answer, ShelfReport), answer
    return answer


def test_power_up_is_locked_and_refuses_unlock_until_acknowledged() -> None:
    cabinet = SimCabinet(boot_count=9)
    status = _status(cabinet)
    assert (status.boot_count, status.was_reset, status.lock) == (10, True, LockState.LOCKED)
    assert cabinet.handle(Unlock(1, 30, 60), 0.0) == ErrorReply(0x03, ErrorCode.RESET_PENDING)
    cabinet.handle(AcknowledgeReset(10), 0.0)
    assert _record(cabinet, Unlock(1, 30, 60)).state is SessionState.UNLOCKED
    assert _status(cabinet).lock is LockState.UNLOCKED


def test_a_visit_is_reported_per_shelf_in_grams() -> None:
    cabinet = _ready()
    _record(cabinet, Unlock(3, 30, 60))
    with pytest.raises(ValueError, match="closed"):
        cabinet.control("take", {"shelf": 0}, 1.0)
    cabinet.control("open_door", {}, 1.0)
    cabinet.control("take", {"shelf": 0, "count": 2}, 2.0)
    cabinet.control("take", {"shelf": 1}, 2.0)
    cabinet.control("put_back", {"shelf": 0, "count": 1}, 3.0)
    cabinet.control("put_back", {"shelf": 1, "to_shelf": 2}, 3.0)
    assert cabinet.handle(ReadSessionReport(3, 0), 3.0) == ErrorReply(0x07, ErrorCode.NOT_READY)
    cabinet.control("close_door", {}, 4.0)
    record = _record(cabinet, QuerySession(3), 5.0)
    assert (record.state, record.report_ready, record.shelves_changed) == (
        SessionState.CLOSED, True, 3,
    )  # fmt: skip
    cola, water, sandwich = (_report(cabinet, 3, s) for s in range(3))
    assert cola.weight_before_g - cola.weight_after_g == 355
    assert water.weight_before_g - water.weight_after_g == 520
    assert sandwich.weight_after_g - sandwich.weight_before_g == 520
    assert cola.status == ShelfStatus.WEIGHT_VALID
    assert _status(cabinet).lock is LockState.LOCKED


def test_open_window_expires_and_the_lock_re_engages() -> None:
    cabinet = _ready()
    _record(cabinet, Unlock(4, 30, 60), 100.0)
    assert _record(cabinet, QuerySession(4), 129.0).state is SessionState.UNLOCKED
    assert _record(cabinet, QuerySession(4), 130.0).state is SessionState.EXPIRED
    with pytest.raises(ValueError, match="locked"):
        cabinet.control("open_door", {}, 131.0)
    events = cabinet.handle(ReadEvents(cabinet.boot_count), 131.0)
    assert isinstance(events, Events)
    assert [e.kind for e in events.events] == [EventKind.POWER_UP, EventKind.RELOCKED]


def test_door_held_open_by_time_and_forced_door_is_tamper() -> None:
    cabinet = _ready()
    _record(cabinet, Unlock(5, 30, 60), 0.0)
    cabinet.control("open_door", {}, 1.0)
    assert _status(cabinet, 60.9).door is DoorState.OPEN
    assert _status(cabinet, 61.0).door is DoorState.HELD_OPEN
    cabinet.control("close_door", {}, 70.0)
    cabinet.control("open_door", {"force": True}, 80.0)
    status = _status(cabinet, 80.0)
    assert CabinetFlags.TAMPER in status.flags
    assert status.door is DoorState.OPEN
    assert cabinet.handle(Unlock(6, 30, 60), 80.0) == ErrorReply(0x03, ErrorCode.DOOR_OPEN)


def test_staff_move_a_stray_back_between_sessions_and_the_board_says_so() -> None:
    cabinet = _ready()
    _record(cabinet, Unlock(5, 30, 60), 0.0)
    cabinet.control("open_door", {}, 1.0)
    cabinet.control("take", {"shelf": 0}, 1.0)
    cabinet.control("put_back", {"shelf": 0, "to_shelf": 1}, 1.0)
    with pytest.raises(ValueError, match="no session open"):
        cabinet.control("move", {"shelf": 1, "to_shelf": 0, "sku": "COLA"}, 1.0)
    cabinet.control("close_door", {}, 2.0)
    cabinet.control("move", {"shelf": 1, "to_shelf": 0, "sku": "COLA"}, 3.0)
    shelves = [{i.sku: len(s.items) for i in s.items} for s in cabinet.shelves[:2]]
    assert shelves == [{"COLA": 5}, {"WATER": 5}]
    events = cabinet.handle(ReadEvents(cabinet.boot_count), 3.0)
    assert isinstance(events, Events)
    assert [(e.kind, e.session_id) for e in events.events][-2:] == [
        (EventKind.DOOR_OPENED, None),
        (EventKind.DOOR_CLOSED, None),
    ]
    assert CabinetFlags.TAMPER not in _status(cabinet, 3.0).flags
    with pytest.raises(ValueError, match="holds 0 COLA items, cannot move 1"):
        cabinet.control("move", {"shelf": 1, "to_shelf": 0, "sku": "COLA"}, 4.0)


def test_rfid_tags_are_paged_and_a_sensor_fault_marks_the_report() -> None:
    cabinet = SimCabinet(stocked_shelves(2, 8, rfid=True))
    cabinet.handle(AcknowledgeReset(cabinet.boot_count), 0.0)
    first = cabinet.handle(ReadInventory(0, 0), 0.0)
    second = cabinet.handle(ReadInventory(0, 1), 0.0)
    assert isinstance(first, ShelfInventory)
    assert isinstance(second, ShelfInventory)
    assert (first.tag_count, len(first.tags), len(second.tags)) == (8, 6, 2)
    _record(cabinet, Unlock(9, 30, 60))
    cabinet.control("open_door", {}, 0.0)
    cabinet.control("sensor_fault", {"shelf": 1}, 0.0)
    cabinet.control("take", {"shelf": 1}, 0.0)
    cabinet.control("close_door", {}, 0.0)
    report = _report(cabinet, 9, 1)
    assert ShelfStatus.WEIGHT_FAULT in report.status
    assert ShelfStatus.WEIGHT_VALID not in report.status
    assert report.confidence == 0
    assert report.removed_count == 1


def test_events_are_acknowledged_by_boot_and_sequence() -> None:
    cabinet = _ready()
    _record(cabinet, Unlock(1, 30, 60))
    cabinet.control("open_door", {}, 0.0)
    cabinet.control("close_door", {}, 0.0)
    boot = cabinet.boot_count
    first = cabinet.handle(ReadEvents(boot), 0.0)
    assert isinstance(first, Events)
    assert [e.seq for e in first.events] == [1, 2, 3]
    assert first.events[1].session_id == 1
    stale = cabinet.handle(ReadEvents((boot + 1) & 0xFFFF, 3), 0.0)
    assert isinstance(stale, Events)
    assert len(stale.events) == 3  # an ack for another boot drops nothing
    after = cabinet.handle(ReadEvents(boot, 2), 0.0)
    assert isinstance(after, Events)
    assert [e.seq for e in after.events] == [3]


def _answers(raw: bytes) -> list[Response]:
    return [decode_response(f.code, f.payload) for f in FrameDecoder().feed(raw)]


@pytest.mark.parametrize(
    ("code", "payload", "error"),
    [
        (0x0B, b"", ErrorCode.UNKNOWN_COMMAND),
        (0x03, b"\x01", ErrorCode.BAD_LENGTH),
        (0x03, bytes(8), ErrorCode.BAD_ARGUMENT),
    ],
)
def test_bad_requests_get_an_error_frame(code: int, payload: bytes, error: ErrorCode) -> None:
    cabinet = _ready()
    raw = cabinet.receive(encode_frame(Frame(0x20, 4, code, payload)), 0.0)
    assert _answers(raw) == [ErrorReply(code, error)]


def test_other_addresses_echoes_and_unplugged_get_no_answer() -> None:
    cabinet = _ready()
    code, payload = encode_request(GetStatus())
    assert cabinet.receive(encode_frame(Frame(0x01, 0, code, payload)), 0.0) == b""
    assert cabinet.receive(encode_frame(Frame(0x20, 0, 0x82, bytes(15))), 0.0) == b""
    cabinet.control("unplug", {}, 0.0)
    assert cabinet.receive(encode_frame(Frame(0x20, 0, code, payload)), 0.0) == b""


@pytest.mark.parametrize(
    ("action", "args", "problem"),
    [
        ("explode", {}, "no action 'explode'"),
        ("take", {"shelf": 9}, "outside 0..3"),
        ("sensor_fault", {"shelf": 0, "sensor": "laser"}, "sensor must be"),
        ("close_door", {}, "already closed"),
    ],
)
def test_bad_control_requests_name_the_problem(
    action: str, args: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        _ready().control(action, args, 0.0)
