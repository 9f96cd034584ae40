"""Commands and answers of the cabinet protocol as frozen dataclasses.

A request's CODE is 0x01..0x7F; the cabinet answers with CODE | 0x80 and the same
SEQ, or with ERROR (0xFF) naming the request it refuses. Byte layouts live in
:mod:`protocols.cabinet.codec`; the tables in docs/cabinet-protocol.md, section 4.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import ClassVar

from protocols.cabinet.errors import DecodeError, FieldError
from protocols.framed.fields import FieldRules
from protocols.framed.frames import RESPONSE_BIT
from protocols.framed.message import FramedMessage, Refusal

MAX_SHELVES = 32
MAX_LISTED_FAULTS = 32  # STATUS lists at most this many shelf faults
MAX_MODEL_LEN = 32
INVENTORY_TAGS_PER_PAGE = 6  # 12-byte tags; keeps INVENTORY within the 96-byte payload
REPORT_TAGS_PER_PAGE = 5  # 13-byte entries (direction + tag)
MAX_EVENTS_PER_ANSWER = 10
MAX_TAGS = 255  # per shelf, in one count byte
TAG_BYTES = 12  # EPC-96
NO_SHELF = 0xFF
_TAG_RE = re.compile(r"[0-9A-F]{24}")


class SensorKind(enum.IntFlag):
    NONE = 0
    WEIGHT = 0x01
    RFID = 0x02


class DoorState(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HELD_OPEN = 2  # open for longer than the session's held-open limit


class LockState(enum.IntEnum):
    LOCKED = 0
    UNLOCKED = 1


class ShelfFault(enum.IntEnum):
    WEIGHT = 0x01  # load cell missing, saturated or unstable
    RFID = 0x02  # antenna or reader fault


class SessionState(enum.IntEnum):
    NOT_SEEN = 0  # no UNLOCK with this id in the cabinet's memory
    UNLOCKED = 1  # lock released, waiting for the door to open
    OPEN = 2  # the door is open
    CLOSED = 3  # the door closed; the lock re-engaged; the report is final
    EXPIRED = 4  # the open window passed without the door opening; relocked
    CANCELLED = 5  # LOCK before the door opened
    VOIDED = 6  # declared dead by QUERY SESSION(void); UNLOCK with it never unlocks


class ErrorCode(enum.IntEnum):
    UNKNOWN_COMMAND = 0x01
    BAD_LENGTH = 0x02
    BAD_ARGUMENT = 0x03
    BUSY = 0x04  # another session id is open
    STALE_BOOT = 0x05  # ACK RESET named a boot count that is not the current one
    RESET_PENDING = 0x06  # UNLOCK refused: restarted and nobody acknowledged it yet
    DOOR_OPEN = 0x07  # LOCK while the door is open (the latch engages when it closes)
    NOT_READY = 0x08  # SESSION REPORT for a session whose door has not closed


class CabinetFlags(enum.IntFlag):
    NONE = 0
    RESET = 0x01  # restarted, session memory lost; not yet acknowledged
    SESSION_ACTIVE = 0x02  # a session is unlocked or its door is open
    TAMPER = 0x04  # the door opened while locked since the last power-up
    EVENTS_LOST = 0x08  # the event queue overflowed; the oldest were dropped
    FAULTS_TRUNCATED = 0x10  # more shelf faults than STATUS lists


class RecordFlags(enum.IntFlag):
    NONE = 0
    REPORT_READY = 0x01  # SESSION REPORT can be read
    HELD_OPEN = 0x02  # the door stayed open past the held-open limit
    POWER_INTERRUPTED = 0x04  # power was lost while the session was open
    SENSOR_FAULT = 0x08  # a shelf sensor faulted during the session


class ShelfStatus(enum.IntFlag):
    NONE = 0
    WEIGHT_VALID = 0x01
    RFID_VALID = 0x02
    WEIGHT_FAULT = 0x04
    RFID_FAULT = 0x08


class EventKind(enum.IntEnum):
    POWER_UP = 0x01
    DOOR_OPENED = 0x02
    DOOR_CLOSED = 0x03
    DOOR_HELD_OPEN = 0x04
    TAMPER = 0x05  # the door opened while locked
    SENSOR_FAULTED = 0x06
    SENSOR_RECOVERED = 0x07
    RELOCKED = 0x08  # the open window expired; the lock re-engaged


class TagDirection(enum.IntEnum):
    REMOVED = 0x01
    ADDED = 0x02


FIELDS = FieldRules(DecodeError, FieldError)
check = FIELDS.check


def check_session_id(session_id: int) -> None:
    check("session id", session_id, 1, 0xFFFFFFFF)


def check_shelf(shelf: int) -> None:
    check("shelf", shelf, 0, MAX_SHELVES - 1)


def check_tag(tag: str) -> None:
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):
        raise FieldError(f"RFID tag {tag!r} is not 24 upper-case hex digits (EPC-96)")


class Message(FramedMessage):
    """Base of every cabinet request and answer."""


# --- requests (controller -> cabinet) -------------------------------------------


@dataclass(frozen=True, slots=True)
class Identify(Message):
    CODE: ClassVar[int] = 0x01


@dataclass(frozen=True, slots=True)
class GetStatus(Message):
    CODE: ClassVar[int] = 0x02


@dataclass(frozen=True, slots=True)
class Unlock(Message):
    """Open one session. The cabinet unlocks for a given session id at most once, ever."""

    CODE: ClassVar[int] = 0x03
    session_id: int
    open_window: int  # seconds the door may take to open before the lock re-engages
    held_open_limit: int  # seconds the door may stay open before DOOR HELD OPEN

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check("open window", self.open_window, 1, 0xFFFF)
        check("held-open limit", self.held_open_limit, 1, 0xFFFF)


@dataclass(frozen=True, slots=True)
class Lock(Message):
    """Cancel an unlocked session whose door has not opened."""

    CODE: ClassVar[int] = 0x04
    session_id: int

    def __post_init__(self) -> None:
        check_session_id(self.session_id)


@dataclass(frozen=True, slots=True)
class QuerySession(Message):
    CODE: ClassVar[int] = 0x05
    session_id: int
    void_if_unseen: bool = False

    def __post_init__(self) -> None:
        check_session_id(self.session_id)


@dataclass(frozen=True, slots=True)
class ReadInventory(Message):
    """One shelf's live reading; ``page`` selects its tags, INVENTORY_TAGS_PER_PAGE at a time."""

    CODE: ClassVar[int] = 0x06
    shelf: int
    page: int = 0

    def __post_init__(self) -> None:
        check_shelf(self.shelf)
        check("page", self.page, 0, 0xFF)


@dataclass(frozen=True, slots=True)
class ReadSessionReport(Message):
    """What changed on one shelf between unlock and door close."""

    CODE: ClassVar[int] = 0x07
    session_id: int
    shelf: int
    page: int = 0

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_shelf(self.shelf)
        check("page", self.page, 0, 0xFF)


@dataclass(frozen=True, slots=True)
class ReadEvents(Message):
    """Fetch queued events; everything up to ``ack_through`` of boot ``boot_count`` is dropped."""

    CODE: ClassVar[int] = 0x08
    boot_count: int
    ack_through: int = 0  # 0 = acknowledge nothing

    def __post_init__(self) -> None:
        check("boot count", self.boot_count, 0, 0xFFFF)
        check("event seq", self.ack_through, 0, 0xFFFF)


@dataclass(frozen=True, slots=True)
class AcknowledgeReset(Message):
    CODE: ClassVar[int] = 0x09
    boot_count: int

    def __post_init__(self) -> None:
        check("boot count", self.boot_count, 0, 0xFFFF)


Request = (
    Identify
    | GetStatus
    | Unlock
    | Lock
    | QuerySession
    | ReadInventory
    | ReadSessionReport
    | ReadEvents
    | AcknowledgeReset
)
REQUEST_TYPES: dict[int, type[Request]] = {
    t.CODE: t
    for t in (
        Identify,
        GetStatus,
        Unlock,
        Lock,
        QuerySession,
        ReadInventory,
        ReadSessionReport,
        ReadEvents,
        AcknowledgeReset,
    )
}


# --- answers (cabinet -> controller) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity(Message):
    CODE: ClassVar[int] = Identify.CODE | RESPONSE_BIT
    version: int
    boot_count: int
    shelves: tuple[SensorKind, ...]  # the sensors of each shelf, shelf 0 first
    model: str = ""

    def __post_init__(self) -> None:
        check("protocol version", self.version, 0, 0xFF)
        check("boot count", self.boot_count, 0, 0xFFFF)
        check("shelf count", len(self.shelves), 1, MAX_SHELVES)
        if len(self.model.encode("ascii", "replace")) > MAX_MODEL_LEN or not self.model.isascii():
            raise FieldError(f"model {self.model!r} is not ASCII of at most {MAX_MODEL_LEN} bytes")


@dataclass(frozen=True, slots=True)
class ShelfFaultEntry(Message):
    shelf: int
    fault: ShelfFault

    def __post_init__(self) -> None:
        check_shelf(self.shelf)


@dataclass(frozen=True, slots=True)
class CabinetStatus(Message):
    CODE: ClassVar[int] = GetStatus.CODE | RESPONSE_BIT
    boot_count: int
    flags: CabinetFlags
    door: DoorState
    lock: LockState
    active_session_id: int | None = None
    last_session_id: int | None = None
    pending_events: int = 0
    faults: tuple[ShelfFaultEntry, ...] = ()

    def __post_init__(self) -> None:
        check("boot count", self.boot_count, 0, 0xFFFF)
        for session_id in (self.active_session_id, self.last_session_id):
            if session_id is not None:
                check_session_id(session_id)
        check("pending events", self.pending_events, 0, 0xFF)
        if len(self.faults) > MAX_LISTED_FAULTS:
            raise FieldError(f"{len(self.faults)} faults listed, at most {MAX_LISTED_FAULTS}")

    @property
    def was_reset(self) -> bool:
        return CabinetFlags.RESET in self.flags


@dataclass(frozen=True, slots=True)
class SessionRecord(Message):
    """The cabinet's memory of one session id; answers UNLOCK, LOCK and QUERY SESSION."""

    CODE: ClassVar[int] = Unlock.CODE | RESPONSE_BIT
    session_id: int
    state: SessionState
    flags: RecordFlags
    shelves_changed: int
    boot_count: int
    cabinet_flags: CabinetFlags
    door: DoorState

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check("shelves changed", self.shelves_changed, 0, MAX_SHELVES)
        check("boot count", self.boot_count, 0, 0xFFFF)
        unrun = self.state in (SessionState.NOT_SEEN, SessionState.VOIDED)
        if unrun and (self.flags or self.shelves_changed):
            raise FieldError(f"a {self.state.name} record carries no flags or changes")
        if RecordFlags.REPORT_READY in self.flags and self.state is not SessionState.CLOSED:
            raise FieldError(f"a {self.state.name} record cannot have its report ready")

    @property
    def cabinet_was_reset(self) -> bool:
        return CabinetFlags.RESET in self.cabinet_flags

    @property
    def report_ready(self) -> bool:
        return RecordFlags.REPORT_READY in self.flags


@dataclass(frozen=True, slots=True)
class ShelfInventory(Message):
    CODE: ClassVar[int] = ReadInventory.CODE | RESPONSE_BIT
    shelf: int
    status: ShelfStatus
    weight_g: int
    tag_count: int  # tags on the shelf in total, across every page
    page: int
    tags: tuple[str, ...] = ()  # this page's tags

    def __post_init__(self) -> None:
        check_shelf(self.shelf)
        check("weight", self.weight_g, 0, 0xFFFFFFFF)
        check("tag count", self.tag_count, 0, MAX_TAGS)
        check("page", self.page, 0, 0xFF)
        if len(self.tags) > INVENTORY_TAGS_PER_PAGE:
            raise FieldError(
                f"{len(self.tags)} tags on one page, at most {INVENTORY_TAGS_PER_PAGE}"
            )
        for tag in self.tags:
            check_tag(tag)


@dataclass(frozen=True, slots=True)
class TagChange(Message):
    direction: TagDirection
    tag: str

    def __post_init__(self) -> None:
        check_tag(self.tag)


@dataclass(frozen=True, slots=True)
class ShelfReport(Message):
    """One shelf's change over a session; ``entries`` is this page of tag changes."""

    CODE: ClassVar[int] = ReadSessionReport.CODE | RESPONSE_BIT
    session_id: int
    shelf: int
    status: ShelfStatus
    confidence: int  # 0..100: how sure the cabinet is of its weight reading
    weight_before_g: int
    weight_after_g: int
    removed_count: int
    added_count: int
    page: int
    entries: tuple[TagChange, ...] = ()

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        check_shelf(self.shelf)
        check("confidence", self.confidence, 0, 100)
        check("weight before", self.weight_before_g, 0, 0xFFFFFFFF)
        check("weight after", self.weight_after_g, 0, 0xFFFFFFFF)
        check("removed count", self.removed_count, 0, MAX_TAGS)
        check("added count", self.added_count, 0, MAX_TAGS)
        check("page", self.page, 0, 0xFF)
        if len(self.entries) > REPORT_TAGS_PER_PAGE:
            raise FieldError(
                f"{len(self.entries)} tag changes on a page, max {REPORT_TAGS_PER_PAGE}"
            )


@dataclass(frozen=True, slots=True)
class Event(Message):
    seq: int
    kind: EventKind
    shelf: int | None = None
    session_id: int | None = None

    def __post_init__(self) -> None:
        check("event seq", self.seq, 1, 0xFFFF)
        if self.shelf is not None:
            check_shelf(self.shelf)
        if self.session_id is not None:
            check_session_id(self.session_id)


@dataclass(frozen=True, slots=True)
class Events(Message):
    CODE: ClassVar[int] = ReadEvents.CODE | RESPONSE_BIT
    boot_count: int
    more: int  # events still queued behind this batch (capped at 255)
    events: tuple[Event, ...] = ()

    def __post_init__(self) -> None:
        check("boot count", self.boot_count, 0, 0xFFFF)
        check("more", self.more, 0, 0xFF)
        if len(self.events) > MAX_EVENTS_PER_ANSWER:
            raise FieldError(f"{len(self.events)} events, at most {MAX_EVENTS_PER_ANSWER}")


@dataclass(frozen=True, slots=True)
class ResetAcknowledged(Message):
    CODE: ClassVar[int] = AcknowledgeReset.CODE | RESPONSE_BIT
    boot_count: int

    def __post_init__(self) -> None:
        check("boot count", self.boot_count, 0, 0xFFFF)


@dataclass(frozen=True, slots=True)
class ErrorReply(Message, Refusal):
    request_code: int
    error: ErrorCode

    def __post_init__(self) -> None:
        check("request code", self.request_code, 0, 0x7F)


Response = (
    Identity
    | CabinetStatus
    | SessionRecord
    | ShelfInventory
    | ShelfReport
    | Events
    | ResetAcknowledged
    | ErrorReply
)
