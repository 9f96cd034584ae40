"""A smart cabinet on one test host: `vend sim mdb` (the card reader), `vend sim cabinet`
(the cabinet controller board) and `vend machine run`, each its own process on its own
pseudo-terminal. The machine is cabinet-only: a card tap opens the cabinet.

The simulated cabinet holds COLA 355 g, WATER 520 g, SANDWICH 180 g and SALAD 260 g on
shelves 0..3, five of each; machine.toml prices them.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from drivers.sim.control import ControlClient
from tests.e2e.basket_rig import RECEIPTS
from tests.e2e.rig import VEND, MachineRig, _start, _stop, _toml_value

PRE_AUTH = 100000
SHELVES = [
    {"shelf": 0, "sku": "COLA", "product": "Coca-Cola 330ml", "unit_weight_g": 355,
     "tolerance_g": 10, "price": 15000},
    {"shelf": 1, "sku": "WATER", "product": "Nước suối", "unit_weight_g": 520,
     "tolerance_g": 10, "price": 8000},
    {"shelf": 2, "sku": "SANDWICH", "product": "Bánh mì kẹp", "unit_weight_g": 180,
     "tolerance_g": 8, "price": 25000},
    {"shelf": 3, "sku": "SALAD", "product": "Salad", "unit_weight_g": 260,
     "tolerance_g": 8, "price": 30000},
]  # fmt: skip
PRICES = {s["sku"]: s["price"] for s in SHELVES}


class CabinetRig(MachineRig):
    """:class:`MachineRig` for a cabinet-only machine with e-receipts on."""

    def __init__(self, folder: Path, *, policy: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(folder, **kwargs)
        self.policy = {
            "held_open_rule": "charge_confident_only",
            "power_loss_rule": "charge_confident_only",
            "held_open_limit_s": 60,
            **(policy or {}),
        }
        self.cabinet = ControlClient(str(folder / "cabinet.control"))
        self.cabinet_proc: Any = None

    def start_simulators(self) -> None:
        self.mdb_proc, _ = _start(
            [VEND, "sim", "mdb", "--json", "--link", str(self.folder / "mdb"),
             "--control", str(self.folder / "mdb.control")],
            self.folder / "sim-mdb.log",
        )  # fmt: skip
        self.cabinet_proc, _ = _start(
            [VEND, "sim", "cabinet", "--json", "--link", str(self.folder / "cabinet"),
             "--control", str(self.folder / "cabinet.control")],
            self.folder / "sim-cabinet.log",
        )  # fmt: skip
        self.write_config()

    def write_config(self) -> None:
        lines = [
            "[machine]", f'id = "{self.machine_id}"', 'currency = "VND"', 'data_dir = "data"', "",
            "[mdb]", f'url = "qibixx://{self.folder / "mdb"}"', "",
            "[receipts]",
        ]  # fmt: skip
        lines += [f"{k} = {_toml_value(v)}" for k, v in RECEIPTS.items()]
        lines += ["", "[cabinet]", f'url = "serial://{self.folder / "cabinet"}?baudrate=19200"']
        lines.append(f"pre_auth = {PRE_AUTH}")
        lines += [f"{k} = {_toml_value(v)}" for k, v in self.policy.items()]
        for shelf in SHELVES:
            lines += ["", "[[cabinet.shelf]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in shelf.items()]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def stop_all(self) -> None:
        self.stop_machine()
        _stop(self.mdb_proc)
        _stop(self.cabinet_proc)

    # --- the customer and the world ----------------------------------------------------

    def act(self, action: str, **args: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.cabinet.call("cabinet", action, **args)
        return result

    def reader(self) -> dict[str, Any]:
        result: dict[str, Any] = self.mdb.call("cashless1", "status")
        return result

    def net_charged(self) -> int:
        """What the card really paid: the reader's own ledger."""
        r = self.reader()
        return int(r["charged"]) - int(r["refunded"]) - int(r["credited"])

    def tap_card(self, funds: int = 500000) -> None:
        self.wait_for(lambda: self.reader()["state"] == "enabled", 20, "reader enabled")
        self.mdb.call("cashless1", "present_card", funds=funds)

    def cabinet_view(self) -> dict[str, Any]:
        view: dict[str, Any] = self.status()["cabinet"]
        return view

    def wait_phase(self, *phases: str, timeout: float = 20.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            view = self.cabinet_view()
            return view if view["phase"] in phases else None

        result: dict[str, Any] = self.wait_for(reached, timeout, f"cabinet {phases}")
        return result

    def wait_settled(self, session_id: int | None = None, timeout: float = 30.0) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            view = self.cabinet_view()
            last = view["last"]
            if view["phase"] != "idle" or last is None:
                return None
            return last if session_id is None or last["session_id"] == session_id else None

        result: dict[str, Any] = self.wait_for(settled, timeout, "cabinet session settled")
        return result

    def outbox(self, kind: str) -> list[dict[str, Any]]:
        """Telemetry bodies of ``kind`` the machine queued (read from its journal)."""
        db = sqlite3.connect(f"file:{self.folder / 'data' / 'journal.sqlite'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT body FROM outbox WHERE kind = ? ORDER BY seq", (kind,))
            return [json.loads(r[0]) for r in rows]
        finally:
            db.close()


@contextlib.contextmanager
def cabinet_rig(folder: Path, **kwargs: Any) -> Iterator[CabinetRig]:
    os.environ.setdefault("NO_COLOR", "1")
    rig = CabinetRig(folder, **kwargs)
    try:
        rig.start_simulators()
        rig.start_machine()
        rig.wait_devices_ready()
        rig.wait_phase("idle")
        yield rig
    finally:
        rig.stop_all()
