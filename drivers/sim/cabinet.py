"""A simulated smart cabinet speaking docs/cabinet-protocol.md: the firmware, no I/O.

Bytes in, bytes out, with ``now`` passed in (real time on a pty, a fake clock in
tests). What it models: shelves holding items (unit weight, optional RFID tag) under
weight and/or RFID sensors, a door and a fail-secure lock, the session memory keyed
by session id (the open session and its "before" snapshot are non-volatile, the
rest is RAM), the open window and held-open limit, an event queue, sensor faults,
tampering and power cycles. A simulated customer acts through :meth:`control`:
``open_door``, ``take``, ``put_back``, ``close_door``, ``hold_open``,
``sensor_fault``, ``sensor_ok``, ``power_cycle`` (see docs/cabinet-protocol.md §9); staff
with the service key ``move`` items between shelves (tidying a stray) between sessions.
``take`` and ``move`` pick the last item placed, or the last of ``sku`` when given.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from drivers.sim.args import count_arg, flag_arg, index_arg
from drivers.sim.framed import FramedSim
from protocols.cabinet.codec import CODEC
from protocols.cabinet.messages import (
    INVENTORY_TAGS_PER_PAGE,
    MAX_EVENTS_PER_ANSWER,
    MAX_LISTED_FAULTS,
    MAX_SHELVES,
    REPORT_TAGS_PER_PAGE,
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

EVENT_QUEUE = 64
# (sku, grams) of the products a default cabinet is stocked with, one per shelf.
DEFAULT_PRODUCTS = (("COLA", 355), ("WATER", 520), ("SANDWICH", 180), ("SALAD", 260))


@dataclass(slots=True)
class SimItem:
    sku: str
    weight_g: int
    tag: str | None = None


@dataclass(slots=True)
class SimShelf:
    sensors: SensorKind
    items: list[SimItem] = field(default_factory=list)
    weight_fault: bool = False
    rfid_fault: bool = False

    def status(self) -> ShelfStatus:
        status = ShelfStatus.NONE
        if SensorKind.WEIGHT in self.sensors:
            status |= ShelfStatus.WEIGHT_FAULT if self.weight_fault else ShelfStatus.WEIGHT_VALID
        if SensorKind.RFID in self.sensors:
            status |= ShelfStatus.RFID_FAULT if self.rfid_fault else ShelfStatus.RFID_VALID
        return status

    def weight(self) -> int:
        return sum(item.weight_g for item in self.items)

    def tags(self) -> list[str]:
        return sorted(item.tag for item in self.items if item.tag is not None)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    status: ShelfStatus
    weight_g: int
    tags: frozenset[str]


@dataclass(slots=True)
class _Session:
    session_id: int
    state: SessionState
    open_window: int = 0
    held_open_limit: int = 0
    unlocked_at: float = 0.0
    opened_at: float = 0.0
    flags: RecordFlags = RecordFlags.NONE
    before: list[_Snapshot] = field(default_factory=list)
    after: list[_Snapshot] = field(default_factory=list)
    faulted: ShelfStatus = ShelfStatus.NONE  # fault bits seen on any shelf during the session
    faulted_shelves: dict[int, ShelfStatus] = field(default_factory=dict)

    def changed(self) -> int:
        if not self.after:
            return 0
        return sum(1 for b, a in zip(self.before, self.after, strict=True) if b != a)


def make_tag(shelf: int, index: int) -> str:
    return f"E280{shelf:04X}{index:016X}"


def stocked_shelves(shelves: int = 4, count: int = 5, rfid: bool = False) -> list[SimShelf]:
    """``shelves`` weight shelves (and RFID with tagged items) holding ``count`` each."""
    sensors = SensorKind.WEIGHT | (SensorKind.RFID if rfid else SensorKind.NONE)
    out = []
    for shelf in range(shelves):
        sku, grams = DEFAULT_PRODUCTS[shelf % len(DEFAULT_PRODUCTS)]
        if shelf >= len(DEFAULT_PRODUCTS):
            sku = f"{sku}{shelf}"
        items = [SimItem(sku, grams, make_tag(shelf, i) if rfid else None) for i in range(count)]
        out.append(SimShelf(sensors, items))
    return out


class SimCabinet(FramedSim[Request, Response]):
    """The cabinet controller board's firmware. ``receive`` is a pty ``ByteHandler``."""

    def __init__(
        self,
        shelves: list[SimShelf] | None = None,
        *,
        address: int = 0x20,
        memory: int = 16,
        boot_count: int = 0,
        model: str = "vendfleet sim cabinet",
    ) -> None:
        self.shelves = shelves if shelves is not None else stocked_shelves()
        if not 1 <= len(self.shelves) <= MAX_SHELVES:
            raise ValueError(f"a cabinet has 1..{MAX_SHELVES} shelves, got {len(self.shelves)}")
        if memory < 1:
            raise ValueError(f"memory must hold at least one session, got {memory}")
        super().__init__(CODEC, address, boot_count=boot_count)
        self.memory = memory
        self.model = model
        self.door_open = False
        self.locked = True
        self.tamper = False
        self.hand: list[tuple[int, SimItem]] = []  # (shelf taken from, item) in the customer's hand
        self._sessions: OrderedDict[int, _Session] = OrderedDict()
        self._active: _Session | None = None  # non-volatile: survives a power cycle
        self._last_session_id: int | None = None
        self._events: deque[Event] = deque()
        self._event_seq = 0
        self._events_lost = False
        self._power_up(0.0)

    # --- the firmware -------------------------------------------------------------

    def handle(self, request: Request, now: float) -> Response:
        """Answer one decoded request (tests may call this directly)."""
        self._advance(now)
        match request:
            case Identify():
                sensors = tuple(s.sensors for s in self.shelves)
                return Identity(1, self.boot_count, sensors, self.model)
            case GetStatus():
                return self._status()
            case Unlock():
                return self._unlock(request, now)
            case Lock(session_id=session_id):
                return self._lock(session_id)
            case QuerySession():
                return self._query(request)
            case ReadInventory(shelf=shelf, page=page):
                if shelf >= len(self.shelves):
                    return ErrorReply(request.CODE, ErrorCode.BAD_ARGUMENT)
                return self._inventory(shelf, page)
            case ReadSessionReport():
                return self._report(request)
            case ReadEvents(boot_count=boot, ack_through=ack):
                return self._read_events(boot, ack)
            case AcknowledgeReset(boot_count=boot):
                return self._acknowledge_reset(request.CODE, boot, ResetAcknowledged)

    def _flags(self) -> CabinetFlags:
        flags = CabinetFlags.NONE
        if self.reset_pending:
            flags |= CabinetFlags.RESET
        if self._active is not None:
            flags |= CabinetFlags.SESSION_ACTIVE
        if self.tamper:
            flags |= CabinetFlags.TAMPER
        if self._events_lost:
            flags |= CabinetFlags.EVENTS_LOST
        return flags

    def _door(self) -> DoorState:
        if not self.door_open:
            return DoorState.CLOSED
        active = self._active
        if active is not None and RecordFlags.HELD_OPEN in active.flags:
            return DoorState.HELD_OPEN
        return DoorState.OPEN

    def _status(self) -> CabinetStatus:
        faults: list[ShelfFaultEntry] = []
        for index, shelf in enumerate(self.shelves):
            if shelf.weight_fault:
                faults.append(ShelfFaultEntry(index, ShelfFault.WEIGHT))
            if shelf.rfid_fault:
                faults.append(ShelfFaultEntry(index, ShelfFault.RFID))
        flags = self._flags()
        if len(faults) > MAX_LISTED_FAULTS:
            flags |= CabinetFlags.FAULTS_TRUNCATED
        return CabinetStatus(
            boot_count=self.boot_count,
            flags=flags,
            door=self._door(),
            lock=LockState.LOCKED if self.locked else LockState.UNLOCKED,
            active_session_id=self._active.session_id if self._active else None,
            last_session_id=self._last_session_id,
            pending_events=min(len(self._events), 0xFF),
            faults=tuple(faults[:MAX_LISTED_FAULTS]),
        )

    def _record(self, session: _Session) -> SessionRecord:
        return SessionRecord(
            session_id=session.session_id,
            state=session.state,
            flags=session.flags,
            shelves_changed=session.changed(),
            boot_count=self.boot_count,
            cabinet_flags=self._flags(),
            door=self._door(),
        )

    def _unlock(self, request: Unlock, now: float) -> Response:
        known = self._sessions.get(request.session_id)
        if known is not None:
            return self._record(known)  # exactly once: never unlock twice for one id
        refusal = self._refuse_start(request.CODE, busy=self._active is not None)
        if refusal is not None:
            return refusal
        if self.door_open:
            return ErrorReply(request.CODE, ErrorCode.DOOR_OPEN)
        session = _Session(
            request.session_id,
            SessionState.UNLOCKED,
            request.open_window,
            request.held_open_limit,
            unlocked_at=now,
            before=self._snapshot(),
        )
        self._remember(session)  # stored before the lock releases
        self._active = session
        self._last_session_id = session.session_id
        self.locked = False
        return self._record(session)

    def _lock(self, session_id: int) -> Response:
        session = self._sessions.get(session_id)
        if session is None:
            return self._record(_Session(session_id, SessionState.NOT_SEEN))
        if session.state is SessionState.OPEN:
            return ErrorReply(Lock.CODE, ErrorCode.DOOR_OPEN)
        if session.state is SessionState.UNLOCKED:
            session.state = SessionState.CANCELLED
            self._end(session)
        return self._record(session)

    def _query(self, request: QuerySession) -> Response:
        session = self._sessions.get(request.session_id)
        if session is None:
            if not self._may_void(request.void_if_unseen):
                return self._record(_Session(request.session_id, SessionState.NOT_SEEN))
            session = _Session(request.session_id, SessionState.VOIDED)
            self._remember(session)
        return self._record(session)

    def _inventory(self, index: int, page: int) -> ShelfInventory:
        shelf = self.shelves[index]
        status = shelf.status()
        tags = shelf.tags() if ShelfStatus.RFID_VALID in status else []
        chunk = tags[page * INVENTORY_TAGS_PER_PAGE : (page + 1) * INVENTORY_TAGS_PER_PAGE]
        weight = shelf.weight() if ShelfStatus.WEIGHT_VALID in status else 0
        return ShelfInventory(index, status, weight, len(tags), page, tuple(chunk))

    def _report(self, request: ReadSessionReport) -> Response:
        session = self._sessions.get(request.session_id)
        if session is None or session.state is not SessionState.CLOSED:
            return ErrorReply(request.CODE, ErrorCode.NOT_READY)
        if request.shelf >= len(self.shelves):
            return ErrorReply(request.CODE, ErrorCode.BAD_ARGUMENT)
        before, after = session.before[request.shelf], session.after[request.shelf]
        status = (before.status & after.status) | session.faulted_shelves.get(
            request.shelf, ShelfStatus.NONE
        )
        if status & ShelfStatus.WEIGHT_FAULT:
            status &= ~ShelfStatus.WEIGHT_VALID
        if status & ShelfStatus.RFID_FAULT:
            status &= ~ShelfStatus.RFID_VALID
        entries = [TagChange(TagDirection.REMOVED, t) for t in sorted(before.tags - after.tags)]
        removed = len(entries)
        entries += [TagChange(TagDirection.ADDED, t) for t in sorted(after.tags - before.tags)]
        per = REPORT_TAGS_PER_PAGE
        weight_ok = ShelfStatus.WEIGHT_VALID in status
        return ShelfReport(
            session_id=session.session_id,
            shelf=request.shelf,
            status=status,
            confidence=100 if weight_ok else 0,
            weight_before_g=before.weight_g if weight_ok else 0,
            weight_after_g=after.weight_g if weight_ok else 0,
            removed_count=removed,
            added_count=len(entries) - removed,
            page=request.page,
            entries=tuple(entries[request.page * per : (request.page + 1) * per]),
        )

    def _read_events(self, boot: int, ack: int) -> Events:
        if boot == self.boot_count and ack:
            # Sequence numbers wrap 65535 -> 1; "not after ack" is within half the range.
            while self._events and (ack - self._events[0].seq) % 0xFFFF < 0x8000:
                self._events.popleft()
            if not self._events:
                self._events_lost = False
        listed = list(self._events)[:MAX_EVENTS_PER_ANSWER]
        more = min(len(self._events) - len(listed), 0xFF)
        return Events(self.boot_count, more, tuple(listed))

    # --- state changes ------------------------------------------------------------

    def _snapshot(self) -> list[_Snapshot]:
        out = []
        for shelf in self.shelves:
            status = shelf.status()
            tags = frozenset(shelf.tags()) if ShelfStatus.RFID_VALID in status else frozenset()
            weight = shelf.weight() if ShelfStatus.WEIGHT_VALID in status else 0
            out.append(_Snapshot(status, weight, tags))
        return out

    def _event(self, kind: EventKind, shelf: int | None = None) -> None:
        self._event_seq = self._event_seq % 0xFFFF + 1
        active = self._active
        self._events.append(
            Event(self._event_seq, kind, shelf, active.session_id if active else None)
        )
        if len(self._events) > EVENT_QUEUE:
            self._events.popleft()
            self._events_lost = True

    def _remember(self, session: _Session) -> None:
        self._sessions[session.session_id] = session
        while len(self._sessions) > self.memory:
            oldest = next(iter(self._sessions))
            if self._active is not None and oldest == self._active.session_id:
                self._sessions.move_to_end(oldest)
                continue
            self._sessions.popitem(last=False)

    def _end(self, session: _Session) -> None:
        self.locked = True
        if self._active is session:
            self._active = None

    def _advance(self, now: float) -> None:
        session = self._active
        if session is None:
            return
        if session.state is SessionState.UNLOCKED:
            if now >= session.unlocked_at + session.open_window:
                session.state = SessionState.EXPIRED
                self._event(EventKind.RELOCKED)
                self._end(session)
        elif (
            session.state is SessionState.OPEN
            and RecordFlags.HELD_OPEN not in session.flags
            and now >= session.opened_at + session.held_open_limit
        ):
            self._held_open(session)

    def _held_open(self, session: _Session) -> None:
        session.flags |= RecordFlags.HELD_OPEN
        self._event(EventKind.DOOR_HELD_OPEN)

    def _close(self) -> None:
        self.door_open = False
        self.locked = True  # the latch engages as the door shuts
        self.hand.clear()  # the customer leaves with what they hold
        session = self._active
        if session is not None and session.state is SessionState.OPEN:
            session.after = self._snapshot()
            session.state = SessionState.CLOSED
            session.flags |= RecordFlags.REPORT_READY
            self._event(EventKind.DOOR_CLOSED)
            self._end(session)
        else:
            self._event(EventKind.DOOR_CLOSED)

    def _power_up(self, now: float) -> None:
        self._restart()
        self.locked = True  # fail-secure
        self.tamper = False
        active = self._active
        self._sessions.clear()
        self._events.clear()
        self._event_seq = 0
        self._events_lost = False
        self._event(EventKind.POWER_UP)
        if active is None:
            return
        self._sessions[active.session_id] = active  # kept in non-volatile memory
        if active.state is SessionState.UNLOCKED:
            active.state = SessionState.EXPIRED
            self._end(active)
            return
        active.flags |= RecordFlags.POWER_INTERRUPTED
        active.opened_at = now  # the held-open clock restarts with the board
        if not self.door_open:
            active.state = SessionState.OPEN
            self._close()

    # --- the customer, the technician and the power supply ------------------------

    def power_cycle(self, now: float) -> None:
        self._advance(now)
        self._power_up(now)

    def control(self, action: str, args: dict[str, object], now: float) -> dict[str, object]:
        self._advance(now)
        if action == "open_door":
            self._open_door(flag_arg(args, "force"), now)
        elif action == "take":
            shelf = self._shelf_arg(args, "shelf")
            self._need_open(action)
            for item in self._pick(shelf, args, "take"):
                self.hand.append((shelf, item))
        elif action == "put_back":
            self._put_back(args)
        elif action == "move":
            self._move(args)
        elif action == "close_door":
            if not self.door_open:
                raise ValueError("the door is already closed")
            self._close()
        elif action == "hold_open":
            self._need_open(action)
            if self._active is not None and RecordFlags.HELD_OPEN not in self._active.flags:
                self._held_open(self._active)
        elif action in ("sensor_fault", "sensor_ok"):
            self._sensor(action == "sensor_fault", args)
        elif action == "power_cycle":
            self.power_cycle(now)
        elif action != "status" and not self._wire_control(action, args, drops=1):
            raise ValueError(f"cabinet has no action {action!r}")
        return self.status()

    def _need_open(self, action: str) -> None:
        if not self.door_open:
            raise ValueError(f"{action}: the door is closed")

    def _open_door(self, force: bool, now: float) -> None:
        if self.door_open:
            raise ValueError("the door is already open")
        if self.locked and not force:
            raise ValueError("the door is locked (use force to simulate tampering)")
        self.door_open = True
        session = self._active
        if self.locked:
            self.tamper = True
            self._event(EventKind.TAMPER)
        elif session is not None and session.state is SessionState.UNLOCKED:
            session.state = SessionState.OPEN
            session.opened_at = now
        self._event(EventKind.DOOR_OPENED)

    def _put_back(self, args: dict[str, object]) -> None:
        self._need_open("put_back")
        shelf = self._shelf_arg(args, "shelf")
        to_shelf = self._shelf_arg(args, "to_shelf") if "to_shelf" in args else shelf
        count = count_arg(args, "count", 1)
        held = [i for i, (origin, _) in enumerate(self.hand) if origin == shelf]
        if count > len(held):
            raise ValueError(f"the customer holds {len(held)} items from shelf {shelf}")
        for index in reversed(held[-count:] if count else []):
            _, item = self.hand.pop(index)
            self.shelves[to_shelf].items.append(item)

    def _move(self, args: dict[str, object]) -> None:
        """Staff open the door with the service key (no session, no tamper), move
        ``count`` items (of ``sku``, else the last put there) from ``shelf`` to
        ``to_shelf`` and shut it again: DOOR OPENED and DOOR CLOSED are queued."""
        if self.door_open or self._active is not None:
            raise ValueError("move: staff wait for the door to be shut and no session open")
        shelf, to_shelf = self._shelf_arg(args, "shelf"), self._shelf_arg(args, "to_shelf")
        moved = self._pick(shelf, args, "move")
        self._event(EventKind.DOOR_OPENED)
        self.shelves[to_shelf].items += moved
        self._event(EventKind.DOOR_CLOSED)

    def _pick(self, shelf: int, args: dict[str, object], action: str) -> list[SimItem]:
        """Take ``count`` items (of ``sku`` if given) off ``shelf``, the last placed first."""
        count = count_arg(args, "count", 1)
        sku = args.get("sku")
        if sku is not None and not isinstance(sku, str):
            raise ValueError(f"sku must be text, got {sku!r}")
        items = self.shelves[shelf].items
        picked = [i for i, item in enumerate(items) if sku is None or item.sku == sku]
        if count > len(picked):
            what = "items" if sku is None else f"{sku} items"
            raise ValueError(f"shelf {shelf} holds {len(picked)} {what}, cannot {action} {count}")
        return [items.pop(i) for i in reversed(picked[len(picked) - count :])]

    def _sensor(self, fault: bool, args: dict[str, object]) -> None:
        index = self._shelf_arg(args, "shelf")
        sensor = args.get("sensor", "weight")
        if sensor not in ("weight", "rfid"):
            raise ValueError(f"sensor must be 'weight' or 'rfid', got {sensor!r}")
        shelf = self.shelves[index]
        if sensor == "weight":
            shelf.weight_fault = fault
        else:
            shelf.rfid_fault = fault
        self._event(EventKind.SENSOR_FAULTED if fault else EventKind.SENSOR_RECOVERED, index)
        session = self._active
        if fault and session is not None:
            bit = ShelfStatus.WEIGHT_FAULT if sensor == "weight" else ShelfStatus.RFID_FAULT
            session.faulted_shelves[index] = session.faulted_shelves.get(index, bit) | bit
            session.flags |= RecordFlags.SENSOR_FAULT

    def _shelf_arg(self, args: dict[str, object], key: str) -> int:
        return index_arg(args, key, len(self.shelves))

    def status(self) -> dict[str, object]:
        active = self._active
        return {
            **self._wire_status(),
            "door": self._door().name.lower(),
            "locked": self.locked,
            "tamper": self.tamper,
            "active_session_id": active.session_id if active else None,
            "active_state": active.state.name.lower() if active else None,
            "shelves": [
                {
                    "items": len(s.items),
                    "weight_g": s.weight(),
                    "skus": sorted({i.sku for i in s.items}),
                    "weight_fault": s.weight_fault,
                    "rfid_fault": s.rfid_fault,
                }
                for s in self.shelves
            ],
            "hand": [{"from_shelf": origin, "sku": item.sku} for origin, item in self.hand],
            "pending_events": len(self._events),
            "answers_dropped": self.counters.answers_dropped,
        }
