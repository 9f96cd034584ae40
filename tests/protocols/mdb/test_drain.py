"""A restarted controller first drains what the devices queued while nobody listened."""

from __future__ import annotations

from drivers.sim.base import SimBus
from drivers.sim.bill import SimBillValidator
from drivers.sim.changer import SimChanger
from protocols.mdb.bill import BillStacked, BillValidatorMaster
from protocols.mdb.bill import messages as bill_messages
from protocols.mdb.changer import ChangerMaster, CoinAccepted, CoinType, Poll
from protocols.mdb.events import DeviceOnline
from protocols.money import CURRENCIES, Money
from tests.support.direct_bus import DirectBus

VND = CURRENCIES["VND"]


def _changer_with_a_coin_nobody_polled() -> SimChanger:
    sim = SimChanger()
    sim.handle(Poll().to_block(0x08), 0.0)  # the "was reset" of its own power-up
    sim.acked(ok=True)
    sim.handle(CoinType(frozenset(range(5)), frozenset()).to_block(0x08), 0.0)
    sim.control("insert_coin", {"coin_type": 4}, 0.0)  # as the old controller died
    return sim


def test_changer_coin_queued_during_a_restart_is_credited_once() -> None:
    sim = _changer_with_a_coin_nobody_polled()
    master = ChangerMaster(VND)
    master.drain_before_reset()
    bus = DirectBus(SimBus(sim), master)
    events = bus.run_until(lambda ev: any(isinstance(e, DeviceOnline) for e in ev))
    events += bus.run_for(1.0)
    coins = [e for e in events if isinstance(e, CoinAccepted)]
    assert [(c.coin_type, c.value) for c in coins] == [(4, Money(5000, "VND"))]


def test_without_draining_the_reset_wipes_it() -> None:
    sim = _changer_with_a_coin_nobody_polled()
    bus = DirectBus(SimBus(sim), ChangerMaster(VND))
    events = bus.run_for(3.0)
    assert not [e for e in events if isinstance(e, CoinAccepted)]


def test_bill_stacked_during_a_restart_is_credited_and_escrow_is_not() -> None:
    sim = SimBillValidator(stack_time=0.0)
    sim.handle(bill_messages.Poll().to_block(0x30), 0.0)
    sim.acked(ok=True)
    sim.handle(bill_messages.BillType(frozenset(range(8)), frozenset()).to_block(0x30), 0.0)
    sim.control("insert_bill", {"bill_type": 3}, 0.0)  # no escrow bit: stacked at once
    master = BillValidatorMaster(VND)
    master.drain_before_reset()
    bus = DirectBus(SimBus(sim), master)
    events = bus.run_until(lambda ev: any(isinstance(e, DeviceOnline) for e in ev))
    events += bus.run_for(1.0)
    stacked = [e for e in events if isinstance(e, BillStacked)]
    assert [(b.bill_type, b.value) for b in stacked] == [(3, Money(10000, "VND"))]
