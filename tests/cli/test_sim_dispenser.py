"""`vend sim dispenser` as a separate process, driven over its pty and control socket."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.dispenser import VendOutcome, open_dispenser
from drivers.sim.control import ControlClient
from tests.cli.sim_process import refused, serving, start


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    control = str(tmp_path / "board.sock")
    with serving(
        "dispenser", "--vend-time", "0.1", "--stock", "2", "--control", control
    ) as started:
        yield started


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
    proc = start("dispenser", "--link", link, "--motors", "10")
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
    done = refused("dispenser", args)
    assert done.returncode == 2
    assert problem in done.stderr
