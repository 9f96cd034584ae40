"""A whole machine on one test host: simulators and the controller as separate processes.

`vend sim mdb` (changer, bill validator, reader behind a Qibixx-compatible adapter)
and `vend sim dispenser` each serve a real pseudo-terminal; `vend machine run` opens
them like hardware. Tests act as the customer through the front-panel socket and
as the world through the simulators' control sockets.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from drivers.sim.control import ControlClient

VEND = str(Path(sys.executable).with_name("vend"))

SELECTIONS = [
    {
        "code": "A1",
        "product": "Trà xanh 0 độ",
        "price": 12000,
        "capacity": 10,
        "par": 8,
        "motor": 11,
    },
    {"code": "A2", "product": "Cà phê sữa", "price": 15000, "capacity": 10, "par": 8, "motor": 12},
    {"code": "B1", "product": "Bánh mì que", "price": 8000, "capacity": 6, "par": 6, "motor": 21},
]
BOARD_STOCK = 1000


def _toml_value(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _start(argv: list[str], log: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log.open("a"), text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise RuntimeError(f"{argv[1:4]} exited with {proc.returncode}; see {log}")
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen[str] | None, sig: int = signal.SIGTERM) -> int | None:
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class MachineRig:
    def __init__(
        self,
        folder: Path,
        *,
        vend_time: float = 0.2,
        credit_timeout: float = 0,
        machine_id: str = "vm-0001",
        telemetry: dict[str, Any] | None = None,
    ) -> None:
        """``telemetry``: keys of machine.toml's ``[telemetry]`` section (none: no MQTT)."""
        self.folder = folder
        self.vend_time = vend_time
        self.credit_timeout = credit_timeout
        self.machine_id = machine_id
        self.telemetry = telemetry
        self.mdb_proc: subprocess.Popen[str] | None = None
        self.board_proc: subprocess.Popen[str] | None = None
        self.machine_proc: subprocess.Popen[str] | None = None
        self.panel_path = folder / "data" / "panel.sock"
        self.config = folder / "machine.toml"
        self.mdb = ControlClient(str(folder / "mdb.control"))
        self.board = ControlClient(str(folder / "board.control"))

    # --- processes -----------------------------------------------------------------

    def start_simulators(self) -> None:
        self.mdb_proc, _ = _start(
            [VEND, "sim", "mdb", "--json", "--link", str(self.folder / "mdb"),
             "--control", str(self.folder / "mdb.control")],
            self.folder / "sim-mdb.log",
        )  # fmt: skip
        self.board_proc, _ = _start(
            [VEND, "sim", "dispenser", "--json", "--link", str(self.folder / "board"),
             "--control", str(self.folder / "board.control"), "--stock", str(BOARD_STOCK),
             "--vend-time", str(self.vend_time)],
            self.folder / "sim-board.log",
        )  # fmt: skip
        self.write_config()

    def write_config(self) -> None:
        lines = [
            "[machine]", f'id = "{self.machine_id}"', 'currency = "VND"', 'data_dir = "data"', "",
            "[mdb]", f'url = "qibixx://{self.folder / "mdb"}"', "",
            "[dispenser]", f'url = "serial://{self.folder / "board"}?baudrate=19200"', "",
            "[policy]", f"credit_timeout = {self.credit_timeout}", "",
        ]  # fmt: skip
        if self.telemetry is not None:
            lines.append("[telemetry]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in self.telemetry.items()]
            lines.append("")
        for sel in SELECTIONS:
            lines.append("[[selection]]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in sel.items()]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start_machine(self) -> dict[str, Any]:
        self.machine_proc, ready = _start(
            [VEND, "machine", "run", "-c", str(self.config)], self.folder / "machine.log"
        )
        return ready

    def kill_machine(self) -> None:
        _stop(self.machine_proc, signal.SIGKILL)
        self.machine_proc = None

    def stop_machine(self) -> int | None:
        code = _stop(self.machine_proc)
        self.machine_proc = None
        return code

    def wait_machine_exit(self, timeout: float = 30.0) -> int:
        """The exit code of a machine that stops by itself (e.g. a reboot command)."""
        assert self.machine_proc is not None
        code = self.machine_proc.wait(timeout=timeout)
        self.machine_proc = None
        return code

    def stop_all(self) -> None:
        self.stop_machine()
        _stop(self.mdb_proc)
        _stop(self.board_proc)

    # --- talking to it -------------------------------------------------------------

    def panel(self, cmd: str, **args: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(self.panel_path))
            sock.sendall((json.dumps({"cmd": cmd, **args}) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        reply: dict[str, Any] = json.loads(buf)
        return reply

    def status(self) -> dict[str, Any]:
        return self.panel("status")

    def selection(self, code: str) -> dict[str, Any]:
        found: dict[str, Any] = next(s for s in self.status()["selections"] if s["code"] == code)
        return found

    def wait_for(self, what: Callable[[], object], timeout: float = 15.0, message: str = "") -> Any:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ConnectionError, json.JSONDecodeError):
                last = what()
                if last:
                    return last
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {message or what}; last: {last}")

    def wait_idle(self, timeout: float = 15.0) -> dict[str, Any]:
        def idle() -> dict[str, Any] | None:
            st = self.status()
            return st if not st["busy"] else None

        result: dict[str, Any] = self.wait_for(idle, timeout, "machine idle")
        return result

    def wait_devices_ready(self, timeout: float = 20.0) -> None:
        self.wait_for(
            lambda: all(v == "ready" for v in self.status()["devices"].values()),
            timeout,
            "all devices ready",
        )

    def fill_all(self) -> None:
        self.panel("service_open")
        self.panel("fill")
        self.panel("service_close")
        self.wait_accepting()

    def wait_accepting(self, timeout: float = 15.0) -> None:
        """Until the acceptors and the reader were told to take money (after a fill or a
        restart the enables reach the devices a few polls later)."""

        def accepting() -> bool:
            # With cash credit held the readers stay off (one customer, one payment means).
            credit = self.status()["display"]["credit"]
            reader = self.mdb.call("cashless1", "status")["state"]
            return bool(
                self.mdb.call("changer", "status")["enabled"]
                and self.mdb.call("bill", "status")["enabled"]
                and (credit or reader == "enabled")
            )

        self.wait_for(accepting, timeout, "acceptors enabled")

    def board_dispensed(self) -> dict[int, int]:
        stock = self.board.call("dispenser", "status")["stock"]
        return {int(m): BOARD_STOCK - int(n) for m, n in stock.items() if int(n) != BOARD_STOCK}

    def check(self) -> dict[str, Any]:
        out = subprocess.run(
            [VEND, "machine", "check", "-c", str(self.config), "--json"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(out.stdout)
        result["exit_code"] = out.returncode
        return result


@contextlib.contextmanager
def machine_rig(folder: Path, **kwargs: Any) -> Iterator[MachineRig]:
    os.environ.setdefault("NO_COLOR", "1")
    rig = MachineRig(folder, **kwargs)
    try:
        rig.start_simulators()
        rig.start_machine()
        rig.wait_devices_ready()
        yield rig
    finally:
        rig.stop_all()
