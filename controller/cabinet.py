"""Smart-cabinet mode: pre-authorise on the card, unlock, count what left, charge for that.

One task (:meth:`CabinetFlow.run`) serves the cabinet, one session at a time::

    card tap / panel cabinet_open
      -> baseline inventory -> log "started" -> VEND REQUEST (pre-authorisation)
      -> VEND APPROVED -> log PaymentApproved -> UNLOCK (session id, exactly once)
      -> door events polled from the cabinet, each logged before it is acted on
      -> door closed -> SESSION REPORT -> log SessionReported (alarms, reviews with it)
      -> capture on the reader (each step logged first) -> log "closed" with the sale

The decisions are the pure :class:`protocols.cabinet.session.CabinetSession`'s; this
module carries out its actions and feeds it what happened. Every step is written to
:mod:`controller.cabinet_log` before the hardware moves.

Capture of a final amount lower than the pre-authorisation (MDB VEND SUCCESS carries no
amount): VEND SUCCESS then NEGATIVE VEND REQUEST for the rest on a reader with Level-3
negative vend; else VEND FAILURE and a new VEND REQUEST for the final amount on a
multivend reader; else, as baskets do, VEND FAILURE and the sale recorded as unsettled
(a free product is a smaller wrong than a charge for nothing) -- with a review record.

After a restart (:meth:`CabinetFlow.recover`) our init has reset the reader, which voids
an approval not yet settled, so an open session can no longer charge the card: it is
finished from what the cabinet says (verdict, report or a fresh inventory against the
baseline), settled under the power-loss rule, and anything due goes to the review queue
as an unsettled sale. Nothing is charged twice; nothing is charged that was not taken.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

from controller import cabinet_bodies as cb
from controller import cabinet_log as clog
from controller.cabinet_config import CabinetSection
from controller.cabinet_payment import (
    CAPTURED,
    NOT_CHARGED,
    REFUND_OWED,
    RELEASED,
    UNCERTAIN,
    UNSETTLED,
    CabinetRun,
    CardPayments,
)
from controller.panel import PanelError
from controller.receipts import Issued
from drivers.cabinet import Cabinet, CabinetDriverError, SessionVerdict
from protocols.cabinet import session as cs
from protocols.cabinet.errors import CabinetError
from protocols.cabinet.messages import DoorState, Event, EventKind, SessionState
from protocols.cabinet.model import (
    Alarm,
    AlarmKind,
    SettlementOutcome,
    ShelfChange,
    ShelfReading,
)
from protocols.mdb.cashless import events as card
from protocols.mdb.errors import MdbError
from protocols.mdb.events import DeviceOffline, DeviceReset, MdbEvent
from protocols.money import Money
from protocols.telemetry import Body, RefundBody, RefundKind
from protocols.vend import outputs as o

if TYPE_CHECKING:
    from controller.machine import Machine

log = logging.getLogger(__name__)

IDLE_POLL = 1.0  # cabinet events while no session runs (tamper, power-up)
RETRIES = 3


_T = TypeVar("_T")


class CabinetFlow(CardPayments):
    def __init__(self, machine: Machine, settings: CabinetSection, cabinet: Cabinet) -> None:
        self.machine = machine
        self.settings = settings
        self.cabinet = cabinet
        self.currency = machine.config.machine.currency
        # A cabinet-only machine opens on a card tap; with selections, the panel asks.
        self.open_on_tap = not machine.config.selection
        self.current: CabinetRun | None = None
        self.recovering = True
        self.armed = False  # cabinet_open pressed: the next card tap opens the cabinet
        self.last: dict[str, Any] | None = None
        self._starts: asyncio.Queue[int] = asyncio.Queue()
        self._answers: asyncio.Queue[MdbEvent] = asyncio.Queue()
        self._ack: tuple[int, int] | None = None  # (boot, seq) of the last event journaled

    # --- what the machine asks --------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.current is not None or self.recovering or not self._starts.empty()

    def wants_cards(self) -> bool:
        """Keep the readers on for the cabinet while the vend side takes no money."""
        s = self.machine.session
        return not (s.busy or s.credit or s.escrow)

    def claims(self, event: MdbEvent) -> bool:
        """See a reader event first; True: it belongs to the cabinet session alone."""
        run = self.current
        match event:
            case card.SessionBegan(address=a):
                wanted = self.open_on_tap or self.armed
                if run is None and not self.recovering and wanted and not self._in_service():
                    self.armed = False
                    self._starts.put_nowait(a)
                return False
            case card.VendApproved(address=a) | card.VendDenied(address=a):
                if run is not None and run.reader == a and not run.card_lost:
                    self._answers.put_nowait(event)
                    return True
            case (
                card.SessionEnded(address=a)
                | card.SessionAborted(address=a)
                | DeviceOffline(address=a)
                | DeviceReset(address=a, unexpected=True)
            ):
                if run is not None and run.reader == a and not run.ending:
                    run.card_lost = True
                    self._answers.put_nowait(event)
        return False

    def _in_service(self) -> bool:
        return bool(self.machine.front.service_mode)

    async def request_open(self) -> dict[str, Any]:
        """The panel's ``cabinet_open``: open now on the card in session, or on the next tap."""
        if self.active:
            raise PanelError("the cabinet is busy; try again in a moment")
        s = self.machine.session
        if s.busy or s.credit or s.escrow or (s.basket is not None and s.basket.active):
            raise PanelError("finish the purchase in progress first")
        if s.card is not None and not s.card.requested:
            self._starts.put_nowait(s.card.reader)
            return {"cabinet": "authorising", **self.view()}
        self.armed = True
        self._show("Tap your card to open the cabinet")
        return {"cabinet": "tap_card", **self.view()}

    def view(self) -> dict[str, Any]:
        run = self.current
        idle = "recovering" if self.recovering else "idle"
        return {
            "phase": run.session.phase.value if run else idle,
            "recovering": self.recovering,
            "session_id": None if run is None else run.session.session_id,
            "armed": self.armed,
            "last": self.last,
        }

    # --- the task ---------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.recover()
        finally:
            self.recovering = False
        while True:
            _stop_if_cancelled()
            try:
                reader = await asyncio.wait_for(self._starts.get(), IDLE_POLL)
            except TimeoutError:
                await self._idle_poll()
                continue
            try:
                await self._serve(reader)
            except (CabinetDriverError, CabinetError, MdbError):
                log.exception("cabinet session failed")

    async def recover(self) -> None:
        """Finish every session the log shows open, then let the cabinet unlock again."""
        journal = self.machine.journal
        await journal.run(lambda: clog.ensure_table(journal.db))
        raw = await journal.run(lambda: journal.get_meta(clog.EVENT_ACK_KEY))
        if raw:
            boot, _, seq = raw.partition(":")
            self._ack = (int(boot), int(seq))
        sessions = await journal.run(lambda: clog.load_sessions(journal.db))
        for logged in sessions:
            session = logged.rebuild()
            run = CabinetRun(session, logged.reader, logged.boot, card_lost=True)
            run.events = [event for event, _ in logged.events]
            self.current = run
            log.warning("cabinet session %s open at restart (%s)", run.session.session_id,
                        session.phase.value)  # fmt: skip
            try:
                if session.finished:
                    self._payment_at_restart(run, logged.payment_steps)
                    await self._close(run)
                else:
                    await self._resume(run)
                    await self._until_finished(run)
            finally:
                self.current = None
        await self._acknowledge_reset()

    # --- one session ------------------------------------------------------------------

    async def _serve(self, reader: int) -> None:
        if self.machine.session.busy:
            self._show("Please wait")
            return
        await self._idle_poll()  # what happened before this session is not part of it
        try:
            baseline = await self.cabinet.inventory()
        except CabinetDriverError as exc:
            log.error("cabinet not available: %s", exc)  # noqa: TRY400
            self._show("Cabinet unavailable")
            self._end_card(reader)
            return
        prices = {c: s.selection.price.minor for c, s in self.machine.session.selections.items()}
        planogram = self.settings.planogram(self.currency, prices, baseline)
        policy = self.settings.policy(self.currency)
        sid = await self._next_id()
        session = cs.CabinetSession(sid, planogram, policy, baseline=baseline)
        run = CabinetRun(session, reader, self.cabinet.boot)
        self.current = run
        try:
            actions = session.start(self._now())
            started = clog.started_record(
                reader, run.boot, baseline=baseline, planogram=planogram, policy=policy
            )
            await self._write(sid, [started], meta={clog.NEXT_ID_KEY: str(sid + 1)})
            await self._act(run, actions)
            await self._until_finished(run)
        finally:
            self.current = None
        await self._acknowledge_reset()

    async def _until_finished(self, run: CabinetRun) -> None:
        while not run.session.finished:
            _stop_if_cancelled()
            await self._poll(run)
            if not run.session.finished:
                await self._feed(run, cs.TimePassed())
            await asyncio.sleep(self.settings.poll_interval)

    async def _feed(
        self, run: CabinetRun, event: cs.SessionEvent, ack: tuple[int, int] | None = None
    ) -> None:
        """Advance the session on ``event``: log it (with its telemetry), then act."""
        session = run.session
        if session.finished:
            return
        now = self._now()
        try:
            actions = session.handle(event, now)
        except CabinetError as exc:
            log.warning("cabinet session %s: %s", session.session_id, exc)
            return
        if isinstance(event, cs.TimePassed) and not actions:
            return  # nothing changed: not worth a row
        run.events.append(event)
        bodies: list[Body] = []
        for action in actions:
            if isinstance(action, cs.RaiseAlarm):
                bodies.append(cb.alarm_body(action.alarm))
                run.door_alarm |= action.alarm.kind is AlarmKind.DOOR_HELD_OPEN
        if isinstance(event, cs.DoorClosed) and run.door_alarm:
            run.door_alarm = False
            bodies.append(cb.door_closed_body(session.session_id))
        if any(isinstance(a, cs.QueueReview) for a in actions):
            changes = cb.last_changes(session, run.events)
            bodies += cb.review_bodies(session, run.reader, changes)
        meta = {clog.EVENT_ACK_KEY: f"{ack[0]}:{ack[1]}"} if ack else None
        await self._write(session.session_id, [clog.event_record(event, now)], bodies, meta=meta)
        if ack:
            self._ack = ack
        await self._act(run, actions)

    async def _act(self, run: CabinetRun, actions: Sequence[cs.Action]) -> None:
        for action in actions:
            match action:
                case cs.AuthorisePayment(amount=amount):
                    await self._authorise(run, amount)
                case cs.UnlockDoor():
                    await self._unlock(run, action)
                case cs.LockDoor():
                    await self._lock(run)
                case cs.ReadSessionReport():
                    await self._feed(run, cs.SessionReported(await self._report(run)))
                case cs.ReadInventory():
                    await self._feed(run, cs.InventoryRead(await self._inventory()))
                case cs.CapturePayment(amount=amount, release=release):
                    self._show("Charging your card")
                    await self._capture(run, amount, release)
                case cs.ReleasePayment():
                    await self._release(run)
                case cs.RecordSettlement():
                    await self._close(run)
                case cs.RaiseAlarm() | cs.QueueReview():
                    pass  # their telemetry went out with the event that raised them

    # --- the cabinet ------------------------------------------------------------------

    async def _unlock(self, run: CabinetRun, action: cs.UnlockDoor) -> None:
        sid = action.session_id
        try:
            record = await self.cabinet.unlock(sid, action.open_window_s, action.held_open_limit_s)
            state = record.state
        except CabinetDriverError as exc:
            # The UNLOCK may have arrived: ask (voiding the id if it did not) before deciding.
            log.warning("cabinet UNLOCK %s: %s", sid, exc)
            verdict = await self._verdict(run)
            state = {
                SessionVerdict.WAITING: SessionState.UNLOCKED,
                SessionVerdict.OPEN: SessionState.OPEN,
                SessionVerdict.CLOSED: SessionState.CLOSED,
            }.get(verdict, SessionState.VOIDED)
        if state not in (SessionState.UNLOCKED, SessionState.OPEN, SessionState.CLOSED):
            self._show("Cabinet did not open: card released")
            await self._feed(run, cs.UnlockRefused(state.name.lower()))
            return
        self._show("Open the door and take what you like")
        await self._feed(run, cs.DoorUnlocked())
        if state is not SessionState.UNLOCKED:
            await self._feed(run, cs.DoorOpened())

    async def _lock(self, run: CabinetRun) -> None:
        try:
            record = await self.cabinet.lock(run.session.session_id)
        except CabinetDriverError as exc:
            log.info("cabinet LOCK: %s (the door events decide)", exc)
            return
        if record.state in (SessionState.CANCELLED, SessionState.EXPIRED):
            await self._feed(run, cs.DoorRelocked())

    async def _verdict(self, run: CabinetRun) -> SessionVerdict:
        sid = run.session.session_id
        return await _retrying(
            "QUERY SESSION",
            lambda: self.cabinet.verdict(sid, since_boot=run.boot),
            SessionVerdict.UNKNOWN,
        )

    async def _report(self, run: CabinetRun) -> tuple[ShelfChange, ...]:
        # No report: every shelf in doubt, so the operator's disagreement rule decides.
        doubt = tuple(ShelfChange(s.shelf, None, None, fault=True) for s in self.settings.shelf)
        sid = run.session.session_id
        return await _retrying("SESSION REPORT", lambda: self.cabinet.session_report(sid), doubt)

    async def _inventory(self) -> tuple[ShelfReading, ...]:
        doubt = tuple(ShelfReading(s.shelf, None, None, fault=True) for s in self.settings.shelf)
        return await _retrying("SHELF INVENTORY", self.cabinet.inventory, doubt)

    async def _read_events(self) -> tuple[int, tuple[Event, ...]] | None:
        ack = self._ack
        boot = self.cabinet.boot
        through = ack[1] if ack is not None and ack[0] == boot else 0
        try:
            answer = await self.cabinet.read_events(ack_through=through, boot=boot)
        except CabinetDriverError as exc:
            log.debug("cabinet READ EVENTS: %s", exc)
            return None
        fresh = tuple(
            e for e in answer.events
            if ack is None or ack[0] != answer.boot_count or e.seq > ack[1]
        )  # fmt: skip
        return answer.boot_count, fresh

    async def _poll(self, run: CabinetRun) -> None:
        got = await self._read_events()
        if got is None:
            return
        boot, events = got
        sid = run.session.session_id
        for ev in events:
            mapped: list[cs.SessionEvent] = []
            mine = ev.session_id in (None, sid)
            match ev.kind:
                case EventKind.DOOR_OPENED if mine:
                    mapped = [cs.DoorOpened()]
                case EventKind.DOOR_CLOSED if mine:
                    mapped = [cs.DoorClosed()]
                case EventKind.DOOR_HELD_OPEN if mine:
                    mapped = [cs.DoorHeldOpen()]
                case EventKind.RELOCKED if mine:
                    mapped = [cs.DoorRelocked()]
                case EventKind.SENSOR_FAULTED if ev.shelf is not None:
                    mapped = [cs.SensorFaulted(ev.shelf)]
                case EventKind.TAMPER:
                    mapped = [cs.TamperDetected()]
                case EventKind.POWER_UP if boot != run.boot:
                    mapped = [cs.PowerLost(), cs.PowerRestored(await self._door_open())]
            for event in mapped:
                await self._feed(run, event, ack=(boot, ev.seq))
            self._ack = (boot, ev.seq)

    async def _door_open(self) -> bool:
        try:
            return (await self.cabinet.status()).door is not DoorState.CLOSED
        except CabinetDriverError:
            return True  # unknown: wait for the door events rather than count now

    async def _idle_poll(self) -> None:
        got = await self._read_events()
        if got is None:
            return
        boot, events = got
        bodies = [
            cb.alarm_body(Alarm(AlarmKind.TAMPER, 0, "the door opened while locked"))
            for ev in events
            if ev.kind is EventKind.TAMPER
        ]
        if events:
            self._ack = (boot, events[-1].seq)
            meta = {clog.EVENT_ACK_KEY: f"{boot}:{events[-1].seq}"}
            await self._write(0, [], bodies, meta=meta)
        if any(ev.kind is EventKind.POWER_UP for ev in events):
            await self._acknowledge_reset()

    async def _acknowledge_reset(self) -> None:
        """The cabinet refuses new sessions after a power-up until told every old one is
        resolved -- which is true whenever no session is open here."""
        try:
            status = await self.cabinet.status()
            if status.was_reset:
                await self.cabinet.acknowledge_reset(status.boot_count)
        except CabinetDriverError as exc:
            log.warning("cabinet not answering: %s", exc)

    # --- after a restart --------------------------------------------------------------

    async def _resume(self, run: CabinetRun) -> None:
        """Feed an interrupted session what the cabinet says happened while we were down."""
        session = run.session
        phase = session.phase
        if phase is cs.Phase.AUTHORISING:
            await self._feed(run, cs.PaymentDenied())  # the reader's reset voided any approval
            return
        if phase is cs.Phase.RECOUNTING:
            await self._feed(run, cs.InventoryRead(await self._inventory()))
            return
        verdict = await self._verdict(run)
        if phase is cs.Phase.UNLOCKING:
            if verdict is SessionVerdict.NEVER_UNLOCKED:
                await self._feed(run, cs.UnlockRefused("the cabinet never unlocked"))
                return
            await self._feed(run, cs.DoorUnlocked())
        if session.phase is cs.Phase.UNLOCKED:
            if verdict is SessionVerdict.WAITING:
                await self._lock(run)  # nobody may open it on an approval that is void now
                if session.finished:
                    return
                verdict = await self._verdict(run)
            if verdict is SessionVerdict.ENDED_UNOPENED:
                await self._feed(run, cs.DoorRelocked())
                return
            if verdict in (SessionVerdict.OPEN, SessionVerdict.CLOSED):
                await self._feed(run, cs.DoorOpened())
        await self._feed(run, cs.PowerLost())
        if verdict is SessionVerdict.CLOSED:
            await self._feed(run, cs.SessionReported(await self._report(run)))
        elif verdict is SessionVerdict.OPEN:
            await self._feed(run, cs.PowerRestored(door_open=True))  # counted when it closes
        else:
            await self._feed(run, cs.PowerRestored(door_open=False))

    @staticmethod
    def _payment_at_restart(run: CabinetRun, steps: Sequence[Mapping[str, Any]]) -> None:
        settlement = run.session.settlement
        assert settlement is not None
        zero = Money(0, settlement.charge.currency)
        if steps:
            what = steps[-1].get("step", "payment")
            run.payment = (UNCERTAIN, zero, f"the controller restarted during the {what} step")
        elif settlement.charge:
            run.payment = (UNSETTLED, zero, "the card authorisation was lost at a restart")
        else:
            run.payment = (RELEASED, zero, "")

    # --- closing ----------------------------------------------------------------------

    async def _close(self, run: CabinetRun) -> None:
        session = run.session
        settlement = session.settlement
        assert settlement is not None
        sid = settlement.session_id
        zero = Money(0, settlement.charge.currency)
        outcome, charged, why = run.payment or (NOT_CHARGED, zero, "")
        if settlement.outcome is SettlementOutcome.CANCELLED and outcome == NOT_CHARGED:
            why = "payment not approved"
        bodies: list[Body] = []
        sale = cb.sale_body(
            settlement, run.reader, settled=outcome in (CAPTURED, REFUND_OWED)
        ) if outcome in (CAPTURED, UNSETTLED, REFUND_OWED, UNCERTAIN) else None  # fmt: skip
        if sale is not None:
            bodies.append(sale)
        if outcome == REFUND_OWED:
            bodies.append(
                RefundBody(
                    kind=RefundKind.IOU,
                    amount=settlement.released.minor,
                    currency=settlement.charge.currency,
                    vend_id=sid,
                    reason=f"cabinet: {why}",
                )
            )
        if outcome in (UNSETTLED, REFUND_OWED, UNCERTAIN) and (settlement.charge or charged):
            changes = cb.last_changes(session, run.events)
            bodies.append(cb.payment_review(
                settlement, run.reader, outcome=outcome, reason=why, charged=charged,
                changes=changes,
            ))  # fmt: skip
        if run.door_alarm:
            run.door_alarm = False
            bodies.append(cb.door_closed_body(sid))
        record = {
            "kind": "closed",
            "outcome": outcome,
            "settlement": settlement.outcome.value,
            "charge": settlement.charge.minor,
            "charged": charged.minor,
            "why": why,
        }
        receipt = outcome == CAPTURED and not cb.capped(settlement)
        await self._write(sid, [record], bodies, receipts=receipt)
        self.last = {**settlement.describe(), "payment": outcome, "charged": charged.minor,
                     "why": why}  # fmt: skip
        if not run.card_lost:
            run.ending = True
            self._end_card(run.reader)
        self._show(_farewell(outcome, settlement.charge))
        log.info("cabinet session %s: %s, %s charged", sid, outcome, charged)

    # --- plumbing ---------------------------------------------------------------------

    def _now(self) -> float:
        return self.machine.wall().timestamp()

    def _show(self, text: str) -> None:
        self.machine._show(o.Show(text, self.machine.session.available()))  # noqa: SLF001

    async def _next_id(self) -> int:
        journal = self.machine.journal
        raw = await journal.run(lambda: journal.get_meta(clog.NEXT_ID_KEY))
        return int(raw) if raw else secrets.randbelow(2**31) + 1

    async def _write(
        self,
        session_id: int,
        records: Sequence[Mapping[str, Any]],
        bodies: Sequence[Body] = (),
        *,
        meta: Mapping[str, str | None] | None = None,
        receipts: bool = False,
    ) -> None:
        """Log ``records`` with their telemetry (and receipt numbers) in one transaction."""
        machine = self.machine
        async with machine.lock:
            at = machine.wall()
            issued = machine.receipts.issue(bodies, at) if receipts else Issued(list(bodies))
            stamp = at.astimezone(UTC).isoformat()
            update = {**(meta or {}), **issued.meta}

            def build(db: Any) -> tuple[list[Any], Mapping[str, str | None]]:
                for record in records:
                    clog.insert(db, session_id, stamp, record)
                return issued.messages, update

            journal = machine.journal
            await journal.run(lambda: journal.enqueue_with(build, at))
            machine.receipts.confirm(issued)
        machine.wake_telemetry()


async def _retrying(what: str, ask: Callable[[], Awaitable[_T]], fallback: _T) -> _T:
    """Ask the cabinet up to RETRIES times; ``fallback`` when it never answers."""
    for _ in range(RETRIES):
        try:
            return await ask()
        except CabinetDriverError as exc:
            log.warning("cabinet %s: %s", what, exc)
            await asyncio.sleep(0.5)
    return fallback


def _stop_if_cancelled() -> None:
    """Python 3.11's ``wait_for`` can swallow a cancellation that races its result; a
    polling loop then checks the request itself rather than poll forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _farewell(outcome: str, charge: Money) -> str:
    if outcome == CAPTURED:
        return f"Charged {charge}: thank you"
    if outcome == RELEASED:
        return "Nothing charged: thank you"
    if outcome == NOT_CHARGED:
        return "Card not approved"
    return "Thank you: an operator will check this purchase"
