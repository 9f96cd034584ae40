"""`vend demo`: machines with simulated hardware, the embedded broker and the fleet
service on one host, with customers, faults, a live dashboard and an end-of-day
summary."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.demo.dashboard import money
from cli.demo.machines import DemoMachineError
from cli.demo.run import DemoError, DemoOptions, run_demo
from cli.demo.summary import DemoSummary
from fleet.broker import EmbeddedBrokerError
from fleet.mqtt import BrokerUrlError
from fleet.store.db import StoreError

EXIT_FAILED = 1  # the demo ran but something it checks did not hold
EXIT_USAGE = 2
EXIT_ERROR = 3  # it could not run (folder, broker, database, a machine would not start)

EPILOG = """Examples:

  vend demo                                   5 machines, 3 minutes, live dashboard

  vend demo --machines 3 --minutes 2 --speed 60 --headless --json

  vend demo --broker mqtt://localhost:1883 --db postgresql+psycopg://vend@/vendfleet
"""


def _say(console: Console, quiet: bool) -> object:
    def say(text: str) -> None:
        if not quiet:
            console.print(f"[dim]·[/dim] {text}")

    return say


def demo(
    *,
    machines: Annotated[int, typer.Option(min=1, max=50, help="How many machines.")] = 5,
    minutes: Annotated[
        float, typer.Option(min=0.5, max=24 * 60, help="Wall-clock length of the shopping day.")
    ] = 3.0,
    speed: Annotated[
        float,
        typer.Option(min=1, max=3600, help="Simulated time per wall time (customer demand)."),
    ] = 60.0,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible customers.")] = None,
    broker: Annotated[
        str | None,
        typer.Option(help="Use this MQTT broker (mqtt://user:pw@host:port) instead of amqtt."),
    ] = None,
    db: Annotated[
        str | None, typer.Option(help="Fleet database URL (default: SQLite in --dir).")
    ] = None,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its data (replaced each run).")
    ] = Path("vendfleet-demo"),
    headless: Annotated[bool, typer.Option(help="No live dashboard.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary at the end.")
    ] = False,
    faults: Annotated[
        bool,
        typer.Option(
            help="Inject a jam, a broker outage, a power cut and a cabinet door held open."
        ),
    ] = True,
    store: Annotated[
        bool,
        typer.Option(
            help="Add a store: a kiosk selling baskets from two towers, and a smart cabinet."
        ),
    ] = True,
) -> None:
    """Run a small simulated fleet end to end: machines sell, go offline and come back,
    the fleet ingests, schedules restocking and reconciles — everything real except
    the coins. Exit code 0 when every check held, 1 when one did not, 3 when it could
    not run."""
    console = Console(stderr=as_json)
    logging.basicConfig(level=logging.ERROR)
    options = DemoOptions(
        machines=machines,
        minutes=minutes,
        speed=speed,
        seed=seed,
        broker=broker,
        db=db,
        folder=folder,
        headless=headless or as_json,
        faults=faults,
        store=store,
    )
    try:
        summary = asyncio.run(run_demo(options, console, _say(console, as_json)))  # type: ignore[arg-type]
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("[yellow]vend demo: stopped before the end; machines shut down[/yellow]")
        raise typer.Exit(code=130) from None
    except (DemoError, DemoMachineError, EmbeddedBrokerError, BrokerUrlError, StoreError) as exc:
        console.print(f"[red]vend demo: {exc}[/red]")
        raise typer.Exit(code=EXIT_ERROR) from None
    if as_json:
        typer.echo(json.dumps(summary.data, ensure_ascii=False, indent=2, default=str))
    else:
        show(console, summary)
    raise typer.Exit(code=0 if summary.ok else EXIT_FAILED)


def show(console: Console, summary: DemoSummary) -> None:
    d = summary.data
    table = Table(title="Sales by payment method", title_justify="left")
    table.add_column("method")
    table.add_column("sales", justify="right")
    table.add_column("value", justify="right")
    for method, row in sorted(d["sales"]["by_method"].items()):
        table.add_row(method, str(row["count"]), money(row["value"]))
    table.add_row("[bold]total[/bold]", str(d["sales"]["count"]), money(d["sales"]["value"]))
    console.print(table)
    ev = d["events"]
    once = "[green]exactly once[/green]" if ev["exactly_once"] else "[red]NOT exactly once[/red]"
    console.print(
        f"events: {ev['published']} published, {ev['ingested']} ingested ({once}); "
        f"{ev['duplicates_dropped']} duplicates dropped, {ev['gaps_opened']} gaps resynced"
    )
    faults = Table(title="Injected faults", title_justify="left")
    for col in ("fault", "machine", "detail", "raised", "cleared"):
        faults.add_column(col)
    for fault in d["faults"]:
        faults.add_row(
            fault["kind"], fault["machine"] or "—", fault["detail"],
            "yes" if fault["raised"] else "[red]no[/red]",
            "yes" if fault["cleared"] else "[red]no[/red]",
        )  # fmt: skip
    console.print(faults)
    if cab := d.get("cabinet"):
        sold, reviews = cab["sales"], cab["reviews"]
        console.print(
            f"smart cabinet {cab['machine']} ({cab['location']}): {sold['count']} sales, "
            f"{sold['items']} items, {money(sold['value'])}; "
            f"{sold['receipts_listing_every_item']} e-receipts listing every item; "
            f"{len(reviews)} session(s) for review: vend fleet reviews --db {d['data']['db']}"
        )
    console.print(f"data: {d['data']['folder']}  (fleet database {d['data']['db']})")
    console.print(f"try:  vend fleet status --db {d['data']['db']}")
