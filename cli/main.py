"""``vend``: the one command for machines, simulators, the fleet, operators and auditors."""

from __future__ import annotations

import typer

from cli import audit as audit_cli
from cli import demo as demo_cli
from cli import dex, fleet, machine, mdb, sim
from cli import restock as restock_cli

app = typer.Typer(
    name="vend",
    help="vendfleet: vending machine controller, simulators, fleet service and audit tools.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(fleet.app, name="fleet")
app.add_typer(machine.app, name="machine")
app.add_typer(mdb.app, name="mdb")
app.add_typer(sim.app, name="sim")
app.add_typer(dex.app, name="dex")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(restock_cli.app, name="restock")
app.command(epilog=demo_cli.EPILOG)(demo_cli.demo)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
