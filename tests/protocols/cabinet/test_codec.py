"""Cabinet messages to bytes and back; garbage only ever raises our own errors."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.cabinet.codec import (
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    response_code,
)
from protocols.cabinet.errors import DecodeError, FieldError, FrameError
from protocols.cabinet.messages import (
    AcknowledgeReset,
    CabinetFlags,
    CabinetStatus,
    DoorState,
    ErrorCode,
    ErrorReply,
    Event,
    EventKind,
    Events,
    GetStatus,
    Identify,
    Identity,
    Lock,
    LockState,
    QuerySession,
    ReadEvents,
    ReadInventory,
    ReadSessionReport,
    RecordFlags,
    Request,
    ResetAcknowledged,
    Response,
    SensorKind,
    SessionRecord,
    SessionState,
    ShelfFault,
    ShelfFaultEntry,
    ShelfInventory,
    ShelfReport,
    ShelfStatus,
    TagChange,
    TagDirection,
    Unlock,
)
from protocols.framed.frames import MAX_PAYLOAD, Frame, FrameDecoder, decode_frame, encode_frame

TAG_A = "E28000010000000000000001"
TAG_B = "E28000020000000000000007"

REQUESTS: list[Request] = [
    Identify(),
    GetStatus(),
    Unlock(0x1234, open_window=30, held_open_limit=90),
    Lock(7),
    QuerySession(0xFFFFFFFF, void_if_unseen=True),
    ReadInventory(31, 2),
    ReadSessionReport(9, 3, 1),
    ReadEvents(boot_count=4, ack_through=65535),
    AcknowledgeReset(1),
]

RESPONSES: list[tuple[int, Response]] = [
    (0x01, Identity(1, 3, (SensorKind.WEIGHT, SensorKind.WEIGHT | SensorKind.RFID), "sim")),
    (
        0x02,
        CabinetStatus(
            2,
            CabinetFlags.RESET | CabinetFlags.SESSION_ACTIVE,
            DoorState.HELD_OPEN,
            LockState.UNLOCKED,
            active_session_id=5,
            last_session_id=5,
            pending_events=3,
            faults=(ShelfFaultEntry(1, ShelfFault.WEIGHT), ShelfFaultEntry(2, ShelfFault.RFID)),
        ),
    ),
    (0x02, CabinetStatus(1, CabinetFlags.NONE, DoorState.CLOSED, LockState.LOCKED)),
    (
        0x03,
        SessionRecord(
            5,
            SessionState.CLOSED,
            RecordFlags.REPORT_READY | RecordFlags.HELD_OPEN,
            2,
            1,
            CabinetFlags.NONE,
            DoorState.CLOSED,
        ),
    ),
    (
        0x05,
        SessionRecord(
            6, SessionState.NOT_SEEN, RecordFlags.NONE, 0, 2, CabinetFlags.RESET, DoorState.OPEN
        ),
    ),
    (
        0x06,
        ShelfInventory(
            0, ShelfStatus.WEIGHT_VALID | ShelfStatus.RFID_VALID, 1775, 2, 0, (TAG_A, TAG_B)
        ),
    ),
    (
        0x07,
        ShelfReport(
            5,
            1,
            ShelfStatus.WEIGHT_VALID | ShelfStatus.RFID_VALID,
            97,
            2600,
            2080,
            1,
            1,
            0,
            (TagChange(TagDirection.REMOVED, TAG_A), TagChange(TagDirection.ADDED, TAG_B)),
        ),
    ),
    (
        0x08,
        Events(
            3,
            0,
            (
                Event(1, EventKind.POWER_UP),
                Event(2, EventKind.SENSOR_FAULTED, shelf=3, session_id=9),
            ),
        ),
    ),
    (0x09, ResetAcknowledged(7)),
    (0x03, ErrorReply(0x03, ErrorCode.RESET_PENDING)),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_requests_round_trip_through_frames(request_: Request) -> None:
    code, payload = encode_request(request_)
    raw = encode_frame(Frame(0x20, 9, code, payload))
    [frame] = FrameDecoder().feed(raw)
    assert decode_request(frame.code, frame.payload) == request_


@pytest.mark.parametrize(("request_code", "response"), RESPONSES, ids=lambda r: str(r)[:30])
def test_responses_round_trip_through_frames(request_code: int, response: Response) -> None:
    code = response_code(response, request_code)
    raw = encode_frame(Frame(0x20, 1, code, encode_response(response)))
    frame = decode_frame(raw)
    assert frame.is_response
    assert decode_response(frame.code, frame.payload) == response


def test_unlock_layout_is_the_documented_one() -> None:
    code, payload = encode_request(Unlock(0x00001000, open_window=30, held_open_limit=60))
    assert (code, payload.hex(" ")) == (0x03, "00 00 10 00 00 1e 00 3c")


def test_describe_names_enums() -> None:
    described = RESPONSES[1][1].describe()
    assert described["door"] == "held_open"
    assert described["message"] == "CabinetStatus"


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: Unlock(0, 30, 60), "session id 0"),
        (lambda: Unlock(1, 0, 60), "open window 0"),
        (lambda: ReadInventory(32), "shelf 32"),
        (lambda: ShelfInventory(0, ShelfStatus.NONE, 0, 1, 0, ("e2800001",)), "24 upper-case"),
        (lambda: Event(0, EventKind.DOOR_OPENED), "event seq 0"),
        (
            lambda: SessionRecord(
                1,
                SessionState.OPEN,
                RecordFlags.REPORT_READY,
                0,
                1,
                CabinetFlags.NONE,
                DoorState.OPEN,
            ),
            "cannot have its report ready",
        ),
    ],
)
def test_bad_fields_are_field_errors(build: object, problem: str) -> None:
    with pytest.raises(FieldError, match=problem):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("code", "payload", "problem"),
    [
        (0x81, b"\x01\x00\x01\x00", "shelf count 0"),
        (0x81, b"\x01\x00\x01\x01\x04", "SensorKind"),
        (0x82, bytes(14), "at least 15"),
        (0x83, bytes(10), "expected 11"),
        (0x83, bytes.fromhex("00000001 09 00 00 0001 00 00"), "SessionState"),
        (0x86, bytes(8) + b"\x00", "not whole tags"),
        (0x88, bytes.fromhex("0001 00 01"), "expected 12"),
        (0xFF, b"\x03\x63", "ErrorCode"),
        (0x8A, b"", "unknown response code"),
    ],
)
def test_bad_payloads_name_the_problem(code: int, payload: bytes, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode_response(code, payload)


def test_bad_crc_is_a_frame_error_and_the_stream_resyncs() -> None:
    good = encode_frame(Frame(0x20, 3, 0x82, encode_response(RESPONSES[2][1])))
    damaged = bytearray(good)
    damaged[-1] ^= 0xFF
    with pytest.raises(FrameError, match="CRC"):
        decode_frame(bytes(damaged))
    decoder = FrameDecoder()
    assert decoder.feed(bytes(damaged) + good) == [decode_frame(good)]
    assert decoder.discarded == len(damaged)


@settings(max_examples=150)
@given(code=st.integers(0, 255), payload=st.binary(max_size=MAX_PAYLOAD))
def test_any_payload_decodes_or_raises_decode_error(code: int, payload: bytes) -> None:
    for decode in (decode_response, decode_request):
        with contextlib.suppress(DecodeError):
            decode(code, payload)


@settings(max_examples=100)
@given(st.binary(max_size=300))
def test_any_byte_stream_only_yields_valid_frames(data: bytes) -> None:
    decoder = FrameDecoder()
    for frame in decoder.feed(data):
        assert decode_frame(encode_frame(frame)) == frame


@settings(max_examples=100)
@given(
    request_=st.sampled_from(REQUESTS),
    flip=st.integers(0, 10_000),
    bit=st.integers(0, 7),
)
def test_a_flipped_bit_never_yields_a_different_request(
    request_: Request, flip: int, bit: int
) -> None:
    code, payload = encode_request(request_)
    raw = bytearray(encode_frame(Frame(0x20, 1, code, payload)))
    raw[flip % len(raw)] ^= 1 << bit
    for frame in FrameDecoder().feed(bytes(raw)):
        # CRC-16 catches every single-bit error: nothing decodes, or the original does.
        assert decode_request(frame.code, frame.payload) == request_


def test_every_example_in_the_protocol_document_decodes() -> None:
    doc = Path(__file__).resolve().parents[3] / "docs" / "cabinet-protocol.md"
    frames = [
        bytes.fromhex(" ".join(re.findall(r"\b[0-9a-f]{2}\b", line.split("  ")[0][1:])))
        for line in doc.read_text(encoding="utf-8").splitlines()
        if line.startswith(("→ a5", "← a5"))
    ]
    assert len(frames) >= 16
    for raw in frames:
        frame = decode_frame(raw)
        if frame.is_response:
            decode_response(frame.code, frame.payload)
        else:
            decode_request(frame.code, frame.payload)
