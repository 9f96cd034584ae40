"""ChangerMaster back to back with the simulated changer on a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from drivers.sim.base import SimBus
from drivers.sim.changer import SimChanger
from protocols.mdb.changer import (
    ChangerError,
    ChangerInfo,
    ChangerMaster,
    CoinAccepted,
    CoinRejected,
    CoinsDispensedManually,
    PayoutCompleted,
    ReturnLeverPressed,
    SlugsDetected,
    TubesRead,
)
from protocols.mdb.device import DeviceState
from protocols.mdb.events import DeviceFault, DeviceOffline, DeviceOnline, DeviceReset, MdbEvent
from protocols.money import CURRENCIES, Money
from tests.support.direct_bus import DirectBus

VND = CURRENCIES["VND"]


def vnd(minor: int) -> Money:
    return Money(minor, "VND")


E = TypeVar("E", bound=MdbEvent)


def of(kind: type[E], events: list[MdbEvent]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def has(kind: type[MdbEvent]) -> Callable[[list[MdbEvent]], bool]:
    return lambda events: any(isinstance(e, kind) for e in events)


def start(sim: SimChanger | None = None) -> tuple[SimChanger, ChangerMaster, DirectBus]:
    sim = sim or SimChanger()
    master = ChangerMaster(VND)
    bus = DirectBus(SimBus(sim), master)
    bus.run_until(has(DeviceOnline))
    return sim, master, bus


def insert(bus: DirectBus, sim: SimChanger, coin_type: int) -> dict[str, object]:
    return sim.control("insert_coin", {"coin_type": coin_type}, bus.clock.now)


def pay(bus: DirectBus) -> PayoutCompleted:
    events = bus.run_until(has(PayoutCompleted))
    (done,) = of(PayoutCompleted, events)
    return done


# --- initialisation ------------------------------------------------------------------


def test_level3_init_reads_everything_and_stays_disabled() -> None:
    sim = SimChanger()
    master = ChangerMaster(VND)
    bus = DirectBus(SimBus(sim), master)
    events = bus.run_until(has(DeviceOnline))
    assert [type(e) for e in events] == [DeviceReset, TubesRead, DeviceOnline]
    info = of(DeviceOnline, events)[0].info
    assert isinstance(info, ChangerInfo)
    assert info.identification is not None
    assert info.identification.manufacturer == "VFS"
    assert master.level == 3
    assert master.supports_alternative_payout
    assert sim.features_enabled == 3  # alternative payout + extended diagnostics
    assert master.diagnostics is not None
    assert sim.enabled == frozenset()  # nothing accepted until the application says so
    assert master.coin_values[:5] == (vnd(200), vnd(500), vnd(1000), vnd(2000), vnd(5000))
    assert of(TubesRead, events)[0].total == vnd(20 * (200 + 500 + 1000 + 2000 + 5000))


def test_level2_init_sends_no_expansion() -> None:
    sim, master, _ = start(SimChanger(level=2))
    assert master.is_ready
    assert master.identification is None
    assert not master.supports_alternative_payout
    assert sim.features_enabled == 0


def test_other_currency_and_scaling() -> None:
    sim = SimChanger(
        currency_code=0x1978, scale_factor=5, decimal_places=2, coin_credits=(1, 2, 4, 10)
    )
    master = ChangerMaster(CURRENCIES["EUR"])
    bus = DirectBus(SimBus(sim), master)
    bus.run_until(has(DeviceOnline))
    master.enable()
    bus.run_for(0.2)
    insert(bus, sim, 3)
    (coin,) = of(CoinAccepted, bus.run_for(0.3))
    assert coin.value == Money(50, "EUR")


def test_currency_mismatch_faults_and_never_enables() -> None:
    sim = SimChanger(currency_code=0x1978)  # EUR changer in a VND machine
    master = ChangerMaster(VND)
    bus = DirectBus(SimBus(sim), master)
    events = bus.run_for(5.0)
    faults = of(DeviceFault, events)
    assert faults
    assert faults[0].code == "currency_mismatch"
    assert not of(DeviceOnline, events)
    with pytest.raises(ChangerError, match="not ready"):
        master.enable()
    assert sim.enabled == frozenset()
    assert insert(bus, sim, 0)["accepted"] is False


def test_calls_before_ready_raise_our_error() -> None:
    master = ChangerMaster(VND)
    for call in (master.enable, master.refresh_tubes, lambda: master.payout(vnd(1000))):
        with pytest.raises(ChangerError):
            call()
    master.disable()  # always allowed


# --- coins -----------------------------------------------------------------------------


def test_enable_and_insert_coins() -> None:
    sim, master, bus = start()
    master.enable()
    bus.run_for(0.2)
    assert sim.enabled == frozenset(range(5))
    assert master.accepting == frozenset(range(5))
    for coin_type in (0, 4, 2):
        insert(bus, sim, coin_type)
        bus.run_for(0.3)
    coins = of(CoinAccepted, bus.events)
    assert [c.value for c in coins] == [vnd(200), vnd(5000), vnd(1000)]
    assert all(c.to_tube for c in coins)
    assert coins[1].tube_count == 21


def test_coin_to_cash_box_when_tube_full_and_disabled_type_rejected() -> None:
    sim, master, bus = start(SimChanger(tube_counts=(20, 20, 20, 20, 60)))
    master.enable(frozenset({0, 4}))
    bus.run_for(0.2)
    insert(bus, sim, 4)
    insert(bus, sim, 1)
    events = bus.run_for(0.3)
    (coin,) = of(CoinAccepted, events)
    assert coin.value == vnd(5000)
    assert not coin.to_tube
    assert [r.coin_type for r in of(CoinRejected, events)] == [1]
    assert sim.status()["cash_box_value"] == 5000


def test_disable_stops_acceptance() -> None:
    sim, master, bus = start()
    master.enable()
    bus.run_for(0.2)
    master.disable()
    bus.run_for(0.2)
    assert insert(bus, sim, 0)["accepted"] is False
    assert not of(CoinAccepted, bus.run_for(0.3))


def test_enable_unknown_coin_type_is_refused() -> None:
    _, master, _ = start()
    with pytest.raises(ChangerError, match="no coin types"):
        master.enable(frozenset({9}))


def test_lever_slugs_and_manual_dispense_are_reported() -> None:
    sim, _, bus = start()
    sim.control("press_return_lever", {}, bus.clock.now)
    sim.control("insert_slug", {}, bus.clock.now)
    sim.control("manual_dispense", {"coin_type": 3, "count": 2}, bus.clock.now)
    events = bus.run_for(0.5)
    assert len(of(ReturnLeverPressed, events)) == 1
    assert [s.count for s in of(SlugsDetected, events)] == [1]
    (manual,) = of(CoinsDispensedManually, events)
    assert (manual.coin_type, manual.count, manual.value, manual.tube_count) == (
        3,
        2,
        vnd(4000),
        18,
    )


# --- payouts ---------------------------------------------------------------------------


def test_alternative_payout_pays_the_amount() -> None:
    sim, master, bus = start()
    master.payout(vnd(3700))
    assert master.payout_in_progress
    done = pay(bus)
    assert done.requested == done.paid == vnd(3700)
    assert sim.status()["paid_out_value"] == 3700
    assert sum(done.coins) == 4
    assert sim.commands_while_busy == 0
    assert not master.payout_in_progress


def test_alternative_payout_above_one_command() -> None:
    sim, master, bus = start()
    master.payout(vnd(61500))  # 615 units: three ALTERNATIVE PAYOUT commands
    done = pay(bus)
    assert done.paid == vnd(61500)
    assert sim.status()["paid_out_value"] == 61500
    assert sim.commands_while_busy == 0


def test_changer_that_cannot_make_a_chunk_is_reported_faithfully() -> None:
    # 618 units asked as 250 + 250 + 118; the changer's largest-first choice makes
    # 118 as 50+50+10+5+2 and cannot pay the last unit.
    sim, master, bus = start()
    master.payout(vnd(61800))
    done = pay(bus)
    assert done.paid == vnd(sim.status()["paid_out_value"])  # type: ignore[arg-type]
    assert done.shortfall == vnd(100)


def test_level2_payout_plans_and_dispenses() -> None:
    sim, master, bus = start(SimChanger(level=2))
    master.payout(vnd(6000))
    done = pay(bus)
    assert done.paid == vnd(6000)
    assert sim.status()["paid_out_value"] == 6000
    assert sim.commands_while_busy == 0


def test_level2_payout_with_a_table_greedy_cannot_pay() -> None:
    # Coins of 2,000 and 5,000: 6,000 is three 2,000 coins (largest-first would stall).
    sim, master, bus = start(SimChanger(level=2, coin_credits=(20, 50)))
    master.payout(vnd(6000))
    done = pay(bus)
    assert done.paid == vnd(6000)
    assert done.coins[:2] == (3, 0)
    assert sim.status()["paid_out"] == [3, 0]


def test_level2_dispense_plan_over_fifteen_coins() -> None:
    sim, master, bus = start(SimChanger(level=2))
    master.dispense({0: 17, 2: 3})
    done = pay(bus)
    assert done.coins[:3] == (17, 0, 3)
    assert done.paid == done.requested == vnd(17 * 200 + 3 * 1000)
    assert sim.status()["paid_out"] == [17, 0, 3, 0, 0]
    assert sim.commands_while_busy == 0


def test_level2_running_out_shows_the_shortfall() -> None:
    sim, master, bus = start(SimChanger(level=2, tube_counts=(20, 20, 20, 20, 10)))
    master.dispense({4: 18})
    done = pay(bus)
    assert done.requested == vnd(90000)
    assert done.paid == vnd(50000)
    assert done.shortfall == vnd(40000)
    assert sim.status()["paid_out_value"] == 50000


def test_alternative_payout_running_dry_mid_payout() -> None:
    sim, master, bus = start()
    master.payout(vnd(20000))  # four 5,000 coins, one every 50 ms
    bus.run_until(lambda _e: sim.status()["busy"] is True)
    bus.run_for(0.06)
    sim.control("set_tubes", {"counts": [20, 20, 20, 20, 0]}, bus.clock.now)
    done = pay(bus)
    assert done.paid < done.requested
    assert done.paid == vnd(sim.status()["paid_out_value"])  # type: ignore[arg-type]
    assert done.paid.minor > 0


def test_payout_waits_while_changer_busy() -> None:
    sim, master, bus = start(SimChanger(level=2))
    sim.control("busy", {"seconds": 1.0}, bus.clock.now)
    bus.run_for(0.2)
    assert master.busy
    master.dispense({1: 2})
    done = pay(bus)
    assert done.paid == vnd(1000)
    assert sim.commands_while_busy == 0


def test_second_payout_while_one_runs_is_refused() -> None:
    _, master, bus = start()
    master.payout(vnd(1000))
    with pytest.raises(ChangerError, match="already in progress"):
        master.payout(vnd(1000))
    pay(bus)


def test_payout_of_unpayable_amount_is_refused() -> None:
    _, master, _ = start()
    with pytest.raises(ChangerError, match="cannot pay"):
        master.payout(vnd(150))  # finer than the 100 VND scale step
    with pytest.raises(ChangerError, match="cannot pay"):
        master.payout(Money(100, "EUR"))


# --- faults ----------------------------------------------------------------------------


def test_jam_becomes_device_fault_and_refuses_coins() -> None:
    sim, master, bus = start()
    master.enable()
    bus.run_for(0.2)
    sim.control("jam", {}, bus.clock.now)
    assert insert(bus, sim, 0)["accepted"] is False
    events = bus.run_for(0.3)
    assert [f.code for f in of(DeviceFault, events)] == ["coin_jam"]
    assert not of(CoinAccepted, events)


def test_tube_jam_fault_code() -> None:
    sim, _, bus = start()
    sim.control("tube_jam", {}, bus.clock.now)
    assert [f.code for f in of(DeviceFault, bus.run_for(0.3))] == ["tube_jam"]


def test_unplug_goes_offline_and_plug_restores_enables() -> None:
    sim, master, bus = start()
    master.enable(frozenset({1, 3}))
    bus.run_for(0.2)
    sim.control("unplug", {}, bus.clock.now)
    unplugged_at = bus.clock.now
    events = bus.run_until(has(DeviceOffline))
    # Offline only after the non-response time, counted from the last answer heard.
    assert bus.clock.now - unplugged_at >= master.timing.non_response - master.timing.poll_interval
    assert master.state is DeviceState.ABSENT
    assert not of(DeviceOnline, events)
    sim.control("plug", {}, bus.clock.now)
    bus.run_until(has(DeviceOnline))
    assert sim.enabled == frozenset({1, 3})
    insert(bus, sim, 3)
    assert [c.value for c in of(CoinAccepted, bus.run_for(0.3))] == [vnd(2000)]


def test_power_cycle_reinitialises_without_double_credit() -> None:
    sim, master, bus = start()
    master.enable()
    bus.run_for(0.2)
    insert(bus, sim, 4)
    bus.run_for(0.3)
    sim.control("power_cycle", {}, bus.clock.now)
    insert(bus, sim, 2)  # the changer came up disabled: this coin is refused
    events = bus.run_until(has(DeviceOnline))
    resets = of(DeviceReset, events)
    assert [r.unexpected for r in resets] == [True]
    assert sim.enabled == frozenset(range(5))
    insert(bus, sim, 1)
    bus.run_for(1.0)
    assert [c.value for c in of(CoinAccepted, bus.events)] == [vnd(5000), vnd(500)]


def test_power_cycle_mid_payout_reports_what_left_the_tubes() -> None:
    sim, master, bus = start()
    master.payout(vnd(20000))
    bus.run_until(lambda _e: sim.status()["busy"] is True)
    bus.run_for(0.08)
    sim.control("power_cycle", {}, bus.clock.now)
    events = bus.run_until(has(PayoutCompleted))
    (done,) = of(PayoutCompleted, events)
    assert "payout_interrupted" in [f.code for f in of(DeviceFault, events)]
    assert done.paid == vnd(sim.status()["paid_out_value"])  # type: ignore[arg-type]
    assert done.paid < done.requested
    bus.run_until(has(DeviceOnline))


def test_lost_ack_on_tube_coin_credits_once() -> None:
    sim, master, bus = start()
    master.enable()
    bus.run_for(0.2)
    insert(bus, sim, 2)
    bus.lose_next_ack = True
    bus.run_for(1.0)
    assert len(of(CoinAccepted, bus.events)) == 1


def test_lost_ack_on_cash_box_coin_credits_once() -> None:
    sim, master, bus = start(SimChanger(routing=()))  # every coin to the cash box
    master.enable()
    bus.run_for(0.2)
    insert(bus, sim, 2)
    bus.lose_next_ack = True
    bus.run_for(1.0)
    assert len(of(CoinAccepted, bus.events)) == 1
    assert sim.status()["cash_box"] == [0, 0, 1, 0, 0]


def test_two_cash_box_coins_of_one_type_both_credit() -> None:
    sim, master, bus = start(SimChanger(routing=()))
    master.enable()
    bus.run_for(0.2)
    for _ in range(2):
        insert(bus, sim, 2)
        bus.run_for(0.5)
    assert [c.value for c in of(CoinAccepted, bus.events)] == [vnd(1000), vnd(1000)]


def test_lost_ack_on_was_reset_is_not_a_second_reset() -> None:
    sim, master, bus = start()
    master.enable()
    bus.run_for(0.2)
    sim.control("power_cycle", {}, bus.clock.now)
    bus.lose_next_ack = True
    events = bus.run_until(has(DeviceOnline))
    events += bus.run_for(1.0)
    assert len(of(DeviceReset, events)) == 1
    assert len(of(DeviceOnline, events)) == 1


def test_tube_view_follows_deposits_between_tube_status_reads() -> None:
    sim, master, bus = start()
    master.enable()
    bus.run_for(0.3)
    assert master.tubes is not None
    before = master.tubes.counts[2]
    insert(bus, sim, 2)
    insert(bus, sim, 2)
    bus.run_until(lambda events: len(of(CoinAccepted, events)) == 2)
    # No TUBE STATUS was read in between: the deposits' own counts keep the view current,
    # which is what change is planned and a payout reconciled from.
    assert master.tubes.counts[2] == before + 2 == sim.status()["tubes"][2]  # type: ignore[index]
