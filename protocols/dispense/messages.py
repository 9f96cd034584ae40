"""Commands and answers of the dispensing-board protocol as frozen dataclasses.

A request's CODE is 0x01..0x7F; the board answers with CODE | 0x80 and the same
SEQ, or with ERROR (0xFF) naming the request code it refuses. Multi-byte fields are
big-endian. Field tables: docs/dispenser-protocol.md, section 5.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from protocols.dispense.errors import ClientError, DecodeError
from protocols.framed.codec import FramedCodec
from protocols.framed.fields import FieldRules, get16, get32, none_if_zero, u16, u32
from protocols.framed.frames import RESPONSE_BIT
from protocols.framed.message import FramedMessage, Refusal, answer_code

NO_MOTOR = 0xFF  # "no motor" in a record; "every motor" in RESET FAULT
MAX_MOTORS = 100  # motor address = row * 10 + column, rows and columns 0..9
MAX_LISTED_FAULTS = 32  # STATUS lists at most this many latched faults


class FieldError(DecodeError, ValueError):
    """A field value outside its range (bad input from the wire or from a caller)."""


class Fault(enum.IntEnum):
    """Why a vend did not complete normally; latched per motor except NO_DROP."""

    NONE = 0x00
    JAM = 0x01  # motor stalled before reaching home
    EMPTY = 0x02  # column-empty switch, or no product reached the spiral end
    MOTOR_NOT_HOME = 0x03  # turned, but the home switch never closed again
    OVER_CURRENT = 0x04  # driver cut the motor off
    INVALID_SLOT = 0x05  # no motor at that address
    NO_DROP = 0x06  # motor fine, the drop sensor saw nothing (product hangs)


class VendState(enum.IntEnum):
    NOT_SEEN = 0x00  # no RUN with this vend id since the board's memory began
    IN_PROGRESS = 0x01
    DONE = 0x02
    VOIDED = 0x03  # declared dead by QUERY(void); a RUN with this id never turns a motor


class ErrorCode(enum.IntEnum):
    UNKNOWN_COMMAND = 0x01
    BAD_LENGTH = 0x02
    BAD_ARGUMENT = 0x03
    BUSY = 0x04  # another vend id is in progress
    STALE_BOOT = 0x05  # ACK RESET named a boot count that is not the current one
    RESET_PENDING = 0x06  # RUN refused: the board restarted and nobody acknowledged it yet


class BoardFlags(enum.IntFlag):
    NONE = 0
    RESET = 0x01  # the board restarted and lost its vend memory; not yet acknowledged
    BUSY = 0x02  # a motor is running
    FAULTS_TRUNCATED = 0x04  # more latched faults than STATUS lists


FIELDS = FieldRules(DecodeError, FieldError)
_check = FIELDS.check


def _check_motor(motor: int) -> None:
    _check("motor", motor, 0, MAX_MOTORS - 1)


def _check_vend_id(vend_id: int) -> None:
    _check("vend id", vend_id, 1, 0xFFFFFFFF)


class Message(FramedMessage):
    """Base of every dispensing-board request and answer."""


# --- requests (controller -> board) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class GetStatus(Message):
    CODE: ClassVar[int] = 0x01


@dataclass(frozen=True, slots=True)
class RunMotor(Message):
    """Run one vend. The board executes a given vend id at most once, ever, per boot."""

    CODE: ClassVar[int] = 0x02
    motor: int
    vend_id: int

    def __post_init__(self) -> None:
        _check_motor(self.motor)
        _check_vend_id(self.vend_id)


@dataclass(frozen=True, slots=True)
class QueryVend(Message):
    """What happened to a vend id; with ``void_if_unseen`` an unseen id can never run later."""

    CODE: ClassVar[int] = 0x03
    vend_id: int
    void_if_unseen: bool = False

    def __post_init__(self) -> None:
        _check_vend_id(self.vend_id)


@dataclass(frozen=True, slots=True)
class ResetFault(Message):
    """Clear the latched fault of one motor (``None``: all) after service."""

    CODE: ClassVar[int] = 0x04
    motor: int | None

    def __post_init__(self) -> None:
        if self.motor is not None:
            _check_motor(self.motor)


@dataclass(frozen=True, slots=True)
class AcknowledgeReset(Message):
    """Clear the RESET flag; names the boot count so a newer reset is never acked blindly."""

    CODE: ClassVar[int] = 0x05
    boot_count: int

    def __post_init__(self) -> None:
        _check("boot count", self.boot_count, 0, 0xFFFF)


Request = GetStatus | RunMotor | QueryVend | ResetFault | AcknowledgeReset
REQUEST_TYPES: dict[int, type[Request]] = {
    t.CODE: t for t in (GetStatus, RunMotor, QueryVend, ResetFault, AcknowledgeReset)
}


# --- answers (board -> controller) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class MotorFault(Message):
    motor: int
    fault: Fault

    def __post_init__(self) -> None:
        _check_motor(self.motor)
        if self.fault is Fault.NONE:
            raise FieldError(f"motor {self.motor} listed as faulted with fault NONE")


@dataclass(frozen=True, slots=True)
class BoardStatus(Message):
    CODE: ClassVar[int] = GetStatus.CODE | RESPONSE_BIT
    boot_count: int
    flags: BoardFlags
    motors: int
    active_vend_id: int | None = None
    last_vend_id: int | None = None
    faults: tuple[MotorFault, ...] = ()

    def __post_init__(self) -> None:
        _check("boot count", self.boot_count, 0, 0xFFFF)
        _check("motor count", self.motors, 0, MAX_MOTORS)
        for vend_id in (self.active_vend_id, self.last_vend_id):
            if vend_id is not None:
                _check_vend_id(vend_id)
        if len(self.faults) > MAX_LISTED_FAULTS:
            raise FieldError(f"{len(self.faults)} faults listed, at most {MAX_LISTED_FAULTS}")

    @property
    def was_reset(self) -> bool:
        return BoardFlags.RESET in self.flags

    @property
    def busy(self) -> bool:
        return BoardFlags.BUSY in self.flags


@dataclass(frozen=True, slots=True)
class VendRecord(Message):
    """The board's memory of one vend id; answers both RUN MOTOR and QUERY VEND."""

    CODE: ClassVar[int] = RunMotor.CODE | RESPONSE_BIT
    vend_id: int
    state: VendState
    motor: int | None
    fault: Fault
    dropped: bool
    boot_count: int
    board_flags: BoardFlags

    def __post_init__(self) -> None:
        _check_vend_id(self.vend_id)
        _check("boot count", self.boot_count, 0, 0xFFFF)
        if self.motor is not None:
            _check_motor(self.motor)
        unrun = self.state in (VendState.NOT_SEEN, VendState.VOIDED)
        if unrun and (self.motor is not None or self.fault is not Fault.NONE or self.dropped):
            raise FieldError(f"a {self.state.name} record carries no motor, fault or drop")
        if not unrun and self.motor is None:
            raise FieldError(f"a {self.state.name} record needs its motor")

    @property
    def board_was_reset(self) -> bool:
        return BoardFlags.RESET in self.board_flags


@dataclass(frozen=True, slots=True)
class FaultCleared(Message):
    CODE: ClassVar[int] = ResetFault.CODE | RESPONSE_BIT
    motor: int | None

    def __post_init__(self) -> None:
        if self.motor is not None:
            _check_motor(self.motor)


@dataclass(frozen=True, slots=True)
class ResetAcknowledged(Message):
    CODE: ClassVar[int] = AcknowledgeReset.CODE | RESPONSE_BIT
    boot_count: int

    def __post_init__(self) -> None:
        _check("boot count", self.boot_count, 0, 0xFFFF)


@dataclass(frozen=True, slots=True)
class ErrorReply(Message, Refusal):
    request_code: int
    error: ErrorCode

    def __post_init__(self) -> None:
        _check("request code", self.request_code, 0, 0x7F)


Response = BoardStatus | VendRecord | FaultCleared | ResetAcknowledged | ErrorReply


# --- payload codecs ---------------------------------------------------------------


def _motor_byte(motor: int | None) -> int:
    return NO_MOTOR if motor is None else motor


def _motor_or_none(byte: int) -> int | None:
    return None if byte == NO_MOTOR else byte


_enum = FIELDS.enum
_expect_len = FIELDS.expect_len


def encode_request(message: Request) -> tuple[int, bytes]:
    """(CODE, payload) of a request."""
    match message:
        case GetStatus():
            payload = b""
        case RunMotor(motor=motor, vend_id=vend_id):
            payload = bytes((motor,)) + u32(vend_id)
        case QueryVend(vend_id=vend_id, void_if_unseen=void):
            payload = u32(vend_id) + bytes((int(void),))
        case ResetFault(motor=motor):
            payload = bytes((_motor_byte(motor),))
        case AcknowledgeReset(boot_count=boot):
            payload = u16(boot)
    return message.CODE, payload


def decode_request(code: int, payload: bytes) -> Request:
    kind = REQUEST_TYPES.get(code)
    if kind is None:
        raise DecodeError(f"unknown request code {code:#04x}")
    if kind is GetStatus:
        _expect_len("GET STATUS", payload, 0)
        return GetStatus()
    if kind is RunMotor:
        _expect_len("RUN MOTOR", payload, 5)
        return RunMotor(payload[0], get32(payload, 1))
    if kind is QueryVend:
        _expect_len("QUERY VEND", payload, 5)
        if payload[4] > 1:
            raise DecodeError(f"QUERY VEND flags {payload[4]:#04x} has unknown bits")
        return QueryVend(get32(payload, 0), bool(payload[4]))
    if kind is ResetFault:
        _expect_len("RESET FAULT", payload, 1)
        return ResetFault(_motor_or_none(payload[0]))
    _expect_len("ACK RESET", payload, 2)
    return AcknowledgeReset(get16(payload, 0))


# The CODE byte for an answer to a request: the shared rule, under the name callers use.
response_code = answer_code


def encode_response(message: Response) -> bytes:
    """The payload of an answer (its CODE comes from :func:`response_code`)."""
    match message:
        case BoardStatus():
            head = (
                u16(message.boot_count)
                + bytes((message.flags, message.motors))
                + u32(message.active_vend_id)
                + u32(message.last_vend_id)
                + bytes((len(message.faults),))
            )
            return head + b"".join(bytes((f.motor, f.fault)) for f in message.faults)
        case VendRecord():
            return (
                u32(message.vend_id)
                + bytes((message.state, _motor_byte(message.motor), message.fault))
                + bytes((int(message.dropped),))
                + u16(message.boot_count)
                + bytes((message.board_flags,))
            )
        case FaultCleared(motor=motor):
            return bytes((_motor_byte(motor),))
        case ResetAcknowledged(boot_count=boot):
            return u16(boot)
        case ErrorReply(request_code=code, error=error):
            return bytes((code, error))


def _flags(value: int) -> BoardFlags:
    return FIELDS.flags(BoardFlags, value, "board flags")


def decode_response(code: int, payload: bytes) -> Response:
    FIELDS.fits(payload)
    if code == BoardStatus.CODE:
        FIELDS.at_least("STATUS", payload, 13)
        count = payload[12]
        _expect_len("STATUS", payload, 13 + 2 * count)
        faults = tuple(
            MotorFault(payload[i], _enum(Fault, payload[i + 1])) for i in range(13, len(payload), 2)
        )
        return BoardStatus(
            boot_count=get16(payload, 0),
            flags=_flags(payload[2]),
            motors=payload[3],
            active_vend_id=none_if_zero(get32(payload, 4)),
            last_vend_id=none_if_zero(get32(payload, 8)),
            faults=faults,
        )
    if code in (RunMotor.CODE | RESPONSE_BIT, QueryVend.CODE | RESPONSE_BIT):
        _expect_len("VEND RECORD", payload, 11)
        if payload[7] > 1:
            raise DecodeError(f"VEND RECORD drop byte {payload[7]:#04x} is not 0 or 1")
        return VendRecord(
            vend_id=get32(payload, 0),
            state=_enum(VendState, payload[4]),
            motor=_motor_or_none(payload[5]),
            fault=_enum(Fault, payload[6]),
            dropped=bool(payload[7]),
            boot_count=get16(payload, 8),
            board_flags=_flags(payload[10]),
        )
    if code == FaultCleared.CODE:
        _expect_len("FAULT CLEARED", payload, 1)
        return FaultCleared(_motor_or_none(payload[0]))
    if code == ResetAcknowledged.CODE:
        _expect_len("RESET ACKNOWLEDGED", payload, 2)
        return ResetAcknowledged(get16(payload, 0))
    if code == ErrorReply.CODE:
        _expect_len("ERROR", payload, 2)
        return ErrorReply(payload[0], _enum(ErrorCode, payload[1]))
    raise DecodeError(f"unknown response code {code:#04x}")


CODEC: FramedCodec[Request, Response] = FramedCodec(
    device="board",
    request_codes=REQUEST_TYPES.keys(),
    encode_request=encode_request,
    decode_request=decode_request,
    encode_response=encode_response,
    decode_response=decode_response,
    error_reply=ErrorReply,
    error_codes=ErrorCode,
    decode_error=DecodeError,
    field_error=FieldError,
    client_error=ClientError,
)
