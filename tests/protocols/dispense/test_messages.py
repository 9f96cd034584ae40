from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dispense.errors import DecodeError
from protocols.dispense.messages import (
    MAX_LISTED_FAULTS,
    AcknowledgeReset,
    BoardFlags,
    BoardStatus,
    ErrorCode,
    ErrorReply,
    Fault,
    FaultCleared,
    FieldError,
    GetStatus,
    MotorFault,
    QueryVend,
    Request,
    ResetAcknowledged,
    ResetFault,
    Response,
    RunMotor,
    VendRecord,
    VendState,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    response_code,
)
from protocols.framed.frames import MAX_PAYLOAD, Frame, FrameDecoder, decode_frame, encode_frame

motors = st.integers(0, 99)
vend_ids = st.integers(1, 0xFFFFFFFF)
boots = st.integers(0, 0xFFFF)
flags = st.sampled_from(list(BoardFlags))

requests: st.SearchStrategy[Request] = st.one_of(
    st.just(GetStatus()),
    st.builds(RunMotor, motors, vend_ids),
    st.builds(QueryVend, vend_ids, st.booleans()),
    st.builds(ResetFault, st.none() | motors),
    st.builds(AcknowledgeReset, boots),
)


@st.composite
def vend_records(draw: st.DrawFn) -> VendRecord:
    state = draw(st.sampled_from(list(VendState)))
    unrun = state in (VendState.NOT_SEEN, VendState.VOIDED)
    return VendRecord(
        vend_id=draw(vend_ids),
        state=state,
        motor=None if unrun else draw(motors),
        fault=Fault.NONE if unrun else draw(st.sampled_from(list(Fault))),
        dropped=False if unrun else draw(st.booleans()),
        boot_count=draw(boots),
        board_flags=draw(flags),
    )


faults = st.builds(MotorFault, motors, st.sampled_from([f for f in Fault if f is not Fault.NONE]))
# Answers paired with the request code they answer.
responses: st.SearchStrategy[tuple[Response, int]] = st.one_of(
    st.tuples(
        st.builds(
            BoardStatus,
            boots,
            flags,
            st.integers(0, 100),
            st.none() | vend_ids,
            st.none() | vend_ids,
            st.lists(faults, max_size=MAX_LISTED_FAULTS).map(tuple),
        ),
        st.just(0x01),
    ),
    st.tuples(vend_records(), st.sampled_from([0x02, 0x03])),
    st.tuples(st.builds(FaultCleared, st.none() | motors), st.just(0x04)),
    st.tuples(st.builds(ResetAcknowledged, boots), st.just(0x05)),
    st.tuples(
        st.builds(ErrorReply, st.integers(0, 0x7F), st.sampled_from(list(ErrorCode))),
        st.integers(1, 5),
    ),
)


@settings(max_examples=200)
@given(requests, st.integers(0, 255))
def test_every_request_round_trips_through_a_frame(request: Request, seq: int) -> None:
    code, payload = encode_request(request)
    frame = decode_frame(encode_frame(Frame(1, seq, code, payload)))
    assert not frame.is_response
    assert decode_request(frame.code, frame.payload) == request


@settings(max_examples=200)
@given(responses)
def test_every_response_round_trips_through_a_frame(item: tuple[Response, int]) -> None:
    response, request_code = item
    code = response_code(response, request_code)
    frame = decode_frame(encode_frame(Frame(1, 0, code, encode_response(response))))
    assert frame.is_response
    assert decode_response(frame.code, frame.payload) == response


@settings(max_examples=200)
@given(st.integers(0, 255), st.binary(max_size=MAX_PAYLOAD + 4))
def test_garbage_payloads_raise_only_decode_error(code: int, payload: bytes) -> None:
    for decode in (decode_request, decode_response):
        with contextlib.suppress(DecodeError):
            decode(code, payload)


# The examples of docs/dispenser-protocol.md, section 8, byte for byte.
DOC_EXAMPLES: list[tuple[str, Request | Response]] = [
    ("a5 01 00 01 00 c1 45", GetStatus()),
    (
        "a5 01 00 81 0d 00 01 01 3c 00 00 00 00 00 00 00 00 00 d1 96",
        BoardStatus(1, BoardFlags.RESET, 60),
    ),
    ("a5 01 01 05 02 00 01 23 e5", AcknowledgeReset(1)),
    ("a5 01 01 85 02 00 01 fe dd", ResetAcknowledged(1)),
    ("a5 01 02 02 05 17 00 00 10 00 3f e8", RunMotor(23, 0x1000)),
    (
        "a5 01 02 82 0b 00 00 10 00 01 17 00 00 00 01 02 1d 85",
        VendRecord(
            0x1000,
            VendState.IN_PROGRESS,
            23,
            Fault.NONE,
            dropped=False,
            boot_count=1,
            board_flags=BoardFlags.BUSY,
        ),
    ),
    ("a5 01 03 03 05 00 00 10 00 00 e3 c4", QueryVend(0x1000)),
    (
        "a5 01 03 83 0b 00 00 10 00 02 17 00 01 00 01 00 ad f3",
        VendRecord(
            0x1000,
            VendState.DONE,
            23,
            Fault.NONE,
            dropped=True,
            boot_count=1,
            board_flags=BoardFlags.NONE,
        ),
    ),
    (
        "a5 01 05 83 0b 00 00 10 01 02 29 01 00 00 01 00 92 8d",
        VendRecord(
            0x1001,
            VendState.DONE,
            41,
            Fault.JAM,
            dropped=False,
            boot_count=1,
            board_flags=BoardFlags.NONE,
        ),
    ),
    ("a5 01 09 03 05 00 00 10 02 01 04 fb", QueryVend(0x1002, void_if_unseen=True)),
    (
        "a5 01 09 83 0b 00 00 10 02 00 ff 00 00 00 02 01 ea a3",
        VendRecord(
            0x1002,
            VendState.NOT_SEEN,
            None,
            Fault.NONE,
            dropped=False,
            boot_count=2,
            board_flags=BoardFlags.RESET,
        ),
    ),
    ("a5 01 0a ff 02 02 06 2e 79", ErrorReply(0x02, ErrorCode.RESET_PENDING)),
    ("a5 01 0b 04 01 29 ff f8", ResetFault(41)),
    ("a5 01 0b 84 01 29 c4 a2", FaultCleared(41)),
    ("a5 01 0a 02 05 05 00 00 10 03 51 88", RunMotor(5, 0x1003)),
    (
        "a5 01 00 81 0f 00 02 00 3c 00 00 00 00 00 00 10 01 01 29 01 a4 41",
        BoardStatus(2, BoardFlags.NONE, 60, None, 0x1001, (MotorFault(41, Fault.JAM),)),
    ),
]


@pytest.mark.parametrize(("hex_frame", "message"), DOC_EXAMPLES)
def test_documented_examples_decode(hex_frame: str, message: Request | Response) -> None:
    [frame] = FrameDecoder().feed(bytes.fromhex(hex_frame))
    if frame.is_response:
        assert decode_response(frame.code, frame.payload) == message
    else:
        assert decode_request(frame.code, frame.payload) == message


@pytest.mark.parametrize(
    ("code", "payload", "problem"),
    [
        (0x02, bytes.fromhex("17 00 00 00 00"), "vend id 0"),
        (0x02, bytes.fromhex("64 00 00 00 01"), "motor 100"),
        (0x02, bytes.fromhex("17 00 00 00"), "RUN MOTOR payload is 4 bytes"),
        (0x03, bytes.fromhex("00 00 00 01 02"), "unknown bits"),
        (0x09, b"", "unknown request code 0x09"),
    ],
)
def test_bad_requests_name_the_problem(code: int, payload: bytes, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode_request(code, payload)


@pytest.mark.parametrize(
    ("code", "payload", "problem"),
    [
        (0x83, bytes.fromhex("00 00 10 00 07 17 00 00 00 01 00"), "unknown VendState"),
        (0x83, bytes.fromhex("00 00 10 00 02 17 09 00 00 01 00"), "unknown Fault"),
        (0x83, bytes.fromhex("00 00 10 00 00 17 00 00 00 01 00"), "carries no motor"),
        (0x83, bytes.fromhex("00 00 10 00 02 ff 00 00 00 01 00"), "needs its motor"),
        (0x81, bytes.fromhex("00 01 80 3c 00 00 00 00 00 00 00 00 00"), "unknown bits"),
        (0x81, bytes.fromhex("00 01 00 3c 00 00 00 00 00 00 00 00 01"), "expected 15"),
        (0x90, b"", "unknown response code"),
    ],
)
def test_bad_responses_name_the_problem(code: int, payload: bytes, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode_response(code, payload)


def test_field_errors_are_also_value_errors() -> None:
    with pytest.raises(ValueError, match="motor 120"):
        RunMotor(120, 1)
    assert issubclass(FieldError, DecodeError)
