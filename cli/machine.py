"""`vend machine`: run the controller, talk to its front panel, check its books."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from controller.audit import read_dex
from controller.config import ConfigError, MachineConfig, load_config
from controller.journal import Journal, JournalError
from controller.machine import Machine
from controller.panel import PanelClient
from protocols.vend.session import VendSession

app = typer.Typer(no_args_is_help=True, help="Run and inspect one vending machine's controller.")
err = Console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The machine's machine.toml.")]


def _config(path: Path) -> MachineConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(code=2) from None


@app.command()
def run(
    config: ConfigOption,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the controller until SIGTERM / Ctrl-C.

    Prints one JSON line on stdout when it is ready to sell:
    {"ready": true, "machine_id": ..., "panel": <socket path>}.

    Example: vend machine run --config /etc/vendfleet/machine.toml
    """
    cfg = _config(config)
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code = asyncio.run(_run(cfg, config.parent))
    except JournalError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    raise typer.Exit(code=code)


async def _run(cfg: MachineConfig, base: Path) -> int:
    machine = Machine(cfg, base)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)

    def ready() -> None:
        line = {"ready": True, "machine_id": cfg.machine.id, "panel": str(machine.panel.path)}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    with contextlib.suppress(asyncio.CancelledError):
        await machine.run(on_ready=ready)
    return 0


@app.command()
def panel(
    command: Annotated[
        str, typer.Argument(help="select, cancel, status, fill, test_vend, service_open, ...")
    ],
    args: Annotated[
        list[str] | None, typer.Argument(help="key=value arguments, e.g. code=A1")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="machine.toml")] = None,
    socket: Annotated[
        Path | None, typer.Option(help="The panel socket (instead of --config).")
    ] = None,
) -> None:
    """Send one front-panel command and print the machine's JSON answer.

    Exit code 1 if the machine refused the command, 3 if it is not running.

    Examples: vend machine panel -c machine.toml select code=A1
              vend machine panel -c machine.toml fill
    """
    path = _panel_path(config, socket)
    request: dict[str, Any] = {}
    for item in args or []:
        key, sep, value = item.partition("=")
        if not sep:
            err.print(f"[red]argument {item!r} is not key=value[/red]")
            raise typer.Exit(code=2)
        request[key] = int(value) if value.lstrip("-").isdigit() else value
    try:
        reply = asyncio.run(_call(path, command, request))
    except (OSError, ConnectionError) as exc:
        err.print(f"[red]machine not reachable at {path}: {exc}[/red]")
        raise typer.Exit(code=3) from None
    sys.stdout.write(json.dumps(reply, ensure_ascii=False) + "\n")
    if not reply.get("ok"):
        raise typer.Exit(code=1)


def _panel_path(config: Path | None, socket: Path | None) -> Path:
    if socket is not None:
        return socket
    if config is None:
        err.print("[red]give --config or --socket[/red]")
        raise typer.Exit(code=2)
    cfg = _config(config)
    p = cfg.panel.socket
    return p if p.is_absolute() else cfg.data_path(config.parent) / p


async def _call(path: Path, command: str, request: dict[str, Any]) -> dict[str, Any]:
    client = PanelClient(path)
    try:
        return await client.call(command, **request)
    finally:
        await client.close()


def replay_journal(cfg: MachineConfig, base: Path) -> VendSession:
    journal = Journal(cfg.data_path(base) / "journal.sqlite")
    journal.open(readonly=True)
    try:
        session = VendSession(cfg.machine.currency)
        for entry in journal.entries():
            session.apply(entry.event)
        return session
    finally:
        journal.close()


@app.command()
def check(
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Replay the journal and check the books: money in = sales + change + refunds +
    credit + IOUs, and stock = last fill - sales - removals, per selection.

    Exit code 0 when everything adds up, 1 when it does not.
    """
    cfg = _config(config)
    try:
        session = replay_journal(cfg, config.parent)
    except JournalError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    problems = session.invariant_violations()
    report = {
        "machine_id": cfg.machine.id,
        "ok": not problems,
        "problems": problems,
        "credit": session.credit.minor,
        "vend_in_flight": session.vend is not None,
        "payout_in_flight": session.payout is not None,
        "counters": session.counters.model_dump(),
        "stock": {code: s.stock for code, s in session.selections.items()},
    }
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        console = Console()
        console.print(
            f"[bold]{cfg.machine.id}[/bold]: "
            + (
                "[green]books balance[/green]"
                if not problems
                else "[red]books do not balance[/red]"
            )
        )
        for p in problems:
            console.print(f"  [red]{p}[/red]")
        for key, value in report["counters"].items():  # type: ignore[attr-defined]
            console.print(f"  {key}: {value}")
    if problems:
        raise typer.Exit(code=1)


@app.command()
def dex(
    config: ConfigOption,
    reset: Annotated[
        bool, typer.Option("--reset", help="Read with reset: restart the interim counters.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to a file instead of stdout.")
    ] = None,
) -> None:
    """Produce the machine's DEX / EVA-DTS audit file from its journal.

    Cumulative counters since initialisation and interim counters since the last read
    with reset; envelope, G85 CRC-16 and SE segment count included.

    Example: vend machine dex -c machine.toml --reset -o audit.dex
    """
    cfg = _config(config)
    try:
        session = replay_journal(cfg, config.parent)
        journal = Journal(cfg.data_path(config.parent) / "journal.sqlite")
        journal.open(readonly=not reset, count_boot=False)
        try:
            text = read_dex(cfg, session, journal, read_at=_local_now(cfg), reset=reset)
        finally:
            journal.close()
    except JournalError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="latin-1")


def _local_now(cfg: MachineConfig) -> datetime:
    # DEX times are the machine's local wall time, without a zone.
    return datetime.now(ZoneInfo(cfg.machine.timezone)).replace(tzinfo=None)
