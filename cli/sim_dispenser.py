"""`vend sim dispenser`: a simulated motor board on a pseudo-terminal, with a control socket."""

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

from drivers.sim.control import serve_control
from drivers.sim.dispenser import SimDispenserBoard
from drivers.sim.pty import open_pty, serve_pty

DEVICE = "dispenser"


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
    motors: Annotated[
        int,
        typer.Option("--motors", min=1, max=100, help="Motors on the board (addresses 0..N-1)."),
    ] = 60,
    stock: Annotated[int, typer.Option("--stock", min=0, help="Products per motor.")] = 5,
    vend_time: Annotated[
        float, typer.Option("--vend-time", help="Seconds one spiral turn takes.")
    ] = 1.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ready line as JSON.")] = False,
) -> None:
    """Serve a dispensing board (docs/dispenser-protocol.md) on a pseudo-terminal.

    Prints one line when ready (device path and control socket), then runs until
    SIGTERM or Ctrl-C. Open the device with ``serial://<device>?baudrate=19200``.
    Control requests use device "dispenser", e.g. action "fault" with
    {"motor": 12, "fault": "jam"}.
    """
    problem = _check_link(link)
    if problem is None and not vend_time > 0:
        problem = f"--vend-time must be > 0 seconds, got {vend_time}"
    if problem is not None:
        typer.echo(f"vend sim dispenser: {problem}", err=True)
        raise typer.Exit(code=2)
    board = SimDispenserBoard(motors=motors, stock=stock, vend_time=vend_time)
    try:
        asyncio.run(_serve(board, link, control, as_json))
    except OSError as exc:
        typer.echo(f"vend sim dispenser: {exc}", err=True)
        raise typer.Exit(code=2) from None


def _check_link(link: str | None) -> str | None:
    if link is None:
        return None
    if os.path.lexists(link) and not os.path.islink(link):
        return f"--link {link} exists and is not a symlink; refusing to replace it"
    folder = os.path.dirname(os.path.abspath(link))
    if not os.path.isdir(folder):
        return f"--link {link}: folder {folder} does not exist"
    return None


async def _serve(
    board: SimDispenserBoard, link: str | None, control: str | None, as_json: bool
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    temp_dir: str | None = None
    if control is None:
        if link is not None:
            control = f"{link}.control"
        else:
            temp_dir = tempfile.mkdtemp(prefix="vend-sim-dispenser-")
            control = os.path.join(temp_dir, "control.sock")

    def handle(device: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
        if device not in (DEVICE, ""):
            raise ValueError(f"no device {device!r} (known: {DEVICE})")
        return board.control(action, args, loop.time())

    endpoint = open_pty(link)
    server: asyncio.Server | None = None
    try:
        server = await serve_control(control, handle)
        pty_task = asyncio.create_task(serve_pty(endpoint, board.receive, stop))
        ready = {"device": endpoint.path, "control": control}
        if as_json:
            print(json.dumps(ready))
        else:
            print(f"dispenser simulator on {endpoint.path}; control socket {control}")
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
