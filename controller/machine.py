"""The machine: one asyncio program that owns the bus, the board, the journal and the panel.

Life of an input (a coin, a key press, a drop-sensor verdict)::

    session.apply(input)  ->  journal.append(input)  ->  actuator.act(outputs)

The journal write finishes before any hardware moves, so a power cut at any
instant leaves either the old state (nothing happened) or the new state with its
hardware action still to resolve -- which :mod:`controller.recovery` does at boot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.actuator import Actuator
from controller.bus import BusRunner
from controller.config import MachineConfig
from controller.frontpanel import FrontPanel
from controller.journal import Journal, OutboxMessage
from controller.panel import PanelServer
from controller.recovery import recover
from controller.translate import to_input
from drivers.dispenser import Dispenser, open_dispenser
from drivers.link.base import MdbLink, open_link
from protocols.mdb import changer as chg
from protocols.mdb.bill import BillValidatorMaster
from protocols.mdb.cashless import CashlessMaster
from protocols.mdb.changer import ChangerMaster
from protocols.mdb.device import DeviceMaster
from protocols.mdb.events import DeviceFault, DeviceOffline, DeviceOnline, MdbEvent
from protocols.money import Money, currency
from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.session import Rejected, VendSession

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Machine:
    def __init__(
        self,
        config: MachineConfig,
        base_dir: Path,
        *,
        mdb_link: MdbLink | None = None,
        dispenser: Dispenser | None = None,
        wall_clock: Clock = _utcnow,
    ) -> None:
        self.config = config
        self.data_dir = config.data_path(base_dir)
        self.wall = wall_clock
        cur = currency(config.machine.currency)
        self.journal = Journal(self.data_dir / "journal.sqlite")
        self.session = VendSession(cur.code)
        self.link = mdb_link or open_link(config.mdb.url)
        self.dispenser = dispenser or open_dispenser(config.dispenser.url)
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
            dispenser=self.dispenser,
            submit=self.submit,
            wake_bus=self.runner.wake,
            show=self._show,
            vend_timeout=config.dispenser.vend_timeout,
        )
        self._lock = asyncio.Lock()
        self._display = o.Show("Welcome", self.session.credit)
        self._last_activity = 0.0
        self._service_payout = False
        self.ready = asyncio.Event()
        self.faults: dict[tuple[int, str], str] = {}

    def _panel_path(self, base_dir: Path) -> Path:
        p = self.config.panel.socket
        return p if p.is_absolute() else self.config.data_path(base_dir) / p

    # --- the one way state changes --------------------------------------------------

    async def submit(self, event: i.VendInput) -> str | None:
        """Apply, journal, act. Returns the reason if the session refused the input."""
        async with self._lock:
            outputs = self.session.apply(event)
            refused = [out.reason for out in outputs if isinstance(out, Rejected)]
            if refused:
                return "; ".join(refused)
            await self.journal.append_async(event, self.wall(), self.outbox_for(event, outputs))
            self._last_activity = asyncio.get_running_loop().time()
            self.actuator.act(outputs)
        for out in outputs:
            if isinstance(out, o.Sale | o.VendFailed | o.IouIssued | o.SelectionOutOfService):
                log.info("%s", out)
        return None

    def outbox_for(self, event: i.VendInput, outputs: list[Any]) -> list[OutboxMessage]:
        """Telemetry messages for this input, written in the journal's transaction."""
        return []

    # --- MDB events ----------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            event = await self.runner.events.get()
            await self.on_mdb_event(event)

    async def on_mdb_event(self, event: MdbEvent) -> None:
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
        readers = tuple(r.address for r in self.readers if r.is_ready)
        await self.submit(i.AcceptorsConfigured(coins=coins, bills=bills, card_readers=readers))
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
            "invariant_violations": s.invariant_violations(),
        }

    def collect_cash(self) -> dict[str, Any]:
        tubes = [
            {"coin_type": t.coin_type, "value": t.value.minor, "count": t.count}
            for t in self.session.tubes
        ]
        c = self.session.counters
        snapshot = {"at": self.wall().isoformat(), "tubes": tubes, "counters": c.model_dump()}
        self.journal.set_meta("last_cash_collection", str(snapshot))
        return snapshot

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
        motor = self.session.selections[code].selection.motor
        with contextlib.suppress(Exception):
            await self.dispenser.reset_fault(motor)

    # --- life cycle ---------------------------------------------------------------------

    def boot(self) -> None:
        """Open the journal and rebuild the session from it (no hardware yet)."""
        self.journal.open()
        for entry in self.journal.entries():
            self.session.apply(entry.event)

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        self.boot()
        if self.journal.last_seq() == 0:
            await self.submit(i.JournalStarted(id_base=secrets.randbelow(2**31) + 1))
        await self._load_planogram()
        await self.dispenser.open()
        await self.link.open()
        await self.panel.start()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.runner.run())
                tg.create_task(self._pump())
                tg.create_task(self._timeouts())
                await recover(self)
                self.ready.set()
                if on_ready is not None:
                    on_ready()
        finally:
            await self.panel.close()
            await self.link.close()
            await self.dispenser.close()
            self.journal.close()

    async def _load_planogram(self) -> None:
        wanted = self.config.selections()
        current = tuple(s.selection for s in self.session.selections.values())
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
            if s.busy:
                continue
            if policy.credit_timeout and s.credit and idle > policy.credit_timeout:
                await self.submit(i.ReturnRequested(reason="credit timeout"))
            elif s.card is not None and not s.card.requested and idle > policy.card_session_timeout:
                await self.submit(i.ReturnRequested(reason="card session timeout"))
