"""`vend sim mdb` as a separate process, driven through its pty and control socket."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from drivers.link.qibixx import QibixxLink
from drivers.sim.control import ControlClient
from protocols.mdb.wire import Ack, Data

VEND = Path(sys.executable).parent / "vend"
COIN_TYPE_ALL = b"\x0c\xff\xff\xff\xff"


def _read_ready_line(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        raise AssertionError("simulator printed nothing within the time limit")
    return proc.stdout.readline().decode()


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    script = tmp_path / "faults.toml"
    script.write_text('[[step]]\nat = 0.0\nlink = "lose_acks"\ncount = 1\n', encoding="utf-8")
    proc = subprocess.Popen(
        [
            str(VEND),
            "sim",
            "mdb",
            "--json",
            "--link",
            str(tmp_path / "mdb"),
            "--script",
            str(script),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = _read_ready_line(proc)
        assert line, proc.stderr.read().decode() if proc.stderr else ""
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.pty
async def test_simulator_process_serves_the_adapter_and_exits_cleanly(
    simulator: tuple[subprocess.Popen[bytes], dict[str, str]], tmp_path: Path
) -> None:
    proc, ready = simulator
    link_path = tmp_path / "mdb"
    assert os.readlink(link_path) == ready["device"]
    control = ControlClient(ready["control"])

    async with QibixxLink(f"qibixx://{link_path}") as link:
        assert await link.transact(b"\x08") == Ack()  # changer RESET
        just_reset = await link.transact(b"\x0b")
        assert just_reset == Data(b"\x0b")
        # The script lost the adapter's ACK to that answer, so the changer says it again.
        assert await link.transact(b"\x0b") == Data(b"\x0b")
        assert control.call("adapter", "status")["counters"]["acks_lost"] == 1

        assert await link.transact(COIN_TYPE_ALL) == Ack()
        result = control.call("changer", "insert_coin", coin_type=0)
        assert result["accepted"] is True
        reply = await link.transact(b"\x0b")
        assert isinstance(reply, Data)
        assert reply.payload[0] & 0xC0 == 0x40  # "coin deposited", type 0
        assert reply.payload[0] & 0x0F == 0

    assert control.call("changer", "status")["plugged"] is True
    with pytest.raises(RuntimeError, match="no device 'hopper'"):
        control.call("hopper", "status")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert not link_path.exists()
    assert not os.path.exists(ready["control"])


runner = CliRunner()


def test_unknown_currency_exits_2() -> None:
    result = runner.invoke(app, ["sim", "mdb", "--currency", "XYZ"])
    assert result.exit_code == 2
    assert "currency must be a known 3-letter ISO 4217 code" in result.output


def test_bad_script_exits_2_naming_the_step(tmp_path: Path) -> None:
    script = tmp_path / "bad.toml"
    script.write_text('[[step]]\nat = 1\nlink = "slow"\n', encoding="utf-8")
    result = runner.invoke(app, ["sim", "mdb", "--script", str(script)])
    assert result.exit_code == 2
    assert "step 1: 'ms' must be a number" in result.output


def test_script_naming_an_unknown_device_exits_2(tmp_path: Path) -> None:
    script = tmp_path / "bad.json"
    script.write_text('[{"at": 1, "device": "hopper", "action": "jam"}]', encoding="utf-8")
    result = runner.invoke(app, ["sim", "mdb", "--script", str(script)])
    assert result.exit_code == 2
    assert "no device 'hopper'" in result.output


def test_link_over_a_regular_file_is_refused(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me", encoding="utf-8")
    result = runner.invoke(app, ["sim", "mdb", "--link", str(precious)])
    assert result.exit_code == 2
    assert "is not a symlink" in result.output
    assert precious.read_text(encoding="utf-8") == "keep me"
