"""The driver over the in-process simulator (``memory://``) and over a real pty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from drivers.dispenser import (
    BoardNotAnsweringError,
    BoardResetPendingError,
    Delivery,
    Dispenser,
    DispenserError,
    VendOutcome,
    open_dispenser,
)
from drivers.sim.dispenser import SimDispenserBoard
from drivers.sim.pty import open_pty, serve_pty
from protocols.dispense.client import ClientTiming

FAST = ClientTiming(response_timeout=0.2, retries=2, poll_interval=0.02)


@pytest.fixture
async def memory() -> AsyncIterator[tuple[Dispenser, SimDispenserBoard]]:
    board = SimDispenserBoard(motors=20, stock=2, vend_time=0.05)
    async with open_dispenser("memory://", board=board, timing=FAST) as dispenser:
        await dispenser.acknowledge_reset()
        yield dispenser, board


async def test_vend_and_query_in_memory(memory: tuple[Dispenser, SimDispenserBoard]) -> None:
    dispenser, board = memory
    result = await dispenser.vend(7, 100)
    assert result.outcome is VendOutcome.DISPENSED
    assert result.board_boot == dispenser.board_boot == board.boot_count
    again = await dispenser.query(100)
    assert again == result
    assert await dispenser.query(101) is None
    assert board.stock[7] == 1


async def test_jam_takes_one_selection_out_and_the_rest_keeps_selling(
    memory: tuple[Dispenser, SimDispenserBoard],
) -> None:
    dispenser, board = memory
    board.control("fault", {"motor": 3, "fault": "jam"}, 0.0)
    jammed = await dispenser.vend(3, 1)
    assert jammed.outcome is VendOutcome.JAM
    assert jammed.delivery is Delivery.NOT_DELIVERED
    assert jammed.out_of_service
    status = await dispenser.status()
    assert [(f.motor, f.fault.name) for f in status.faults] == [(3, "JAM")]
    assert (await dispenser.vend(4, 2)).outcome is VendOutcome.DISPENSED
    board.control("clear", {"motor": 3}, 0.0)
    await dispenser.reset_fault(3)
    assert (await dispenser.vend(3, 3)).outcome is VendOutcome.DISPENSED


async def test_board_reset_must_be_acknowledged(
    memory: tuple[Dispenser, SimDispenserBoard],
) -> None:
    dispenser, board = memory
    boot = dispenser.board_boot
    board.power_cycle(asyncio.get_running_loop().time())
    with pytest.raises(BoardResetPendingError, match="acknowledge the reset"):
        await dispenser.vend(1, 50)
    unknown = await dispenser.query(50)
    assert unknown is not None
    assert unknown.outcome is VendOutcome.UNKNOWN
    assert await dispenser.acknowledge_reset() == board.boot_count
    still = await dispenser.query(50, since_boot=boot)
    assert still is not None
    assert still.outcome is VendOutcome.UNKNOWN


async def test_silent_board_is_a_clear_error(
    memory: tuple[Dispenser, SimDispenserBoard],
) -> None:
    dispenser, board = memory
    board.control("unplug", {}, 0.0)
    with pytest.raises(BoardNotAnsweringError, match="did not answer GetStatus after 3 attempts"):
        await dispenser.status()


async def test_bad_arguments_are_dispenser_errors(
    memory: tuple[Dispenser, SimDispenserBoard],
) -> None:
    dispenser, _ = memory
    with pytest.raises(DispenserError, match="vend id 0"):
        await dispenser.vend(1, 0)
    with pytest.raises(DispenserError, match="motor 100"):
        await dispenser.reset_fault(100)


async def test_closed_driver_refuses_work() -> None:
    dispenser = open_dispenser("memory://?vend_time=0.05")
    with pytest.raises(DispenserError, match="not open"):
        await dispenser.status()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        ("tcp://board:9", "unknown dispenser URL"),
        ("serial:///dev/ttyS0?baudrate=115200", "baud rate 115200"),
        ("serial:///dev/ttyS0?baudrate=fast", "not an integer"),
        ("memory://?motors=500", "motors must be"),
        ("serial://", "no device path"),
    ],
)
def test_bad_urls_name_the_problem(url: str, problem: str) -> None:
    with pytest.raises(DispenserError, match=problem):
        open_dispenser(url)


async def test_missing_port_is_a_clear_error() -> None:
    dispenser = open_dispenser("/dev/does-not-exist-dispenser")
    with pytest.raises(DispenserError, match="cannot open dispenser port"):
        await dispenser.open()


@pytest.mark.pty
async def test_driver_over_a_real_pty() -> None:
    board = SimDispenserBoard(motors=60, stock=3, vend_time=0.1)
    endpoint = open_pty()
    stop = asyncio.Event()
    server = asyncio.create_task(serve_pty(endpoint, board.receive, stop))
    try:
        url = f"serial://{endpoint.path}?baudrate=19200"
        async with open_dispenser(url) as dispenser:
            status = await dispenser.status()
            assert status.was_reset
            await dispenser.acknowledge_reset(status.boot_count)
            assert (await dispenser.vend(23, 0x1000)).outcome is VendOutcome.DISPENSED
            board.control("fault", {"motor": 41, "fault": "over_current"}, 0.0)
            assert (await dispenser.vend(41, 0x1001)).outcome is VendOutcome.OVER_CURRENT
            # The same vend id again over the wire: stored result, no second turn.
            assert (await dispenser.vend(23, 0x1000)).outcome is VendOutcome.DISPENSED
        async with open_dispenser(endpoint.path) as reopened:  # a bare path, after a "restart"
            settled = await reopened.query(0x1000)
            assert settled is not None
            assert settled.outcome is VendOutcome.DISPENSED
        assert board.counters.turns == {23: 1, 41: 1}
        assert board.stock[23] == 2
    finally:
        stop.set()
        await server
        endpoint.close()
