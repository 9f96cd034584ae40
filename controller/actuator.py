"""Carry out what the vend session decided, on the real (or simulated) hardware.

Every output arrives here only after the input that produced it is in the journal.
Hardware results come back as new session inputs through ``submit``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from controller.journal import Journal
from drivers.dispenser import Dispenser, DispenserError
from protocols.dispense.results import Delivery, VendOutcome
from protocols.mdb.bill import BillValidatorMaster
from protocols.mdb.cashless import CashlessMaster
from protocols.mdb.changer import ChangerMaster
from protocols.mdb.errors import MdbError
from protocols.money import Money
from protocols.vend import inputs as i
from protocols.vend import outputs as o

log = logging.getLogger(__name__)

CHANGER_WAIT = 15.0  # seconds a payout waits for a re-initialising changer

Submit = Callable[[i.VendInput], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class DispensingUnit:
    """One motor board (a tower, a cabinet section) with its own link."""

    name: str
    dispenser: Dispenser
    vend_timeout: float


class Actuator:
    def __init__(
        self,
        *,
        journal: Journal,
        changer: ChangerMaster | None,
        bill: BillValidatorMaster | None,
        readers: Sequence[CashlessMaster],
        units: Sequence[DispensingUnit],
        submit: Submit,
        wake_bus: Callable[[], None],
        show: Callable[[o.Show], None],
        unit_of: Callable[[str], str] | None = None,
        cards_wanted: Callable[[], bool] | None = None,
    ) -> None:
        """``units``: the first is the default (none in a cabinet-only machine); ``unit_of``
        maps a selection code to its unit's name for selections that do not name one (e.g.
        a fleet planogram); ``cards_wanted``: readers stay on for a smart cabinet even
        when the vend side has nothing to sell."""
        self.journal = journal
        self.changer = changer
        self.bill = bill
        self.readers = {r.address: r for r in readers}
        self.units: Mapping[str, DispensingUnit] = {u.name: u for u in units}
        self.default_unit = units[0] if units else None
        first = units[0].name if units else ""
        self.unit_of = unit_of or (lambda _code: first)
        self.cards_wanted = cards_wanted or (lambda: False)
        self.submit = submit
        self.wake_bus = wake_bus
        self.show = show
        self.acceptance: o.SetAcceptance | None = None
        self.payout_id: int | None = None  # the session payout the changer is working on
        self.tasks: set[asyncio.Task[None]] = set()

    def act(self, outputs: Sequence[object]) -> None:
        for out in outputs:
            try:
                self._act(out)
            except MdbError as exc:
                log.warning("cannot carry out %s: %s", type(out).__name__, exc)
        self.wake_bus()

    def _act(self, out: object) -> None:
        match out:
            case o.StackBill():
                if self.bill is not None:
                    self.bill.stack()
            case o.ReturnBill():
                if self.bill is not None:
                    self.bill.return_bill()
            case o.Dispense():
                self._spawn(self._dispense(out))
            case o.PayOut():
                self._payout(out)
            case o.RequestCardVend(reader=r, price=price, item_number=item):
                self.readers[r].vend_request(price, item)
            case o.RequestCardRefund(reader=r, amount=amount, item_number=item):
                try:
                    self.readers[r].negative_vend_request(amount, item)
                except MdbError as exc:  # the basket must not wait for an answer never asked
                    log.warning("negative vend of %s refused: %s", amount, exc)
                    self._spawn(self.submit(i.CardVendDenied(reader=r)))
            case o.CancelCardVend(reader=r):
                self.readers[r].vend_cancel()
            case o.ConfirmCardVend(reader=r, item_number=item):
                self.readers[r].vend_success(item)
            case o.FailCardVend(reader=r):
                self.readers[r].vend_failure()
            case o.EndCardSession(reader=r):
                self.readers[r].session_complete()
            case o.ReportCashSale(reader=r, price=price, item_number=item):
                reader = self.readers.get(r)
                if reader is not None and reader.is_ready:
                    reader.cash_sale(price, item)
            case o.SetAcceptance():
                self.acceptance = out
                self.apply_acceptance()
            case o.Show():
                self.show(out)

    # --- acceptance -------------------------------------------------------------------

    def apply_acceptance(self) -> None:
        """Push the latest acceptance to every ready device (again after a device re-inits)."""
        a = self.acceptance
        if a is None:
            return
        if self.changer is not None and self.changer.is_ready:
            _try(lambda: self.changer.enable(a.coins) if a.coins else self.changer.disable())  # type: ignore[union-attr]
        if self.bill is not None and self.bill.is_ready:
            _try(lambda: self.bill.enable(a.bills) if a.bills else self.bill.disable())  # type: ignore[union-attr]
        for reader in self.readers.values():
            if reader.is_ready:
                _try(reader.enable if a.cards or self.cards_wanted() else reader.disable)
        self.wake_bus()

    # --- payouts ------------------------------------------------------------------------

    def _payout(self, out: o.PayOut) -> None:
        changer = self.changer
        if changer is None or not changer.is_ready:
            self._spawn(self._payout_when_ready(out))
            return
        self.payout_id = out.payout_id
        try:
            changer.payout(out.amount)
        except MdbError as exc:
            log.warning("payout of %s refused: %s", out.amount, exc)
            self.payout_id = None
            self._spawn(
                self.submit(i.PayoutFinished(payout_id=out.payout_id, paid=_zero(out.amount)))
            )

    async def _payout_when_ready(self, out: o.PayOut) -> None:
        """The changer is re-initialising (e.g. just after a restart): give it a moment
        before owing the customer; an IOU only if it does not come back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CHANGER_WAIT
        while loop.time() < deadline:
            if self.changer is not None and self.changer.is_ready:
                self._payout(out)
                return
            await asyncio.sleep(0.1)
        await self.submit(i.PayoutFinished(payout_id=out.payout_id, paid=_zero(out.amount)))

    def payout_completed(self, paid: Money) -> i.PayoutFinished | None:
        """The changer finished a payout: the session input it means, if it was ours."""
        if self.payout_id is None:
            return None
        payout_id, self.payout_id = self.payout_id, None
        return i.PayoutFinished(payout_id=payout_id, paid=paid)

    # --- dispensing ------------------------------------------------------------------------

    def unit(self, name: str, code: str) -> DispensingUnit:
        """The unit a vend goes to: the one named, else the code's, else the first."""
        found = self.units.get(name) or self.units.get(self.unit_of(code)) or self.default_unit
        if found is None:
            raise LookupError(f"no dispensing unit for {code}")  # a cabinet-only machine
        return found

    async def _dispense(self, out: o.Dispense) -> None:
        unit = self.unit(out.unit, out.code)
        # Which board, and which of its lives, got this vend id: what recovery asks.
        self.journal.set_meta(f"vend.{out.vend_id}.unit", unit.name)
        self.journal.set_meta(f"vend.{out.vend_id}.board_boot", str(unit.dispenser.board_boot))
        try:
            result = await unit.dispenser.vend(out.motor, out.vend_id, timeout=unit.vend_timeout)
            outcome, delivery, oos = result.outcome, result.delivery, result.out_of_service
        except DispenserError as exc:
            log.warning("dispenser %s failed on vend %s: %s", unit.name, out.vend_id, exc)
            outcome, delivery, oos = VendOutcome.BOARD_TIMEOUT, Delivery.UNRESOLVED, False
        if delivery is Delivery.UNRESOLVED:
            outcome, delivery, oos = await self.resolve(out.vend_id, out.code)
        await self.submit(
            i.DispenseFinished(
                vend_id=out.vend_id,
                delivered=delivery is Delivery.DELIVERED,
                outcome=outcome.value,
                slot_out_of_service=oos,
            )
        )

    async def resolve(
        self, vend_id: int, code: str, attempts: int = 3
    ) -> tuple[VendOutcome, Delivery, bool]:
        """Ask the board that got ``vend_id`` what became of it until it can say for sure.

        If it never can (board gone, or it lost its memory), the customer is not
        charged and the selection waits for a person: a free product is a smaller
        wrong than a charge for nothing.
        """
        unit = self.unit(self.journal.get_meta(f"vend.{vend_id}.unit") or "", code)
        boot = self.journal.get_meta(f"vend.{vend_id}.board_boot")
        since = int(boot) if boot and boot != "None" else None
        for attempt in range(attempts):
            try:
                result = await unit.dispenser.query(vend_id, since_boot=since)
            except DispenserError as exc:
                log.warning("query of vend %s failed (%s), attempt %d", vend_id, exc, attempt + 1)
                await asyncio.sleep(1.0)
                continue
            if result is None:  # the board never got it, and now never will
                return VendOutcome.INVALID_SLOT, Delivery.NOT_DELIVERED, False
            if result.delivery is not Delivery.UNRESOLVED:
                return result.outcome, result.delivery, result.out_of_service
            await asyncio.sleep(1.0)
        return VendOutcome.UNKNOWN, Delivery.NOT_DELIVERED, True

    def _spawn(self, coro: Awaitable[None] | Awaitable[object]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(_discard(coro))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def _discard(coro: Awaitable[object]) -> None:
    await coro


def _try(action: Callable[[], object]) -> None:
    try:
        action()
    except MdbError as exc:
        log.info("device not in a state to change acceptance: %s", exc)


def _zero(amount: Money) -> Money:
    return Money(0, amount.currency)
