"""`vend sim cabinet`: a simulated smart cabinet on a pseudo-terminal, with a control socket."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.sim_device import ControlOption, JsonOption, LinkOption, serve_device
from drivers.sim.cabinet import SimCabinet, stocked_shelves

DEVICE = "cabinet"


def run(
    *,
    link: LinkOption = None,
    control: ControlOption = None,
    shelves: Annotated[int, typer.Option("--shelves", min=1, max=32, help="Shelves.")] = 4,
    count: Annotated[int, typer.Option("--count", min=0, max=255, help="Items per shelf.")] = 5,
    rfid: Annotated[bool, typer.Option("--rfid", help="RFID tags and readers too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Serve a smart cabinet (docs/cabinet-protocol.md) on a pseudo-terminal.

    Prints one line when ready (device path and control socket), then runs until
    SIGTERM or Ctrl-C. Open the device with ``serial://<device>?baudrate=19200``.
    Control requests use device "cabinet", e.g. action "take" with {"shelf": 1}.
    """
    cabinet = SimCabinet(stocked_shelves(shelves, count, rfid=rfid))
    serve_device(DEVICE, cabinet, link=link, control=control, as_json=as_json)
