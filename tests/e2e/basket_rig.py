"""An automated store on one test host: one controller, one payment front (`vend sim mdb`)
and two dispensing units, each its own `vend sim dispenser` process on its own pty.

The planogram spreads over both units, and both use motor 11, so a vend that went to
the wrong board would show in the board counters.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from drivers.sim.control import ControlClient
from tests.e2e.rig import BOARD_STOCK, VEND, MachineRig, _start, _stop, _toml_value

UNITS = ("tower-1", "tower-2")
STORE_SELECTIONS = [
    {"code": "A1", "product": "Trà xanh 0 độ", "price": 12000, "motor": 11, "unit": "tower-1"},
    {"code": "A2", "product": "Cà phê sữa", "price": 15000, "motor": 12, "unit": "tower-1"},
    {"code": "B1", "product": "Bánh mì que", "price": 8000, "motor": 11, "unit": "tower-2"},
]
RECEIPTS = {
    "invoice_symbol": "1C26MAB",
    "seller_tax_code": "0312345678",
    "seller_name": "Công ty TNHH Máy Bán Hàng",
    "seller_address": "12 Lê Lợi, Quận 1, TP. Hồ Chí Minh",
    "lookup_secret": "hex:00112233445566778899aabbccddeeff",
}


class StoreRig(MachineRig):
    """:class:`MachineRig` with ``[[dispenser]]`` units and e-receipts on."""

    def __init__(self, folder: Path, **kwargs: Any) -> None:
        super().__init__(folder, **kwargs)
        self.boards = {name: ControlClient(str(folder / f"{name}.control")) for name in UNITS}
        self.board_procs: list[Any] = []

    def start_simulators(self) -> None:
        self.mdb_proc, _ = _start(
            [VEND, "sim", "mdb", "--json", "--link", str(self.folder / "mdb"),
             "--control", str(self.folder / "mdb.control")],
            self.folder / "sim-mdb.log",
        )  # fmt: skip
        for name in UNITS:
            proc, _ = _start(
                [VEND, "sim", "dispenser", "--json", "--link", str(self.folder / name),
                 "--control", str(self.folder / f"{name}.control"),
                 "--stock", str(BOARD_STOCK), "--vend-time", str(self.vend_time)],
                self.folder / f"sim-{name}.log",
            )  # fmt: skip
            self.board_procs.append(proc)
        self.write_config()

    def write_config(self) -> None:
        lines = [
            "[machine]", f'id = "{self.machine_id}"', 'currency = "VND"', 'data_dir = "data"', "",
            "[mdb]", f'url = "qibixx://{self.folder / "mdb"}"', "",
            "[policy]", f"credit_timeout = {self.credit_timeout}", "",
            "[receipts]",
        ]  # fmt: skip
        lines += [f"{k} = {_toml_value(v)}" for k, v in RECEIPTS.items()]
        for name in UNITS:
            url = f"serial://{self.folder / name}?baudrate=19200"
            lines += ["", "[[dispenser]]", f'name = "{name}"', f'url = "{url}"']
        for sel in STORE_SELECTIONS:
            lines += ["", "[[selection]]", "capacity = 10", "par = 8"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in sel.items()]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def stop_all(self) -> None:
        self.stop_machine()
        _stop(self.mdb_proc)
        for proc in self.board_procs:
            _stop(proc)

    def unit_dispensed(self, unit: str) -> dict[int, int]:
        """Products each motor of ``unit`` really turned out (the board's own count)."""
        stock = self.boards[unit].call("dispenser", "status")["stock"]
        return {int(m): BOARD_STOCK - int(n) for m, n in stock.items() if int(n) != BOARD_STOCK}

    def basket(self) -> dict[str, Any]:
        reply = self.panel("basket")
        assert reply["ok"], reply
        basket: dict[str, Any] = reply["basket"]
        return basket

    def wait_basket_done(self, timeout: float = 30.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            b = self.status()["basket"]
            return b if b and b["phase"] == "done" and not self.status()["busy"] else None

        result: dict[str, Any] = self.wait_for(done, timeout, "basket settled")
        return result

    def outbox(self, kind: str) -> list[str]:
        """Telemetry bodies of ``kind`` the machine queued (read from its journal)."""
        db = sqlite3.connect(f"file:{self.folder / 'data' / 'journal.sqlite'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT body FROM outbox WHERE kind = ? ORDER BY seq", (kind,))
            return [str(r[0]) for r in rows]
        finally:
            db.close()


@contextlib.contextmanager
def store_rig(folder: Path, **kwargs: Any) -> Iterator[StoreRig]:
    os.environ.setdefault("NO_COLOR", "1")
    rig = StoreRig(folder, **kwargs)
    try:
        rig.start_simulators()
        rig.start_machine()
        rig.wait_devices_ready()
        yield rig
    finally:
        rig.stop_all()
