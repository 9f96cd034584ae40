"""How long the controller takes to put the next MDB command on the wire.

Runs ``vend sim mdb`` in its own process (a Qibixx adapter on a pseudo-terminal with
a changer, a bill validator and a cashless reader behind it) and measures, on the
controller side, the gap between an answer line fully read and the next command
line written, plus the round trip (command written to answer read). MDB gives a
VMC 5 ms (t_response) to answer a peripheral; an adapter that ACKs in firmware takes
that off the host, but the gap is still what the bus waits for the controller.

Three runs, each for ``--seconds``:

* baseline: a bare loop that writes ``R,0B`` and reads the answer line, no state
  machine -- the floor that the pty and the adapter protocol cost;
* stack: the real BusRunner driving ChangerMaster, BillValidatorMaster and
  CashlessMaster with ``poll_interval=0``, so every gap is controller work, not
  scheduled idle time;
* stack + busy loop: the same while another task keeps the event loop busy with
  bursts of JSON encoding and pydantic validation (~0.3 ms between awaits), as the
  journal, telemetry and front panel would.

Usage: .venv/bin/python bench/mdb_latency.py [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import select
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import serial_asyncio_fast
from pydantic import BaseModel

from controller.bus import BusRunner
from drivers.link.base import DEFAULT_TIMEOUT
from drivers.link.qibixx import QibixxLink
from protocols.mdb.bill import BillValidatorMaster
from protocols.mdb.cashless import CashlessMaster
from protocols.mdb.changer import ChangerMaster
from protocols.mdb.device import Timing
from protocols.mdb.wire import Reply
from protocols.money import CURRENCIES

MDB_BUDGET_MS = 5.0
VEND = Path(sys.executable).parent / "vend"


@dataclass
class Samples:
    gaps: list[float] = field(default_factory=list)  # answer read -> next command written
    trips: list[float] = field(default_factory=list)  # command written -> answer read
    seconds: float = 0.0

    def row(self, name: str) -> str:
        rate = len(self.trips) / self.seconds if self.seconds else 0.0
        return (
            f"{name:<22} {_ms(self.gaps, 50):>7} {_ms(self.gaps, 99):>7} {_ms(self.gaps, 100):>7}"
            f"   {_ms(self.trips, 50):>7} {_ms(self.trips, 99):>7} {_ms(self.trips, 100):>7}"
            f"   {rate:>8.0f}"
        )


def _ms(values: list[float], pct: int) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    if pct >= 100:
        return f"{ordered[-1] * 1000:.2f}"
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return f"{ordered[index] * 1000:.2f}"


class StampedQueue(asyncio.Queue[str]):
    """The link's answer queue, noting when its reader task finished reading each line."""

    last_put = 0.0

    def put_nowait(self, item: str) -> None:
        self.last_put = time.perf_counter()
        super().put_nowait(item)


class TimedLink(QibixxLink):
    """QibixxLink with timestamps at its two ends; its behaviour is unchanged.

    "Answer read" is when the link's reader task had the whole line; "written" is
    when the next ``R,`` line was handed to the port. Waiting for the event loop to
    wake the transaction (a busy loop delays it) therefore counts in the gap.
    """

    def __init__(self, url: str, samples: Samples) -> None:
        super().__init__(url)
        self.samples = samples
        self.stamps = StampedQueue()
        self._answers = self.stamps
        self._written: float | None = None
        self._read: float | None = None

    async def _send(self, line: str) -> None:
        await super()._send(line)
        if not line.startswith("R,"):
            return
        self._written = time.perf_counter()
        if self._read is not None:
            self.samples.gaps.append(self._written - self._read)

    async def transact(self, block: bytes, timeout: float = DEFAULT_TIMEOUT) -> Reply:
        reply = await super().transact(block, timeout)
        self._read = self.stamps.last_put
        if self._written is not None:
            self.samples.trips.append(self._read - self._written)
        return reply


# --- the load that shares the event loop -----------------------------------------------------


class Telemetry(BaseModel):
    machine_id: str
    seq: int
    kind: str
    body: dict[str, int]


def _burst(seq: int) -> None:
    body = {f"slot{n}": n * seq for n in range(40)}
    for _ in range(24):
        text = json.dumps({"machine_id": "vm-0001", "seq": seq, "kind": "stock", "body": body})
        Telemetry.model_validate_json(text)


async def busy_loop(stop: asyncio.Event, bursts: list[float]) -> None:
    seq = 0
    while not stop.is_set():
        start = time.perf_counter()
        _burst(seq)
        bursts.append(time.perf_counter() - start)
        seq += 1
        await asyncio.sleep(0)


# --- the three runs ----------------------------------------------------------------------------


async def baseline(device: str, seconds: float) -> Samples:
    samples = Samples()
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=device, baudrate=115200)
    try:
        writer.write(b"M,1\n")
        await writer.drain()
        while (await reader.readline()).strip() != b"m,ACK":
            pass
        end = time.perf_counter() + seconds
        answered: float | None = None
        while (now := time.perf_counter()) < end:
            writer.write(b"R,0B\n")
            await writer.drain()
            written = time.perf_counter()
            if answered is not None:
                samples.gaps.append(written - answered)
            await reader.readline()
            answered = time.perf_counter()
            samples.trips.append(answered - written)
        samples.seconds = now - (end - seconds)
    finally:
        writer.write(b"M,0\n")
        writer.close()
    return samples


async def stack(device: str, seconds: float, busy: bool) -> tuple[Samples, list[float]]:
    samples = Samples()
    bursts: list[float] = []
    timing = Timing(poll_interval=0.0)
    vnd = CURRENCIES["VND"]
    masters = [
        ChangerMaster(vnd, timing=timing),
        BillValidatorMaster(vnd, timing=timing),
        CashlessMaster(vnd, address=0x10, timing=timing),
    ]
    async with TimedLink(f"qibixx://{device}", samples) as link:
        runner = BusRunner(link, masters, on_event=lambda _event: None)
        if not await runner.run_until(lambda: all(m.is_ready for m in masters), 10.0):
            raise SystemExit("the simulated peripherals did not come up")
        samples.gaps.clear()
        samples.trips.clear()
        stop = asyncio.Event()
        load = asyncio.create_task(busy_loop(stop, bursts)) if busy else None
        start = time.perf_counter()
        await runner.run_until(lambda: False, seconds)
        samples.seconds = time.perf_counter() - start
        stop.set()
        if load is not None:
            await load
    return samples, bursts


def start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [str(VEND), "sim", "mdb", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20.0)
    line = proc.stdout.readline() if ready else b""
    if not line:
        proc.kill()
        raise SystemExit("vend sim mdb did not start")
    device: str = json.loads(line)["device"]
    return proc, device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each run")
    args = parser.parse_args()
    proc, device = start_simulator()
    try:
        floor = asyncio.run(baseline(device, args.seconds))
        idle, _ = asyncio.run(stack(device, args.seconds, busy=False))
        loaded, bursts = asyncio.run(stack(device, args.seconds, busy=True))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    print(f"MDB latency over a pty to vend sim mdb ({args.seconds:g} s per run)")
    print(f"MDB budget (t_response): {MDB_BUDGET_MS:.1f} ms")
    if bursts:
        print(
            f"busy loop: {len(bursts)} bursts, median {statistics.median(bursts) * 1000:.2f} ms"
            f" between awaits"
        )
    print()
    print(f"{'':<22} {'gap ms (answer -> next command)':^23}   {'round trip ms':^23}   {'tx/s':>8}")
    print(f"{'run':<22} {'p50':>7} {'p99':>7} {'max':>7}   {'p50':>7} {'p99':>7} {'max':>7}")
    print(floor.row("baseline R,0B loop"))
    print(idle.row("stack"))
    print(loaded.row("stack + busy loop"))
    if loaded.gaps:
        p99 = sorted(loaded.gaps)[round(0.99 * (len(loaded.gaps) - 1))] * 1000
        print()
        print(f"stack + busy loop p99 gap = {p99 / MDB_BUDGET_MS:.0%} of the MDB budget")


if __name__ == "__main__":
    main()
