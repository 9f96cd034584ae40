"""The cabinet driver over the in-process simulator (``memory://``) and a real pty,
driving the pure session machine the way the controller will."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from drivers.cabinet import (
    Cabinet,
    CabinetBusyError,
    CabinetDriverError,
    CabinetNotAnsweringError,
    CabinetResetPendingError,
    SessionVerdict,
    open_cabinet,
)
from drivers.sim.cabinet import SimCabinet, stocked_shelves
from drivers.sim.pty import open_pty, serve_pty
from protocols.cabinet.client import ClientTiming
from protocols.cabinet.messages import DoorState, EventKind, RecordFlags, SessionState
from protocols.cabinet.model import AlarmKind, ChargeRule, Settlement, SettlementOutcome
from protocols.cabinet.session import (
    Action,
    CabinetSession,
    DoorClosed,
    DoorOpened,
    DoorUnlocked,
    PaymentApproved,
    ReadSessionReport,
    RecordSettlement,
    SessionReported,
    TimePassed,
    UnlockDoor,
)
from protocols.money import Money
from tests.protocols.cabinet.catalogue import planogram, policy

FAST = ClientTiming(response_timeout=0.2, retries=2)


@pytest.fixture
async def memory() -> AsyncIterator[tuple[Cabinet, SimCabinet]]:
    sim = SimCabinet(stocked_shelves(4, 5, rfid=True))
    async with open_cabinet("memory://", cabinet=sim, timing=FAST) as cabinet:
        await cabinet.acknowledge_reset()
        yield cabinet, sim


async def _act(cabinet: Cabinet, actions: list[Action]) -> Settlement | None:
    """What the controller does with the session's actions (payment is approved at once)."""
    for action in actions:
        if isinstance(action, UnlockDoor):
            record = await cabinet.unlock(
                action.session_id, action.open_window_s, action.held_open_limit_s
            )
            assert record.state is SessionState.UNLOCKED
        if isinstance(action, RecordSettlement):
            return action.settlement
    return None


async def test_two_taken_one_returned_over_the_driver(
    memory: tuple[Cabinet, SimCabinet],
) -> None:
    cabinet, sim = memory
    session = CabinetSession(
        101, planogram(tags_per_shelf=5), policy(), baseline=await cabinet.inventory()
    )
    loop = asyncio.get_running_loop()
    session.start(loop.time())
    await _act(cabinet, session.handle(PaymentApproved(), loop.time()))
    session.handle(DoorUnlocked(), loop.time())
    sim.control("open_door", {}, loop.time())
    sim.control("take", {"shelf": 0, "count": 2}, loop.time())
    sim.control("put_back", {"shelf": 0, "count": 1}, loop.time())
    sim.control("close_door", {}, loop.time())
    events = await cabinet.read_events()
    kinds = [e.kind for e in events.events]
    assert kinds == [EventKind.POWER_UP, EventKind.DOOR_OPENED, EventKind.DOOR_CLOSED]
    session.handle(DoorOpened(), loop.time())
    assert session.handle(DoorClosed(), loop.time()) == [ReadSessionReport(101)]
    changes = await cabinet.session_report(101)
    settlement = await _act(cabinet, session.handle(SessionReported(changes), loop.time()))
    assert settlement is not None
    assert [(ln.sku, ln.quantity) for ln in settlement.lines] == [("COLA", 1)]
    assert settlement.charge == Money(12_000)
    acked = await cabinet.read_events(ack_through=events.events[-1].seq)
    assert acked.events == ()


async def test_door_left_open_alarms_and_the_session_settles_on_close(
    memory: tuple[Cabinet, SimCabinet],
) -> None:
    cabinet, sim = memory
    pol = policy(held_open_rule=ChargeRule.HOLD_FOR_REVIEW)
    session = CabinetSession(102, planogram(tags_per_shelf=5), pol)
    session.start(0.0)
    await _act(cabinet, session.handle(PaymentApproved(), 0.0))
    session.handle(DoorUnlocked(), 0.0)
    sim.control("open_door", {}, 0.0)
    session.handle(DoorOpened(), 1.0)
    sim.control("take", {"shelf": 3}, 0.0)
    sim.control("hold_open", {}, 0.0)
    assert (await cabinet.status()).door is DoorState.HELD_OPEN
    assert len(session.handle(TimePassed(), 61.0)) == 1  # the held-open alarm
    sim.control("close_door", {}, 0.0)
    record = await cabinet.query(102)
    assert record.report_ready
    session.handle(DoorClosed(), 62.0)
    settlement = await _act(
        cabinet, session.handle(SessionReported(await cabinet.session_report(102)), 63.0)
    )
    assert settlement is not None
    assert settlement.outcome is SettlementOutcome.HELD_FOR_REVIEW
    assert [a.kind for a in settlement.alarms] == [AlarmKind.DOOR_HELD_OPEN]
    [review] = settlement.reviews
    assert [(ln.sku, ln.quantity) for ln in review.confident_lines] == [("SALAD", 1)]


async def test_unlock_is_exactly_once_and_busy_while_open(
    memory: tuple[Cabinet, SimCabinet],
) -> None:
    cabinet, sim = memory
    await cabinet.unlock(7)
    sim.control("open_door", {}, 0.0)
    sim.control("close_door", {}, 0.0)
    again = await cabinet.unlock(7)
    assert again.state is SessionState.CLOSED  # the stored record, the lock stays shut
    assert sim.locked
    await cabinet.unlock(8)
    with pytest.raises(CabinetBusyError, match="another session"):
        await cabinet.unlock(9)
    assert (await cabinet.lock(8)).state is SessionState.CANCELLED
    assert await cabinet.verdict(10) is SessionVerdict.NEVER_UNLOCKED


async def test_power_cycle_needs_acknowledging_and_unknown_ids_stay_unknown(
    memory: tuple[Cabinet, SimCabinet],
) -> None:
    cabinet, sim = memory
    now = asyncio.get_running_loop().time
    boot = cabinet.boot
    await cabinet.unlock(20)
    sim.control("open_door", {}, now())
    sim.control("take", {"shelf": 1}, now())
    sim.control("power_cycle", {}, now())
    with pytest.raises(CabinetResetPendingError, match="acknowledge the reset"):
        await cabinet.unlock(21)
    assert await cabinet.verdict(19) is SessionVerdict.UNKNOWN
    assert await cabinet.verdict(20) is SessionVerdict.OPEN  # kept in non-volatile memory
    sim.control("close_door", {}, now())
    record = await cabinet.query(20)
    assert record.state is SessionState.CLOSED
    assert record.flags == RecordFlags.REPORT_READY | RecordFlags.POWER_INTERRUPTED
    [_, water, *_] = await cabinet.session_report(20)
    assert len(water.removed_tags) == 1
    assert water.weight_removed_g == 520
    await cabinet.acknowledge_reset()
    assert await cabinet.verdict(19, since_boot=boot) is SessionVerdict.UNKNOWN


async def test_inventory_pages_through_many_tags() -> None:
    sim = SimCabinet(stocked_shelves(2, 14, rfid=True))
    async with open_cabinet("memory://", cabinet=sim, timing=FAST) as cabinet:
        readings = await cabinet.inventory()
    assert [len(r.tags or ()) for r in readings] == [14, 14]
    assert readings[1].weight_g == 14 * 520


async def test_silent_cabinet_and_bad_arguments_are_clear_errors(
    memory: tuple[Cabinet, SimCabinet],
) -> None:
    cabinet, sim = memory
    with pytest.raises(CabinetDriverError, match="session id 0"):
        await cabinet.unlock(0)
    sim.control("unplug", {}, 0.0)
    with pytest.raises(CabinetNotAnsweringError, match="did not answer GetStatus after 3"):
        await cabinet.status()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        ("tcp://cab:9", "unknown cabinet URL"),
        ("serial:///dev/ttyS0?baudrate=115200", "baud rate 115200"),
        ("memory://?shelves=40", "1..32 shelves"),
    ],
)
def test_bad_urls_name_the_problem(url: str, problem: str) -> None:
    with pytest.raises(CabinetDriverError, match=problem):
        open_cabinet(url)


@pytest.mark.pty
async def test_driver_over_a_real_pty() -> None:
    sim = SimCabinet(stocked_shelves(3, 8, rfid=True))
    endpoint = open_pty()
    stop = asyncio.Event()
    server = asyncio.create_task(serve_pty(endpoint, sim.receive, stop))
    try:
        async with open_cabinet(f"serial://{endpoint.path}?baudrate=19200") as cabinet:
            identity = await cabinet.identify()
            assert len(identity.shelves) == 3
            await cabinet.acknowledge_reset()
            await cabinet.unlock(5)
            loop = asyncio.get_running_loop()
            sim.control("open_door", {}, loop.time())
            sim.control("take", {"shelf": 2, "count": 7}, loop.time())
            sim.control("put_back", {"shelf": 2, "count": 1, "to_shelf": 0}, loop.time())
            sim.control("close_door", {}, loop.time())
            changes = await cabinet.session_report(5)
    finally:
        stop.set()
        await server
        endpoint.close()
    assert len(changes[2].removed_tags) == 7  # two pages of tag changes
    assert len(changes[0].added_tags) == 1
