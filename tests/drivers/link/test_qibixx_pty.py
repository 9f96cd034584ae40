"""QibixxLink against the adapter simulator over a real pseudo-terminal, in one process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from drivers.link.base import LinkError, open_link
from drivers.link.qibixx import QibixxLink, parse_url
from drivers.link.qibixx_lines import parse_sniff
from drivers.sim.adapter import AdapterByteHandler, QibixxAdapterSim
from drivers.sim.base import SimBus
from drivers.sim.pty import ByteHandler, PtyEndpoint, open_pty, serve_pty
from protocols.mdb.wire import Ack, Data, NoReply
from tests.drivers.link.fakes import JUST_RESET, FakeChanger

pytestmark = pytest.mark.pty


@asynccontextmanager
async def serving(handler: ByteHandler) -> AsyncIterator[PtyEndpoint]:
    endpoint = open_pty()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_pty(endpoint, handler, stop))
    try:
        yield endpoint
    finally:
        stop.set()
        await task
        endpoint.close()


@asynccontextmanager
async def adapter_link() -> AsyncIterator[tuple[QibixxLink, QibixxAdapterSim, FakeChanger]]:
    changer = FakeChanger()
    sim = QibixxAdapterSim(SimBus(changer))
    async with serving(AdapterByteHandler(sim)) as endpoint:
        link = open_link(f"qibixx://{endpoint.path}")
        assert isinstance(link, QibixxLink)
        async with link:
            yield link, sim, changer


async def test_transactions_through_the_adapter() -> None:
    async with adapter_link() as (link, sim, changer):
        assert sim.master
        assert await link.transact(b"\x08") == Ack()
        assert await link.transact(b"\x0b") == Data(JUST_RESET)
        assert changer.acks == [True]  # the adapter ACKs in firmware
        assert await link.transact(b"\x0c\x00\x0f\x00\x0f") == Ack()
        assert changer.enabled == b"\x00\x0f\x00\x0f"
        assert await link.transact(b"\x33") == NoReply("nack")  # nobody at 0x30


async def test_adapter_faults_reach_the_link() -> None:
    async with adapter_link() as (link, sim, changer):
        await link.transact(b"\x08")
        sim.control("drop_answers", {"count": 1}, 0.0)
        assert await link.transact(b"\x0b") == NoReply("nack")
        sim.control("lose_acks", {"count": 1}, 0.0)
        assert await link.transact(b"\x0b") == Data(JUST_RESET)
        assert await link.transact(b"\x0b") == Data(JUST_RESET)  # resent: its ACK was lost
        assert changer.acks == [False, False, True]


async def test_reset_bus_power_cycles_behind_the_adapter() -> None:
    async with adapter_link() as (link, _sim, changer):
        await link.reset_bus()
        assert changer.power_cycles == 1
        assert await link.transact(b"\x0b") == Data(JUST_RESET)


async def test_sniffer_lines_arrive_while_sniffing() -> None:
    async with adapter_link() as (link, sim, _changer):
        lines = link.sniff()
        first = asyncio.ensure_future(anext(lines))
        await asyncio.sleep(0.05)  # let X,1 go out before the traffic
        assert await link.transact(b"\x08") == Ack()
        sniffed = [parse_sniff(await first), parse_sniff(await anext(lines))]
        assert [s.data for s in sniffed] == [b"\x08", b""]
        assert [s.from_master for s in sniffed] == [True, False]
        await lines.aclose()
        await asyncio.sleep(0.05)
        assert not sim.sniffing


def _answering(answer: Callable[[str], str]) -> ByteHandler:
    def handler(data: bytes, now: float) -> bytes:
        out = b""
        for line in data.decode().splitlines():
            out += (answer(line) + "\n").encode()
        return out

    return handler


async def test_garbled_and_unrelated_lines() -> None:
    def answer(line: str) -> str:
        if line == "M,1":
            return "m,ACK"
        if line == "R,0B":
            return "x,00,0000000001,0b,\n\nv,1.0\np,ZZ"  # noise first, then a garbled answer
        return "p,ACK"

    async with (
        serving(_answering(answer)) as endpoint,
        QibixxLink(f"qibixx://{endpoint.path}") as link,
    ):
        reply = await link.transact(b"\x0b")
        assert reply == NoReply("garbled adapter answer 'p,ZZ'")
        assert await link.transact(b"\x08") == Ack()


async def test_silent_adapter_times_out_as_no_reply() -> None:
    def answer(line: str) -> str:
        return "m,ACK" if line == "M,1" else ""

    async with (
        serving(_answering(answer)) as endpoint,
        QibixxLink(f"qibixx://{endpoint.path}", latency=0.05) as link,
    ):
        assert await link.transact(b"\x0b", timeout=0.01) == NoReply("timeout")


async def test_open_fails_clearly_when_no_adapter_answers() -> None:
    endpoint = open_pty()  # nobody serves the master side
    try:
        link = QibixxLink(f"qibixx://{endpoint.path}", open_timeout=0.2)
        with pytest.raises(LinkError, match=f"no Qibixx adapter answered M,1 on {endpoint.path}"):
            await link.open()
    finally:
        endpoint.close()


async def test_open_fails_clearly_for_a_missing_port() -> None:
    with pytest.raises(LinkError, match="/dev/no-such-adapter"):
        await QibixxLink("qibixx:///dev/no-such-adapter").open()


async def test_vanished_port_raises_link_error() -> None:
    changer = FakeChanger()
    endpoint = open_pty()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_pty(endpoint, AdapterByteHandler(QibixxAdapterSim(SimBus(changer))), stop)
    )
    link = QibixxLink(f"qibixx://{endpoint.path}", latency=0.1)
    await link.open()
    try:
        stop.set()
        await task
        # Closing every handle to the master makes the slave side hang up.
        os.close(endpoint.slave_fd)
        os.close(endpoint.master_fd)
        with pytest.raises(LinkError, match="gone"):
            await _transact_until_it_raises(link)
    finally:
        await link.close()


async def _transact_until_it_raises(link: QibixxLink) -> None:
    for _ in range(20):
        await link.transact(b"\x0b")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("qibixx://ttyACM0", "expected qibixx:///dev/ttyACM0"),
        ("qibixx:///dev/ttyACM0?baudrate=fast", "baudrate must be a positive integer"),
        ("qibixx:///dev/ttyACM0?parity=N", "unknown option 'parity'"),
    ],
)
def test_bad_urls(url: str, problem: str) -> None:
    with pytest.raises(LinkError, match=problem):
        parse_url(url)


def test_url_with_baudrate() -> None:
    assert parse_url("qibixx:///dev/ttyAMA0?baudrate=9600") == ("/dev/ttyAMA0", 9600)
