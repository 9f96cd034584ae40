"""`vend mdb`: decode bus traces and probe the peripherals on a link."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from controller.probe import ProbeResult
from controller.probe import probe as run_probe
from drivers.link.base import LinkError, open_link
from protocols.mdb.decode import DecodedBlock, TraceDecoder
from protocols.mdb.errors import TraceError
from protocols.mdb.trace import read_trace
from protocols.money import MoneyError, currency

app = typer.Typer(no_args_is_help=True, help="MDB bus tools: decode traces, probe peripherals.")


@app.command()
def decode(
    file: Annotated[
        Path, typer.Argument(help="Trace file (word format or Qibixx sniffer log); - for stdin.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per block.")] = False,
) -> None:
    """Decode an MDB trace: one line per block with device, message, fields and checksum.

    Malformed lines are reported with their line number and decoding goes on; the
    exit code is 1 if any line could not be read.

    Example: vend mdb decode capture.txt --json | jq .message
    """
    text = _read_text(file)
    decoder = TraceDecoder()
    rows: list[DecodedBlock] = []
    bad = 0
    for item in read_trace(text):
        row = decoder.error(item) if isinstance(item, TraceError) else decoder.decode(item)
        bad += row.error is not None and row.direction == "?"
        rows.append(row)
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row.as_json(), ensure_ascii=False) + "\n")
    else:
        _print_table(rows)
    if bad:
        Console(stderr=True).print(f"[red]{bad} line(s) could not be read[/red]")
        raise typer.Exit(code=1)


def _read_text(file: Path) -> str:
    if str(file) == "-":
        return sys.stdin.read()
    try:
        return file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        Console(stderr=True).print(f"[red]cannot read {file}: {exc.strerror or exc}[/red]")
        raise typer.Exit(code=1) from None


def _print_table(rows: list[DecodedBlock]) -> None:
    table = Table(show_lines=False)
    for column in ("line", "dir", "device", "message", "fields", "chk"):
        table.add_column(column)
    for row in rows:
        if row.error and row.direction == "?":
            table.add_row(str(row.line), "", "", "[red]unreadable[/red]", row.error, "")
            continue
        fields = row.error or ", ".join(f"{k}={v}" for k, v in row.fields.items())
        table.add_row(
            str(row.line), row.direction, row.device, row.message or "?", fields, row.checksum
        )
    Console().print(table)


@app.command()
def probe(
    url: Annotated[
        str, typer.Argument(help="MDB link URL, e.g. qibixx:///dev/ttyACM0 or memory://")
    ],
    currency: Annotated[str, typer.Option(help="The machine's currency (ISO code).")] = "VND",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for devices.")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Initialise every peripheral found on a link and print what each reported.

    Shows feature level, currency, scaling, coin / bill types and identification.
    Exit code 1 when the link cannot be opened, 3 when no device answered.

    Example: vend mdb probe qibixx:///dev/ttyACM0
    """
    results = asyncio.run(_probe(url, currency, timeout))
    if as_json:
        sys.stdout.write(json.dumps([r.as_json() for r in results], ensure_ascii=False) + "\n")
    else:
        console = Console()
        for r in results:
            state = (
                "[green]ready[/green]"
                if r.ready
                else "[yellow]found[/yellow]"
                if r.found
                else "absent"
            )
            console.rule(f"0x{r.address:02X} {r.device}: {state}")
            for fault in r.faults:
                console.print(f"  [red]fault[/red] {fault}")
            for key, value in r.info.items():
                console.print(f"  {key}: {value}")
    if not any(r.found for r in results):
        Console(stderr=True).print("[red]no MDB device answered[/red]")
        raise typer.Exit(code=3)


async def _probe(url: str, currency_code: str, timeout: float) -> list[ProbeResult]:
    try:
        cur = currency(currency_code)
        link = open_link(url)
        await link.open()
    except (LinkError, MoneyError, OSError) as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    try:
        return await run_probe(link, cur, timeout)
    finally:
        await link.close()
