"""Smart-cabinet mode: pre-authorise on the card, unlock, count what left, charge for that.

One task (:meth:`CabinetFlow.run`) serves the cabinet, one session at a time::

    card tap / panel cabinet_open
      -> baseline inventory -> log "started" -> VEND REQUEST (pre-authorisation)
      -> VEND APPROVED -> log PaymentApproved -> UNLOCK (session id, exactly once)
      -> door events polled from the cabinet, each logged before it is acted on
      -> door closed -> SESSION REPORT -> log SessionReported (alarms, reviews with it)
      -> capture on the reader (each step logged first) -> log "closed" with the sale

The decisions are the pure :class:`protocols.cabinet.session.CabinetSession`'s; this
module carries out its actions and feeds it what happened; the board is spoken to
through :mod:`controller.cabinet_link` and the reader through
:mod:`controller.cabinet_payment`. Every step is written to :mod:`controller.cabinet_log`
before the hardware moves.

Capture of a final amount lower than the pre-authorisation (MDB VEND SUCCESS carries no
amount): VEND SUCCESS then NEGATIVE VEND REQUEST for the rest on a reader with Level-3
negative vend; else VEND FAILURE and a new VEND REQUEST for the final amount on a
multivend reader; else, as baskets do, VEND FAILURE and the sale recorded as unsettled
(a free product is a smaller wrong than a charge for nothing) -- with a review record.

After a restart (:meth:`CabinetFlow.recover`, :mod:`controller.cabinet_recovery`) an open
session is finished from what the cabinet says, under the power-loss rule; the voided card
is charged only if it comes back in time (``resume_window_s``), else the sale goes to
review as unsettled. Nothing is charged twice; nothing is charged that was not taken.

Stock: the shelves are reported as ``stock`` rows per sku at start-up, before and after
each session (:mod:`controller.cabinet_stock`).

Planogram notices: an item put back on another product's shelf raises a ``planogram``
alarm and is kept as a stray (:mod:`protocols.cabinet.strays`, in the journal's meta with
the alarm). Every inventory read (start-up, before and after each session, and between
sessions when the board reports anything, e.g. staff opening the door) is checked
against the strays: one found gone clears its alarm, so the fleet closes it."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from controller import cabinet_bodies as cb
from controller import cabinet_log as clog
from controller import cabinet_stock as stock
from controller.cabinet_config import CabinetSection
from controller.cabinet_link import CabinetLink
from controller.cabinet_payment import (
    CAPTURED,
    NOT_CHARGED,
    REFUND_OWED,
    RELEASED,
    UNCERTAIN,
    UNSETTLED,
    CabinetRun,
)
from controller.cabinet_recovery import CabinetRecovery
from controller.panel import PanelError
from controller.receipts import Issued
from drivers.cabinet import Cabinet, CabinetDriverError
from protocols.cabinet import session as cs
from protocols.cabinet import strays as stray
from protocols.cabinet.errors import CabinetError
from protocols.cabinet.messages import EventKind, SessionState
from protocols.cabinet.model import (
    Alarm,
    AlarmKind,
    SettlementOutcome,
    ShelfReading,
)
from protocols.cabinet.strays import StrayBook
from protocols.mdb.cashless import events as card
from protocols.mdb.errors import MdbError
from protocols.mdb.events import DeviceOffline, DeviceReset, MdbEvent
from protocols.money import Money
from protocols.telemetry import Body, RefundBody, RefundKind, SelectionStock
from protocols.vend import outputs as o

if TYPE_CHECKING:
    from controller.machine import Machine

log = logging.getLogger(__name__)

IDLE_POLL = 1.0  # cabinet events while no session runs (tamper, power-up)


class CabinetFlow(CabinetRecovery):
    def __init__(self, machine: Machine, settings: CabinetSection, cabinet: Cabinet) -> None:
        self.machine = machine
        self.settings = settings
        self.cabinet = cabinet
        self.link = CabinetLink(cabinet, [s.shelf for s in settings.shelf])
        self.currency = machine.config.machine.currency
        # A cabinet-only machine opens on a card tap; with selections, the panel asks.
        self.open_on_tap = not machine.config.selection
        self.current: CabinetRun | None = None
        self.recovering = True
        self.armed = False  # cabinet_open pressed: the next card tap opens the cabinet
        self.last: dict[str, Any] | None = None
        self._stock: dict[str, stock.SkuLevel] = {}  # as last reported to the fleet
        self.strays = StrayBook()  # items on a wrong shelf: the open planogram notices
        machine.outbox.extra_stock = self._stock_rows  # resyncs and planograms carry them
        self._starts: asyncio.Queue[tuple[int, int | None]] = asyncio.Queue()  # reader, media
        self._answers: asyncio.Queue[MdbEvent] = asyncio.Queue()

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
            case card.SessionBegan(address=a, media_id=media):
                if self._returning(a, media):
                    return False
                wanted = self.open_on_tap or self.armed
                if run is None and not self.recovering and wanted and not self._in_service():
                    self.armed = False
                    self._starts.put_nowait((a, media))
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
            self._starts.put_nowait((s.card.reader, None))
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
            "awaiting_card": self.awaiting is not None,
            "last": self.last,
            "strays": [_stray_json(x) for x in self.strays.strays],
        }

    # --- the task ---------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.recover()
        finally:
            self.recovering = False
        await self._report_stock(await self.link.inventory())
        while True:
            _stop_if_cancelled()
            try:
                reader, media = await asyncio.wait_for(self._starts.get(), IDLE_POLL)
            except TimeoutError:
                await self._idle_poll()
                continue
            try:
                await self._serve(reader, media)
            except (CabinetDriverError, CabinetError, MdbError):
                log.exception("cabinet session failed")
            await self._report_stock(await self.link.inventory())

    # --- one session ------------------------------------------------------------------

    async def _serve(self, reader: int, media: int | None) -> None:
        if self.machine.session.busy:
            self._show("Please wait")
            return
        await self._idle_poll()  # what happened before this session is not part of it
        try:
            baseline = await self.link.baseline()
        except CabinetDriverError as exc:
            log.error("cabinet not available: %s", exc)  # noqa: TRY400
            self._show("Cabinet unavailable")
            self._end_card(reader)
            return
        await self._report_stock(baseline)  # a restock since the last session shows here
        known = {tag: x.sku for x in self.strays.strays for tag in x.tags}
        planogram = self.settings.planogram(self.currency, self._prices(), baseline, known)
        policy = self.settings.policy(self.currency)
        sid = await self._next_id()
        session = cs.CabinetSession(sid, planogram, policy, baseline=baseline)
        run = CabinetRun(session, reader, self.link.boot, media_id=media)
        self.current = run
        try:
            actions = session.start(self._now())
            started = clog.started_record(
                reader, run.boot, baseline=baseline, planogram=planogram, policy=policy,
                media_id=media,
            )  # fmt: skip
            await self._write(sid, [started], meta={clog.NEXT_ID_KEY: str(sid + 1)})
            await self._act(run, actions)
            await self._until_finished(run)
        finally:
            self.current = None
        await self.link.acknowledge_reset()

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
        planogram_alarm = False
        for action in actions:
            if isinstance(action, cs.RaiseAlarm):
                alarm = action.alarm
                misplaced = alarm.kind is AlarmKind.PLANOGRAM
                planogram_alarm |= misplaced
                code = self.settings.shelf_code(alarm.shelf) if misplaced else None
                bodies.append(cb.alarm_body(alarm, code))
                run.door_alarm |= alarm.kind is AlarmKind.DOOR_HELD_OPEN
        if isinstance(event, cs.DoorClosed) and run.door_alarm:
            run.door_alarm = False
            bodies.append(cb.door_closed_body(session.session_id))
        if any(isinstance(a, cs.QueueReview) for a in actions):
            changes = cb.last_changes(session, run.events)
            bodies += cb.review_bodies(session, run.reader, changes)
        meta = {clog.EVENT_ACK_KEY: f"{ack[0]}:{ack[1]}"} if ack else {}
        strays = self.strays
        if planogram_alarm and session.settlement is not None:
            changes = cb.last_changes(session, run.events)
            left = stray.strays_of(session.settlement, changes, session.planogram)
            strays = strays.placed(left, session.baseline)
            meta[clog.STRAYS_KEY] = clog.strays_json(strays)
        await self._write(session.session_id, [clog.event_record(event, now)], bodies, meta=meta)
        self.strays = strays
        if ack:
            self.link.ack = ack
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
                    await self._feed(
                        run, cs.SessionReported(await self.link.report(run.session.session_id))
                    )
                case cs.ReadInventory():
                    await self._feed(run, cs.InventoryRead(await self.link.inventory()))
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
        state = await self.link.unlock(
            action.session_id, run.boot, action.open_window_s, action.held_open_limit_s
        )
        if state not in (SessionState.UNLOCKED, SessionState.OPEN, SessionState.CLOSED):
            self._show("Cabinet did not open: card released")
            await self._feed(run, cs.UnlockRefused(state.name.lower()))
            return
        self._show("Open the door and take what you like")
        await self._feed(run, cs.DoorUnlocked())
        if state is not SessionState.UNLOCKED:
            await self._feed(run, cs.DoorOpened())

    async def _lock(self, run: CabinetRun) -> None:
        if await self.link.lock(run.session.session_id):
            await self._feed(run, cs.DoorRelocked())

    async def _poll(self, run: CabinetRun) -> None:
        """Feed the session the board's events that concern it, each journaled first."""
        got = await self.link.read_events()
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
                    mapped = [cs.PowerLost(), cs.PowerRestored(await self.link.door_open())]
            for event in mapped:
                await self._feed(run, event, ack=(boot, ev.seq))
            self.link.ack = (boot, ev.seq)

    async def _idle_poll(self) -> None:
        """Between sessions: journal the board's events (a tamper is an alarm)."""
        got = await self.link.read_events()
        if got is None:
            return
        boot, events = got
        bodies = [
            cb.alarm_body(Alarm(AlarmKind.TAMPER, 0, "the door opened while locked"))
            for ev in events
            if ev.kind is EventKind.TAMPER
        ]
        if events:
            self.link.ack = (boot, events[-1].seq)
            meta = {clog.EVENT_ACK_KEY: f"{boot}:{events[-1].seq}"}
            await self._write(0, [], bodies, meta=meta)
        if any(ev.kind is EventKind.POWER_UP for ev in events):
            await self.link.acknowledge_reset()
        if events and self.strays.strays:
            # Staff may have tidied the shelves (the door opened and closed): look.
            try:
                readings = await self.link.inventory()
            except CabinetDriverError as exc:
                log.warning("cabinet shelves not read: %s", exc)
                return
            await self._report_stock(readings)

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
            "lines": clog.lines_json(settlement.lines),
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

    # --- stock ------------------------------------------------------------------------

    def _prices(self) -> dict[str, int]:
        return {c: s.selection.price.minor for c, s in self.machine.session.selections.items()}

    def _stock_rows(self) -> list[SelectionStock]:
        body = stock.stock_body(self._stock, {}, self.currency)
        return [] if body is None else list(body.selections)

    async def _report_stock(self, readings: tuple[ShelfReading, ...]) -> None:
        """Tell the fleet the skus whose count changed since the last report (all of them
        the first time), as the machines report their selections; and clear the
        planogram notices of the strays this inventory shows gone."""
        prices = self._prices()
        try:
            planogram = self.settings.planogram(self.currency, prices, readings)
        except CabinetError as exc:
            log.warning("cabinet stock not reported: %s", exc)
            return
        strays, gone = self.strays.observe(readings, planogram)
        now = stock.levels(self.settings, planogram, readings, skip=prices, strays=strays.strays)
        bodies: list[Body] = [
            cb.planogram_cleared_body(x, self.settings.shelf_code(x.shelf)) for x in gone
        ]
        body = stock.stock_body(now, self._stock, self.currency)
        if body is not None:
            bodies.append(body)
        meta = {clog.STRAYS_KEY: clog.strays_json(strays)} if strays != self.strays else None
        if bodies or meta:
            await self._write(0, [], bodies, meta=meta)
        self.strays = strays
        self._stock.update(now)
        for x in gone:
            log.info("cabinet: %s is off shelf %s again (session %s)", x.sku, x.shelf,
                     x.session_id)  # fmt: skip

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


def _stop_if_cancelled() -> None:
    """Python 3.11's ``wait_for`` can swallow a cancellation that races its result; a
    polling loop then checks the request itself rather than poll forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _stray_json(x: stray.Stray) -> dict[str, Any]:
    return {"session_id": x.session_id, "shelf": x.shelf, "sku": x.sku, "quantity": x.quantity}


def _farewell(outcome: str, charge: Money) -> str:
    if outcome == CAPTURED:
        return f"Charged {charge}: thank you"
    if outcome == RELEASED:
        return "Nothing charged: thank you"
    if outcome == NOT_CHARGED:
        return "Card not approved"
    return "Thank you: an operator will check this purchase"
