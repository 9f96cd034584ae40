"""Customers of the store's smart cabinet, and its scripted fault (a door held open).

A customer taps a card, waits for the lock to release, opens the door, takes one to
three items, sometimes puts one back (now and then on the wrong shelf) and closes the
door; the machine settles the sale from what the shelves report. Customers see what a
shopper sees: they reach past a shelf holding a stray product from another shelf (the
cabinet's planogram alarm tells the staff to tidy it). At closing time the staff do:
with the service key they move each stray back to its own shelf, and the machine's next
look at the shelves clears the notice (:meth:`CabinetShopper.tidy`).

The processor's ledger is the card reader's own: charged less refunded less credited
(the cabinet pre-authorises, then gives back the difference as a negative vend).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from cli.demo.cabinet import DemoCabinet
from cli.demo.endofday import CardLedger
from cli.demo.faults import Fault, FaultLog
from cli.demo.machines import DemoMachineError
from cli.demo.shoppers import CARD_FUNDS, Shopper, ShopperStats
from fleet.store.models import alarms
from fleet.store.review_models import review_queue

PUT_BACK = 0.25  # a customer changes their mind about one item
WRONG_SHELF = 0.3  # ... and puts it back on another shelf (while every shelf is tidy)
UNLOCK_TIMEOUT = 15.0
TIDY_TIMEOUT = 20.0  # the machine sees the shelves tidy within an idle poll or two
FAULT_EXTRA_S = 3  # the fault holds the door this long past the limit


@dataclass
class CabinetStats:
    """What the cabinet's customers did (the simulated world's side, for the summary)."""

    sessions: int = 0
    items_taken: int = 0
    put_back: int = 0
    wrong_shelf: int = 0
    tidied: int = 0  # strays the staff moved back at closing time
    outcomes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def as_json(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "items_taken": self.items_taken,
            "put_back": self.put_back,
            "put_back_wrong_shelf": self.wrong_shelf,
            "strays_tidied": self.tidied,
            "outcomes": dict(self.outcomes),
        }


class CabinetShopper(Shopper):
    """Customers of one cabinet; every one pays by card (a cabinet takes no cash)."""

    machine: DemoCabinet

    def __init__(
        self,
        machine: DemoCabinet,
        rng: random.Random,
        mean_gap: float,
        *,
        stop: threading.Event,
        stats: ShopperStats,
        ledger: CardLedger,
        cabinet_stats: CabinetStats,
    ) -> None:
        super().__init__(machine, rng, mean_gap, stop=stop, stats=stats, ledger=ledger)
        self.cabinet_stats = cabinet_stats
        self.strays: list[tuple[int, int, str]] = []  # (own shelf, shelf it is on, sku)

    def run(self) -> None:
        super().run()
        if self.strays:
            try:
                self.tidy()
            except (RuntimeError, OSError, ValueError, KeyError):  # DemoMachineError too
                self.stats.count("error")

    def tidy(self) -> None:
        """Closing time: staff move every stray back to its own shelf (the cabinet's
        service key, between sessions), then see the machine's notices end."""
        m = self.machine
        m.wait_phase(("idle",), 30)
        while self.strays:
            own, on, sku = self.strays.pop()
            m.act("move", shelf=on, to_shelf=own, sku=sku)
            with self.cabinet_stats.lock:
                self.cabinet_stats.tidied += 1
        m.wait_for(lambda: not m.cabinet_view()["strays"], TIDY_TIMEOUT, "the shelves tidy")

    def visit(self, method: str) -> None:
        del method  # a cabinet opens on a card pre-authorisation only
        m = self.machine
        if m.cabinet_view()["phase"] != "idle" or not m.reader_idle():
            return
        shelves = m.act("status")["shelves"]
        # A shelf holding a stray product looks wrong: customers take from the others.
        tidy = [i for i, s in enumerate(shelves) if s["items"] > 0 and len(s["skus"]) == 1]
        if not tidy:
            return
        self.stats.count("attempt", "card")
        self._with_ledger(lambda: self.session(tidy, hold_s=0.0))

    def session(self, shelves: list[int], *, hold_s: float) -> dict[str, Any] | None:
        """One customer at the cabinet; the machine's settlement, or None when it did not
        open. ``hold_s``: how long the door stays open (0: as long as taking takes)."""
        m = self.machine
        m.wait_for(m.reader_idle, 20, "the card reader")
        before = _last_id(m.cabinet_view())
        m.mdb.call("cashless1", "present_card", funds=CARD_FUNDS)

        def answered() -> dict[str, Any] | None:
            view = m.cabinet_view()
            unlocked = view["phase"] == "unlocked"
            ended = view["phase"] == "idle" and _last_id(view) != before  # not approved
            return view if unlocked or ended else None

        view = m.wait_for(answered, UNLOCK_TIMEOUT, "the cabinet to unlock")
        if view["phase"] != "unlocked":
            self.stats.count("refused")
            return None
        session_id = int(view["session_id"])
        m.act("open_door")
        try:
            self._shop(shelves)
            if hold_s:
                time.sleep(hold_s)
        finally:
            m.act("close_door")  # whatever happened, the customer shuts the door
        last = m.wait_settled(session_id)
        m.wait_for(m.reader_idle, 20, "the card session to end")
        with self.cabinet_stats.lock:
            self.cabinet_stats.sessions += 1
            self.cabinet_stats.outcomes[f"{last['outcome']}/{last['payment']}"] += 1
        if last["charge"] > 0:
            self.stats.count("bought", "card")
        return last

    def _shop(self, shelves: list[int]) -> None:
        m, rng = self.machine, self.rng
        taken: list[int] = []
        for _ in range(rng.randint(1, 3)):
            left = [i for i in shelves if self._items(i) > 0]
            if not left:
                break
            shelf = rng.choice(left)
            m.act("take", shelf=shelf)
            taken.append(shelf)
        put_back = wrong = False
        if taken and rng.random() < PUT_BACK:
            shelf = rng.choice(taken)
            everything = range(len(self._shelves))
            others = [i for i in everything if i != shelf]
            # One stray at a time: while a shelf holds one, customers use the others.
            wrong = len(shelves) == len(everything) and rng.random() < WRONG_SHELF
            to_shelf = rng.choice(others) if wrong else shelf
            hand = [h["sku"] for h in m.act("status")["hand"] if h["from_shelf"] == shelf]
            m.act("put_back", shelf=shelf, to_shelf=to_shelf)  # the last one taken from it
            if wrong:
                self.strays.append((shelf, to_shelf, str(hand[-1])))
            taken.remove(shelf)
            put_back = True
        with self.cabinet_stats.lock:
            self.cabinet_stats.items_taken += len(taken)
            self.cabinet_stats.put_back += put_back
            self.cabinet_stats.wrong_shelf += wrong

    @property
    def _shelves(self) -> list[dict[str, Any]]:  # what the customer sees in the cabinet
        shelves: list[dict[str, Any]] = self.machine.act("status")["shelves"]
        return shelves

    def _items(self, shelf: int) -> int:
        return int(self._shelves[shelf]["items"])


def _last_id(view: dict[str, Any]) -> int | None:
    last = view.get("last")
    return None if not last else int(last["session_id"])


# --- the scripted fault -----------------------------------------------------------------


async def door_held_open(shopper: CabinetShopper, log: FaultLog, now: datetime) -> Fault:
    """A customer keeps the door open past the limit: the cabinet raises ``door_open``,
    the machine charges what the shelves vouch for and queues the session for review;
    the alarm clears when the door closes."""
    cabinet = shopper.machine
    hold = cabinet.held_open_limit_s + FAULT_EXTRA_S
    fault = Fault(
        "door_held_open", cabinet.machine_id, now,
        f"door open {hold} s (limit {cabinet.held_open_limit_s} s)",
    )  # fmt: skip
    log.faults.append(fault)
    await asyncio.to_thread(shopper.pause)
    try:
        log.note(f"door held open: {cabinet.machine_id}, a customer keeps it open {hold} s")
        last = await asyncio.to_thread(_held_open_visit, shopper, hold)
        if last is not None:
            charged = last["charge"]
            log.note(f"door closed: {cabinet.machine_id} charged {charged:,} ₫, sent for review")
    finally:
        shopper.resume()
    fault.ended = datetime.now(UTC)
    return fault


def _held_open_visit(shopper: CabinetShopper, hold: float) -> dict[str, Any] | None:
    cabinet = shopper.machine
    cabinet.wait_phase(("idle",), 30)
    shelves = cabinet.act("status")["shelves"]
    tidy = [i for i, s in enumerate(shelves) if s["items"] > 0 and len(s["skus"]) == 1]
    if not tidy:
        raise DemoMachineError(f"{cabinet.machine_id}: the cabinet is empty")
    result: list[dict[str, Any] | None] = [None]

    def visit() -> None:
        result[0] = shopper.session(tidy, hold_s=hold)

    shopper.stats.count("attempt", "card")
    shopper._with_ledger(visit)  # noqa: SLF001  (the same customer, a slow one)
    return result[0]


def assess_held_open(engine: Engine, fault: Fault) -> None:
    """Raised: the fleet holds the ``door_open`` alarm and the session in its review
    queue; cleared: the alarm was cleared (the door closed)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(alarms.c.raised_at, alarms.c.cleared_at).where(
                alarms.c.machine_id == fault.machine, alarms.c.code == "door_open"
            )
        ).all()
        reviews = conn.execute(
            select(review_queue.c.reasons).where(review_queue.c.machine_id == fault.machine)
        ).all()
    held = any("held open" in r.reasons for r in reviews)
    fault.raised = held and any(r.raised_at is not None for r in rows)
    fault.cleared = fault.raised and all(r.cleared_at is not None for r in rows)
