"""Rich rendering of a restocking plan document and of a VRPTW solution."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table


def _hhmm(iso: str) -> str:
    return iso[11:16]  # the document's times are local ISO 8601 with offset


def render_plan(console: Console, doc: Mapping[str, Any]) -> None:
    summary = doc["summary"]
    state = "[green]feasible[/green]" if doc["feasible"] else "[red]NOT feasible[/red]"
    console.print(
        f"[bold]Restocking plan for {doc['day']}[/bold] from depot {doc['depot']} "
        f"({doc['timezone']}), made {doc['made_at']}: {state}"
    )
    console.print(
        f"{summary['chosen']} of {summary['machines']} machines chosen, {summary['routed']} "
        f"routed on {summary['vans_used']} van(s), {summary['dropped']} dropped; "
        f"{summary['distance_m'] / 1000:.1f} km, {summary['units']} units"
    )
    _machines(console, doc)
    for van in doc["routes"]:
        _van(console, van)
    _stores(console, doc)
    _dropped(console, doc)
    for problem in doc["problems"]:
        console.print(f"[red]problem:[/red] {problem}")
    for note in doc["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")


def _machines(console: Console, doc: Mapping[str, Any]) -> None:
    chosen = [m for m in doc["machines"] if m["chosen"]]
    table = Table(title="Machines to visit, and why", title_justify="left")
    for column in ("machine", "route", "decision", "score", "reasons"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for m in chosen:
        reasons = "\n".join(r["detail"] for r in m["reasons"])
        table.add_row(
            m["machine_id"], m["route_id"] or "", m["decision"], f"{m['score']:.0f}", reasons
        )
    console.print(table)
    skipped = len(doc["machines"]) - len(chosen)
    if skipped:
        console.print(f"{skipped} machine(s) not needed today (see --json for their reasons)")


def _van(console: Console, van: Mapping[str, Any]) -> None:
    head = (
        f"Van {van['van_id']}: leaves {_hhmm(van['depart'])}, back {_hhmm(van['back'])}, "
        f"{van['distance_m'] / 1000:.1f} km, {van['load_units']} units, cost {van['cost']:,}"
    )
    stops = Table(title=head, title_justify="left")
    # A store column only when some unit stands in a store (its location is not itself).
    in_store = any(s.get("location_id", s["machine_id"]) != s["machine_id"] for s in van["stops"])
    columns = ("#", "machine", "store") if in_store else ("#", "machine")
    for column in (*columns, "arrive", "start", "leave", "units", "pick list"):
        stops.add_column(column, justify="right" if column in {"#", "units"} else "left")
    for stop in van["stops"]:
        picks = ", ".join(
            f"{p['selection']} {p['sku']} x{p['quantity']}" for p in stop["picks"] if p["quantity"]
        )
        store = [stop.get("location_id", "")] if in_store else []
        stops.add_row(
            str(stop["stop"]),
            stop["machine_id"],
            *store,
            _hhmm(stop["arrival"]),
            _hhmm(stop["service_start"]),
            _hhmm(stop["departure"]),
            str(stop["units"]),
            picks or "-",
        )
    console.print(stops)
    load = Table(title=f"Load sheet {van['van_id']}", title_justify="left")
    for column in ("sku", "product", "units", "cases", "loose"):
        load.add_column(column, justify="left" if column in {"sku", "product"} else "right")
    for t in van["totals"]:
        load.add_row(t["sku"], t["name"], str(t["units"]), str(t["cases"]), str(t["loose_units"]))
    console.print(load)


def _stores(console: Console, doc: Mapping[str, Any]) -> None:
    """Pick totals of locations with several units in the plan (or declared stores):
    what the crew carries into each store, whatever van or stop each unit got."""
    shown = [
        s
        for s in doc.get("stores", ())
        if len(s["machines"]) + len(s["dropped"]) > 1 or s["kind"] != "site"
    ]
    if not shown:
        return
    table = Table(title="Pick totals per store", title_justify="left")
    for column in ("store", "units visited", "visits", "units", "picks"):
        table.add_column(column, justify="right" if column == "units" else "left")
    for s in shown:
        visits = ", ".join(f"{v['van_id']}#{v['stop']} {_hhmm(v['arrival'])}" for v in s["visits"])
        if not s["together"]:
            visits += " [yellow](apart)[/yellow]"
        units = ", ".join(s["machines"]) or "-"
        if s["dropped"]:
            units += f" [red](not routed: {', '.join(s['dropped'])})[/red]"
        name = f"{s['location_id']} {s['name']}".strip()
        picks = ", ".join(f"{p['sku']} x{p['units']}" for p in s["picks"])
        table.add_row(name, units, visits or "-", str(s["units"]), picks or "-")
    console.print(table)


def _dropped(console: Console, doc: Mapping[str, Any]) -> None:
    if not doc["dropped"]:
        return
    table = Table(title="Chosen but not routed", title_justify="left")
    for column in ("machine", "must-visit", "reason"):
        table.add_column(column)
    for d in doc["dropped"]:
        table.add_row(d["machine_id"], "yes" if d["required"] else "no", d["reason"])
    console.print(table)


def render_solomon(console: Console, name: str, doc: Mapping[str, Any]) -> None:
    console.print(
        f"[bold]{name}[/bold]: {doc['vehicles']} vehicle(s), distance {doc['distance']:.2f}"
    )
    table = Table()
    table.add_column("route", justify="right")
    table.add_column("customers")
    for k, route in enumerate(doc["routes"], start=1):
        table.add_row(str(k), " ".join(map(str, route)))
    console.print(table)
