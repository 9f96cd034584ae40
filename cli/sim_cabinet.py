"""`vend sim cabinet`: a simulated smart cabinet on a pseudo-terminal, with a control socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from typing import Annotated, Any

import typer

from drivers.sim.cabinet import SimCabinet, stocked_shelves
from drivers.sim.control import serve_control
from drivers.sim.process import SimulatorError, check_link_path
from drivers.sim.pty import open_pty, serve_pty

DEVICE = "cabinet"


def run(
    *,
    link: Annotated[
        str | None, typer.Option("--link", help="Also publish the pty under this symlink.")
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(
            "--control", help="Control socket path (default: next to --link, or a temp dir)."
        ),
    ] = None,
    shelves: Annotated[int, typer.Option("--shelves", min=1, max=32, help="Shelves.")] = 4,
    count: Annotated[int, typer.Option("--count", min=0, max=255, help="Items per shelf.")] = 5,
    rfid: Annotated[bool, typer.Option("--rfid", help="RFID tags and readers too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ready line as JSON.")] = False,
) -> None:
    """Serve a smart cabinet (docs/cabinet-protocol.md) on a pseudo-terminal.

    Prints one line when ready (device path and control socket), then runs until
    SIGTERM or Ctrl-C. Open the device with ``serial://<device>?baudrate=19200``.
    Control requests use device "cabinet", e.g. action "take" with {"shelf": 1}.
    """
    try:
        check_link_path(link)
    except SimulatorError as exc:
        typer.echo(f"vend sim cabinet: {exc}", err=True)
        raise typer.Exit(code=2) from None
    cabinet = SimCabinet(stocked_shelves(shelves, count, rfid=rfid))
    try:
        asyncio.run(_serve(cabinet, link, control, as_json))
    except OSError as exc:
        typer.echo(f"vend sim cabinet: {exc}", err=True)
        raise typer.Exit(code=2) from None


async def _serve(cabinet: SimCabinet, link: str | None, control: str | None, as_json: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    temp_dir: str | None = None
    if control is None:
        if link is not None:
            control = f"{link}.control"
        else:
            temp_dir = tempfile.mkdtemp(prefix="vend-sim-cabinet-")
            control = os.path.join(temp_dir, "control.sock")

    def handle(device: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
        if device not in (DEVICE, ""):
            raise ValueError(f"no device {device!r} (known: {DEVICE})")
        return cabinet.control(action, args, loop.time())

    endpoint = open_pty(link)
    server: asyncio.Server | None = None
    try:
        server = await serve_control(control, handle)
        pty_task = asyncio.create_task(serve_pty(endpoint, cabinet.receive, stop))
        if as_json:
            print(json.dumps({"device": endpoint.path, "control": control}))
        else:
            print(f"cabinet simulator on {endpoint.path}; control socket {control}")
        sys.stdout.flush()
        await stop.wait()
        await pty_task
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()
        with contextlib.suppress(OSError):
            os.unlink(control)
        endpoint.close()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
