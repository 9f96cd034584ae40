"""`vend sim mdb`: simulated MDB peripherals behind a Qibixx-compatible adapter on a pty."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from drivers.sim.faults import FaultScriptError, load_script
from drivers.sim.presets import default_devices
from drivers.sim.process import Ready, SimulatorError, check_link_path, run_simulator


def run(
    link: Annotated[
        str | None, typer.Option("--link", help="Also publish the pty under this symlink.")
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(
            "--control", help="Control socket path (default: next to --link, or a temp dir)."
        ),
    ] = None,
    script: Annotated[
        Path | None, typer.Option("--script", help="Fault script (TOML, or JSON by suffix).")
    ] = None,
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 currency code.")] = "VND",
    as_json: Annotated[bool, typer.Option("--json", help="Print the ready line as JSON.")] = False,
) -> None:
    """Serve a changer, a bill validator and cashless reader #1 on a pseudo-terminal.

    Prints one line when ready (the device path and the control socket), then runs
    until SIGTERM or Ctrl-C. Open the device with ``qibixx://<device>``.
    """
    try:
        steps = load_script(script) if script is not None else []
        devices = default_devices(currency)
        check_link_path(link)
    except (FaultScriptError, SimulatorError, ValueError) as exc:
        typer.echo(f"vend sim mdb: {exc}", err=True)
        raise typer.Exit(code=2) from None

    def ready(where: Ready) -> None:
        if as_json:
            print(json.dumps(where.as_json()))
        else:
            print(
                f"MDB simulator (Qibixx adapter) on {where.device}; control socket {where.control}"
            )
        sys.stdout.flush()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_simulator(
            devices, stop=stop, on_ready=ready, link=link, control=control, script=steps
        )

    try:
        asyncio.run(main())
    except (FaultScriptError, SimulatorError) as exc:
        typer.echo(f"vend sim mdb: {exc}", err=True)
        raise typer.Exit(code=2) from None
