"""The store's smart cabinet: a locked fridge sold from by card, next to the kiosk.

Three real processes like every demo machine: `vend sim mdb` (its card reader; the
changer and validator it also serves stay unused), `vend sim cabinet` (the cabinet
board: door, fail-secure lock, four weight shelves) and `vend machine run` in cabinet
mode. A card tap pre-authorises and unlocks; when the door closes the shelves say what
left and the machine charges for exactly that, with one e-receipt listing every item.

The simulated cabinet stocks one product per shelf with fixed unit weights (355, 520,
180 and 260 g); machine.toml names and prices them as demo products, and the fleet's
planogram lists the shelves (by their codes) like selections, so the store's stock,
sales and pick lists include them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.demo.catalog import product_by_name
from cli.demo.machines import START_TIMEOUT, DemoMachine, DemoMachineError, Slot, _toml, vend_argv
from drivers.sim.control import ControlClient

CABINET_ID = "cabinet-0001"
PRE_AUTH = 100_000  # asked of the card before the door unlocks; 3 items never exceed it
HELD_OPEN_LIMIT_S = 10  # a customer takes a few seconds; the fault holds it longer
SHELF_ITEMS = 40  # what the simulated cabinet starts with on every shelf


@dataclass(frozen=True, slots=True)
class Shelf:
    shelf: int
    code: str  # the sale line's selection and the receipt's article code (<= 8 chars)
    product: str  # a catalog product
    unit_weight_g: int  # as the simulator stocks that shelf
    tolerance_g: int


SHELVES = (
    Shelf(0, "C1", "Trà xanh 0 độ", 355, 10),
    Shelf(1, "C2", "Nước suối Lavie", 520, 10),
    Shelf(2, "C3", "Bánh mì que", 180, 8),
    Shelf(3, "C4", "Sữa đậu nành", 260, 8),
)


def cabinet_slots() -> list[Slot]:
    """The shelves as planogram slots (for master data; the machine sells no selections)."""
    return [
        Slot(
            code=s.code,
            product=s.product,
            price=product_by_name(s.product).price,
            capacity=SHELF_ITEMS,
            par=SHELF_ITEMS,
            motor=s.shelf,  # unused: nothing turns in a cabinet
        )
        for s in SHELVES
    ]


class DemoCabinet(DemoMachine):
    """A cabinet-only demo machine: no selections, a card tap opens the door."""

    is_cabinet = True

    def __init__(
        self,
        folder: Path,
        machine_id: str,
        telemetry: dict[str, Any] | None,
        *,
        receipts: dict[str, Any] | None = None,
        held_open_limit_s: int = HELD_OPEN_LIMIT_S,
    ) -> None:
        super().__init__(folder, machine_id, cabinet_slots(), telemetry, receipts=receipts)
        self.held_open_limit_s = held_open_limit_s
        self.door = ControlClient(str(folder / "cabinet.control"))

    def start_hardware(self) -> None:
        self._sims.append(
            self._start(
                vend_argv(
                    "sim", "cabinet", "--json", "--link", str(self.folder / "cabinet"),
                    "--control", str(self.folder / "cabinet.control"),
                    "--shelves", str(len(SHELVES)), "--count", str(SHELF_ITEMS),
                ),
                "sim-cabinet.log",
            )
        )  # fmt: skip

    def selections(self) -> list[Slot]:
        return []

    def hardware_config(self) -> list[str]:
        url = f"serial://{self.folder / 'cabinet'}?baudrate=19200"
        lines = [
            "[cabinet]", f"url = {_toml(url)}", f"pre_auth = {PRE_AUTH}",
            # A door held open: charge what the shelves vouch for, and queue it for review.
            'held_open_rule = "charge_confident_only"',
            f"held_open_limit_s = {self.held_open_limit_s}", "",
        ]  # fmt: skip
        for s, slot in zip(SHELVES, self.slots, strict=True):
            lines += [
                "[[cabinet.shelf]]", f"shelf = {s.shelf}", f"sku = {_toml(s.code)}",
                f"product = {_toml(s.product)}", f"unit_weight_g = {s.unit_weight_g}",
                f"tolerance_g = {s.tolerance_g}", f"price = {slot.price}",
                # Stocked full: the fleet shows levels against the shelf, not the count.
                f"capacity = {SHELF_ITEMS}", f"par = {SHELF_ITEMS}", "",
            ]  # fmt: skip
        return lines

    # --- talking to it ---------------------------------------------------------------

    def act(self, action: str, **args: Any) -> dict[str, Any]:
        """What a customer does at the cabinet (its simulator's control socket)."""
        try:
            return self.door.call("cabinet", action, **args)
        except RuntimeError as exc:  # the simulator refused: door locked, shelf empty...
            raise DemoMachineError(f"{self.machine_id}: {exc}") from None

    def cabinet_view(self) -> dict[str, Any]:
        view: dict[str, Any] = self.status()["cabinet"]
        return view

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """The card reader ready and the cabinet's start-up recovery done."""
        super().wait_ready(timeout)
        self.wait_for(lambda: self.cabinet_view()["phase"] == "idle", timeout, "cabinet idle")

    def reader_idle(self) -> bool:
        return bool(self.mdb.call("cashless1", "status")["state"] == "enabled")

    def wait_phase(self, phases: tuple[str, ...], timeout: float) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            view = self.cabinet_view()
            return view if view["phase"] in phases else None

        return self.wait_for(reached, timeout, f"cabinet {'/'.join(phases)}")

    def wait_settled(self, session_id: int, timeout: float = 30.0) -> dict[str, Any]:
        """The settlement of ``session_id`` as the machine reports it (``last``)."""

        def settled() -> dict[str, Any] | None:
            view = self.cabinet_view()
            last = view["last"]
            if view["phase"] != "idle" or not last or last["session_id"] != session_id:
                return None
            result: dict[str, Any] = last
            return result

        return self.wait_for(settled, timeout, f"cabinet session {session_id} settled")
