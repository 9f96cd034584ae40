"""Byte layouts of the cabinet protocol (docs/cabinet-protocol.md, section 4).

Multi-byte fields are big-endian. ``0`` stands for "no session" and ``0xFF`` for
"no shelf". Decoders check every length, enum and flag bit, so a payload that is
not in the tables raises :class:`DecodeError` (or its :class:`FieldError`).
"""

from __future__ import annotations

from protocols.cabinet.errors import ClientError, DecodeError, FieldError
from protocols.cabinet.messages import (
    FIELDS,
    NO_SHELF,
    REQUEST_TYPES,
    TAG_BYTES,
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
from protocols.framed.codec import FramedCodec
from protocols.framed.fields import get16, get32, none_if_zero, u16, u32
from protocols.framed.frames import RESPONSE_BIT
from protocols.framed.message import answer_code


def _tag_bytes(tag: str) -> bytes:
    return bytes.fromhex(tag)


def _tag_text(raw: bytes) -> str:
    return raw.hex().upper()


_enum = FIELDS.enum
_flags = FIELDS.flags
_expect_len = FIELDS.expect_len
_at_least = FIELDS.at_least


# --- requests ---------------------------------------------------------------------


def encode_request(message: Request) -> tuple[int, bytes]:
    """(CODE, payload) of a request."""
    match message:
        case Identify() | GetStatus():
            payload = b""
        case Unlock():
            payload = (
                u32(message.session_id) + u16(message.open_window) + u16(message.held_open_limit)
            )
        case Lock(session_id=session_id):
            payload = u32(session_id)
        case QuerySession(session_id=session_id, void_if_unseen=void):
            payload = u32(session_id) + bytes((int(void),))
        case ReadInventory(shelf=shelf, page=page):
            payload = bytes((shelf, page))
        case ReadSessionReport(session_id=session_id, shelf=shelf, page=page):
            payload = u32(session_id) + bytes((shelf, page))
        case ReadEvents(boot_count=boot, ack_through=ack):
            payload = u16(boot) + u16(ack)
        case AcknowledgeReset(boot_count=boot):
            payload = u16(boot)
    return message.CODE, payload


def decode_request(code: int, payload: bytes) -> Request:
    kind = REQUEST_TYPES.get(code)
    if kind is None:
        raise DecodeError(f"unknown request code {code:#04x}")
    if kind is Identify or kind is GetStatus:
        _expect_len(kind.__name__, payload, 0)
        return kind()
    if kind is Unlock:
        _expect_len("UNLOCK", payload, 8)
        return Unlock(get32(payload, 0), get16(payload, 4), get16(payload, 6))
    if kind is Lock:
        _expect_len("LOCK", payload, 4)
        return Lock(get32(payload, 0))
    if kind is QuerySession:
        _expect_len("QUERY SESSION", payload, 5)
        if payload[4] > 1:
            raise DecodeError(f"QUERY SESSION flags {payload[4]:#04x} has unknown bits")
        return QuerySession(get32(payload, 0), bool(payload[4]))
    if kind is ReadInventory:
        _expect_len("SHELF INVENTORY", payload, 2)
        return ReadInventory(payload[0], payload[1])
    if kind is ReadSessionReport:
        _expect_len("SESSION REPORT", payload, 6)
        return ReadSessionReport(get32(payload, 0), payload[4], payload[5])
    if kind is ReadEvents:
        _expect_len("READ EVENTS", payload, 4)
        return ReadEvents(get16(payload, 0), get16(payload, 2))
    _expect_len("ACK RESET", payload, 2)
    return AcknowledgeReset(get16(payload, 0))


# --- answers ----------------------------------------------------------------------


# The CODE byte for an answer to a request: the shared rule, under the name callers use.
response_code = answer_code


def encode_response(message: Response) -> bytes:
    """The payload of an answer (its CODE comes from :func:`response_code`)."""
    match message:
        case Identity():
            return (
                bytes((message.version,))
                + u16(message.boot_count)
                + bytes((len(message.shelves), *message.shelves))
                + message.model.encode("ascii")
            )
        case CabinetStatus():
            return (
                u16(message.boot_count)
                + bytes((message.flags, message.door, message.lock))
                + u32(message.active_session_id)
                + u32(message.last_session_id)
                + bytes((message.pending_events, len(message.faults)))
                + b"".join(bytes((f.shelf, f.fault)) for f in message.faults)
            )
        case SessionRecord():
            return (
                u32(message.session_id)
                + bytes((message.state, message.flags, message.shelves_changed))
                + u16(message.boot_count)
                + bytes((message.cabinet_flags, message.door))
            )
        case ShelfInventory():
            return (
                bytes((message.shelf, message.status))
                + u32(message.weight_g)
                + bytes((message.tag_count, message.page))
                + b"".join(_tag_bytes(t) for t in message.tags)
            )
        case ShelfReport():
            return (
                u32(message.session_id)
                + bytes((message.shelf, message.status, message.confidence))
                + u32(message.weight_before_g)
                + u32(message.weight_after_g)
                + bytes((message.removed_count, message.added_count, message.page))
                + b"".join(bytes((e.direction,)) + _tag_bytes(e.tag) for e in message.entries)
            )
        case Events():
            body = b"".join(
                u16(e.seq)
                + bytes((e.kind, NO_SHELF if e.shelf is None else e.shelf))
                + u32(e.session_id)
                for e in message.events
            )
            return u16(message.boot_count) + bytes((message.more, len(message.events))) + body
        case ResetAcknowledged(boot_count=boot):
            return u16(boot)
        case ErrorReply(request_code=code, error=error):
            return bytes((code, error))


def _identity(payload: bytes) -> Identity:
    _at_least("IDENTITY", payload, 4)
    count = payload[3]
    _at_least("IDENTITY", payload, 4 + count)
    shelves = tuple(_flags(SensorKind, b) for b in payload[4 : 4 + count])
    try:
        model = payload[4 + count :].decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError("IDENTITY model is not ASCII") from None
    return Identity(payload[0], get16(payload, 1), shelves, model)


def _status(payload: bytes) -> CabinetStatus:
    _at_least("STATUS", payload, 15)
    count = payload[14]
    _expect_len("STATUS", payload, 15 + 2 * count)
    faults = tuple(
        ShelfFaultEntry(payload[i], _enum(ShelfFault, payload[i + 1]))
        for i in range(15, len(payload), 2)
    )
    return CabinetStatus(
        boot_count=get16(payload, 0),
        flags=_flags(CabinetFlags, payload[2]),
        door=_enum(DoorState, payload[3]),
        lock=_enum(LockState, payload[4]),
        active_session_id=none_if_zero(get32(payload, 5)),
        last_session_id=none_if_zero(get32(payload, 9)),
        pending_events=payload[13],
        faults=faults,
    )


def _record(payload: bytes) -> SessionRecord:
    _expect_len("SESSION RECORD", payload, 11)
    return SessionRecord(
        session_id=get32(payload, 0),
        state=_enum(SessionState, payload[4]),
        flags=_flags(RecordFlags, payload[5]),
        shelves_changed=payload[6],
        boot_count=get16(payload, 7),
        cabinet_flags=_flags(CabinetFlags, payload[9]),
        door=_enum(DoorState, payload[10]),
    )


def _inventory(payload: bytes) -> ShelfInventory:
    _at_least("INVENTORY", payload, 8)
    tags_raw = payload[8:]
    if len(tags_raw) % TAG_BYTES:
        raise DecodeError(f"INVENTORY tag list of {len(tags_raw)} bytes is not whole tags")
    tags = tuple(_tag_text(tags_raw[i : i + TAG_BYTES]) for i in range(0, len(tags_raw), TAG_BYTES))
    return ShelfInventory(
        shelf=payload[0],
        status=_flags(ShelfStatus, payload[1]),
        weight_g=get32(payload, 2),
        tag_count=payload[6],
        page=payload[7],
        tags=tags,
    )


def _report(payload: bytes) -> ShelfReport:
    _at_least("SHELF REPORT", payload, 18)
    raw = payload[18:]
    step = 1 + TAG_BYTES
    if len(raw) % step:
        raise DecodeError(f"SHELF REPORT tag list of {len(raw)} bytes is not whole entries")
    entries = tuple(
        TagChange(_enum(TagDirection, raw[i]), _tag_text(raw[i + 1 : i + step]))
        for i in range(0, len(raw), step)
    )
    return ShelfReport(
        session_id=get32(payload, 0),
        shelf=payload[4],
        status=_flags(ShelfStatus, payload[5]),
        confidence=payload[6],
        weight_before_g=get32(payload, 7),
        weight_after_g=get32(payload, 11),
        removed_count=payload[15],
        added_count=payload[16],
        page=payload[17],
        entries=entries,
    )


def _events(payload: bytes) -> Events:
    _at_least("EVENTS", payload, 4)
    count = payload[3]
    _expect_len("EVENTS", payload, 4 + 8 * count)
    events = tuple(
        Event(
            seq=get16(payload, i),
            kind=_enum(EventKind, payload[i + 2]),
            shelf=None if payload[i + 3] == NO_SHELF else payload[i + 3],
            session_id=none_if_zero(get32(payload, i + 4)),
        )
        for i in range(4, len(payload), 8)
    )
    return Events(get16(payload, 0), payload[2], events)


def decode_response(code: int, payload: bytes) -> Response:
    FIELDS.fits(payload)
    if code == Identity.CODE:
        return _identity(payload)
    if code == CabinetStatus.CODE:
        return _status(payload)
    if code in (Unlock.CODE | RESPONSE_BIT, Lock.CODE | RESPONSE_BIT, QuerySession.CODE | 0x80):
        return _record(payload)
    if code == ShelfInventory.CODE:
        return _inventory(payload)
    if code == ShelfReport.CODE:
        return _report(payload)
    if code == Events.CODE:
        return _events(payload)
    if code == ResetAcknowledged.CODE:
        _expect_len("RESET ACKNOWLEDGED", payload, 2)
        return ResetAcknowledged(get16(payload, 0))
    if code == ErrorReply.CODE:
        _expect_len("ERROR", payload, 2)
        return ErrorReply(payload[0], _enum(ErrorCode, payload[1]))
    raise DecodeError(f"unknown response code {code:#04x}")


CODEC: FramedCodec[Request, Response] = FramedCodec(
    device="cabinet",
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
