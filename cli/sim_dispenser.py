"""`vend sim dispenser`: a simulated motor board on a pseudo-terminal, with a control socket."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.sim_device import ControlOption, JsonOption, LinkOption, refuse, serve_device
from drivers.sim.dispenser import SimDispenserBoard

DEVICE = "dispenser"


def run(
    *,
    link: LinkOption = None,
    control: ControlOption = None,
    motors: Annotated[
        int,
        typer.Option("--motors", min=1, max=100, help="Motors on the board (addresses 0..N-1)."),
    ] = 60,
    stock: Annotated[int, typer.Option("--stock", min=0, help="Products per motor.")] = 5,
    vend_time: Annotated[
        float, typer.Option("--vend-time", help="Seconds one spiral turn takes.")
    ] = 1.5,
    as_json: JsonOption = False,
) -> None:
    """Serve a dispensing board (docs/dispenser-protocol.md) on a pseudo-terminal.

    Prints one line when ready (device path and control socket), then runs until
    SIGTERM or Ctrl-C. Open the device with ``serial://<device>?baudrate=19200``.
    Control requests use device "dispenser", e.g. action "fault" with
    {"motor": 12, "fault": "jam"}.
    """
    if not vend_time > 0:
        refuse(DEVICE, f"--vend-time must be > 0 seconds, got {vend_time}")
    board = SimDispenserBoard(motors=motors, stock=stock, vend_time=vend_time)
    serve_device(DEVICE, board, link=link, control=control, as_json=as_json)
