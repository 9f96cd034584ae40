"""The in-memory link with the real device simulators behind it (default bus)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("drivers.sim.changer")

from drivers.link.base import open_link
from drivers.link.fault_hook import FaultHook
from drivers.link.memory import MemoryLink, unregister_memory_bus
from drivers.sim.presets import default_bus
from protocols.mdb.wire import Ack, Data, Reply

# RESET + POLL + SETUP for the changer, the bill validator and cashless reader #1.
STARTUP = [
    b"\x08",
    b"\x0b",
    b"\x09",
    b"\x30",
    b"\x33",
    b"\x31",
    b"\x10",
    b"\x12",
    b"\x11\x00\x03\x00\x00\x00",
]


async def test_memory_url_opens_the_default_bus_and_resets_it() -> None:
    try:
        async with open_link("memory://sim-integration") as link:
            assert await link.transact(b"\x08") == Ack()
            assert await link.transact(b"\x0b") == Data(b"\x0b")  # changer was reset
            assert await link.transact(b"\x10") == Ack()
            assert await link.transact(b"\x12") == Data(b"\x00")  # reader JUST RESET
            assert await link.transact(b"\x0b") == Ack()
            await link.reset_bus()
            assert await link.transact(b"\x0b") == Data(b"\x0b")  # reset again by the break
    finally:
        unregister_memory_bus("sim-integration")


async def _startup(faults: FaultHook | None) -> list[Reply]:
    link = MemoryLink(default_bus(), faults=faults, clock=lambda: 0.0)
    async with link:
        return [await link.transact(block) for block in STARTUP]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_any_chunking_gives_the_same_setup_answers(seed: int) -> None:
    clean = asyncio.run(_startup(None))
    assert all(isinstance(r, Ack | Data) for r in clean)
    assert asyncio.run(_startup(FaultHook(seed).split())) == clean
