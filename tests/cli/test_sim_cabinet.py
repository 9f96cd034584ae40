"""`vend sim cabinet` as a separate process, driven over its pty and control socket."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.cabinet import open_cabinet
from drivers.sim.control import ControlClient
from protocols.cabinet.messages import SessionState
from tests.cli.sim_process import refused, serving


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    link = str(tmp_path / "cabinet")
    with serving(
        "cabinet", "--rfid", "--link", link, "--control", str(tmp_path / "cab.sock")
    ) as started:
        yield started


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
    done = refused("cabinet", args)
    assert done.returncode == 2
    assert problem in done.stderr
