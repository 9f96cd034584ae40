"""`vend mdb decode` and `vend mdb probe` through the real CLI app."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from drivers.link.memory import register_memory_bus, unregister_memory_bus
from drivers.sim.base import SimBus
from protocols.mdb.cashless import commands as c
from protocols.mdb.changer import Poll as ChangerPoll
from protocols.mdb.wire import encode_answer, encode_command

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mdb"
VEND = Path(sys.executable).parent / "vend"
runner = CliRunner()


def vp(block: bytes) -> str:
    return "V>P " + " ".join(f"{w:03X}" for w in encode_command(block))


def pv(data: bytes) -> str:
    return "P>V " + " ".join(f"{w:03X}" for w in encode_answer(data))


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


# --- decode --------------------------------------------------------------------------------


def test_decode_a_word_trace_as_json() -> None:
    result = runner.invoke(app, ["mdb", "decode", str(FIXTURES / "reader_5_1.words"), "--json"])
    assert result.exit_code == 0, result.output
    rows = json_lines(result.output)
    assert [r["message"] for r in rows][:3] == ["Reset", "ACK", "SetupConfig"]
    vend = rows[5]
    assert vend["direction"] == "V>P"
    assert vend["device"] == "cashless1"
    assert vend["message"] == "VendRequest"
    assert vend["fields"]["price"] == 100
    assert vend["checksum"] == "ok"
    assert vend["raw"] == "130000640001"


def test_decode_a_sniffer_log_with_timestamps() -> None:
    result = runner.invoke(app, ["mdb", "decode", str(FIXTURES / "session.sniff"), "--json"])
    assert result.exit_code == 0, result.output
    rows = json_lines(result.output)
    assert not [r for r in rows if "error" in r]
    setup = next(r for r in rows if r["message"] == "ChangerSetup")
    assert setup["direction"] == "P>V"
    assert setup["device"] == "changer"
    assert setup["fields"]["level"] == 3
    assert setup["checksum"] == "absent"  # the sniffer strips checksums
    assert isinstance(setup["timestamp"], float)


def test_bad_checksum_and_malformed_lines(tmp_path: Path) -> None:
    good = vp(c.VendRequest(100, 1, wide=False).to_block(0x10))
    bad = good[:-3] + f"{(int(good[-3:], 16) ^ 0x10):03X}"
    trace = tmp_path / "mixed.txt"
    trace.write_text(
        "\n".join([bad, "this is not MDB", vp(ChangerPoll().to_block(0x08)), pv(b"\x0b")]) + "\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["mdb", "decode", str(trace), "--json"])
    assert result.exit_code == 1
    rows = json_lines(result.output)
    assert rows[0]["checksum"] == "bad"
    assert rows[0]["message"] is None
    assert "checksum" in rows[0]["error"]
    assert rows[1]["line"] == 2
    assert rows[1]["direction"] == "?"
    assert "line 2" in rows[1]["error"]
    # Decoding went on after the bad line.
    assert [(r["line"], r["message"]) for r in rows[2:]] == [(3, "Poll"), (4, "PollAnswer")]
    assert "1 line(s) could not be read" in result.output


def test_a_bad_checksum_alone_is_not_an_unreadable_line(tmp_path: Path) -> None:
    trace = tmp_path / "bad.txt"
    good = vp(c.Poll().to_block(0x10))
    trace.write_text(good[:-3] + f"{(int(good[-3:], 16) ^ 0x01):03X}\n", encoding="utf-8")
    result = runner.invoke(app, ["mdb", "decode", str(trace)])
    assert result.exit_code == 0
    assert "checksum mismatch" in result.output


def test_decode_reads_stdin() -> None:
    text = "\n".join([vp(c.Reset().to_block(0x10)), "P>V 100"]) + "\n"
    result = runner.invoke(app, ["mdb", "decode", "-", "--json"], input=text)
    assert result.exit_code == 0, result.output
    assert [(r["device"], r["message"]) for r in json_lines(result.output)] == [
        ("cashless1", "Reset"),
        ("cashless1", "ACK"),
    ]


def test_decode_table_output_names_the_messages() -> None:
    result = runner.invoke(app, ["mdb", "decode", str(FIXTURES / "reader_5_1.words")])
    assert result.exit_code == 0
    assert "VendRequest" in result.output
    assert "SessionComplete" in result.output


def test_decode_a_missing_file_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["mdb", "decode", str(tmp_path / "nope.txt")])
    assert result.exit_code == 1
    assert "cannot read" in result.output


# --- probe ---------------------------------------------------------------------------------


def test_probe_memory_finds_the_three_default_devices() -> None:
    unregister_memory_bus("")  # a fresh default bus, not one another test left behind
    try:
        result = runner.invoke(app, ["mdb", "probe", "memory://", "--json"])
    finally:
        unregister_memory_bus("")
    assert result.exit_code == 0, result.output
    found = {r["device"]: r for r in json.loads(result.output)}
    assert sorted(found) == ["bill", "cashless1", "cashless2", "changer"]
    for name in ("changer", "bill", "cashless1"):
        assert found[name]["ready"], found[name]
        assert found[name]["faults"] == []
    changer = found["changer"]["info"]["setup"]
    assert (changer["level"], changer["currency_code"], changer["scale_factor"]) == (3, 0x1704, 100)
    bill = found["bill"]["info"]["setup"]
    assert (bill["level"], bill["scale_factor"], bill["decimal_places"]) == (2, 1000, 0)
    reader = found["cashless1"]["info"]["config"]
    assert (reader["level"], reader["currency_code"]) == (3, 0x1704)
    assert found["cashless1"]["info"]["expanded_currency"] is True
    assert found["cashless2"] == {
        "address": "0x60",
        "device": "cashless2",
        "found": False,
        "ready": False,
        "info": {},
        "faults": [],
    }


def test_probe_a_silent_bus_exits_3() -> None:
    register_memory_bus("empty", SimBus())
    try:
        result = runner.invoke(app, ["mdb", "probe", "memory://empty", "--timeout", "1"])
    finally:
        unregister_memory_bus("empty")
    assert result.exit_code == 3
    assert "no MDB device answered" in result.output


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("bogus://x", "unknown MDB link 'bogus://x'"),
        ("qibixx://ttyACM0", "expected qibixx:///dev/ttyACM0"),
        ("qibixx:///dev/no-such-adapter", "cannot open Qibixx adapter port /dev/no-such-adapter"),
    ],
)
def test_probe_a_bad_link_exits_1(url: str, problem: str) -> None:
    result = runner.invoke(app, ["mdb", "probe", url])
    assert result.exit_code == 1
    assert problem in " ".join(result.output.split())


def test_probe_an_unknown_currency_exits_1() -> None:
    result = runner.invoke(app, ["mdb", "probe", "memory://", "--currency", "XYZ"])
    assert result.exit_code == 1
    assert "XYZ" in result.output


@pytest.fixture
def simulator() -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(
        [str(VEND), "sim", "mdb", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20.0)
        line = proc.stdout.readline().decode() if ready else ""
        assert line, proc.stderr.read().decode() if proc.stderr else "no ready line"
        yield json.loads(line)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


@pytest.mark.pty
def test_probe_the_simulator_over_a_pty(simulator: dict[str, str]) -> None:
    assert os.path.exists(simulator["device"])
    result = runner.invoke(app, ["mdb", "probe", f"qibixx://{simulator['device']}", "--json"])
    assert result.exit_code == 0, result.output
    found = {r["device"]: r for r in json.loads(result.output)}
    assert [n for n, r in found.items() if r["ready"]] == ["changer", "bill", "cashless1"]
    assert found["changer"]["info"]["setup"]["coin_credits"][:5] == [2, 5, 10, 20, 50]
    assert not found["cashless2"]["found"]
