"""The whole MDB master stack back to back with the simulated peripherals.

The real :class:`BusRunner` drives a changer, a bill validator and cashless reader #1
on one link. Every scenario runs twice, on the same body: over the in-memory link
(word-level MDB, faults through a :class:`FaultHook`) and over a real pseudo-terminal
to ``vend sim mdb`` in its own process (Qibixx adapter protocol, faults through the
control socket or a ``--script`` file). Checks read the events the application sees
and the simulators' own ledgers, never what the test set up itself.
"""

from __future__ import annotations

import abc
import asyncio
import json
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from controller.bus import BusRunner
from drivers.link.base import MdbLink
from drivers.link.fault_hook import FaultHook, Transmission
from drivers.link.memory import MemoryLink
from drivers.link.qibixx import QibixxLink
from drivers.sim.base import SimPeripheral
from drivers.sim.control import ControlClient
from drivers.sim.faults import DeviceStep, Step, load_script
from drivers.sim.presets import default_bus, device_names
from protocols.mdb.bill import BillEscrowed, BillStacked, BillValidatorInfo, BillValidatorMaster
from protocols.mdb.cashless import CashlessInfo, CashlessMaster, CashlessState
from protocols.mdb.cashless import events as card
from protocols.mdb.changer import ChangerInfo, ChangerMaster, CoinAccepted, PayoutCompleted
from protocols.mdb.device import DeviceMaster, Timing
from protocols.mdb.events import (
    DeviceFault,
    DeviceOffline,
    DeviceOnline,
    DeviceReset,
    MdbEvent,
    ProtocolViolation,
)
from protocols.money import CURRENCIES, Money

pytestmark = pytest.mark.e2e

VEND = Path(sys.executable).parent / "vend"
VND = CURRENCIES["VND"]
E = TypeVar("E", bound=MdbEvent)


def vnd(minor: int) -> Money:
    return Money(minor, "VND")


# --- the two transports ------------------------------------------------------------------


class Rig(abc.ABC):
    """One transport to the simulated bus, and a hand on its devices."""

    link: MdbLink

    @abc.abstractmethod
    def act(self, device: str, action: str, **args: Any) -> dict[str, Any]:
        """A customer or a fault acting on a simulated device; returns its result."""

    @abc.abstractmethod
    def status(self, device: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    def slow_answers(self, *, on: bool) -> None:
        """Answers arrive later than the link's deadline (on) or on time again (off)."""


class MemoryRig(Rig):
    def __init__(self, script: list[Step] | None = None) -> None:
        bus = default_bus()
        self.devices: dict[str, SimPeripheral] = device_names(bus)
        self.hook = FaultHook(seed=11)
        self.link = MemoryLink(bus, faults=self.hook)
        self.script = script or []

    def act(self, device: str, action: str, **args: Any) -> dict[str, Any]:
        return dict(self.devices[device].control(action, args, time.monotonic()))

    def status(self, device: str) -> dict[str, Any]:
        return {"plugged": self.devices[device].plugged, **self.devices[device].status()}

    def slow_answers(self, *, on: bool) -> None:
        self.hook.clear()
        if on:  # longer than BusRunner's 50 ms MDB timeout: the VMC never ACKs in time
            self.hook.delay(0.08, "to_vmc", only=Transmission.ANSWER)

    async def play(self) -> None:
        """The fault script on this process's clock, as ``vend sim mdb`` plays it."""
        start = time.monotonic()
        for step in self.script:
            await asyncio.sleep(max(0.0, start + step.at - time.monotonic()))
            if isinstance(step, DeviceStep):
                self.act(step.device, step.action, **step.args)
            elif step.fault == "slow":
                self.slow_answers(on=step.ms > 0)
            elif step.fault == "clear":
                self.slow_answers(on=False)
            else:
                raise AssertionError(f"no in-memory equivalent for link fault {step.fault}")


class PtyRig(Rig):
    def __init__(self, ready: dict[str, str]) -> None:
        self.control = ControlClient(ready["control"])
        self.link = QibixxLink(f"qibixx://{ready['device']}")

    def act(self, device: str, action: str, **args: Any) -> dict[str, Any]:
        return self.control.call(device, action, **args)

    def status(self, device: str) -> dict[str, Any]:
        return self.control.call(device, "status")

    def slow_answers(self, *, on: bool) -> None:
        # Beyond the link's deadline (50 ms MDB timeout + 250 ms adapter latency).
        if on:
            self.control.call("adapter", "slow", ms=400)
        else:
            self.control.call("adapter", "clear_faults")


def _read_ready_line(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> dict[str, str]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode() if ready else ""
    if not line:
        proc.kill()
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise AssertionError(f"vend sim mdb did not start: {err}")
    result: dict[str, str] = json.loads(line)
    return result


async def _pty_rig(script: Path | None) -> AsyncIterator[Rig]:
    args = [str(VEND), "sim", "mdb", "--json"]
    if script is not None:
        args += ["--script", str(script)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        rig = PtyRig(_read_ready_line(proc))
        async with rig.link:
            yield rig
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        assert code == 0, f"vend sim mdb exited with {code}"


async def _memory_rig(script: Path | None) -> AsyncIterator[Rig]:
    rig = MemoryRig(load_script(script) if script is not None else None)
    player = asyncio.create_task(rig.play())
    try:
        async with rig.link:
            yield rig
    finally:
        player.cancel()


TRANSPORTS = ["memory", pytest.param("pty", marks=pytest.mark.pty)]


@pytest.fixture(params=TRANSPORTS)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    make = _pty_rig if request.param == "pty" else _memory_rig
    async for opened in make(None):
        yield opened


# --- the master stack ----------------------------------------------------------------------


class Stack:
    """The three VMC state machines on one BusRunner, and every event they reported."""

    def __init__(self, link: MdbLink, bill_timing: Timing | None = None) -> None:
        self.changer = ChangerMaster(VND)
        self.bill = BillValidatorMaster(VND, timing=bill_timing)
        self.reader = CashlessMaster(VND, address=0x10)
        self.events: list[MdbEvent] = []
        self.runner = BusRunner(
            link, [self.changer, self.bill, self.reader], on_event=self.events.append
        )

    @property
    def masters(self) -> list[DeviceMaster]:
        return [self.changer, self.bill, self.reader]

    def of(self, cls: type[E], since: int = 0, address: int | None = None) -> list[E]:
        return [
            e
            for e in self.events[since:]
            if isinstance(e, cls) and (address is None or e.address == address)
        ]

    async def until(self, done: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
        if not await self.runner.run_until(done, timeout):
            seen = [e.name for e in self.events]
            raise AssertionError(f"{what} did not happen within {timeout} s; events: {seen}")

    async def wait_for(
        self, cls: type[E], since: int = 0, address: int | None = None, timeout: float = 8.0
    ) -> E:
        await self.until(lambda: bool(self.of(cls, since, address)), cls.__name__, timeout)
        return self.of(cls, since, address)[0]

    async def run_for(self, seconds: float) -> None:
        await self.runner.run_until(lambda: False, seconds)

    async def ready(self) -> None:
        await self.until(lambda: all(m.is_ready for m in self.masters), "all devices ready")

    async def enabled(self, rig: Rig) -> None:
        """Everything ready and accepting, as the simulated firmware itself reports it."""
        await self.ready()
        self.changer.enable()
        self.bill.enable()
        self.reader.enable()
        await self.until(
            lambda: self.reader.reader_state is CashlessState.ENABLED, "reader enabled"
        )
        await self.run_for(0.3)  # COIN TYPE / BILL TYPE have gone out
        assert rig.status("changer")["enabled"]
        assert rig.status("bill")["enabled"]
        assert rig.status("cashless1")["state"] == "enabled"


# --- normal operation ------------------------------------------------------------------------


async def test_all_three_peripherals_come_up_ready(rig: Rig) -> None:
    stack = Stack(rig.link)
    await stack.ready()
    online = {e.device: e for e in stack.of(DeviceOnline)}
    assert sorted(online) == ["bill", "cashless1", "changer"]

    changer = online["changer"].info
    assert isinstance(changer, ChangerInfo)
    assert changer.setup.level == 3
    assert changer.setup.currency == VND
    assert stack.changer.coin_values[:5] == (vnd(200), vnd(500), vnd(1000), vnd(2000), vnd(5000))

    bill = online["bill"].info
    assert isinstance(bill, BillValidatorInfo)
    assert bill.setup.level == 2
    assert bill.setup.escrow_capable
    assert stack.bill.bill_values[0] == vnd(1000)
    assert stack.bill.bill_values[7] == vnd(200_000)

    reader = online["cashless1"].info
    assert isinstance(reader, CashlessInfo)
    assert reader.config.level == 3
    assert reader.expanded_currency  # 32-bit money switched on in OPTIONAL FEATURE ENABLED
    assert rig.status("cashless1")["expanded_currency"] is True
    assert not stack.of(ProtocolViolation)
    assert not stack.of(DeviceOffline)


async def test_coins_bills_and_change(rig: Rig) -> None:
    stack = Stack(rig.link)
    await stack.enabled(rig)
    tubes_before = rig.status("changer")["tube_value"]

    assert rig.act("changer", "insert_coin", value=1000)["accepted"] is True
    coin = await stack.wait_for(CoinAccepted)
    assert (coin.coin_type, coin.value, coin.to_tube) == (2, vnd(1000), True)

    assert rig.act("bill", "insert_bill", value=20_000)["accepted"] is True
    escrowed = await stack.wait_for(BillEscrowed)
    assert escrowed.value == vnd(20_000)
    assert not stack.of(BillStacked)  # escrow is not credit
    stack.bill.stack()
    stacked = await stack.wait_for(BillStacked)
    assert stacked.value == vnd(20_000)
    await stack.run_for(0.5)
    assert len(stack.of(BillStacked)) == 1
    assert rig.status("bill")["stacked_value"] == 20_000

    stack.changer.payout(vnd(3700))
    paid = await stack.wait_for(PayoutCompleted)
    assert paid.paid == paid.requested == vnd(3700)
    changer = rig.status("changer")
    assert changer["paid_out_value"] == 3700
    assert changer["tube_value"] == tubes_before + 1000 - 3700
    assert len(stack.of(CoinAccepted)) == 1
    assert not stack.of(ProtocolViolation)


async def test_card_sale(rig: Rig) -> None:
    stack = Stack(rig.link)
    await stack.enabled(rig)

    rig.act("cashless1", "present_card", funds=50_000)
    began = await stack.wait_for(card.SessionBegan)
    assert began.funds == vnd(50_000)

    stack.reader.vend_request(vnd(15_000), item=7)
    approved = await stack.wait_for(card.VendApproved)
    assert (approved.amount, approved.item) == (vnd(15_000), 7)
    stack.reader.vend_success(7)
    stack.reader.session_complete()
    ended = await stack.wait_for(card.SessionEnded)
    assert ended.confirmed

    ledger = rig.status("cashless1")
    assert ledger["charged"] == 15_000
    assert ledger["refunded"] == 0
    assert ledger["last_vend"]["outcome"] == "success"
    assert ledger["state"] == "enabled"
    assert stack.reader.reader_state is CashlessState.ENABLED


# --- faults and their documented recovery ------------------------------------------------------


async def test_changer_jam_is_reported_and_clears(rig: Rig) -> None:
    stack = Stack(rig.link)
    await stack.enabled(rig)

    rig.act("changer", "jam")
    fault = await stack.wait_for(DeviceFault, address=0x08)
    assert fault.code == "coin_jam"
    assert rig.act("changer", "insert_coin", value=500)["accepted"] is False
    await stack.run_for(0.3)
    assert not stack.of(CoinAccepted)

    rig.act("changer", "clear_jam")
    assert rig.act("changer", "insert_coin", value=500)["accepted"] is True
    coin = await stack.wait_for(CoinAccepted)
    assert coin.value == vnd(500)
    assert stack.changer.is_ready
    assert not stack.of(DeviceOffline)


async def test_unplugged_bill_validator_goes_offline_and_comes_back_enabled(rig: Rig) -> None:
    # A short non-response time so the test does not wait the validator's real 5 s.
    stack = Stack(rig.link, bill_timing=Timing(non_response=0.5, probe_interval=0.3))
    await stack.enabled(rig)
    mark = len(stack.events)

    rig.act("bill", "unplug")
    offline = await stack.wait_for(DeviceOffline, since=mark)
    assert offline.device == "bill"
    await stack.run_for(0.5)
    assert stack.changer.is_ready
    assert stack.reader.is_ready
    assert [e.device for e in stack.of(DeviceOffline)] == ["bill"]  # nobody else

    mark = len(stack.events)
    rig.act("bill", "plug")
    back = await stack.wait_for(DeviceOnline, since=mark, address=0x30)
    assert back.device == "bill"
    await stack.run_for(0.3)
    assert rig.status("bill")["enabled"]  # the master re-sent BILL TYPE by itself

    rig.act("bill", "insert_bill", value=10_000)
    escrowed = await stack.wait_for(BillEscrowed, since=mark)
    assert escrowed.value == vnd(10_000)


async def test_reader_reset_mid_session_aborts_it_and_charges_nothing_twice(rig: Rig) -> None:
    stack = Stack(rig.link)
    await stack.enabled(rig)
    rig.act("cashless1", "present_card", funds=50_000)
    await stack.wait_for(card.SessionBegan)
    stack.reader.vend_request(vnd(15_000), item=3)
    await stack.wait_for(card.VendApproved)
    mark = len(stack.events)

    rig.act("cashless1", "power_cycle")  # before the VMC settled the vend
    reset = await stack.wait_for(DeviceReset, since=mark, address=0x10)
    assert reset.unexpected
    aborted = await stack.wait_for(card.SessionAborted, since=mark)
    assert aborted.approved == vnd(15_000)
    assert aborted.vend_pending
    await stack.wait_for(DeviceOnline, since=mark, address=0x10)
    await stack.until(
        lambda: stack.reader.reader_state is CashlessState.ENABLED, "reader enabled again"
    )
    ledger = rig.status("cashless1")
    assert ledger["charged"] - ledger["refunded"] == 0  # the unsettled approval was voided
    assert ledger["state"] == "enabled"

    # The next customer pays once, and only once.
    rig.act("cashless1", "present_card", funds=50_000)
    await stack.wait_for(card.SessionBegan, since=mark)
    stack.reader.vend_request(vnd(15_000), item=3)
    await stack.wait_for(card.VendApproved, since=mark)
    stack.reader.vend_success(3)
    stack.reader.session_complete()
    await stack.wait_for(card.SessionEnded, since=mark)
    ledger = rig.status("cashless1")
    assert ledger["charged"] - ledger["refunded"] == 15_000
    assert len(stack.of(card.VendApproved)) == 2


async def test_slow_answers_are_retried_without_going_offline(rig: Rig) -> None:
    stack = Stack(rig.link)
    await stack.enabled(rig)
    tubes_before = rig.status("changer")["tube_value"]
    silent_before = stack.runner.stats.silent

    rig.slow_answers(on=True)
    rig.act("changer", "insert_coin", value=2000)
    rig.act("bill", "insert_bill", value=5000)
    await stack.run_for(1.2)
    assert stack.runner.stats.silent > silent_before  # deadlines were missed and retried
    rig.slow_answers(on=False)

    coin = await stack.wait_for(CoinAccepted)
    escrowed = await stack.wait_for(BillEscrowed)
    assert coin.value == vnd(2000)
    assert escrowed.value == vnd(5000)
    await stack.run_for(0.5)
    assert len(stack.of(CoinAccepted)) == 1
    assert len(stack.of(BillEscrowed)) == 1
    assert rig.status("changer")["tube_value"] == tubes_before + 2000
    assert not stack.of(DeviceOffline)
    assert not stack.of(ProtocolViolation)
    assert all(m.is_ready for m in stack.masters)


SLOW_START = """
# Answers come late for the first second after start-up; then the link is clean.
[[step]]
at = 0.0
link = "slow"
ms = 400

[[step]]
at = 1.0
link = "clear"
"""


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_fault_script_slow_start_still_initialises_everything(
    transport: str, tmp_path: Path
) -> None:
    script = tmp_path / "slow-start.toml"
    script.write_text(SLOW_START, encoding="utf-8")
    make = _pty_rig if transport == "pty" else _memory_rig
    async for rig in make(script):
        stack = Stack(rig.link)
        await stack.ready()
        assert sorted(e.device for e in stack.of(DeviceOnline)) == ["bill", "cashless1", "changer"]
        assert not stack.of(ProtocolViolation)
        await stack.enabled(rig)
        rig.act("changer", "insert_coin", value=200)
        coin = await stack.wait_for(CoinAccepted)
        assert coin.value == vnd(200)


# --- corrupted bytes: the in-memory link is the only one with a wire to damage ------------------


async def test_corrupted_bytes_never_credit_wrongly() -> None:
    rig = MemoryRig()
    async with rig.link:
        stack = Stack(rig.link)
        await stack.enabled(rig)
        before = rig.status("changer")
        rig.hook.corrupt(probability=0.15)
        rig.hook.lose_acks(probability=0.1)
        accepted = []
        for value in (200, 500, 1000, 2000, 5000, 500):
            accepted.append(rig.act("changer", "insert_coin", value=value)["accepted"])
            await stack.run_for(0.35)  # coins come one by one, as a coin mechanism takes them
        rig.act("bill", "insert_bill", value=50_000)
        await stack.wait_for(BillEscrowed)
        stack.bill.stack()
        await stack.wait_for(BillStacked)
        rig.hook.clear()
        await stack.run_for(1.0)

        assert "corrupted" in " ".join(rig.hook.log)  # the wire really was damaged
        assert all(accepted)
        after = rig.status("changer")
        taken = after["tube_value"] + after["cash_box_value"]
        taken -= before["tube_value"] + before["cash_box_value"]
        credited = sum(e.value.minor for e in stack.of(CoinAccepted))
        assert credited == taken == 9200
        assert [e.value for e in stack.of(BillStacked)] == [vnd(50_000)]
        assert rig.status("bill")["stacked_value"] == 50_000
        assert not stack.of(DeviceOffline)
