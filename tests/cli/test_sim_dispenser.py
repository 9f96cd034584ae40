"""`vend sim dispenser` as a separate process, driven over its pty and control socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.dispenser import VendOutcome, open_dispenser
from drivers.sim.control import ControlClient

VEND = str(Path(sys.executable).with_name("vend"))


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [VEND, "sim", "dispenser", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    control = str(tmp_path / "board.sock")
    proc = _start("--json", "--vend-time", "0.1", "--stock", "2", "--control", control)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"no ready line; stderr: {proc.stderr.read() if proc.stderr else ''}"
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.mark.pty
async def test_simulator_process_serves_the_driver_and_obeys_control(
    simulator: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    proc, ready = simulator
    assert ready["device"].startswith("/dev/pts/")
    control = ControlClient(ready["control"])
    async with open_dispenser(f"serial://{ready['device']}?baudrate=19200") as dispenser:
        await dispenser.acknowledge_reset()
        assert (await dispenser.vend(12, 1)).outcome is VendOutcome.DISPENSED
        control.call("dispenser", "fault", motor=13, fault="jam")
        jammed = await dispenser.vend(13, 2)
        assert jammed.outcome is VendOutcome.JAM
        assert jammed.out_of_service
        assert (await dispenser.vend(12, 1)).outcome is VendOutcome.DISPENSED  # stored result
    status = control.call("dispenser", "status")
    assert status["turns"] == {"12": 1, "13": 1}
    assert status["stock"]["12"] == 1
    assert status["latched"] == {"13": "jam"}
    with pytest.raises(RuntimeError, match="no action 'explode'"):
        control.call("dispenser", "explode")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert not os.path.exists(ready["control"])


@pytest.mark.pty
def test_plain_ready_line_and_sigint(tmp_path: Path) -> None:
    link = str(tmp_path / "board")
    proc = _start("--link", link, "--motors", "10")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "/dev/pts/" in line
        assert os.path.islink(link)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not os.path.lexists(link)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--motors", "0"], "--motors"),
        (["--motors", "101"], "--motors"),
        (["--stock", "-1"], "--stock"),
        (["--vend-time", "0"], "--vend-time must be > 0"),
        (["--link", "/no/such/folder/board"], "does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args: list[str], problem: str) -> None:
    done = subprocess.run(
        [VEND, "sim", "dispenser", *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert problem in done.stderr
