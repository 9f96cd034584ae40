"""One smart-cabinet sale as a pure state machine: pre-authorise, unlock, count, settle.

How the controller drives it (nothing here does I/O or reads a clock):

    session = CabinetSession(session_id, planogram, policy, baseline=inventory)
    actions = session.start(now)                  # [AuthorisePayment(pre_auth)]
    actions = session.handle(PaymentApproved(amount), now)   # [UnlockDoor(...)]
    ...                                            # feed every event as it happens
    session.settlement                             # set once session.finished

Inputs (events, past tense), each passed with ``now`` (monotonic seconds):

=====================  ===========================================================
PaymentApproved        the reader's VEND APPROVED (amount; ``None`` = as requested)
PaymentDenied          VEND DENIED, or the session was cancelled at the reader
DoorUnlocked           the cabinet's UNLOCK answer said UNLOCKED
UnlockRefused          the cabinet refused UNLOCK or did not answer
DoorOpened             cabinet event DOOR OPENED (or a record in state OPEN)
DoorClosed             cabinet event DOOR CLOSED (or a record in state CLOSED)
DoorHeldOpen           cabinet event DOOR HELD OPEN (TimePassed also detects it)
DoorRelocked           the open window expired (cabinet event RELOCKED / record EXPIRED)
SensorFaulted          cabinet event SENSOR FAULT for a shelf
TamperDetected         cabinet event TAMPER
SessionReported        the SESSION REPORT of every shelf, as :class:`ShelfChange`
PowerLost              the cabinet (or the controller) lost power mid-session
PowerRestored          back up; ``door_open`` says whether the door is still open
InventoryRead          a fresh SHELF INVENTORY of every shelf, as :class:`ShelfReading`
TimePassed             a clock tick; drives the held-open alarm and the open window
=====================  ===========================================================

Outputs (actions, imperative), returned in order by ``start`` and ``handle``:

=====================  ===========================================================
AuthorisePayment       MDB VEND REQUEST for ``amount`` (the pre-authorisation)
UnlockDoor             cabinet UNLOCK (session id, open window, held-open limit)
LockDoor               cabinet LOCK (the open window passed without the door opening)
ReadSessionReport      read SESSION REPORT of every shelf -> SessionReported
ReadInventory          read SHELF INVENTORY of every shelf -> InventoryRead
RaiseAlarm             tell the fleet (alarm kinds in :class:`AlarmKind`)
CapturePayment         VEND SUCCESS for ``amount``; ``release`` is the rest of the
                       pre-authorisation (a reader that cannot take a lower final
                       amount gets NEGATIVE VEND / refund for ``release``)
ReleasePayment         VEND FAILURE: nothing is charged, the reader drops the hold
QueueReview            a :class:`ReviewRecord` for the fleet's human review queue
RecordSettlement       journal the :class:`Settlement` (sale lines for the receipt)
=====================  ===========================================================

Outcomes (docs/cabinet-protocol.md, section 8): every removed item is a line
(product, quantity, unit price); returned items are never charged; the charge never
exceeds the authorised amount (a CAP_ADJUSTMENT line and an OVER_PRE_AUTH alarm say
so); doubts, a door held open and a power loss are settled by the operator's
:class:`ChargeRule`, the most lenient one when several apply. Replaying the same
events into a new session gives the same actions, so the controller may journal
events and rebuild the session after its own restart.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.cabinet.errors import SessionError
from protocols.cabinet.messages import check_session_id
from protocols.cabinet.model import (
    Alarm,
    AlarmKind,
    CabinetPolicy,
    ChargeRule,
    Planogram,
    ReviewRecord,
    Settlement,
    SettlementOutcome,
    ShelfChange,
    ShelfReading,
    diff,
)
from protocols.cabinet.settle import assess, settle
from protocols.money import Money

# --- events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentApproved:
    amount: Money | None = None


@dataclass(frozen=True, slots=True)
class PaymentDenied:
    pass


@dataclass(frozen=True, slots=True)
class DoorUnlocked:
    pass


@dataclass(frozen=True, slots=True)
class UnlockRefused:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DoorOpened:
    pass


@dataclass(frozen=True, slots=True)
class DoorClosed:
    pass


@dataclass(frozen=True, slots=True)
class DoorHeldOpen:
    pass


@dataclass(frozen=True, slots=True)
class DoorRelocked:
    pass


@dataclass(frozen=True, slots=True)
class SensorFaulted:
    shelf: int


@dataclass(frozen=True, slots=True)
class TamperDetected:
    pass


@dataclass(frozen=True, slots=True)
class SessionReported:
    changes: tuple[ShelfChange, ...]


@dataclass(frozen=True, slots=True)
class PowerLost:
    pass


@dataclass(frozen=True, slots=True)
class PowerRestored:
    door_open: bool = False


@dataclass(frozen=True, slots=True)
class InventoryRead:
    readings: tuple[ShelfReading, ...]


@dataclass(frozen=True, slots=True)
class TimePassed:
    pass


SessionEvent = (
    PaymentApproved
    | PaymentDenied
    | DoorUnlocked
    | UnlockRefused
    | DoorOpened
    | DoorClosed
    | DoorHeldOpen
    | DoorRelocked
    | SensorFaulted
    | TamperDetected
    | SessionReported
    | PowerLost
    | PowerRestored
    | InventoryRead
    | TimePassed
)

# --- actions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorisePayment:
    amount: Money


@dataclass(frozen=True, slots=True)
class UnlockDoor:
    session_id: int
    open_window_s: int
    held_open_limit_s: int


@dataclass(frozen=True, slots=True)
class LockDoor:
    session_id: int


@dataclass(frozen=True, slots=True)
class ReadSessionReport:
    session_id: int


@dataclass(frozen=True, slots=True)
class ReadInventory:
    pass


@dataclass(frozen=True, slots=True)
class RaiseAlarm:
    alarm: Alarm


@dataclass(frozen=True, slots=True)
class CapturePayment:
    amount: Money
    release: Money


@dataclass(frozen=True, slots=True)
class ReleasePayment:
    reason: str


@dataclass(frozen=True, slots=True)
class QueueReview:
    record: ReviewRecord


@dataclass(frozen=True, slots=True)
class RecordSettlement:
    settlement: Settlement


Action = (
    AuthorisePayment
    | UnlockDoor
    | LockDoor
    | ReadSessionReport
    | ReadInventory
    | RaiseAlarm
    | CapturePayment
    | ReleasePayment
    | QueueReview
    | RecordSettlement
)


class Phase(enum.Enum):
    NEW = "new"
    AUTHORISING = "authorising"
    UNLOCKING = "unlocking"
    UNLOCKED = "unlocked"  # waiting for the customer to open the door
    OPEN = "open"
    COUNTING = "counting"  # door closed, waiting for the session report
    POWER_LOST = "power_lost"
    RECOUNTING = "recounting"  # after a power loss, waiting for the fresh inventory
    FINISHED = "finished"


_ACTIVE = frozenset({Phase.UNLOCKED, Phase.OPEN, Phase.COUNTING})


class CabinetSession:
    """One customer's visit to the cabinet, from pre-authorisation to settlement."""

    def __init__(
        self,
        session_id: int,
        planogram: Planogram,
        policy: CabinetPolicy,
        *,
        baseline: Sequence[ShelfReading] | None = None,
    ) -> None:
        try:
            check_session_id(session_id)
        except ValueError as exc:
            raise SessionError(str(exc)) from None
        currencies = {p.unit_price.currency for p in planogram.shelves.values()}
        if currencies - {policy.pre_auth.currency}:
            raise SessionError(
                f"planogram prices in {sorted(currencies)}, pre-authorisation in "
                f"{policy.pre_auth.currency}"
            )
        self.session_id = session_id
        self.planogram = planogram
        self.policy = policy
        self.baseline = tuple(baseline) if baseline is not None else None
        self.phase = Phase.NEW
        self.authorised = policy.pre_auth
        self.settlement: Settlement | None = None
        self.held_open = False
        self.power_lost = False
        self.faulted_shelves: set[int] = set()
        self._alarms: list[Alarm] = []
        self._unlocked_at: float | None = None
        self._opened_at: float | None = None
        self._lock_sent = False

    @property
    def finished(self) -> bool:
        return self.phase is Phase.FINISHED

    def start(self, now: float) -> list[Action]:
        if self.phase is not Phase.NEW:
            raise SessionError(f"session {self.session_id} already started")
        self.phase = Phase.AUTHORISING
        return [AuthorisePayment(self.policy.pre_auth)]

    def handle(self, event: SessionEvent, now: float) -> list[Action]:
        """Advance on one event; an event that cannot happen now is a :class:`SessionError`."""
        if self.phase is Phase.FINISHED:
            raise SessionError(f"session {self.session_id} is finished; got {_name(event)}")
        match event:
            case PaymentApproved(amount=amount):
                return self._approved(amount)
            case PaymentDenied():
                self._expect(event, Phase.AUTHORISING)
                return self._cancel("payment denied", release=False)
            case DoorUnlocked():
                self._expect(event, Phase.UNLOCKING)
                self.phase, self._unlocked_at = Phase.UNLOCKED, now
                return []
            case UnlockRefused(reason=reason):
                self._expect(event, Phase.UNLOCKING)
                return self._cancel(f"cabinet did not unlock: {reason}".rstrip(": "))
            case DoorOpened():
                return self._opened(event, now)
            case DoorClosed():
                return self._closed(event)
            case DoorHeldOpen():
                self._expect(event, Phase.OPEN, Phase.POWER_LOST)
                return self._mark_held_open()
            case DoorRelocked():
                self._expect(event, Phase.UNLOCKED)
                return self._cancel("the door was not opened in time")
            case SensorFaulted(shelf=shelf):
                self.faulted_shelves.add(shelf)
                return [self._alarm(AlarmKind.SENSOR_FAULT, f"shelf {shelf} faulted", shelf)]
            case TamperDetected():
                return [self._alarm(AlarmKind.TAMPER, "the cabinet reported tampering")]
            case SessionReported(changes=changes):
                self._expect(event, Phase.COUNTING, Phase.POWER_LOST, Phase.RECOUNTING)
                return self._settle(changes)
            case PowerLost():
                return self._power_lost(event)
            case PowerRestored(door_open=door_open):
                self._expect(event, Phase.POWER_LOST)
                if door_open:
                    return []  # counting waits for DoorClosed
                self.phase = Phase.RECOUNTING
                return [ReadInventory()]
            case InventoryRead(readings=readings):
                self._expect(event, Phase.RECOUNTING)
                return self._settle(self._changes_since_baseline(readings))
            case TimePassed():
                return self._tick(now)

    # --- transitions --------------------------------------------------------------

    def _approved(self, amount: Money | None) -> list[Action]:
        self._expect(PaymentApproved(amount), Phase.AUTHORISING)
        if amount is not None:
            if amount.currency != self.policy.pre_auth.currency:
                raise SessionError(f"approved in {amount.currency}, asked in {self.authorised}")
            if amount.minor <= 0:
                return self._cancel(f"reader approved {amount.minor}", release=True)
            self.authorised = min(amount, self.policy.pre_auth)
        self.phase = Phase.UNLOCKING
        policy = self.policy
        return [UnlockDoor(self.session_id, policy.open_window_s, policy.held_open_limit_s)]

    def _opened(self, event: SessionEvent, now: float) -> list[Action]:
        if self.phase is Phase.OPEN:
            return []  # the same door-open seen twice (event and record)
        self._expect(event, Phase.UNLOCKED)
        self.phase, self._opened_at = Phase.OPEN, now
        return []

    def _closed(self, event: SessionEvent) -> list[Action]:
        if self.phase is Phase.COUNTING:
            return []
        if self.phase is Phase.POWER_LOST:
            self.phase = Phase.RECOUNTING
            return [ReadInventory()]
        self._expect(event, Phase.OPEN)
        self.phase = Phase.COUNTING
        return [ReadSessionReport(self.session_id)]

    def _mark_held_open(self) -> list[Action]:
        if self.held_open:
            return []
        self.held_open = True
        limit = self.policy.held_open_limit_s
        return [self._alarm(AlarmKind.DOOR_HELD_OPEN, f"door open longer than {limit} s")]

    def _power_lost(self, event: SessionEvent) -> list[Action]:
        if self.phase is Phase.POWER_LOST:
            return []
        self._expect(event, *_ACTIVE, Phase.RECOUNTING)
        self.power_lost = True
        was = self.phase
        self.phase = Phase.POWER_LOST
        return [self._alarm(AlarmKind.POWER_LOST, f"power lost while {was.value}")]

    def _tick(self, now: float) -> list[Action]:
        policy = self.policy
        if self.phase is Phase.OPEN and self._opened_at is not None:
            if now - self._opened_at >= policy.held_open_limit_s:
                return self._mark_held_open()
            return []
        window_over = (
            self._unlocked_at is not None and now - self._unlocked_at >= policy.open_window_s
        )
        if self.phase is Phase.UNLOCKED and window_over and not self._lock_sent:
            self._lock_sent = True
            return [LockDoor(self.session_id)]
        return []

    def _changes_since_baseline(self, readings: Sequence[ShelfReading]) -> tuple[ShelfChange, ...]:
        if self.baseline is None:
            return ()  # _settle holds it: nothing to compare with
        after = {r.shelf: r for r in readings}
        changes: list[ShelfChange] = []
        for before in self.baseline:
            now_reading = after.get(
                before.shelf, ShelfReading(before.shelf, None, None, fault=True)
            )
            changes.append(diff(before, now_reading))
        return tuple(changes)

    def _settle(self, changes: Sequence[ShelfChange]) -> list[Action]:
        policy = self.policy
        marked = tuple(
            _with_fault(c) if c.shelf in self.faulted_shelves and not c.fault else c
            for c in changes
        )
        rules: list[tuple[ChargeRule, str]] = []
        if self.held_open:
            rules.append((policy.held_open_rule, "door held open"))
        if self.power_lost:
            rules.append((policy.power_loss_rule, "power lost during the session"))
            if self.baseline is None and not changes:
                rules.append((ChargeRule.HOLD_FOR_REVIEW, "no inventory from before the cut"))
        assessment = assess(
            marked,
            self.planogram,
            self.session_id,
            min_confidence=policy.min_confidence,
            noise_g=policy.noise_g,
        )
        settlement = settle(
            assessment,
            self.planogram,
            session_id=self.session_id,
            authorised=self.authorised,
            rules=rules,
            disagreement_rule=policy.disagreement_rule,
            alarms=self._alarms,
        )
        return self._finish(settlement, raised=len(self._alarms))

    def _finish(self, settlement: Settlement, raised: int) -> list[Action]:
        self.phase = Phase.FINISHED
        self.settlement = settlement
        actions: list[Action] = [RaiseAlarm(a) for a in settlement.alarms[raised:]]
        if settlement.charge.minor > 0:
            actions.append(CapturePayment(settlement.charge, settlement.released))
        else:
            actions.append(ReleasePayment(settlement.outcome.value))
        actions += [QueueReview(r) for r in settlement.reviews]
        actions.append(RecordSettlement(settlement))
        return actions

    def _cancel(self, reason: str, *, release: bool = True) -> list[Action]:
        zero = Money(0, self.authorised.currency)
        settlement = Settlement(
            self.session_id,
            SettlementOutcome.CANCELLED,
            self.authorised if release else zero,
            zero,
            alarms=tuple(self._alarms),
        )
        self.phase = Phase.FINISHED
        self.settlement = settlement
        actions: list[Action] = [ReleasePayment(reason)] if release else []
        return [*actions, RecordSettlement(settlement)]

    def _alarm(self, kind: AlarmKind, detail: str, shelf: int | None = None) -> RaiseAlarm:
        alarm = Alarm(kind, self.session_id, detail, shelf)
        self._alarms.append(alarm)
        return RaiseAlarm(alarm)

    def _expect(self, event: SessionEvent, *phases: Phase) -> None:
        if self.phase not in phases:
            raise SessionError(
                f"session {self.session_id}: {_name(event)} while {self.phase.value}"
            )


def _name(event: SessionEvent) -> str:
    return type(event).__name__


def _with_fault(change: ShelfChange) -> ShelfChange:
    return ShelfChange(
        change.shelf,
        change.weight_before_g,
        change.weight_after_g,
        change.removed_tags,
        change.added_tags,
        change.rfid,
        change.confidence,
        fault=True,
    )
