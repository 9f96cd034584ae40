"""What `vend sim dispenser` and `vend sim cabinet` share: options, serving, the ready line."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, NoReturn

import typer

from drivers.sim.process import (
    ControlledDevice,
    Ready,
    SimulatorError,
    run_device_simulator,
    stop_on_signals,
)

LinkOption = Annotated[
    str | None, typer.Option("--link", help="Also publish the pty under this symlink.")
]
ControlOption = Annotated[
    str | None,
    typer.Option("--control", help="Control socket path (default: next to --link, or a temp dir)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the ready line as JSON.")]


def refuse(name: str, problem: object) -> NoReturn:
    """Say what is wrong with the command line and exit with status 2."""
    typer.echo(f"vend sim {name}: {problem}", err=True)
    raise typer.Exit(code=2)


def serve_device(
    name: str, device: ControlledDevice, *, link: str | None, control: str | None, as_json: bool
) -> None:
    """Serve ``device`` on a pty until SIGTERM or Ctrl-C, after one ready line."""

    def ready(where: Ready) -> None:
        if as_json:
            print(json.dumps({"device": where.device, "control": where.control}))
        else:
            print(f"{name} simulator on {where.device}; control socket {where.control}")
        sys.stdout.flush()

    async def main() -> None:
        await run_device_simulator(
            name, device, stop=stop_on_signals(), on_ready=ready, link=link, control=control
        )

    try:
        asyncio.run(main())
    except (SimulatorError, OSError) as exc:
        refuse(name, exc)
