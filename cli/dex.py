"""`vend dex`: read DEX/EVA-DTS audit files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from protocols.dex import DexError, parse_dex_bytes, summarize

app = typer.Typer(no_args_is_help=True, help="DEX/EVA-DTS audit files.")


def _read(source: str) -> bytes:
    if source == "-":
        return typer.get_binary_stream("stdin").read()
    return Path(source).read_bytes()


def _render(name: str, summary: dict[str, Any]) -> None:
    console = Console()
    totals = summary["totals"]
    head = Table(title=f"{name}: machine {summary['machine_serial'] or '?'}", show_header=False)
    head.add_row("CRC (G85)", summary["crc"])
    head.add_row("decimal places", str(summary["decimal_places"]))
    for key, value in totals.items():
        head.add_row(key.replace("_", " "), "" if value is None else str(value))
    console.print(head)
    table = Table(title="selections (since initialisation)")
    for column in ("selection", "price", "vends", "sales value"):
        table.add_column(column, justify="right")
    for row in summary["selections"]:
        table.add_row(
            *(
                "" if v is None else str(v)
                for v in (row["selection"], row["price"], row["vends"], row["sales_value"])
            )
        )
    console.print(table)
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


@app.command()
def parse(
    file: Annotated[str, typer.Argument(help="DEX file to read; '-' reads standard input.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Parse a DEX/EVA-DTS audit file and print totals, selections and data-quality warnings."""
    name = "standard input" if file == "-" else file
    try:
        data = _read(file)
    except OSError as exc:
        typer.echo(f"vend dex parse: cannot read {name}: {exc.strerror or exc}", err=True)
        raise typer.Exit(code=1) from None
    try:
        dex = parse_dex_bytes(data)
    except DexError as exc:
        typer.echo(f"vend dex parse: {name}: {exc}", err=True)
        raise typer.Exit(code=1) from None
    summary = summarize(dex)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        _render(name, summary)
