"""Multi-page reads and the verdict on a session id, as sans-I/O procedures.

A procedure says what to send next (:class:`Send`) and finally what it read
(:class:`InventoryDone`, :class:`ReportDone`). The driver runs it over
:class:`~protocols.cabinet.client.CabinetClient` transactions; tests run it straight
against the simulated cabinet.

Session-id verdict (docs/cabinet-protocol.md, section 7): a session id the cabinet
has not seen means "never unlocked" only if its memory covers the time the UNLOCK
could have arrived: the RESET flag is clear and, when the caller knows it, the boot
count is the one journaled before UNLOCK. Otherwise the verdict is UNKNOWN.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.cabinet.errors import CabinetBusyError, CabinetResetPendingError, ProcedureError
from protocols.cabinet.messages import (
    INVENTORY_TAGS_PER_PAGE,
    REPORT_TAGS_PER_PAGE,
    ErrorCode,
    ErrorReply,
    ReadInventory,
    ReadSessionReport,
    Request,
    Response,
    SessionRecord,
    SessionState,
    ShelfInventory,
    ShelfReport,
    ShelfStatus,
    TagDirection,
)
from protocols.cabinet.model import ShelfChange, ShelfReading


@dataclass(frozen=True, slots=True)
class Send:
    request: Request


@dataclass(frozen=True, slots=True)
class InventoryDone:
    readings: tuple[ShelfReading, ...]


@dataclass(frozen=True, slots=True)
class ReportDone:
    changes: tuple[ShelfChange, ...]


def refused(answer: ErrorReply, what: str) -> ProcedureError:
    if answer.error is ErrorCode.RESET_PENDING:
        return CabinetResetPendingError(
            f"{what}: the cabinet was reset; resolve open sessions, then acknowledge the reset"
        )
    if answer.error is ErrorCode.BUSY:
        return CabinetBusyError(f"{what}: another session is open on the cabinet")
    return ProcedureError(f"{what}: the cabinet refused it ({answer.error.name})")


def _pages(count: int, per_page: int) -> int:
    return max(1, -(-count // per_page))


def _weight_ok(status: ShelfStatus) -> bool:
    return ShelfStatus.WEIGHT_VALID in status and ShelfStatus.WEIGHT_FAULT not in status


def _rfid_ok(status: ShelfStatus) -> bool:
    return ShelfStatus.RFID_VALID in status and ShelfStatus.RFID_FAULT not in status


def _faulted(status: ShelfStatus) -> bool:
    return bool(status & (ShelfStatus.WEIGHT_FAULT | ShelfStatus.RFID_FAULT))


class InventoryProcedure:
    """SHELF INVENTORY of shelves 0..shelves-1, every page of tags."""

    def __init__(self, shelves: int) -> None:
        if shelves < 1:
            raise ProcedureError(f"a cabinet has at least one shelf, got {shelves}")
        self.shelves = shelves
        self._shelf = 0
        self._pages: list[ShelfInventory] = []
        self._readings: list[ShelfReading] = []

    def start(self) -> Send:
        return Send(ReadInventory(0, 0))

    def on_answer(self, answer: Response) -> Send | InventoryDone:
        what = f"inventory of shelf {self._shelf}"
        if isinstance(answer, ErrorReply):
            raise refused(answer, what)
        if not isinstance(answer, ShelfInventory):
            raise ProcedureError(f"{what}: expected INVENTORY, got {type(answer).__name__}")
        page = len(self._pages)
        if (answer.shelf, answer.page) != (self._shelf, page):
            raise ProcedureError(f"{what}: got shelf {answer.shelf} page {answer.page}")
        if self._pages and (answer.tag_count, answer.weight_g) != (
            self._pages[0].tag_count,
            self._pages[0].weight_g,
        ):
            raise ProcedureError(f"{what}: the shelf changed while its pages were read")
        self._pages.append(answer)
        if page + 1 < _pages(answer.tag_count, INVENTORY_TAGS_PER_PAGE):
            return Send(ReadInventory(self._shelf, page + 1))
        self._readings.append(_reading(self._pages))
        self._shelf, self._pages = self._shelf + 1, []
        if self._shelf < self.shelves:
            return Send(ReadInventory(self._shelf, 0))
        return InventoryDone(tuple(self._readings))


def _reading(pages: list[ShelfInventory]) -> ShelfReading:
    first = pages[0]
    tags = frozenset(t for p in pages for t in p.tags)
    if len(tags) != first.tag_count:
        raise ProcedureError(f"shelf {first.shelf}: {len(tags)} tags read, {first.tag_count} said")
    return ShelfReading(
        shelf=first.shelf,
        weight_g=first.weight_g if _weight_ok(first.status) else None,
        tags=tags if _rfid_ok(first.status) else None,
        fault=_faulted(first.status),
    )


class ReportProcedure:
    """SESSION REPORT of one session id for shelves 0..shelves-1, every page of tags."""

    def __init__(self, session_id: int, shelves: int) -> None:
        if shelves < 1:
            raise ProcedureError(f"a cabinet has at least one shelf, got {shelves}")
        self.session_id = session_id
        self.shelves = shelves
        self._shelf = 0
        self._pages: list[ShelfReport] = []
        self._changes: list[ShelfChange] = []
        self.start()  # validates the session id

    def start(self) -> Send:
        return Send(ReadSessionReport(self.session_id, 0, 0))

    def on_answer(self, answer: Response) -> Send | ReportDone:
        what = f"report of session {self.session_id}, shelf {self._shelf}"
        if isinstance(answer, ErrorReply):
            raise refused(answer, what)
        if not isinstance(answer, ShelfReport):
            raise ProcedureError(f"{what}: expected SHELF REPORT, got {type(answer).__name__}")
        page = len(self._pages)
        where = (answer.session_id, answer.shelf, answer.page)
        if where != (self.session_id, self._shelf, page):
            raise ProcedureError(f"{what}: got session {where[0]} shelf {where[1]} page {where[2]}")
        self._pages.append(answer)
        total = answer.removed_count + answer.added_count
        if page + 1 < _pages(total, REPORT_TAGS_PER_PAGE):
            return Send(ReadSessionReport(self.session_id, self._shelf, page + 1))
        self._changes.append(_change(self._pages))
        self._shelf, self._pages = self._shelf + 1, []
        if self._shelf < self.shelves:
            return Send(ReadSessionReport(self.session_id, self._shelf, 0))
        return ReportDone(tuple(self._changes))


def _change(pages: list[ShelfReport]) -> ShelfChange:
    first = pages[0]
    entries = [e for p in pages for e in p.entries]
    removed = frozenset(e.tag for e in entries if e.direction is TagDirection.REMOVED)
    added = frozenset(e.tag for e in entries if e.direction is TagDirection.ADDED)
    if (len(removed), len(added)) != (first.removed_count, first.added_count):
        raise ProcedureError(f"shelf {first.shelf}: tag changes do not add up across pages")
    weight = _weight_ok(first.status)
    return ShelfChange(
        shelf=first.shelf,
        weight_before_g=first.weight_before_g if weight else None,
        weight_after_g=first.weight_after_g if weight else None,
        removed_tags=removed,
        added_tags=added,
        rfid=_rfid_ok(first.status),
        confidence=first.confidence,
        fault=_faulted(first.status),
    )


class SessionVerdict(enum.Enum):
    NEVER_UNLOCKED = "never_unlocked"  # final: the hold can be released
    WAITING = "waiting"  # unlocked, the door not yet open
    OPEN = "open"
    CLOSED = "closed"  # read the report and settle
    ENDED_UNOPENED = "ended_unopened"  # expired or cancelled: nothing was taken
    UNKNOWN = "unknown"  # the cabinet lost its memory: hold the money, review


def verdict_of(record: SessionRecord, since_boot: int | None = None) -> SessionVerdict:
    state = record.state
    if state is SessionState.CLOSED:
        return SessionVerdict.CLOSED
    if state is SessionState.OPEN:
        return SessionVerdict.OPEN
    if state is SessionState.UNLOCKED:
        return SessionVerdict.WAITING
    if state in (SessionState.EXPIRED, SessionState.CANCELLED):
        return SessionVerdict.ENDED_UNOPENED
    memory_lost = record.cabinet_was_reset or (
        since_boot is not None and since_boot != record.boot_count
    )
    return SessionVerdict.UNKNOWN if memory_lost else SessionVerdict.NEVER_UNLOCKED
