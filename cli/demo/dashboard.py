"""The live Rich dashboard: machines, sales per minute, stock bars, alarms, outbox
backlogs, recent events and the fault timeline."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cli.demo.view import FleetView

BAR = 12


def money(minor: int) -> str:
    return f"{minor:,} ₫"


def stock_bar(count: int, capacity: int) -> Text:
    if capacity <= 0:
        return Text("—", style="dim")
    filled = round(BAR * count / capacity)
    share = count / capacity
    style = "green" if share > 0.5 else "yellow" if share > 0.2 else "red"
    return (
        Text("█" * filled, style=style)
        + Text("░" * (BAR - filled), style="dim")
        + Text(f" {count}/{capacity}")
    )


def _online(online: bool | None) -> Text:
    if online is None:
        return Text("?", style="dim")
    return Text("online", style="green") if online else Text("offline", style="bold red")


def machines_table(view: FleetView) -> Table:
    table = Table(title="Machines", expand=True, title_justify="left")
    for name, justify in (
        ("machine", "left"), ("status", "left"), ("sales", "right"), ("revenue", "right"),
        ("stock", "left"), ("backlog", "right"), ("alarms", "right"), ("seq", "right"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for m in view.machines:
        gap = "" if m.last_seq == m.max_seq else f" (gap to {m.max_seq})"
        table.add_row(
            m.machine_id,
            _online(m.online),
            str(m.sales),
            money(m.revenue),
            stock_bar(m.stock, m.capacity),
            "—" if m.backlog is None else str(m.backlog),
            Text(str(m.open_alarms), style="bold red" if m.open_alarms else ""),
            f"{m.last_seq}{gap}",
        )
    return table


def alarms_table(view: FleetView) -> Table:
    table = Table(title="Open alarms", expand=True, title_justify="left")
    table.add_column("machine")
    table.add_column("alarm")
    table.add_column("where")
    table.add_column("since")
    for a in view.alarms[-6:]:
        since = a.raised_at.strftime("%H:%M:%S") if a.raised_at else "?"
        table.add_row(a.machine_id, Text(a.code, style="red"), a.where, since)
    if not view.alarms:
        table.add_row(Text("none", style="dim"), "", "", "")
    return table


def events_table(view: FleetView) -> Table:
    table = Table(title="Recent events (as ingested)", expand=True, title_justify="left")
    table.add_column("time")
    table.add_column("machine")
    table.add_column("seq", justify="right")
    table.add_column("kind")
    table.add_column("what", overflow="ellipsis", no_wrap=True)
    for e in view.recent:
        table.add_row(e.ts.strftime("%H:%M:%S"), e.machine_id, str(e.seq), e.kind, e.summary)
    return table


def render(
    view: FleetView,
    *,
    elapsed: float,
    minutes: float,
    broker_up: bool,
    timeline: Sequence[str],
    where: str,
) -> RenderableType:
    online = sum(1 for m in view.machines if m.online)
    head = Text.assemble(
        ("vendfleet demo", "bold"),
        f"  {elapsed / 60:4.1f}/{minutes:g} min   ",
        ("broker up" if broker_up else "BROKER DOWN", "green" if broker_up else "bold red"),
        f"   machines online {online}/{len(view.machines)}",
        f"   sales {view.sales_total} ({view.sales_last_minute}/min)",
        f"   revenue {money(view.revenue_total)}",
        f"   events ingested {view.events_total}",
    )
    faults = Text("\n".join(timeline[-5:]) or "none yet", style="yellow")
    return Group(
        Panel(head, subtitle=where, subtitle_align="right"),
        machines_table(view),
        alarms_table(view),
        events_table(view),
        Panel(faults, title="Injected faults", title_align="left"),
    )
