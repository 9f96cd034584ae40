"""Vend cycle latency, resident memory and start-up time of the controller.

Simulators run as their own processes on pseudo-terminals (as in the tests); the
controller under measurement runs in this process so its link and dispenser can be
timestamped without changing their behaviour:

* selection -> motor command (cash vends): the panel's ``select`` handled, to the RUN
  MOTOR frame leaving for the dispensing board;
* approval -> motor command (card vends): the reader's VEND APPROVED read off the bus,
  to the RUN MOTOR frame (the time before it is the reader's, not ours);
* drop confirmed -> VEND SUCCESS (card vends): the board's verdict in hand, to the
  VEND SUCCESS block leaving for the reader.

Memory and start-up are measured on a separate ``vend machine run`` process: resident
set size after N vends, and the time from exec to its ready line (bus init excluded).
Targets (TARGETS.md): p99 <= 20 ms each; <= 80 MB; <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.config import load_config
from controller.machine import Machine
from drivers.link.qibixx import QibixxLink
from protocols.dispense.results import VendResult
from protocols.mdb.wire import Data, Reply
from tests.e2e.rig import VEND, MachineRig

VEND_SUCCESS = bytes((0x13, 0x02))
READER_POLL = 0x12


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Probe:
    def __init__(self) -> None:
        self.selected_at = 0.0
        self.approved_at = 0.0
        self.motor: list[float] = []
        self.approval_to_motor: list[float] = []
        self.dropped_at = 0.0
        self.success: list[float] = []


def instrument(machine: Machine, probe: Probe) -> None:
    link = machine.link
    assert isinstance(link, QibixxLink)
    original_transact = link.transact

    async def transact(block: bytes, timeout: float = 0.05) -> Reply:
        if block[:2] == VEND_SUCCESS and probe.dropped_at:
            probe.success.append(time.perf_counter() - probe.dropped_at)
            probe.dropped_at = 0.0
        reply = await original_transact(block, timeout)
        if block[0] == READER_POLL and isinstance(reply, Data) and reply.payload[:1] == b"\x05":
            probe.approved_at = time.perf_counter()  # VEND APPROVED
        return reply

    link.transact = transact  # type: ignore[method-assign]
    dispenser = machine.dispenser
    assert dispenser is not None, "the bench machine has a dispensing board"
    original_vend = dispenser.vend
    transport = dispenser.transport
    original_write = transport.write

    def write(data: bytes) -> None:
        now = time.perf_counter()
        if probe.selected_at:
            probe.motor.append(now - probe.selected_at)
            probe.selected_at = 0.0
        if probe.approved_at:
            probe.approval_to_motor.append(now - probe.approved_at)
            probe.approved_at = 0.0
        original_write(data)

    transport.write = write  # type: ignore[method-assign]

    async def vend(motor: int, vend_id: int, timeout: float = 10.0) -> VendResult:
        result = await original_vend(motor, vend_id, timeout)
        probe.dropped_at = time.perf_counter()
        return result

    dispenser.vend = vend  # type: ignore[method-assign]


async def cycles(rig: MachineRig, n: int) -> Probe:
    cfg = load_config(rig.config)
    machine = Machine(cfg, rig.config.parent)
    probe = Probe()
    instrument(machine, probe)
    task = asyncio.create_task(machine.run())
    await machine.ready.wait()
    await asyncio.to_thread(rig.wait_devices_ready)
    await asyncio.to_thread(rig.fill_all)
    for k in range(n):
        if k % 6 == 5:
            await asyncio.to_thread(rig.fill_all)
        if k % 2:
            await asyncio.to_thread(rig.mdb.call, "cashless1", "present_card", funds=1_000_000)
            await asyncio.to_thread(
                rig.wait_for, lambda: rig.status()["display"]["message"] == "Choose a selection"
            )
            await machine.front.handle({"cmd": "select", "code": "B1"})
            await asyncio.to_thread(rig.wait_for, lambda: machine.session.card is None, 15.0)
        else:
            for _ in range(3):
                await asyncio.to_thread(rig.mdb.call, "changer", "insert_coin", coin_type=4)
            await asyncio.to_thread(rig.wait_for, lambda: machine.session.credit.minor == 15000)
            probe.selected_at = time.perf_counter()
            await machine.front.handle({"cmd": "select", "code": "B1"})
            await asyncio.to_thread(
                rig.wait_for, lambda: not machine.session.busy and not machine.session.credit
            )
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return probe


def rss_and_startup(rig: MachineRig, vends: int) -> tuple[float, float]:
    start = time.perf_counter()
    rig.start_machine()
    startup = time.perf_counter() - start
    rig.wait_devices_ready()
    rig.fill_all()
    for k in range(1, vends + 1):
        rig.mdb.call("cashless1", "present_card", funds=1_000_000)
        rig.wait_for(lambda: rig.status()["display"]["message"] == "Choose a selection")
        rig.panel("select", code=("A1", "A2", "B1")[k % 3])  # par 8 / 8 / 6: never sold out
        rig.wait_for(lambda n=k: bool(rig.status()["counters"]["cashless_sales_count"] == n))  # type: ignore[misc]
        rig.wait_for(lambda: rig.mdb.call("cashless1", "status")["state"] == "enabled")
    assert rig.machine_proc is not None
    status = Path(f"/proc/{rig.machine_proc.pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    rig.stop_machine()
    return rss_kb / 1024, startup


def baseline_python_startup() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vends", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vend-bench-") as tmp:
        rig = MachineRig(Path(tmp), vend_time=0.05)
        rig.start_simulators()
        try:
            probe = asyncio.run(cycles(rig, args.vends))
            shutil.rmtree(Path(tmp) / "data")  # a fresh machine for the memory figure
            rss, startup = rss_and_startup(rig, 10)
        finally:
            rig.stop_all()
    rows: list[tuple[str, list[float], str]] = [
        ("selection -> motor command (cash)", probe.motor, "p99 <= 20 ms"),
        ("approval -> motor command (card)", probe.approval_to_motor, "p99 <= 20 ms"),
        ("drop confirmed -> VEND SUCCESS", probe.success, "p99 <= 20 ms"),
    ]
    print(f"vend cycle over ptys, {args.vends} vends, cash and card alternating ({VEND})")
    print(f"{'figure':34} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   target")
    for name, values, target in rows:
        ms = [v * 1000 for v in values]
        if not ms:
            print(f"{name:34} {0:>4}   (no samples)")
            continue
        p50, p99 = statistics.median(ms), pct(ms, 0.99)
        print(f"{name:34} {len(ms):>4} {p50:8.2f} {p99:8.2f} {max(ms):8.2f}   {target}")
    print(f"{'resident memory after 10 vends':34} {rss:8.1f} MB        target <= 80 MB")
    print(f"{'start to ready (bus init excluded)':34} {startup:8.2f} s         target <= 2 s")
    print(f"{'baseline: bare python start':34} {baseline_python_startup():8.2f} s")


if __name__ == "__main__":
    main()
