"""One demo machine: its simulated hardware and its controller, each a real process.

`vend sim mdb` (changer, bill validator, card reader behind a Qibixx-compatible
adapter) and `vend sim dispenser` serve pseudo-terminals; `vend machine run` opens them
as it would open hardware and reports over MQTT. The demo talks to the machine the way
a customer does (front-panel socket) and to the world through the simulators' control
sockets (coins, bills, cards, faults).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from drivers.sim.control import ControlClient
from drivers.unix_path import reachable

_T = TypeVar("_T")

BOARD_STOCK = 10_000  # the simulated spirals never run dry; the controller counts stock
START_TIMEOUT = 30.0


class DemoMachineError(RuntimeError):
    """A demo machine process did not start or stopped answering."""


@dataclass(frozen=True, slots=True)
class Slot:
    code: str
    product: str
    price: int  # minor units
    capacity: int
    par: int
    motor: int
    unit: str = ""  # the dispensing unit (several only in a store's kiosk)


def vend_argv(*args: str) -> list[str]:
    """`vend ...` with this interpreter, so the demo works without the console script."""
    return [sys.executable, "-m", "cli.main", *args]


def _toml(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


class DemoMachine:
    def __init__(
        self,
        folder: Path,
        machine_id: str,
        slots: list[Slot],
        telemetry: dict[str, Any] | None,
        *,
        receipts: dict[str, Any] | None = None,
        units: tuple[str, ...] = (),
        vend_time: float = 0.3,
    ) -> None:
        """``telemetry`` / ``receipts``: keys of machine.toml's sections (None: left out)."""
        self.folder = folder
        self.machine_id = machine_id
        self.slots = slots
        self.telemetry = telemetry
        self.vend_time = vend_time
        self.receipts = receipts
        self.config = folder / "machine.toml"
        self.journal = folder / "data" / "journal.sqlite"
        self.panel_path = folder / "data" / "panel.sock"
        self.mdb = ControlClient(str(folder / "mdb.control"))
        # One motor board per dispensing unit; a plain machine has one, unnamed.
        self.units = units
        self.boards = {
            unit: ControlClient(str(folder / f"{self._board(unit)}.control"))
            for unit in (units or ("",))
        }
        self.board = next(iter(self.boards.values()))
        self.command_key = secrets.token_bytes(32)
        self._sims: list[subprocess.Popen[str]] = []
        self.controller: subprocess.Popen[str] | None = None
        self.boots = 0

    is_cabinet = False  # a smart cabinet (cli.demo.cabinet.DemoCabinet)

    @property
    def is_kiosk(self) -> bool:
        """A store's kiosk: several units behind one payment front, customers buy baskets."""
        return len(self.units) > 1

    @property
    def in_store(self) -> bool:
        """Part of the demo's store (its kiosk and its smart cabinet), not a street machine."""
        return self.is_kiosk or self.is_cabinet

    @staticmethod
    def _board(unit: str) -> str:
        return f"board-{unit}" if unit else "board"

    # --- processes -------------------------------------------------------------------

    def _start(self, argv: list[str], log_name: str) -> subprocess.Popen[str]:
        log = (self.folder / log_name).open("a", encoding="utf-8")
        proc = subprocess.Popen(  # noqa: S603  (our interpreter, our arguments)
            argv,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops these in order
        )
        log.close()
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=10)
            msg = f"{self.machine_id}: {' '.join(argv[3:5])} exited with {proc.returncode}"
            raise DemoMachineError(f"{msg}; see {self.folder / log_name}")
        return proc

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sims.append(
            self._start(
                vend_argv(
                    "sim", "mdb", "--json", "--link", str(self.folder / "mdb"),
                    "--control", str(self.folder / "mdb.control"),
                ),
                "sim-mdb.log",
            )
        )  # fmt: skip
        self.start_hardware()
        self.write_config()
        self.start_controller()

    def start_hardware(self) -> None:
        """The simulated hardware behind the payment devices: one motor board per unit."""
        for unit in self.boards:
            board = self._board(unit)
            self._sims.append(
                self._start(
                    vend_argv(
                        "sim", "dispenser", "--json", "--link", str(self.folder / board),
                        "--control", str(self.folder / f"{board}.control"),
                        "--stock", str(BOARD_STOCK), "--vend-time", str(self.vend_time),
                    ),
                    f"sim-{board}.log",
                )
            )  # fmt: skip

    def write_config(self) -> None:
        lines = [
            "[machine]", f"id = {_toml(self.machine_id)}", 'currency = "VND"',
            'data_dir = "data"', "",
            "[mdb]", f"url = {_toml('qibixx://' + str(self.folder / 'mdb'))}", "",
            *self.hardware_config(),
            "[policy]", "credit_timeout = 0", "",
        ]  # fmt: skip
        if self.telemetry is not None:
            lines.append("[telemetry]")
            settings = {**self.telemetry, "command_key": "hex:" + self.command_key.hex()}
            lines += [f"{k} = {_toml(v)}" for k, v in settings.items()]
            lines.append("")
        if self.receipts is not None:
            lines.append("[receipts]")
            lines += [f"{k} = {_toml(v)}" for k, v in self.receipts.items()]
            lines.append("")
        for slot in self.selections():
            lines += [
                "[[selection]]", f"code = {_toml(slot.code)}", f"product = {_toml(slot.product)}",
                f"price = {slot.price}", f"capacity = {slot.capacity}", f"par = {slot.par}",
                f"motor = {slot.motor}", *([f"unit = {_toml(slot.unit)}"] if slot.unit else []),
                "",
            ]  # fmt: skip
        self.config.write_text("\n".join(lines), encoding="utf-8")

    def selections(self) -> list[Slot]:
        """The slots machine.toml sells as selections (a cabinet has shelves instead)."""
        return self.slots

    def hardware_config(self) -> list[str]:
        """machine.toml's sections for what the machine dispenses from."""

        def url(unit: str) -> str:
            return _toml(f"serial://{self.folder / self._board(unit)}?baudrate=19200")

        if not self.units:
            return ["[dispenser]", f"url = {url('')}", ""]
        lines: list[str] = []
        for unit in self.units:
            lines += ["[[dispenser]]", f"name = {_toml(unit)}", f"url = {url(unit)}", ""]
        return lines

    def start_controller(self) -> None:
        self.controller = self._start(
            vend_argv("machine", "run", "-c", str(self.config)), "machine.log"
        )
        self.boots += 1

    def power_cut(self) -> None:
        """SIGKILL the controller: no goodbye, the broker publishes its last will."""
        if self.controller is not None and self.controller.poll() is None:
            self.controller.send_signal(signal.SIGKILL)
            self.controller.wait()
        self.controller = None

    @property
    def running(self) -> bool:
        return self.controller is not None and self.controller.poll() is None

    def stop(self) -> None:
        procs = [self.controller, *reversed(self._sims)]
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            if proc is None:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.controller = None
        self._sims.clear()

    # --- talking to it ---------------------------------------------------------------

    def panel(self, cmd: str, **args: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            with reachable(self.panel_path) as where:
                sock.connect(where)
            sock.sendall((json.dumps({"cmd": cmd, **args}) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        if not buf:
            raise ConnectionError(f"{self.machine_id}: the panel closed without answering")
        reply: dict[str, Any] = json.loads(buf)
        return reply

    def status(self) -> dict[str, Any]:
        return self.panel("status")

    def wait_for(self, what: Callable[[], _T | None], timeout: float, message: str) -> _T:
        """Poll ``what`` until it returns something truthy; tolerate a restarting panel."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, ConnectionError, json.JSONDecodeError):
                got = what()
                if got:
                    return got
            if time.monotonic() > deadline:
                raise DemoMachineError(f"{self.machine_id}: gave up waiting for {message}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        self.wait_for(
            lambda: all(v == "ready" for v in self.status()["devices"].values()),
            timeout,
            "all devices ready",
        )

    def wait_idle(self, timeout: float = 20.0) -> dict[str, Any]:
        def idle() -> dict[str, Any] | None:
            st = self.status()
            return None if st["busy"] else st

        return self.wait_for(idle, timeout, "the machine to be idle")

    def accepting(self) -> bool:
        """Coins, bills and the card reader all enabled (after a sale, a fill or a restart
        the enables reach the devices a few polls later)."""
        credit = self.status()["display"]["credit"]
        reader = self.mdb.call("cashless1", "status")["state"]
        return bool(
            self.mdb.call("changer", "status")["enabled"]
            and self.mdb.call("bill", "status")["enabled"]
            and (credit or reader == "enabled")
        )

    def wait_accepting(self, timeout: float = 20.0) -> None:
        self.wait_for(self.accepting, timeout, "the acceptors to be enabled")

    def fill(self) -> None:
        """A service visit: door open, every selection to par, door closed."""
        self.panel("service_open")
        try:
            self.panel("fill")
        finally:
            self.panel("service_close")
