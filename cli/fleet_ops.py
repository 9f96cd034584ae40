"""`vend fleet status | machines | machine show | alarms | sales | events`: what operators
read day to day (the commands that change machines are in cli.fleet_send). Thin: queries
live in fleet.queries; this module parses options and renders Rich tables or JSON.

Exit codes: see cli.fleet_common and docs/operator.md.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from datetime import time as clock_time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from sqlalchemy import Engine

from cli import fleet_send
from cli.fleet_common import (
    EXIT_USAGE,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    MachineArg,
    complete_machines,
    err,
    errors,
    fail,
    jsonable,
    local,
    money,
    open_engine,
    out,
    print_json,
    progress,
    reading,
    settings_from,
    when,
)
from fleet import locations, operator, queries

app = typer.Typer()  # nameless: its commands join `vend fleet`
machine_app = typer.Typer(no_args_is_help=True, help="One machine: everything known, its key.")
app.add_typer(machine_app, name="machine")
app.add_typer(fleet_send.app)


def _state(online: bool | None) -> str:
    return {True: "online", False: "offline", None: "unknown"}[online]


# --- read commands ------------------------------------------------------------------------


@app.command(
    epilog="Examples:\n\n  vend fleet status\n\n  vend fleet status --json | jq .open_alarms"
)
def status(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The whole fleet at a glance: machines online, sales today, alarms, backlogs, gaps."""
    settings = settings_from(config, db=db)
    zone = settings.zone
    start = datetime.combine(datetime.now(zone).date(), clock_time(), zone)
    with reading(settings) as conn:
        summary = queries.fleet_status(conn, sales_since=start)
    if as_json:
        print_json(summary)
        return
    table = Table(title="Fleet status", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("machines", str(summary.machines))
    table.add_row(
        "online / offline / unknown", f"{summary.online} / {summary.offline} / {summary.unknown}"
    )
    sold = ", ".join(f"{money(t.total, t.currency)} ({t.count})" for t in summary.sales)
    table.add_row(f"sales since {local(start, zone)}", sold or "none")
    table.add_row("open alarms (critical)", f"{summary.open_alarms} ({summary.critical_alarms})")
    table.add_row(
        "outbox backlog", f"{summary.outbox_backlog} on {summary.machines_with_backlog} machine(s)"
    )
    table.add_row("open gaps (missing events)", f"{summary.open_gaps} ({summary.missing_events})")
    table.add_row("quarantined messages", str(summary.quarantined))
    out.print(table)


@app.command(epilog="Examples:\n\n  vend fleet machines\n\n  vend fleet machines --offline --json")
def machines(
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    offline: Annotated[bool, typer.Option("--offline", help="Only machines not online.")] = False,
) -> None:
    """Every machine: location, connection, firmware, backlog, alarms, gaps, stock."""
    settings = settings_from(config, db=db)
    with reading(settings) as conn:
        found = queries.list_machines(conn)
        placed = locations.machine_locations(conn)
    if offline:
        found = [m for m in found if m.online is not True]

    def where(machine_id: str) -> str | None:
        ref = placed.get(machine_id)
        return ref.location_id if ref is not None else None

    if as_json:
        print_json([jsonable(m) | {"location_id": where(m.id)} for m in found])
        return
    table = Table(title=f"Machines ({len(found)})")
    for name in (
        "machine",
        "location",
        "state",
        "last seen",
        "firmware",
        "config",
        "backlog",
        "alarms",
        "gaps",
        "stock empty/low/all",
    ):
        table.add_column(name)
    for m in found:
        table.add_row(
            m.id,
            where(m.id) or "-",
            _state(m.online),
            local(m.last_seen, settings.zone),
            m.firmware or "-",
            m.config_version or "-",
            "-" if m.outbox_backlog is None else str(m.outbox_backlog),
            str(m.open_alarms),
            str(m.open_gaps),
            f"{m.empty}/{m.below_par}/{m.selections}",
        )
    out.print(table)


@machine_app.command(
    "show",
    epilog="Examples:\n\n  vend fleet machine show vm-0001\n\n"
    "  vend fleet machine show vm-0001 --events 50 --json",
)
def machine_show(
    machine: MachineArg,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    events: Annotated[int, typer.Option("--events", min=0, help="Last events to show.")] = 10,
) -> None:
    """One machine: stock per selection, cash, open alarms, last events, recent commands."""
    settings = settings_from(config, db=db)
    with reading(settings) as conn, errors():
        detail = queries.machine_detail(conn, machine, last_events=events)
    if as_json:
        print_json(detail)
        return
    _render_detail(detail, settings.zone)


def _render_detail(d: queries.MachineDetail, zone: ZoneInfo) -> None:
    m = d.machine
    head = Table(title=f"Machine {m.id}", show_header=False)
    head.add_column(style="bold")
    head.add_column()
    for label, value in (
        ("state", _state(m.online)),
        ("last seen", local(m.last_seen, zone)),
        ("firmware", m.firmware or "-"),
        ("config version", m.config_version or "-"),
        ("boot / last seq / max seq", f"{m.boot_id} / {m.last_seq} / {m.max_seq}"),
        ("outbox backlog", "-" if m.outbox_backlog is None else str(m.outbox_backlog)),
        ("open gaps", str(m.open_gaps)),
        ("command key", "registered" if m.keyed else "none (commands cannot be signed)"),
    ):
        head.add_row(label, value)
    out.print(head)
    stock = Table(title="Stock")
    for name in ("sel", "product", "count", "par", "capacity", "price", "service"):
        stock.add_column(name)
    for s in d.stock:
        service = "in" if s.in_service else f"out: {s.reason or '-'}"
        stock.add_row(
            s.selection,
            s.product,
            str(s.count),
            str(s.par),
            str(s.capacity),
            money(s.price, s.currency),
            service,
        )
    out.print(stock)
    c = d.cash
    cash = Table(title="Cash", show_header=False)
    cash.add_column(style="bold")
    cash.add_column()
    tubes = ", ".join(f"{money(t.value, c.currency)} x{t.count}" for t in c.tubes) or "-"
    cash.add_row(f"tubes (at {local(c.tubes_at, zone)})", tubes)
    cash.add_row(
        "last collection",
        f"{local(c.last_collection_at, zone)} {money(c.last_collection_amount, c.currency)}",
    )
    cash.add_row(
        "cash sales since",
        f"{money(c.cash_sales_since_collection, c.currency)} ({c.cash_sales_count})",
    )
    out.print(cash)
    _render_alarms(list(d.alarms), zone, title="Open alarms")
    _render_events(list(d.events), zone, title="Last events")
    commands = Table(title="Recent commands")
    for name in ("issued", "command", "published", "ack", "detail"):
        commands.add_column(name)
    for r in d.commands:
        commands.add_row(
            local(r.issued_at, zone),
            r.name,
            local(r.published_at, zone),
            r.ack_outcome or "-",
            r.ack_detail or "",
        )
    out.print(commands)


def _render_alarms(rows: list[queries.AlarmRow], zone: ZoneInfo, title: str) -> None:
    table = Table(title=f"{title} ({len(rows)})")
    for name in ("raised", "cleared", "machine", "code", "severity", "where", "detail"):
        table.add_column(name)
    for a in rows:
        where = " ".join(x for x in (a.device, a.selection) if x) or "-"
        table.add_row(
            local(a.raised_at, zone),
            local(a.cleared_at, zone),
            a.machine_id,
            a.code,
            a.severity,
            where,
            a.detail,
        )
    out.print(table)


def _render_events(rows: list[queries.EventRow], zone: ZoneInfo, title: str) -> None:
    table = Table(title=title)
    for name in ("#", "time", "machine", "seq", "kind", "what"):
        table.add_column(name)
    for e in rows:
        table.add_row(str(e.id), local(e.ts, zone), e.machine_id, str(e.seq), e.schema, e.summary)
    out.print(table)


class SeverityChoice(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@app.command(
    epilog="Examples:\n\n  vend fleet alarms\n\n  vend fleet alarms --all --machine vm-0001 "
    "--since yesterday\n\n  vend fleet alarms --severity critical --json"
)
def alarms(
    *,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    all_: Annotated[bool, typer.Option("--all", help="Cleared alarms too.")] = False,
    machine: Annotated[
        str | None,
        typer.Option(
            "--machine", "-m", help="Only this machine.", autocompletion=complete_machines
        ),
    ] = None,
    severity: Annotated[SeverityChoice | None, typer.Option(help="Only this severity.")] = None,
    code: Annotated[str | None, typer.Option(help="Only this alarm code, e.g. jam.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Raised since: today, yesterday, a date or date-time.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 500,
) -> None:
    """Open alarms (or all with --all), newest first."""
    settings = settings_from(config, db=db)
    start = when(since, settings.zone, "--since") if since else None
    with reading(settings) as conn, errors():
        if machine is not None:
            queries.require_machine(conn, machine)
        rows = queries.list_alarms(
            conn,
            open_only=not all_,
            machine_id=machine,
            severity=severity.value if severity else None,
            code=code,
            since=start,
            limit=limit,
        )
    if as_json:
        print_json(rows)
        return
    _render_alarms(rows, settings.zone, title="Alarms" if all_ else "Open alarms")


@app.command(
    epilog="Examples:\n\n  vend fleet sales\n\n"
    "  vend fleet sales --from 2026-03-01 --to 2026-04-01 --by product\n\n"
    "  vend fleet sales --from yesterday --to today --by hour --json"
)
def sales(
    *,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    start: Annotated[
        str,
        typer.Option(
            "--from",
            help="Start (inclusive): today, yesterday, a date or date-time (display time zone).",
        ),
    ] = "today",
    end: Annotated[str, typer.Option("--to", help="End (exclusive), same forms, or now.")] = "now",
    by: Annotated[
        queries.SalesGrouping, typer.Option("--by", help="Group by machine, product or hour.")
    ] = queries.SalesGrouping.MACHINE,
) -> None:
    """Sales over a period, grouped, with totals per currency (integer minor units in JSON)."""
    settings = settings_from(config, db=db)
    lo, hi = when(start, settings.zone, "--from"), when(end, settings.zone, "--to")
    if hi <= lo:
        raise fail(f"--to ({hi.isoformat()}) must be after --from ({lo.isoformat()})", EXIT_USAGE)
    with reading(settings) as conn, progress("summing sales"):
        rows = queries.sales_by(conn, start=lo, end=hi, by=by)
        totals = queries.sales_totals(conn, start=lo, end=hi)
    if as_json:
        print_json({"from": lo, "to": hi, "by": by.value, "rows": rows, "totals": totals})
        return
    table = Table(
        title=f"Sales {local(lo, settings.zone)} .. {local(hi, settings.zone)} by {by.value}"
    )
    for name in (by.value, "sales", "amount"):
        table.add_column(name)
    for r in rows:
        key = r.key
        if by is queries.SalesGrouping.HOUR:
            key = local(datetime.fromisoformat(r.key), settings.zone)[:16]
        table.add_row(key, str(r.count), money(r.total, r.currency))
    for t in totals:
        table.add_row("[bold]total[/bold]", str(t.count), money(t.total, t.currency))
    out.print(table)


@app.command(
    epilog="Examples:\n\n  vend fleet events\n\n  vend fleet events --follow --machine vm-0001\n\n"
    "  vend fleet events --follow --json --max 100 > events.jsonl"
)
def events(
    *,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    machine: Annotated[
        str | None,
        typer.Option(
            "--machine", "-m", help="Only this machine.", autocompletion=complete_machines
        ),
    ] = None,
    last: Annotated[int, typer.Option(min=0, help="Events to show first.")] = 10,
    max_new: Annotated[
        int | None,
        typer.Option("--max", min=1, help="With --follow: stop after this many new events."),
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.05, help="With --follow: seconds between polls.")
    ] = 1.0,
) -> None:
    """The newest events; with --follow, new ones as they are stored (Ctrl-C stops).

    With --json: a JSON array, or with --follow one JSON object per line.
    """
    settings = settings_from(config, db=db)
    with open_engine(settings) as engine:
        with errors(), engine.connect() as conn:
            if machine is not None:
                queries.require_machine(conn, machine)
            cursor = queries.last_event_id(conn)
            backlog = queries.recent_events(conn, last, machine_id=machine)
        if not follow:
            if as_json:
                print_json(backlog)
            else:
                _render_events(backlog, settings.zone, title="Events")
            return
        for row in backlog:
            _print_event(row, settings.zone, as_json=as_json)
        err.print(f"following events after #{cursor} (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            _follow(
                engine,
                cursor,
                machine=machine,
                max_new=max_new,
                interval=interval,
                emit=lambda e: _print_event(e, settings.zone, as_json=as_json),
            )


def _follow(
    engine: Engine,
    cursor: int,
    *,
    machine: str | None,
    max_new: int | None,
    interval: float,
    emit: Callable[[queries.EventRow], None],
) -> None:
    shown = 0
    while True:
        with errors(), engine.connect() as conn:
            rows = queries.events_after(conn, cursor, machine_id=machine)
        for row in rows:
            emit(row)
            shown += 1
            if max_new is not None and shown >= max_new:
                return
        if rows:
            cursor = rows[-1].id
        else:
            time.sleep(interval)


def _print_event(row: queries.EventRow, zone: ZoneInfo, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(jsonable(row), ensure_ascii=False))
    else:
        typer.echo(
            f"#{row.id} {local(row.ts, zone)} {row.machine_id} {row.seq} {row.schema} {row.summary}"
        )


@machine_app.command(
    "register",
    epilog="Example:\n\n"
    "  vend fleet machine register vm-0001 --key hex:00112233445566778899aabbccddeeff",
)
def machine_register(
    machine: MachineArg,
    key: Annotated[
        str,
        typer.Option(
            "--key",
            help="The machine's command_key: hex:..., base64:... or bare.",
            show_default=False,
        ),
    ],
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a machine or set the key its commands are signed with (its command_key)."""
    settings = settings_from(config, db=db)
    with open_engine(settings) as engine, errors(), engine.begin() as conn:
        new = operator.register_key(conn, machine, key, now=datetime.now(UTC))
    if as_json:
        print_json({"machine_id": machine, "created": new})
    else:
        typer.echo(f"{machine}: {'created with' if new else 'set'} its command key")
