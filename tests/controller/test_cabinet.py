"""Smart-cabinet mode on the controller: ``[cabinet]`` in machine.toml, the write-ahead
cabinet log, and whole sessions in one process -- the real :class:`Machine` against the
simulated reader on an in-memory MDB bus and the simulated cabinet in memory.

Money is checked on the reader's own ledger (charged - refunded - credited), goods on the
cabinet's shelves, and what the fleet hears in the journal's outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app as cli_app
from controller import cabinet_log as clog
from controller.config import ConfigError, load_config
from controller.machine import Machine
from drivers.cabinet import open_cabinet
from drivers.link.memory import register_memory_bus, unregister_memory_bus
from drivers.sim.base import SimBus
from drivers.sim.cabinet import SimCabinet, SimItem, stocked_shelves
from drivers.sim.cashless import SimCashlessReader
from drivers.sim.presets import default_devices
from protocols.cabinet import session as cs
from protocols.cabinet.model import ShelfChange, ShelfReading
from protocols.dex import parse_dex_bytes
from protocols.dex.dexfile import DexFile, selection_from, value_first
from protocols.dex.model import Tally
from protocols.mdb.cashless import answers as a
from protocols.money import Money

PRE_AUTH = 100000
COLA, WATER = 15000, 8000
HEAD = """
[machine]
id = "cab-1"
data_dir = "data"
[mdb]
url = "memory://{bus}"
"""
CABINET = """
[cabinet]
url = "memory://"
pre_auth = 100000
poll_interval = 0.05
{policy}
[[cabinet.shelf]]
shelf = 0
sku = "COLA"
product = "Coca-Cola 330ml"
unit_weight_g = 355
tolerance_g = 10
price = 15000
[[cabinet.shelf]]
shelf = 1
sku = "WATER"
product = "Nước suối"
unit_weight_g = 520
tolerance_g = 10
price = 8000
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "machine.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- configuration ----------------------------------------------------------------------


def test_a_cabinet_only_machine_needs_no_dispenser_or_selection(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, HEAD.format(bus="x") + CABINET.format(policy="")))
    assert cfg.units == ()
    assert cfg.cabinet is not None
    planogram = cfg.cabinet.planogram("VND", {})
    assert {s: (p.sku, p.unit_price.minor) for s, p in planogram.shelves.items()} == {
        0: ("COLA", COLA),
        1: ("WATER", WATER),
    }


def test_rfid_shelves_adopt_the_tags_found_at_unlock(tmp_path: Path) -> None:
    text = HEAD.format(bus="x") + CABINET.format(policy="").replace(
        "price = 15000\n", "price = 15000\nrfid = true\n"
    )
    cfg = load_config(_write(tmp_path, text))
    assert cfg.cabinet is not None
    tag = "E28000000000000000000001"
    baseline = (ShelfReading(0, 355, frozenset({tag})), ShelfReading(1, 520, frozenset({"X"})))
    assert dict(cfg.cabinet.planogram("VND", {}, baseline).tags) == {tag: "COLA"}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("tolerance_g = 10\nprice = 8000", "tolerance_g = 300\nprice = 8000"), "under half"),
        (("price = 8000\n", ""), "give a price or the selection"),
        (("shelf = 1\n", "shelf = 0\n"), "cabinet shelves repeat: 0"),
        (("price = 8000\n", 'selection = "Z9"\n'), "unknown selections"),
        (("pre_auth = 100000", "pre_auth = 0"), r"cabinet.pre_auth: Input should be greater"),
        (("{policy}", 'held_open_rule = "charge_all"'), "cabinet.held_open_rule"),
    ],
)
def test_bad_cabinet_settings_are_named(
    tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    text = (HEAD.format(bus="x") + CABINET).replace(*change).replace("{policy}", "")
    with pytest.raises(ConfigError, match=problem):
        load_config(_write(tmp_path, text))


def test_no_selection_and_no_cabinet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="selection: at least one is needed"):
        load_config(_write(tmp_path, HEAD.format(bus="x")))


# --- the log ------------------------------------------------------------------------------

EVENTS: list[cs.SessionEvent] = [
    cs.PaymentApproved(Money(90000, "VND")),
    cs.PaymentApproved(None),
    cs.PaymentDenied(),
    cs.DoorUnlocked(),
    cs.UnlockRefused("busy"),
    cs.DoorOpened(),
    cs.DoorClosed(),
    cs.DoorHeldOpen(),
    cs.DoorRelocked(),
    cs.SensorFaulted(3),
    cs.TamperDetected(),
    cs.SessionReported(
        (ShelfChange(0, 1775, 1420, frozenset({"A"}), frozenset(), rfid=True, confidence=70),)
    ),
    cs.PowerLost(),
    cs.PowerRestored(door_open=True),
    cs.InventoryRead((ShelfReading(1, None, frozenset({"B", "C"}), fault=True),)),
    cs.TimePassed(),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_session_event_survives_the_log(event: cs.SessionEvent) -> None:
    text = json.dumps(clog.event_record(event, 12.5))
    assert clog.event_of(json.loads(text)["event"]) == event


def test_a_broken_log_row_is_our_error() -> None:
    with pytest.raises(clog.CabinetLogError, match="unknown cabinet event 'Nope'"):
        clog.event_of({"type": "Nope"})


# --- whole sessions in one process -------------------------------------------------------


class Store:
    """A machine with a simulated reader and cabinet; acts as the customer."""

    def __init__(self, machine: Machine, reader: SimCashlessReader, cabinet: SimCabinet) -> None:
        self.machine = machine
        self.reader = reader
        self.cab = cabinet

    @property
    def net(self) -> int:
        return self.reader.charged - self.reader.refunded - self.reader.credited

    def act(self, action: str, **args: Any) -> None:
        self.cab.control(action, args, asyncio.get_running_loop().time())

    async def until(self, check: Any, what: str, timeout: float = 20.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            got = check()
            if got:
                return got
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    def phase(self) -> str:
        assert self.machine.cabinet is not None
        return str(self.machine.cabinet.view()["phase"])

    async def tap(self) -> int:
        await self.until(lambda: self.reader.state.value == "enabled", "reader enabled")
        self.reader.control("present_card", {"funds": 500000}, time.monotonic())
        await self.until(lambda: self.phase() == "unlocked", "unlocked")
        assert self.machine.cabinet is not None
        view = self.machine.cabinet.view()
        return int(view["session_id"])

    async def settled(self, session_id: int) -> dict[str, Any]:
        assert self.machine.cabinet is not None
        cabinet = self.machine.cabinet

        def done() -> dict[str, Any] | None:
            last = cabinet.last
            if cabinet.current is None and last is not None and last["session_id"] == session_id:
                return last
            return None

        last: dict[str, Any] = await self.until(done, "settled")
        await self.until(lambda: self.reader.state.value == "enabled", "card session over")
        return last

    def outbox(self, kind: str) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.machine.journal.path)
        try:
            rows = db.execute("SELECT body FROM outbox WHERE kind = ? ORDER BY seq", (kind,))
            return [json.loads(r[0]) for r in rows]
        finally:
            db.close()


@contextlib.asynccontextmanager
async def store(
    tmp_path: Path,
    *,
    reader: SimCashlessReader | None = None,
    cabinet: SimCabinet | None = None,
    policy: str = "",
    idle: bool = True,
) -> AsyncIterator[Store]:
    name = f"cab-{id(tmp_path)}"
    devices = default_devices()
    sim_reader = reader or SimCashlessReader(address=0x10)
    devices["cashless1"] = sim_reader
    register_memory_bus(name, SimBus(*devices.values()))
    sim_cabinet = cabinet or SimCabinet(stocked_shelves(2, 5))
    cfg = load_config(_write(tmp_path, HEAD.format(bus=name) + CABINET.format(policy=policy)))
    machine = Machine(cfg, tmp_path, cabinet=open_cabinet("memory://", cabinet=sim_cabinet))
    task = asyncio.create_task(machine.run())
    try:
        await asyncio.wait_for(machine.ready.wait(), 20)
        s = Store(machine, sim_reader, sim_cabinet)
        if idle:
            await s.until(lambda: s.phase() == "idle", "cabinet idle")
        yield s
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task
        unregister_memory_bus(name)


async def test_negative_vend_gives_back_the_rest_of_the_pre_authorisation(tmp_path: Path) -> None:
    async with store(tmp_path) as s:
        sid = await s.tap()
        s.act("open_door")
        s.act("take", shelf=0, count=2)
        s.act("take", shelf=1)
        s.act("put_back", shelf=0)
        s.act("close_door")
        last = await s.settled(sid)
        assert (last["payment"], last["charge"]) == ("captured", COLA + WATER)
        assert (s.reader.charged, s.reader.credited) == (PRE_AUTH, PRE_AUTH - COLA - WATER)
        assert s.net == COLA + WATER
        (sale,) = s.outbox("sale")
        assert sorted((ln["selection"], ln["quantity"]) for ln in sale["lines"]) == [
            ("COLA", 1),
            ("WATER", 1),
        ]
        assert sale["product"] == "2 items"


async def test_the_fleet_hears_the_shelves_at_start_and_after_each_session(
    tmp_path: Path,
) -> None:
    async with store(tmp_path) as s:
        await s.until(lambda: s.outbox("stock"), "stock at start-up")
        (first,) = s.outbox("stock")
        assert first["kind"] == "change"  # a snapshot would drop the vend selections
        assert sorted((r["code"], r["count"], r["price"]) for r in first["selections"]) == [
            ("COLA", 5, COLA),
            ("WATER", 5, WATER),
        ]
        sid = await s.tap()
        s.act("open_door")
        s.act("take", shelf=0, count=2)
        s.act("put_back", shelf=0)
        s.act("close_door")
        await s.settled(sid)
        rows = await s.until(lambda: s.outbox("stock")[1:], "stock after the session")
        (after,) = rows
        assert [(r["code"], r["count"], r["delta"]) for r in after["selections"]] == [
            ("COLA", 4, -1)
        ]
        # Staff restock between sessions: the next baseline reports it.
        s.cab.shelves[1].items += [SimItem("WATER", 520), SimItem("WATER", 520)]
        await s.tap()
        restocked = s.outbox("stock")[-1]
        assert [(r["code"], r["count"]) for r in restocked["selections"]] == [("WATER", 7)]
        # A resync (or a new planogram) sends a snapshot, which replaces the fleet's whole
        # list: it must carry the shelves as last reported.
        snapshot = s.machine.outbox.snapshot(s.machine.session)
        assert snapshot.kind == "snapshot"
        assert sorted((r.code, r.count) for r in snapshot.selections) == [
            ("COLA", 4),
            ("WATER", 7),
        ]


def _dex(tmp_path: Path, *, reset: bool) -> DexFile:
    """`vend machine dex` on the machine's journal (the machine is stopped)."""
    args = ["machine", "dex", "-c", str(tmp_path / "machine.toml")] + (["--reset"] * reset)
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    return parse_dex_bytes(result.stdout.encode("utf-8"))


def _paid(dex: DexFile) -> dict[str, tuple[int | None, ...]]:
    """PA2 by selection: (count, value) cumulative then since the last reset."""
    out: dict[str, tuple[int | None, ...]] = {}
    for record in dex.product_records:
        sel = selection_from(record)
        p = sel.paid
        out[sel.selection] = (p.count_init, p.value_init, p.count_reset, p.value_reset)
    return out


async def _buy(tmp_path: Path, cabinet: SimCabinet, takes: dict[int, int]) -> None:
    async with store(tmp_path, cabinet=cabinet) as s:
        sid = await s.tap()
        s.act("open_door")
        for shelf, count in takes.items():
            s.act("take", shelf=shelf, count=count)
        s.act("close_door")
        assert (await s.settled(sid))["payment"] == "captured"


async def test_cabinet_sales_are_dex_counters_per_sku_and_card_totals(tmp_path: Path) -> None:
    cabinet = SimCabinet(stocked_shelves(2, 5))  # one board for both visits
    await _buy(tmp_path, cabinet, {0: 1, 1: 2})
    first = _dex(tmp_path, reset=True)
    assert _paid(first) == {"COLA": (1, COLA, 1, COLA), "WATER": (2, 2 * WATER, 2, 2 * WATER)}
    total = COLA + 2 * WATER
    assert value_first(first.first("VA1") or ()) == Tally(total, 3, total, 3)
    assert value_first(first.first("DA2") or ()) == Tally(total, 3, total, 3)
    assert first.crc == "ok"

    await _buy(tmp_path, cabinet, {0: 1})
    second = _dex(tmp_path, reset=False)
    # Cumulative counts everything; interim only what was sold since the read with reset.
    assert _paid(second) == {"COLA": (2, 2 * COLA, 1, COLA), "WATER": (2, 2 * WATER, 0, 0)}
    assert value_first(second.first("DA2") or ()) == Tally(total + COLA, 4, COLA, 1)


async def test_a_multivend_reader_without_negative_vend_is_charged_anew(tmp_path: Path) -> None:
    reader = SimCashlessReader(address=0x10, offers_negative_vend=False)
    async with store(tmp_path, reader=reader) as s:
        sid = await s.tap()
        s.act("open_door")
        s.act("take", shelf=1)
        s.act("close_door")
        last = await s.settled(sid)
        assert last["payment"] == "captured"
        assert (reader.charged, reader.refunded, reader.credited) == (PRE_AUTH + WATER, PRE_AUTH, 0)
        assert s.net == WATER


async def test_a_reader_that_can_neither_refund_nor_recharge_leaves_it_to_review(
    tmp_path: Path,
) -> None:
    reader = SimCashlessReader(
        address=0x10, offers_negative_vend=False, options=a.OPTION_REFUND | a.OPTION_CASH_SALE
    )
    async with store(tmp_path, reader=reader) as s:
        sid = await s.tap()
        s.act("open_door")
        s.act("take", shelf=0)
        s.act("close_door")
        last = await s.settled(sid)
        assert last["payment"] == "unsettled"
        assert s.net == 0  # never more than the items: here nothing
        (sale,) = s.outbox("sale")
        assert (sale["settled"], sale["price"]) == (False, COLA)
        (review,) = s.outbox("review")
        assert (review["outcome"], review["due"], review["charged"]) == ("unsettled", COLA, 0)


async def test_nothing_taken_releases_the_hold_and_sells_nothing(tmp_path: Path) -> None:
    async with store(tmp_path) as s:
        sid = await s.tap()
        s.act("open_door")
        s.act("take", shelf=0)
        s.act("put_back", shelf=0)
        s.act("close_door")
        last = await s.settled(sid)
        assert (last["outcome"], last["payment"]) == ("nothing_taken", "released")
        assert s.net == 0
        assert s.outbox("sale") == []


async def test_a_denied_card_never_unlocks_the_door(tmp_path: Path) -> None:
    async with store(tmp_path) as s:
        s.reader.control("set_policy", {"policy": "deny"}, 0.0)
        await s.until(lambda: s.reader.state.value == "enabled", "reader enabled")
        s.reader.control("present_card", {"funds": 500000}, time.monotonic())
        assert s.machine.cabinet is not None
        cabinet = s.machine.cabinet
        last = await s.until(lambda: cabinet.last, "session over")
        assert (last["outcome"], last["payment"]) == ("cancelled", "not_charged")
        assert s.cab.status()["locked"] is True
        assert s.cab.status()["active_session_id"] is None
        assert s.net == 0


async def test_sensor_disagreement_is_held_for_review_under_that_rule(tmp_path: Path) -> None:
    policy = 'disagreement_rule = "hold_for_review"'
    async with store(tmp_path, policy=policy) as s:
        sid = await s.tap()
        s.act("open_door")
        s.act("take", shelf=1)
        s.act("sensor_fault", shelf=1)
        s.act("close_door")
        last = await s.settled(sid)
        assert (last["outcome"], last["charge"]) == ("held_for_review", 0)
        assert s.net == 0
        (review,) = s.outbox("review")
        assert review["rule"] == "hold_for_review"
        assert review["shelves"] == [1]
        assert any(e["shelf"] == 1 and e["fault"] for e in review["evidence"])


async def test_cabinet_power_cut_with_the_door_open_is_counted_against_the_baseline(
    tmp_path: Path,
) -> None:
    async with store(tmp_path) as s:
        sid = await s.tap()
        s.act("open_door")
        s.act("take", shelf=0)
        s.act("power_cycle")  # the cabinet, not the controller: the card stays authorised
        await s.until(lambda: s.phase() == "power_lost", "power loss seen")
        s.act("close_door")
        last = await s.settled(sid)
        assert (last["payment"], last["charge"]) == ("captured", COLA)
        assert s.net == COLA
        assert any("power_lost" in a["detail"] for a in s.outbox("alarm"))
        assert s.outbox("review")  # a rule applied: a person sees it


async def test_a_restarted_controller_finishes_the_open_session_once(tmp_path: Path) -> None:
    cabinet = SimCabinet(stocked_shelves(2, 5))
    reader = SimCashlessReader(address=0x10)
    async with store(tmp_path, reader=reader, cabinet=cabinet) as s:
        sid = await s.tap()
        s.act("open_door")
        await s.until(lambda: s.phase() == "open", "door open")
        s.act("take", shelf=0)
    # The controller is gone (its task cancelled); the customer closes the door meanwhile.
    cabinet.control("close_door", {}, asyncio.get_running_loop().time())
    async with store(tmp_path, reader=reader, cabinet=cabinet) as again:
        last = await again.settled(sid)
        assert [(ln["sku"], ln["quantity"]) for ln in last["lines"]] == [("COLA", 1)]
        assert last["payment"] == "unsettled"  # the reader's reset voided the authorisation
        assert again.net == 0
        assert len(again.outbox("sale")) == 1
        # And the cabinet serves the next customer.
        assert await again.tap() != sid


async def _interrupted(tmp_path: Path, cabinet: SimCabinet, reader: SimCashlessReader) -> int:
    """A customer takes a can; the controller dies with the door open; the door closes."""
    async with store(tmp_path, reader=reader, cabinet=cabinet, policy=RESUME) as s:
        sid = await s.tap()
        s.act("open_door")
        await s.until(lambda: s.phase() == "open", "door open")
        s.act("take", shelf=0)
    cabinet.control("close_door", {}, asyncio.get_running_loop().time())
    return sid


RESUME = "resume_window_s = 20"


async def _tap_again(s: Store) -> None:
    assert s.machine.cabinet is not None
    cabinet = s.machine.cabinet
    await s.until(lambda: cabinet.view()["awaiting_card"], "waiting for the card")
    await s.until(lambda: s.reader.state.value == "enabled", "reader enabled")
    s.reader.control("present_card", {"funds": 500000}, time.monotonic())


async def test_after_a_restart_the_same_card_tapped_again_pays_for_the_items(
    tmp_path: Path,
) -> None:
    cabinet = SimCabinet(stocked_shelves(2, 5))
    reader = SimCashlessReader(address=0x10)
    sid = await _interrupted(tmp_path, cabinet, reader)
    async with store(tmp_path, reader=reader, cabinet=cabinet, policy=RESUME, idle=False) as again:
        await _tap_again(again)
        last = await again.settled(sid)
        assert (last["payment"], last["charged"]) == ("captured", COLA)
        assert again.net == COLA
        (sale,) = again.outbox("sale")
        assert (sale["settled"], sale["price"]) == (True, COLA)
        assert not [r for r in again.outbox("review") if r["rule"] == "payment"]
    # Restarted once more: the session is closed, nothing is charged again.
    async with store(tmp_path, reader=reader, cabinet=cabinet, policy=RESUME) as third:
        assert third.net == COLA
        assert len(third.outbox("sale")) == 1


async def test_a_restart_during_the_new_charge_is_never_charged_twice(tmp_path: Path) -> None:
    cabinet = SimCabinet(stocked_shelves(2, 5))
    reader = SimCashlessReader(address=0x10)
    sid = await _interrupted(tmp_path, cabinet, reader)
    async with store(tmp_path, reader=reader, cabinet=cabinet, policy=RESUME, idle=False) as again:
        reader.control("set_policy", {"policy": "timeout"}, 0.0)
        await _tap_again(again)
        await again.until(lambda: reader.status()["state"] == "vend", "VEND REQUEST sent")
    # The controller died waiting for the approval; the reader's reset voids the request.
    reader.control("set_policy", {"policy": "approve"}, 0.0)
    async with store(tmp_path, reader=reader, cabinet=cabinet, policy=RESUME) as third:
        last = await third.until(lambda: third.machine.cabinet and third.machine.cabinet.last,
                                 "settled")  # fmt: skip
        assert last["session_id"] == sid
        assert last["payment"] == "uncertain"
        assert third.machine.cabinet is not None
        assert not third.machine.cabinet.view()["awaiting_card"]
        assert third.net == 0
        (review,) = [r for r in third.outbox("review") if r["rule"] == "payment"]
        assert (review["outcome"], review["due"]) == ("uncertain", COLA)
        assert "recharge" in review["reasons"][0]


async def test_without_the_card_back_in_time_the_sale_stays_unsettled(tmp_path: Path) -> None:
    cabinet = SimCabinet(stocked_shelves(2, 5))
    reader = SimCashlessReader(address=0x10)
    sid = await _interrupted(tmp_path, cabinet, reader)
    async with store(tmp_path, reader=reader, cabinet=cabinet, policy="resume_window_s = 1") as s:
        last = await s.settled(sid)
        assert last["payment"] == "unsettled"
        assert s.net == 0
        assert any(r["outcome"] == "unsettled" for r in s.outbox("review"))


async def test_a_door_not_opened_in_time_relocks_and_releases_the_hold(tmp_path: Path) -> None:
    async with store(tmp_path, policy="open_window_s = 1") as s:
        sid = await s.tap()
        last = await s.settled(sid)
        assert (last["outcome"], last["payment"]) == ("cancelled", "released")
        assert s.net == 0
        assert s.cab.status()["locked"] is True
        with pytest.raises(ValueError, match="locked"):
            s.act("open_door")
