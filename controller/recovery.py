"""After a restart: settle whatever the journal says was in flight when the power went.

Order matters and each step is itself journaled, so a crash during recovery is
recovered from too:

1. a card session cannot survive our restart (the reader is reset by our init), so
   it is ended; a card vend in flight is settled by step 3 without a charge;
2. a bill held in escrow is returned by the validator's reset;
3. a basket being dispensed is stopped after its item in flight (nothing more is
   dispensed; what was paid for the rest is given back when it settles); a vend in
   flight -- a single vend or the basket's item -- is resolved by asking the board
   of its unit about its vend id: delivered means a sale, never a second dispense;
   anything the board cannot vouch for is not charged and the selection waits for a
   person;
4. a payout in flight is settled from the tube counts before (in the session, deposits
   since included) and now;
   the rest is paid again if the changer is back, otherwise it becomes an IOU;
5. only then may the boards accept new vends (their RESET flags are acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from drivers.dispenser import DispenserError
from protocols.change import reconcile_payout
from protocols.dispense.results import Delivery
from protocols.money import Money
from protocols.vend import inputs as i
from protocols.vend.basket import Phase

if TYPE_CHECKING:
    from controller.machine import Machine

log = logging.getLogger(__name__)

CHANGER_WAIT = 15.0


async def recover(machine: Machine) -> None:
    s = machine.session
    # Only a payout already running when the power went needs settling here; one that
    # the steps below start (change after a resolved vend) is an ordinary payout.
    interrupted_payout = s.payout
    if s.card is not None:
        await machine.submit(
            i.CardSessionEnded(reader=s.card.reader, reason="controller restarted")
        )
    if s.escrow is not None:
        await machine.submit(i.BillReturned(bill_type=s.escrow[0], value=s.escrow[1]))
    if s.basket is not None and s.basket.phase is Phase.DISPENSING:
        await machine.submit(i.BasketInterrupted(reason="controller restarted"))
    if s.vend is not None:
        vend_id = s.vend.vend_id
        outcome, delivery, oos = await machine.actuator.resolve(vend_id, s.vend.code)
        log.warning("vend %s in flight at restart: %s", vend_id, outcome.value)
        await machine.submit(
            i.DispenseFinished(
                vend_id=vend_id,
                delivered=delivery is Delivery.DELIVERED,
                outcome=outcome.value,
                slot_out_of_service=oos,
            )
        )
    if interrupted_payout is not None and s.payout == interrupted_payout:
        await _settle_payout(machine)
    await _release_board(machine)


async def _settle_payout(machine: Machine) -> None:
    s = machine.session
    payout = s.payout
    assert payout is not None
    paid = Money(0, payout.amount.currency)
    changer = machine.changer
    if changer is not None and s.payout_tubes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CHANGER_WAIT
        # Polling a device's state: the bus loop owns it and offers no event to wait on.
        while loop.time() < deadline and (not changer.is_ready or changer.tubes is None):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if changer.is_ready and changer.tubes is not None:
            values = {t: v for t, v in enumerate(changer.coin_values) if v is not None}
            after = dict(enumerate(changer.tubes.counts))
            result = reconcile_payout(payout.amount, s.payout_tubes, after, values)
            paid = min(result.paid, payout.amount)
            log.info("payout %s: tubes %s before, %s now", payout.payout_id, s.payout_tubes, after)
    log.warning(
        "payout %s in flight at restart: %s of %s proven paid",
        payout.payout_id,
        paid,
        payout.amount,
    )
    # Our init reset the changer, so the payout stopped; with a changer to pay it, the
    # rest is paid again rather than owed.
    resume = changer is not None and changer.is_ready
    await machine.submit(i.PayoutFinished(payout_id=payout.payout_id, paid=paid, resume=resume))


async def _release_board(machine: Machine) -> None:
    for unit in machine.actuator.units.values():
        try:
            status = await unit.dispenser.status()
            if status.was_reset:
                await unit.dispenser.acknowledge_reset(status.boot_count)
        except DispenserError as exc:
            log.error("dispensing board %s not answering at start: %s", unit.name, exc)  # noqa: TRY400
