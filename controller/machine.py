"""The machine: one asyncio program that owns the bus, the board, the journal and the panel.

Life of an input (a coin, a key press, a drop-sensor verdict)::

    session.apply(input)  ->  journal.append(input)  ->  actuator.act(outputs)

The journal write finishes before any hardware moves, so a power cut at any
instant leaves either the old state (nothing happened) or the new state with its
hardware action still to resolve -- which :mod:`controller.recovery` does at boot.
The telemetry for an input (:mod:`controller.outbox`) is written in the same journal
transaction; :mod:`controller.telemetry` publishes it from its own task, so a sale never
waits for the broker. Fleet commands arrive there and are applied by
:mod:`controller.commands`, through :meth:`Machine.submit` like every other input.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from controller.actuator import Actuator, DispensingUnit
from controller.bus import BusRunner
from controller.cabinet import CabinetFlow
from controller.commands import CommandProcessor, config_version_in_force, fleet_keeps_planogram
from controller.config import MachineConfig
from controller.frontpanel import FrontPanel
from controller.journal import Journal, MetaUpdate, OutboxMessage
from controller.outbox import Before, OutboxMapper, message_for
from controller.panel import PanelServer
from controller.receipts import META_KEY as RECEIPT_NUMBERS
from controller.receipts import ReceiptIssuer
from controller.recovery import recover
from controller.telemetry import Telemetry
from controller.translate import to_input
from drivers.cabinet import Cabinet, open_cabinet
from drivers.dispenser import Dispenser, open_dispenser
from drivers.link.base import MdbLink, open_link
from protocols.mdb import changer as chg
from protocols.mdb.bill import BillValidatorMaster
from protocols.mdb.cashless import CashlessMaster
from protocols.mdb.cashless.answers import FEATURE_NEGATIVE_VEND
from protocols.mdb.changer import ChangerMaster
from protocols.mdb.device import DeviceMaster
from protocols.mdb.events import DeviceFault, DeviceOffline, DeviceOnline, MdbEvent
from protocols.money import Money, currency
from protocols.telemetry import Body, StatusBody
from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.session import Rejected, VendSession

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _firmware() -> str:
    try:
        return f"vendfleet {metadata.version('vendfleet')}"
    except metadata.PackageNotFoundError:
        return "vendfleet (not installed)"


class _StopRequestedError(Exception):
    """Raised inside the task group to end :meth:`Machine.run` with an exit code."""


class Machine:
    def __init__(
        self,
        config: MachineConfig,
        base_dir: Path,
        *,
        mdb_link: MdbLink | None = None,
        dispenser: Dispenser | None = None,
        dispensers: Mapping[str, Dispenser] | None = None,
        cabinet: Cabinet | None = None,
        wall_clock: Clock = _utcnow,
    ) -> None:
        """``dispenser`` replaces the first unit's board, ``dispensers`` any unit's by name,
        ``cabinet`` the smart cabinet (tests and benchmarks); the others are opened from
        their configured URLs."""
        self.config = config
        self.data_dir = config.data_path(base_dir)
        self.wall = wall_clock
        cur = currency(config.machine.currency)
        self.journal = Journal(self.data_dir / "journal.sqlite")
        self.session = VendSession(cur.code)
        self.link = mdb_link or open_link(config.mdb.url)
        given = dict(dispensers or {})
        first = config.units[0].name if config.units else ""  # none: a cabinet-only machine
        if dispenser is not None:
            given[first] = dispenser
        self.units = [
            DispensingUnit(u.name, given.get(u.name) or open_dispenser(u.url), u.vend_timeout)
            for u in config.units
        ]
        self.dispenser = self.units[0].dispenser if self.units else None  # the first board
        units_by_code = {s.code: config.unit_of(s) for s in config.selection}
        self.changer = ChangerMaster(cur) if config.mdb.changer else None
        self.bill = BillValidatorMaster(cur) if config.mdb.bill_validator else None
        self.readers = [CashlessMaster(cur, address=a) for a in config.mdb.cashless_readers]
        devices: list[DeviceMaster] = [d for d in (self.changer, self.bill) if d is not None]
        for device in devices:
            device.drain_before_reset()  # money that arrived while we were down
        self.runner = BusRunner(self.link, [*devices, *self.readers])
        self.front = FrontPanel(self)
        self.panel = PanelServer(self._panel_path(base_dir), self.front.handle)
        self.actuator = Actuator(
            journal=self.journal,
            changer=self.changer,
            bill=self.bill,
            readers=self.readers,
            units=self.units,
            submit=self.submit,
            wake_bus=self.runner.wake,
            show=self._show,
            unit_of=lambda code: units_by_code.get(code, first),
            cards_wanted=lambda: self.cabinet is not None and self.cabinet.wants_cards(),
        )
        self.lock = asyncio.Lock()
        self.outbox = OutboxMapper(cur.code)
        self.receipts = ReceiptIssuer(config.receipts, config.machine.timezone)
        self.started_at = wall_clock()
        self.config_version = config.config_version
        tel = config.telemetry
        self.commands = CommandProcessor(self, tel.key) if tel is not None else None
        self.telemetry: Telemetry | None = None
        if tel is not None and self.commands is not None:
            self.telemetry = Telemetry(
                machine_id=config.machine.id,
                settings=tel,
                journal=self.journal,
                status=self.status_body,
                on_command=self.commands.handle,
                wall=wall_clock,
            )
        self._stop = asyncio.Event()
        self.exit_code: int | None = None
        self._display = o.Show("Welcome", self.session.credit)
        self._last_activity = 0.0
        self._service_payout = False
        self.ready = asyncio.Event()
        self.faults: dict[tuple[int, str], str] = {}
        cab = config.cabinet
        self.cabinet = (
            None if cab is None else CabinetFlow(self, cab, cabinet or open_cabinet(cab.url))
        )

    def _panel_path(self, base_dir: Path) -> Path:
        p = self.config.panel.socket
        return p if p.is_absolute() else self.config.data_path(base_dir) / p

    # --- the one way state changes --------------------------------------------------

    async def submit(
        self, event: i.VendInput, *, also: Sequence[Body] = (), meta: MetaUpdate | None = None
    ) -> str | None:
        """Apply, journal, act. Returns the reason if the session refused the input.

        ``also`` (more telemetry) and ``meta`` are written in the input's transaction,
        and only if the session accepted it; so are the e-receipt numbers of its sales.
        """
        async with self.lock:
            before = Before.of(self.session)
            outputs = self.session.apply(event)
            refused = [out.reason for out in outputs if isinstance(out, Rejected)]
            if refused:
                return "; ".join(refused)
            at = self.wall()
            issued = self.receipts.issue([*self.outbox_for(event, outputs, before), *also], at)
            meta = {**(meta or {}), **issued.meta}
            await self.journal.append_async(event, at, issued.messages, meta)
            self.receipts.confirm(issued)
            self.wake_telemetry()
            self._last_activity = asyncio.get_running_loop().time()
            self.actuator.act(outputs)
        for out in outputs:
            if isinstance(out, o.Sale | o.VendFailed | o.IouIssued | o.SelectionOutOfService):
                log.info("%s", out)
        return None

    def outbox_for(self, event: i.VendInput, outputs: list[Any], before: Before) -> list[Body]:
        """Telemetry bodies for this input, written in the journal's transaction."""
        try:
            return self.outbox.bodies(event, outputs, self.session, before)
        except Exception:  # telemetry must never cost a sale
            log.exception("no telemetry for %s", event.type)
            return []

    async def enqueue(self, bodies: Sequence[Body], meta: MetaUpdate | None = None) -> list[int]:
        """Telemetry that belongs to no input (acks, device alarms); returns outbox seqs."""
        messages = [message_for(body) for body in bodies]
        seqs = await self.journal.run(lambda: self.journal.enqueue(messages, self.wall(), meta))
        self.wake_telemetry()
        return seqs

    def wake_telemetry(self) -> None:
        if self.telemetry is not None:
            self.telemetry.wake()

    def request_stop(self, exit_code: int) -> None:
        """End :meth:`run` cleanly (offline status, journal closed), then exit the process
        with ``exit_code``."""
        self.exit_code = exit_code
        self._stop.set()

    def status_body(self, online: bool, backlog: int) -> StatusBody:
        return StatusBody(
            online=online,
            firmware=_firmware(),
            config_version=self.config_version,
            started_at=self.started_at,
            outbox_backlog=backlog,
            devices={d.device: d.state.value for d in self.runner.schedule.devices},
        )

    # --- MDB events ----------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            event = await self.runner.events.get()
            await self.on_mdb_event(event)

    async def on_mdb_event(self, event: MdbEvent) -> None:
        alarms = self.outbox.device_event(event)
        if alarms:
            await self.enqueue(alarms)
        match event:
            case DeviceOnline():
                log.info("%s online", event.device)
                await self._acceptors_changed()
                self.actuator.apply_acceptance()
            case DeviceOffline():
                log.warning("%s offline: %s", event.device, event.reason)
            case DeviceFault():
                self.faults[(event.address, event.code)] = event.detail
                log.warning("%s fault %s: %s", event.device, event.code, event.detail)
            case chg.TubesRead():
                await self._tubes_read()
            case chg.PayoutCompleted(paid=paid):
                finished = self.actuator.payout_completed(paid)
                if finished is not None:
                    await self.submit(finished)
                elif self._service_payout:
                    self._service_payout = False
                    await self.submit(i.TubesEmptied(value=paid))
        if self.cabinet is not None and self.cabinet.claims(event):
            return  # the cabinet session's own reader answer
        translated = to_input(event, service_mode=self.front.service_mode)
        if translated is not None:
            await self.submit(translated)

    async def _acceptors_changed(self) -> None:
        coins: tuple[tuple[int, Money], ...] = ()
        if self.changer is not None and self.changer.is_ready:
            coins = tuple((t, v) for t, v in enumerate(self.changer.coin_values) if v is not None)
        bills: tuple[tuple[int, Money], ...] = ()
        if self.bill is not None and self.bill.is_ready:
            bills = tuple(sorted(self.bill.bill_values.items()))
        ready = [r for r in self.readers if r.is_ready]
        await self.submit(
            i.AcceptorsConfigured(
                coins=coins,
                bills=bills,
                card_readers=tuple(r.address for r in ready),
                refund_readers=tuple(
                    r.address for r in ready if r.features & FEATURE_NEGATIVE_VEND
                ),
                multivend_readers=tuple(r.address for r in ready if r.multivend_capable),
            )
        )
        await self._tubes_read()

    async def _tubes_read(self) -> None:
        if self.changer is None or self.changer.tubes is None:
            return
        values = self.changer.coin_values
        tubes = tuple(
            (t, v, n)
            for t, (v, n) in enumerate(zip(values, self.changer.tubes.counts, strict=False))
            if v is not None
        )
        if tubes != tuple((t.coin_type, t.value, t.count) for t in self.session.tubes):
            await self.submit(i.TubesRead(tubes=tubes))

    # --- panel helpers -------------------------------------------------------------------

    def _show(self, show: o.Show) -> None:
        self._display = show
        self.panel.broadcast(self.display() | {"event": "display"})

    def display(self) -> dict[str, Any]:
        return {
            "message": self._display.message,
            "credit": self.session.available().minor,
            "currency": self.session.currency,
        }

    def basket_view(self) -> dict[str, Any] | None:
        """The basket being built or settled, else the last one (what failed, for the panel)."""
        basket = self.session.basket or self.session.last_basket
        return None if basket is None else basket.view()

    def status(self) -> dict[str, Any]:
        s = self.session
        acceptance = s.acceptance
        return {
            "machine_id": self.config.machine.id,
            "display": self.display(),
            "busy": s.busy,
            "service_mode": self.front.service_mode,
            "exact_change": bool(acceptance and acceptance.exact_change),
            "devices": {d.device: d.state.value for d in self.runner.schedule.devices},
            "selections": [
                {
                    "code": code,
                    "product": st.selection.product,
                    "price": st.selection.price.minor,
                    "stock": st.stock,
                    "capacity": st.selection.capacity,
                    "in_service": st.in_service,
                    "reason": st.reason,
                    "vends": st.counters.vends,
                    "test_vends": st.counters.test_vends,
                    "failures": st.counters.failures,
                }
                for code, st in s.selections.items()
            ],
            "counters": s.counters.model_dump(),
            "basket": self.basket_view(),
            "units": [u.name for u in self.units],
            "cabinet": None if self.cabinet is None else self.cabinet.view(),
            "invariant_violations": s.invariant_violations(),
            "telemetry": None
            if self.telemetry is None
            else {"connected": self.telemetry.connected, "backlog": self.telemetry.backlog},
        }

    async def collect_cash(self) -> dict[str, Any]:
        """Record the cash box emptied: a snapshot for the audit trail and a ``cash``
        collection message with what went into the box since the last collection."""
        tubes = [
            {"coin_type": t.coin_type, "value": t.value.minor, "count": t.count}
            for t in self.session.tubes
        ]
        c = self.session.counters
        now = self.wall()
        snapshot = {"at": now.isoformat(), "tubes": tubes, "counters": c.model_dump()}

        def build(db: sqlite3.Connection) -> tuple[list[OutboxMessage], MetaUpdate]:
            row = db.execute("SELECT value FROM meta WHERE key='last_cash_collection'").fetchone()
            try:
                last = json.loads(row[0])["counters"] if row else {}
            except (ValueError, KeyError, TypeError):
                last = {}  # written by an older version
            coins = c.coins_to_cash_box - int(last.get("coins_to_cash_box", 0))
            bills = c.bills_in - int(last.get("bills_in", 0))
            body = self.outbox.cash_collected(coins, bills)
            return [message_for(body)], {"last_cash_collection": json.dumps(snapshot)}

        await self.journal.run(lambda: self.journal.enqueue_with(build, now))
        self.wake_telemetry()
        return snapshot

    async def service_opened(self) -> None:
        await self.enqueue([self.outbox.visit_opened(self.wall())])

    async def service_closed(self) -> None:
        visit = self.outbox.visit_closed(self.wall())
        if visit is not None:
            await self.enqueue([visit])
        if self.commands is not None:
            await self.commands.service_closed()

    def service_payout(self, coin_type: int, count: int) -> None:
        if self.changer is None or not self.changer.is_ready:
            from controller.panel import PanelError  # noqa: PLC0415

            raise PanelError("no changer ready")
        self._service_payout = True
        self.changer.dispense({coin_type: count})
        self.runner.wake()

    def refresh_tubes(self) -> None:
        if self.changer is not None and self.changer.is_ready:
            self.changer.refresh_tubes()
            self.runner.wake()

    async def clear_motor_fault(self, code: str) -> None:
        selection = self.session.selections[code].selection
        unit = self.actuator.unit(selection.unit, code)
        with contextlib.suppress(Exception):
            await unit.dispenser.reset_fault(selection.motor)

    # --- life cycle ---------------------------------------------------------------------

    def boot(self) -> None:
        """Open the journal and rebuild the session from it (no hardware yet)."""
        self.journal.open()
        self.receipts.load(self.journal.get_meta(RECEIPT_NUMBERS))
        for entry in self.journal.entries():
            self.session.apply(entry.event)
            self.outbox.track(entry.event, self.session)
        self.actuator.acceptance = self.session.acceptance  # devices get it when online
        self.config_version = config_version_in_force(self.journal, self.config.config_version)
        if self.commands is not None:
            self.commands.load()

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        self.boot()
        if self.journal.last_seq() == 0:
            await self.submit(i.JournalStarted(id_base=secrets.randbelow(2**31) + 1))
        await self._load_planogram()
        for unit in self.units:
            await unit.dispenser.open()
        if self.cabinet is not None:
            await self.cabinet.cabinet.open()
        await self.link.open()
        await self.panel.start()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._stopper())
                if self.telemetry is not None and self.commands is not None:
                    tg.create_task(self.telemetry.run())
                    tg.create_task(self.commands.run_pending())
                tg.create_task(self.runner.run())
                tg.create_task(self._pump())
                tg.create_task(self._timeouts())
                if self.cabinet is not None:
                    tg.create_task(self.cabinet.run())
                await recover(self)
                self.ready.set()
                if on_ready is not None:
                    on_ready()
        except* _StopRequestedError:
            log.warning("stopping with exit code %s", self.exit_code)
        finally:
            await self.panel.close()
            await self.link.close()
            for unit in self.units:
                await unit.dispenser.close()
            if self.cabinet is not None:
                await self.cabinet.cabinet.close()
            self.journal.close()
            log.info("stopped")
        if self.exit_code is not None:
            raise SystemExit(self.exit_code)

    async def _stopper(self) -> None:
        await self._stop.wait()
        raise _StopRequestedError

    async def _load_planogram(self) -> None:
        wanted = self.config.selections()
        current = tuple(s.selection for s in self.session.selections.values())
        if current and fleet_keeps_planogram(self.journal, self.config.config_version):
            return  # the fleet changed prices or the planogram since this file was written
        if wanted != current:
            reason = await self.submit(
                i.PlanogramLoaded(currency=self.config.machine.currency, selections=wanted)
            )
            if reason:
                log.warning("planogram from config not applied yet: %s", reason)

    async def _timeouts(self) -> None:
        """Credit and card-session time-outs, as the operator's policy says."""
        policy = self.config.policy
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.5)
            idle = loop.time() - self._last_activity
            s = self.session
            if s.busy or (self.cabinet is not None and self.cabinet.active):
                continue
            if policy.credit_timeout and s.credit and idle > policy.credit_timeout:
                await self.submit(i.ReturnRequested(reason="credit timeout"))
            elif s.card is not None and not s.card.requested and idle > policy.card_session_timeout:
                await self.submit(i.ReturnRequested(reason="card session timeout"))
            elif (
                s.basket is not None
                and not s.basket.active
                and not s.credit
                and s.card is None
                and idle > policy.basket_timeout
            ):
                await self.submit(i.BasketCleared())  # a customer walked away from it
