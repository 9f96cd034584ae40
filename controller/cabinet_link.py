"""The controller's talk with the cabinet board: every question with retries and an answer
that is safe when the board stays silent.

:class:`CabinetLink` wraps the :class:`drivers.cabinet.Cabinet` driver for
:class:`controller.cabinet.CabinetFlow`. It decides nothing about a session; it turns
the board's answers (or their absence) into values the flow can act on:

* a SESSION REPORT or SHELF INVENTORY the board never gives becomes "every shelf in
  doubt" (``fault`` readings), so the operator's disagreement rule settles it rather
  than a guess;
* an UNLOCK whose answer was lost is followed by QUERY SESSION (which voids the id if
  the UNLOCK never arrived) before the flow is told the door state;
* READ EVENTS remembers the ``(boot, seq)`` of the last event the flow journaled and
  hands out only the events after it, once each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from drivers.cabinet import Cabinet, CabinetDriverError, SessionVerdict
from protocols.cabinet.messages import DoorState, Event, SessionState
from protocols.cabinet.model import ShelfChange, ShelfReading

log = logging.getLogger(__name__)

RETRIES = 3
RETRY_PAUSE = 0.5  # seconds between two attempts at one question

_T = TypeVar("_T")

# What a lost UNLOCK answer means, by what QUERY SESSION says afterwards.
_STATE_OF_VERDICT = {
    SessionVerdict.WAITING: SessionState.UNLOCKED,
    SessionVerdict.OPEN: SessionState.OPEN,
    SessionVerdict.CLOSED: SessionState.CLOSED,
}


class CabinetLink:
    """The cabinet board as the session flow needs it."""

    def __init__(self, cabinet: Cabinet, shelves: Sequence[int]) -> None:
        self.cabinet = cabinet
        self.shelves = tuple(shelves)
        #: ``(boot, seq)`` of the last cabinet event journaled; READ EVENTS acknowledges it.
        self.ack: tuple[int, int] | None = None

    @property
    def boot(self) -> int | None:
        """The board's boot count as last seen (journaled with each session)."""
        return self.cabinet.boot

    # --- the door -------------------------------------------------------------------

    async def unlock(
        self, session_id: int, since_boot: int | None, open_window_s: int, held_open_s: int
    ) -> SessionState:
        """UNLOCK once; the session's state afterwards (VOIDED when it never unlocked)."""
        try:
            record = await self.cabinet.unlock(session_id, open_window_s, held_open_s)
        except CabinetDriverError as exc:
            # The UNLOCK may have arrived: ask (voiding the id if it did not) before deciding.
            log.warning("cabinet UNLOCK %s: %s", session_id, exc)
            verdict = await self.verdict(session_id, since_boot)
            return _STATE_OF_VERDICT.get(verdict, SessionState.VOIDED)
        return record.state

    async def lock(self, session_id: int) -> bool:
        """LOCK a session whose door has not opened; True when the board relocked it."""
        try:
            record = await self.cabinet.lock(session_id)
        except CabinetDriverError as exc:
            log.info("cabinet LOCK: %s (the door events decide)", exc)
            return False
        return record.state in (SessionState.CANCELLED, SessionState.EXPIRED)

    async def door_open(self) -> bool:
        """Whether the door stands open; True when unknown (wait for the door events)."""
        try:
            return (await self.cabinet.status()).door is not DoorState.CLOSED
        except CabinetDriverError:
            return True

    # --- questions with a safe fallback ------------------------------------------------

    async def verdict(self, session_id: int, since_boot: int | None) -> SessionVerdict:
        return await retrying(
            "QUERY SESSION",
            lambda: self.cabinet.verdict(session_id, since_boot=since_boot),
            SessionVerdict.UNKNOWN,
        )

    async def report(self, session_id: int) -> tuple[ShelfChange, ...]:
        # No report: every shelf in doubt, so the operator's disagreement rule decides.
        doubt = tuple(ShelfChange(s, None, None, fault=True) for s in self.shelves)
        return await retrying(
            "SESSION REPORT", lambda: self.cabinet.session_report(session_id), doubt
        )

    async def inventory(self) -> tuple[ShelfReading, ...]:
        doubt = tuple(ShelfReading(s, None, None, fault=True) for s in self.shelves)
        return await retrying("SHELF INVENTORY", self.cabinet.inventory, doubt)

    async def baseline(self) -> tuple[ShelfReading, ...]:
        """The inventory before a session: one attempt, :class:`CabinetDriverError` if the
        board does not answer (no session starts without it)."""
        return await self.cabinet.inventory()

    # --- events and resets ------------------------------------------------------------

    async def read_events(self) -> tuple[int, tuple[Event, ...]] | None:
        """The board's boot count and its events not journaled yet; None if it is silent."""
        ack = self.ack
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

    async def acknowledge_reset(self) -> None:
        """The board refuses new sessions after a power-up until told every old one is
        resolved -- call this only when no session is open here."""
        try:
            status = await self.cabinet.status()
            if status.was_reset:
                await self.cabinet.acknowledge_reset(status.boot_count)
        except CabinetDriverError as exc:
            log.warning("cabinet not answering: %s", exc)


async def retrying(what: str, ask: Callable[[], Awaitable[_T]], fallback: _T) -> _T:
    """Ask the cabinet up to RETRIES times; ``fallback`` when it never answers."""
    for _ in range(RETRIES):
        try:
            return await ask()
        except CabinetDriverError as exc:
            log.warning("cabinet %s: %s", what, exc)
            await asyncio.sleep(RETRY_PAUSE)
    return fallback
