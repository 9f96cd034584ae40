"""Taking a cabinet session over after a controller restart.

Our init has reset the reader, which voids an approval not yet settled, so a session the
log shows open can no longer charge the card: it is finished from what the cabinet says
(verdict, report or a fresh inventory against the baseline) under the power-loss rule,
and what is due is charged only if the same card comes back in time
(:meth:`CardPayments._charge_on_return`); otherwise it goes to review as unsettled.

A mixin of :class:`controller.cabinet.CabinetFlow` (which supplies the link to the board,
the strays and ``_feed`` / ``_lock`` / ``_until_finished`` / ``_close``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from controller import cabinet_log as clog
from controller.cabinet_payment import (
    RELEASED,
    UNCERTAIN,
    UNSETTLED,
    CabinetRun,
    CardPayments,
)
from drivers.cabinet import SessionVerdict
from protocols.cabinet import session as cs
from protocols.money import Money

if TYPE_CHECKING:
    from controller.cabinet_link import CabinetLink
    from protocols.cabinet.strays import StrayBook

log = logging.getLogger(__name__)


class CabinetRecovery(CardPayments):
    """The restart half of :class:`controller.cabinet.CabinetFlow`."""

    if TYPE_CHECKING:
        link: CabinetLink
        strays: StrayBook
        current: CabinetRun | None

        async def _until_finished(self, run: CabinetRun) -> None: ...
        async def _lock(self, run: CabinetRun) -> None: ...
        async def _close(self, run: CabinetRun) -> None: ...

    async def recover(self) -> None:
        """Finish every session the log shows open, then let the cabinet unlock again."""
        journal = self.machine.journal
        await journal.run(lambda: clog.ensure_table(journal.db))
        raw = await journal.run(lambda: journal.get_meta(clog.EVENT_ACK_KEY))
        if raw:
            boot, _, seq = raw.partition(":")
            self.link.ack = (int(boot), int(seq))
        strays = await journal.run(lambda: journal.get_meta(clog.STRAYS_KEY))
        self.strays = clog.strays_of(strays)
        sessions = await journal.run(lambda: clog.load_sessions(journal.db))
        for logged in sessions:
            session = logged.rebuild()
            run = CabinetRun(
                session, logged.reader, logged.boot, card_lost=True, media_id=logged.media_id,
                restarted=True,
            )  # fmt: skip
            run.events = [event for event, _ in logged.events]
            self.current = run
            log.warning("cabinet session %s open at restart (%s)", run.session.session_id,
                        session.phase.value)  # fmt: skip
            try:
                if session.finished:
                    await self._payment_at_restart(run, logged.payment_steps)
                    await self._close(run)
                else:
                    await self._resume(run)
                    await self._until_finished(run)
            finally:
                self.current = None
        await self.link.acknowledge_reset()

    async def _resume(self, run: CabinetRun) -> None:
        """Feed an interrupted session what the cabinet says happened while we were down."""
        session = run.session
        phase = session.phase
        if phase is cs.Phase.AUTHORISING:
            await self._feed(run, cs.PaymentDenied())  # the reader's reset voided any approval
            return
        if phase is cs.Phase.RECOUNTING:
            await self._feed(run, cs.InventoryRead(await self.link.inventory()))
            return
        verdict = await self.link.verdict(session.session_id, run.boot)
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
                verdict = await self.link.verdict(session.session_id, run.boot)
            if verdict is SessionVerdict.ENDED_UNOPENED:
                await self._feed(run, cs.DoorRelocked())
                return
            if verdict in (SessionVerdict.OPEN, SessionVerdict.CLOSED):
                await self._feed(run, cs.DoorOpened())
        await self._feed(run, cs.PowerLost())
        if verdict is SessionVerdict.CLOSED:
            await self._feed(
                run, cs.SessionReported(await self.link.report(run.session.session_id))
            )
        elif verdict is SessionVerdict.OPEN:
            await self._feed(run, cs.PowerRestored(door_open=True))  # counted when it closes
        else:
            await self._feed(run, cs.PowerRestored(door_open=False))

    async def _payment_at_restart(
        self, run: CabinetRun, steps: Sequence[Mapping[str, Any]]
    ) -> None:
        settlement = run.session.settlement
        assert settlement is not None
        zero = Money(0, settlement.charge.currency)
        if steps:
            # A reader step may have been taken: never try again, a person checks it.
            what = steps[-1].get("step", "payment")
            run.payment = (UNCERTAIN, zero, f"the controller restarted during the {what} step")
        elif settlement.charge:
            run.payment = (UNSETTLED, zero, "the card authorisation was lost at a restart")
            await self._charge_on_return(run, settlement.charge)
        else:
            run.payment = (RELEASED, zero, "")
