"""`vend sim`: simulated hardware on pseudo-terminals, each in its own process."""

from __future__ import annotations

import typer

from cli import sim_cabinet, sim_dispenser, sim_mdb

app = typer.Typer(no_args_is_help=True, help="Simulated MDB peripherals and dispensing boards.")
app.command("mdb")(sim_mdb.run)
app.command("dispenser")(sim_dispenser.run)
app.command("cabinet")(sim_cabinet.run)
