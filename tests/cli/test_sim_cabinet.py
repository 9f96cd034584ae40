"""`vend sim cabinet` as a separate process, driven over its pty and control socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.cabinet import open_cabinet
from drivers.sim.control import ControlClient
from protocols.cabinet.messages import SessionState

VEND = str(Path(sys.executable).with_name("vend"))


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [VEND, "sim", "cabinet", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    link = str(tmp_path / "cabinet")
    proc = _start("--json", "--rfid", "--link", link, "--control", str(tmp_path / "cab.sock"))
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
    simulator: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    proc, ready = simulator
    assert os.path.realpath(tmp_path / "cabinet") == ready["device"]
    control = ControlClient(ready["control"])
    async with open_cabinet(f"serial://{tmp_path / 'cabinet'}?baudrate=19200") as cabinet:
        await cabinet.acknowledge_reset()
        await cabinet.unlock(1)
        control.call("cabinet", "open_door")
        control.call("cabinet", "take", shelf=0, count=2)
        control.call("cabinet", "put_back", shelf=0, count=1, to_shelf=3)
        status = control.call("cabinet", "close_door")
        assert (await cabinet.query(1)).state is SessionState.CLOSED
        changes = await cabinet.session_report(1)
    assert status["locked"] is True
    assert [s["items"] for s in status["shelves"]] == [3, 5, 5, 6]
    assert len(changes[0].removed_tags) == 2
    assert changes[3].added_tags == {next(iter(changes[0].removed_tags & changes[3].added_tags))}
    with pytest.raises(RuntimeError, match="no action 'explode'"):
        control.call("cabinet", "explode")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert not os.path.exists(ready["control"])


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--shelves", "0"], "--shelves"),
        (["--shelves", "33"], "--shelves"),
        (["--count", "-1"], "--count"),
        (["--link", "/no/such/folder/cabinet"], "does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args: list[str], problem: str) -> None:
    done = subprocess.run(
        [VEND, "sim", "cabinet", *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert problem in done.stderr
