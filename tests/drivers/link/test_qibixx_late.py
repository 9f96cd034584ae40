"""QibixxLink when the adapter answers after the deadline: never pair an answer with the
wrong request, and hand a late answer to the retry of its own command."""

from __future__ import annotations

import asyncio
import os

import pytest

from drivers.link.qibixx import QibixxLink
from drivers.sim.pty import open_pty, serve_pty
from protocols.mdb.wire import Ack, Data, NoReply

pytestmark = pytest.mark.pty

DELAY = 0.15  # the adapter's answer time, well past the link's 0.06 s deadline below
ANSWERS = {"R,0B": "p,5215", "R,33": "p,ACK"}  # changer: coin deposited; bill validator: ACK


class LateAdapter:
    """An adapter that answers M,1 at once and every R line DELAY seconds late, in order."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.requests: list[str] = []
        self._free_at = 0.0

    def __call__(self, data: bytes, now: float) -> bytes:
        out = b""
        for raw in data.decode().splitlines():
            line = raw.strip()
            if line in ("M,1", "M,0"):
                out += b"m,ACK\n"
                continue
            self.requests.append(line)
            loop = asyncio.get_running_loop()
            self._free_at = max(self._free_at, loop.time()) + DELAY  # one request at a time
            answer = (ANSWERS[line] + "\n").encode()
            loop.call_at(self._free_at, os.write, self.fd, answer)
        return out


async def test_a_late_answer_goes_to_its_own_command_only() -> None:
    endpoint = open_pty()
    adapter = LateAdapter(endpoint.master_fd)
    stop = asyncio.Event()
    task = asyncio.create_task(serve_pty(endpoint, adapter, stop))
    try:
        async with QibixxLink(f"qibixx://{endpoint.path}", latency=0.05) as link:
            assert await link.transact(b"\x0b", timeout=0.01) == NoReply("timeout")
            # The changer's coin arrives while the bill validator is being asked: not its answer.
            bill = await link.transact(b"\x33", timeout=0.01)
            assert bill == NoReply("timeout")
            # The changer's retry gets the coin the adapter already ACKed, without a resend.
            assert await link.transact(b"\x0b", timeout=0.01) == Data(b"\x52\x15")
            assert adapter.requests == ["R,0B", "R,33"]
            # The validator's retry waits for its own late answer.
            assert await link.transact(b"\x33", timeout=0.01) == Ack()
            assert adapter.requests == ["R,0B", "R,33"]
            # Once everything owed is in, transactions pair up normally again.
            assert await link.transact(b"\x33", timeout=0.5) == Ack()
    finally:
        stop.set()
        await task
        endpoint.close()
