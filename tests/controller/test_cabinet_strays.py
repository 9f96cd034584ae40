"""A cabinet's planogram notice has an end: an item put back on the wrong shelf raises it,
it stays while the item lies there, and the first inventory that shows it gone clears it
(the same alarm, cleared, so the fleet closes it). Whole sessions in one process, as in
tests/controller/test_cabinet.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from drivers.sim.cabinet import SimCabinet, stocked_shelves
from drivers.sim.cashless import SimCashlessReader
from tests.controller.test_cabinet import Store, store

FULL = 40  # bottles per shelf: 40 x 10 g tolerance, and a 355 g can hides in that


def _planogram_alarms(s: Store) -> list[dict[str, Any]]:
    return [a for a in s.outbox("alarm") if a["detail"].startswith("cabinet planogram")]


def _strays(s: Store) -> list[dict[str, Any]]:
    assert s.machine.cabinet is not None
    strays: list[dict[str, Any]] = s.machine.cabinet.view()["strays"]
    return strays


def _counts(s: Store) -> set[tuple[str, int]]:
    """Every (sku, count) the fleet was ever told."""
    return {(r["code"], r["count"]) for body in s.outbox("stock") for r in body["selections"]}


async def _cola_on_the_water_shelf(s: Store) -> int:
    sid = await s.tap()
    s.act("open_door")
    s.act("take", shelf=0)
    s.act("put_back", shelf=0, to_shelf=1)
    s.act("close_door")
    last = await s.settled(sid)
    assert last["charge"] == 0
    assert [a["kind"] for a in last["alarms"]] == ["planogram"]
    return sid


async def test_the_notice_stays_while_the_can_is_there_and_clears_when_staff_move_it(
    tmp_path: Path,
) -> None:
    async with store(tmp_path, cabinet=SimCabinet(stocked_shelves(2, FULL))) as s:
        sid = await _cola_on_the_water_shelf(s)
        (raised,) = _planogram_alarms(s)
        assert (raised["state"], raised["device"], raised["selection"]) == (
            "raised",
            "cabinet",
            "WATER",  # the shelf's code: its clear closes this notice and no other alarm
        )
        assert [(x["session_id"], x["shelf"], x["sku"]) for x in _strays(s)] == [(sid, 1, "COLA")]
        # The next customer buys two bottles from that shelf: the can is still there.
        nxt = await s.tap()
        s.act("open_door")
        s.act("take", shelf=1, count=2, sku="WATER")  # not the can
        s.act("close_door")
        last = await s.settled(nxt)
        assert [(ln["sku"], ln["quantity"]) for ln in last["lines"]] == [("WATER", 2)]
        await s.until(lambda: ("WATER", FULL - 2) in _counts(s), "stock after the sale")
        assert [a["state"] for a in _planogram_alarms(s)] == ["raised"]
        assert len(_strays(s)) == 1
        # The can counted as a cola all along: no phantom bottle, no missing can.
        assert _counts(s) == {("COLA", FULL), ("WATER", FULL), ("WATER", FULL - 2)}
        # Staff tidy between sessions (the board reports the door opened and closed).
        s.act("move", shelf=1, to_shelf=0, sku="COLA")
        await s.until(lambda: not _strays(s), "the notice cleared")
        raised, cleared = _planogram_alarms(s)
        key = ("code", "device", "selection")
        assert [cleared[k] for k in key] == [raised[k] for k in key]
        assert (cleared["state"], cleared["severity"]) == ("cleared", "info")
        assert f"session {sid}" in cleared["detail"]
        assert _counts(s) == {("COLA", FULL), ("WATER", FULL), ("WATER", FULL - 2)}


async def test_a_can_moved_while_the_controller_was_down_clears_at_start_up(
    tmp_path: Path,
) -> None:
    cabinet = SimCabinet(stocked_shelves(2, FULL))
    reader = SimCashlessReader(address=0x10)
    async with store(tmp_path, reader=reader, cabinet=cabinet) as s:
        await _cola_on_the_water_shelf(s)
    async with store(tmp_path, reader=reader, cabinet=cabinet) as s:
        await asyncio.sleep(0.3)  # a few idle polls: nothing moved, the notice stays
        assert len(_strays(s)) == 1
        assert [a["state"] for a in _planogram_alarms(s)] == ["raised"]
    cabinet.control("move", {"shelf": 1, "to_shelf": 0, "sku": "COLA"}, 0.0)
    cabinet.control("power_cycle", {}, 0.0)  # and the board's events are gone with it
    async with store(tmp_path, reader=reader, cabinet=cabinet) as s:
        await s.until(lambda: len(_planogram_alarms(s)) == 2, "cleared at start-up")
        assert _planogram_alarms(s)[-1]["state"] == "cleared"
        assert _strays(s) == []


async def test_the_can_moved_back_during_a_session_ends_the_notice_after_it(
    tmp_path: Path,
) -> None:
    async with store(tmp_path) as s:
        await _cola_on_the_water_shelf(s)
        # Someone moves the can back by hand during a session of the next customer.
        nxt = await s.tap()
        s.act("open_door")
        s.cab.shelves[0].items.append(s.cab.shelves[1].items.pop())
        s.act("close_door")
        await s.settled(nxt)
        await s.until(lambda: not _strays(s), "the notice cleared")
        assert [a["state"] for a in _planogram_alarms(s)] == ["raised", "cleared"]
