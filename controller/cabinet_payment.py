"""The card side of a cabinet session: the pre-authorisation and the final capture.

MDB VEND SUCCESS carries an item number, not an amount, so a final amount below the
pre-authorisation is reached, in order of preference, by VEND SUCCESS then NEGATIVE VEND
REQUEST for the rest (Level-3 negative vend); by VEND FAILURE and a new VEND REQUEST for
the final amount (a multivend reader); or, as baskets do, by VEND FAILURE with the sale
recorded unsettled and a review for the fleet. Each reader step is logged before it is
taken, so a restart knows a capture was cut short and says so rather than guess.

A mixin of :class:`controller.cabinet.CabinetFlow` (which supplies the machine, the
settings, the answer queue and ``_feed`` / ``_write`` / ``_show``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controller import cabinet_log as clog
from controller.cabinet_config import CabinetSection
from protocols.cabinet import session as cs
from protocols.mdb.cashless import CashlessMaster
from protocols.mdb.cashless import events as card
from protocols.mdb.cashless.answers import FEATURE_NEGATIVE_VEND
from protocols.mdb.errors import MdbError
from protocols.mdb.events import MdbEvent
from protocols.money import Money
from protocols.telemetry import Body

if TYPE_CHECKING:
    from controller.machine import Machine

log = logging.getLogger(__name__)

AUTHORISE_TIMEOUT = 30.0  # seconds the reader may take to approve the pre-authorisation
READER_TIMEOUT = 15.0  # a refund or new charge

# Payment outcomes, as the review queue and the panel name them.
CAPTURED = "captured"  # charged exactly the settlement
RELEASED = "released"  # nothing charged, the hold released
UNSETTLED = "unsettled"  # items taken, the card could not be charged
REFUND_OWED = "refund_owed"  # charged more than the items; the refund was refused
UNCERTAIN = "uncertain"  # a capture step was cut short by a restart
NOT_CHARGED = "not_charged"  # payment never approved


@dataclass(slots=True)
class CabinetRun:
    """One session being served: the pure session and what only the controller knows."""

    session: cs.CabinetSession
    reader: int
    boot: int | None
    card_lost: bool = False  # the reader's session ended: no more card talk
    ending: bool = False  # we asked the reader to end the session ourselves
    door_alarm: bool = False  # a held-open alarm is raised and not cleared yet
    events: list[cs.SessionEvent] = field(default_factory=list)
    payment: tuple[str, Money, str] | None = None  # outcome, charged, why
    media_id: int | None = None  # the card's payment media id, when the reader gives one
    restarted: bool = False  # taken over from the log after a controller restart


class CardPayments:
    """The reader half of :class:`controller.cabinet.CabinetFlow`."""

    #: (media id) of the card a session restarted without its authorisation waits for.
    awaiting: int | None = None
    _returns: asyncio.Queue[int] | None = None

    if TYPE_CHECKING:
        machine: Machine
        settings: CabinetSection
        _answers: asyncio.Queue[MdbEvent]
        _feed: Callable[..., Awaitable[None]]
        _show: Callable[[str], None]

        async def _write(
            self,
            session_id: int,
            records: Sequence[Mapping[str, Any]],
            bodies: Sequence[Body] = (),
            *,
            meta: Mapping[str, str | None] | None = None,
            receipts: bool = False,
        ) -> None: ...

    # --- the reader -------------------------------------------------------------------

    def _reader(self, address: int) -> CashlessMaster | None:
        return next((r for r in self.machine.readers if r.address == address), None)

    def _drain(self) -> None:
        while not self._answers.empty():
            self._answers.get_nowait()

    async def _answer(self, timeout: float) -> MdbEvent | None:
        try:
            return await asyncio.wait_for(self._answers.get(), timeout)
        except TimeoutError:
            return None

    def _reader_do(self, what: Callable[[], object]) -> bool:
        try:
            what()
        except MdbError as exc:
            log.warning("cabinet: reader refused: %s", exc)
            return False
        self.machine.runner.wake()
        return True

    async def _authorise(self, run: CabinetRun, amount: Money) -> None:
        reader = self._reader(run.reader)
        self._drain()
        item = self.settings.item_number
        if reader is None or not self._reader_do(lambda: reader.vend_request(amount, item)):
            await self._feed(run, cs.PaymentDenied())
            return
        self._show(f"Authorising {amount}")
        answer = await self._answer(AUTHORISE_TIMEOUT)
        if answer is None:
            self._reader_do(reader.vend_cancel)
            answer = await self._answer(READER_TIMEOUT)
        if isinstance(answer, card.VendApproved) and not answer.negative:
            await self._feed(run, cs.PaymentApproved(answer.amount))
        else:
            self._show("Card declined")
            await self._feed(run, cs.PaymentDenied())

    async def _step(self, run: CabinetRun, step: str, amount: Money) -> None:
        record = {"kind": "payment", "step": step, "amount": clog.money_json(amount)}
        await self._write(run.session.session_id, [record])

    async def _capture(self, run: CabinetRun, amount: Money, release: Money) -> None:
        reader = self._reader(run.reader)
        item = self.settings.item_number
        authorised = run.session.authorised
        zero = Money(0, amount.currency)
        if run.card_lost or reader is None:
            run.payment = (UNSETTLED, zero, "the card session ended before the charge")
            if run.restarted:
                await self._charge_on_return(run, amount)
            return
        if not release:
            await self._step(run, "capture", amount)
            ok = self._reader_do(lambda: reader.vend_success(item))
            run.payment = (
                (CAPTURED, amount, "") if ok else (UNSETTLED, zero, "VEND SUCCESS refused")
            )
            return
        if reader.features & FEATURE_NEGATIVE_VEND:
            await self._step(run, "capture", authorised)
            if not self._reader_do(lambda: reader.vend_success(item)):
                run.payment = (UNSETTLED, zero, "VEND SUCCESS refused")
                return
            await self._step(run, "refund", release)
            self._drain()
            if self._reader_do(lambda: reader.negative_vend_request(release, item)):
                answer = await self._answer(READER_TIMEOUT)
                if isinstance(answer, card.VendApproved) and answer.negative:
                    self._reader_do(lambda: reader.vend_success(item))
                    run.payment = (CAPTURED, amount, "")
                    return
            run.payment = (REFUND_OWED, authorised, f"the reader refused to give back {release}")
            return
        if reader.multivend_capable:
            await self._step(run, "release", authorised)
            self._reader_do(reader.vend_failure)
            await self._step(run, "recharge", amount)
            self._drain()
            if self._reader_do(lambda: reader.vend_request(amount, item)):
                answer = await self._answer(READER_TIMEOUT)
                if isinstance(answer, card.VendApproved) and not answer.negative:
                    self._reader_do(lambda: reader.vend_success(item))
                    charged = answer.amount if answer.amount is not None else amount
                    run.payment = (CAPTURED, min(charged, amount), "")
                    return
            run.payment = (UNSETTLED, zero, f"the new charge of {amount} was denied")
            return
        await self._step(run, "release", authorised)
        self._reader_do(reader.vend_failure)
        run.payment = (UNSETTLED, zero, "the reader cannot charge less than it authorised")

    async def _release(self, run: CabinetRun) -> None:
        zero = Money(0, run.session.authorised.currency)
        reader = self._reader(run.reader)
        if not run.card_lost and reader is not None:
            await self._step(run, "release", run.session.authorised)
            self._reader_do(reader.vend_failure)
        run.payment = (RELEASED, zero, "")

    # --- after a restart: the same card, tapped again ----------------------------------

    def _returning(self, address: int, media_id: int | None) -> bool:
        """A card session began: True if it is the card a restarted session waits for."""
        queue = self._returns
        if queue is None or media_id is None or media_id != self.awaiting:
            return False
        queue.put_nowait(address)
        return True

    async def _charge_on_return(self, run: CabinetRun, amount: Money) -> None:
        """Charge ``amount`` on the session's own card, if it comes back in time.

        Our restart reset the reader, which voided the authorisation. A Level-3 reader
        names the card (payment media id) in BEGIN SESSION, so when that card is
        presented again within ``resume_window_s`` -- or a reader that kept the session
        announces it again after our reset -- a new VEND REQUEST for the amount due is
        made on it. The step is logged before the request: a restart in the middle is
        never charged again (it goes to review as uncertain).
        """
        window = self.settings.resume_window_s
        if not window or run.media_id is None:
            return
        self._returns = asyncio.Queue()
        self.awaiting = run.media_id
        self._show(f"Tap the same card again to pay {amount}")
        try:
            address = await asyncio.wait_for(self._returns.get(), window)
        except TimeoutError:
            log.warning("cabinet session %s: the card did not come back", run.session.session_id)
            return
        finally:
            self._returns = None
            self.awaiting = None
        reader = self._reader(address)
        if reader is None:
            return
        run.reader, run.card_lost = address, False
        await self._step(run, "recharge", amount)
        self._drain()
        zero = Money(0, amount.currency)
        item = self.settings.item_number
        if self._reader_do(lambda: reader.vend_request(amount, item)):
            answer = await self._answer(AUTHORISE_TIMEOUT)
            approved = isinstance(answer, card.VendApproved) and not answer.negative
            if approved and self._reader_do(lambda: reader.vend_success(item)):
                assert isinstance(answer, card.VendApproved)
                charged = answer.amount if answer.amount is not None else amount
                run.payment = (CAPTURED, min(charged, amount), "")
                return
        run.payment = (UNSETTLED, zero, f"the card tapped again was not charged {amount}")

    def _end_card(self, address: int) -> None:
        reader = self._reader(address)
        if reader is not None:
            self._reader_do(reader.session_complete)
