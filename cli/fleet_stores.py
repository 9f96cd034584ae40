"""`vend fleet stores | store show`: locations as operators see them, a store (several
units behind one kiosk or payment front) rolled up as one: its units, stock per product
across units and per unit, open alarms, today's sales. Thin: the queries live in
fleet.locations; this module parses options and renders Rich tables or JSON.

Exit codes: see cli.fleet_common and docs/operator.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from cli.fleet_common import (
    EXIT_USAGE,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    fail,
    local,
    money,
    out,
    print_json,
    reading,
    settings_from,
)
from fleet import locations
from fleet.queries import MoneyTotal

app = typer.Typer()  # nameless: its commands join `vend fleet`
store_app = typer.Typer(
    no_args_is_help=True, help="One location (store, site, cabinet bank): everything known."
)
app.add_typer(store_app, name="store")

LocationArg = Annotated[
    str, typer.Argument(help="Location id (a store's, or a lone machine's).", show_default=False)
]


def _sold(totals: tuple[MoneyTotal, ...]) -> str:
    return ", ".join(f"{money(t.total, t.currency)} ({t.count})" for t in totals) or "-"


def _kind(location: locations.Location) -> str:
    return location.kind if location.declared else f"{location.kind} (implicit)"


@app.command(epilog="Examples:\n\n  vend fleet stores\n\n  vend fleet stores --json")
def stores(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Every location with its units rolled up: stock, open alarms, sales today."""
    settings = settings_from(config, db=db)
    with reading(settings) as conn:
        found = locations.store_summaries(conn, now=datetime.now(UTC), zone=settings.zone)
    if as_json:
        print_json(found)
        return
    table = Table(title=f"Locations ({len(found)})")
    for name in (
        "location",
        "kind",
        "name",
        "route",
        "units online/reported/all",
        "stock empty/low/all",
        "alarms (critical)",
        "sales today",
    ):
        table.add_column(name)
    for s in found:
        where = s.location
        table.add_row(
            where.id,
            _kind(where),
            where.name or "-",
            where.route_id or "-",
            f"{s.online}/{s.reported}/{len(where.machines)}",
            f"{s.empty}/{s.below_par}/{s.selections}",
            f"{s.open_alarms} ({s.critical_alarms})",
            _sold(s.sales),
        )
    out.print(table)


@store_app.command(
    "show",
    epilog="Examples:\n\n  vend fleet store show st-q1\n\n  vend fleet store show st-q1 --json",
)
def store_show(
    location_id: LocationArg,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One location: its units, stock per product across units and per unit, open alarms,
    sales since local midnight (the location's time zone, else the display one)."""
    if not location_id.strip():
        raise fail("a location id must not be empty", EXIT_USAGE)
    settings = settings_from(config, db=db)
    with reading(settings) as conn:
        detail = locations.store_detail(
            conn, location_id, now=datetime.now(UTC), zone=settings.zone
        )
    if as_json:
        print_json(detail)
        return
    _render(detail, settings.zone)


def _render(d: locations.StoreDetail, zone: ZoneInfo) -> None:
    s, where = d.summary, d.summary.location
    head = Table(title=f"Location {where.id}", show_header=False)
    head.add_column(style="bold")
    head.add_column()
    place = f"{where.lat:.5f}, {where.lon:.5f}" if where.lat is not None else "-"
    for label, value in (
        ("name", where.name or "-"),
        ("kind", _kind(where)),
        ("address", where.address or "-"),
        ("position", place),
        ("route", where.route_id or "-"),
        ("time zone", where.timezone or f"{zone.key} (display)"),
        ("units online / reported / all", f"{s.online} / {s.reported} / {len(where.machines)}"),
        ("stock empty / low / selections", f"{s.empty} / {s.below_par} / {s.selections}"),
        ("open alarms (critical)", f"{s.open_alarms} ({s.critical_alarms})"),
        (f"sales since {local(s.sales_since, zone)}", _sold(s.sales)),
    ):
        head.add_row(label, value)
    out.print(head)
    units = Table(title="Units")
    for name in ("machine", "state", "last seen", "route", "stock empty/low/all", "alarms"):
        units.add_column(name)
    for u in d.units:
        state = {True: "online", False: "offline", None: "unknown"}[u.online]
        units.add_row(
            u.machine_id,
            state if u.reported else "never reported",
            local(u.last_seen, zone),
            u.route_id or "-",
            f"{u.empty}/{u.below_par}/{u.selections}",
            str(u.open_alarms),
        )
    out.print(units)
    stock = Table(title="Stock per product (all units)")
    for name in ("product", "count", "par", "capacity", "empty sel.", "per unit"):
        stock.add_column(name)
    for p in d.stock:
        per_unit = ", ".join(f"{x.machine_id} {x.count}/{x.par}" for x in p.units)
        stock.add_row(p.product, str(p.count), str(p.par), str(p.capacity), str(p.empty), per_unit)
    out.print(stock)
    alarms = Table(title=f"Open alarms ({len(d.alarms)})")
    for name in ("raised", "machine", "code", "severity", "where", "detail"):
        alarms.add_column(name)
    for a in d.alarms:
        spot = " ".join(x for x in (a.device, a.selection) if x) or "-"
        alarms.add_row(local(a.raised_at, zone), a.machine_id, a.code, a.severity, spot, a.detail)
    out.print(alarms)
    sold = Table(title=f"Sales since {local(s.sales_since, zone)}")
    for name in ("machine", "sales", "amount"):
        sold.add_column(name)
    for row in d.sales_by_unit:
        sold.add_row(row.machine_id, str(row.count), money(row.total, row.currency))
    for t in s.sales:
        sold.add_row("[bold]total[/bold]", str(t.count), money(t.total, t.currency))
    out.print(sold)
