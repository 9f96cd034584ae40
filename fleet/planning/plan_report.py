"""A DayPlan as one JSON document and as CSV tables, for operators and their tools.

Times are ISO 8601 in the planning time zone (with the offset), distances in metres,
money in integer minor units. The CSV files are flat views of the same document:
visits.csv (every chosen machine, routed or dropped), routes.csv (one row per van),
picklists.csv (one row per selection to load) and van_totals.csv (the warehouse pick).

``stores`` rolls the pick lists up per location (fleet.locations): the planner serves a
store's units in one visit (fleet.planning.stores), so the crew needs the store's total
per product, and should know when a store is nevertheless split over vans or stops (its
units' hours or load left no single visit; the plan's own note says why).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fleet.locations import LocationRef
from fleet.planning.picklists import PickLine
from fleet.planning.plan import DayPlan, StopSheet, VanSheet
from fleet.planning.scoring import MachineScore

CSV_FILES = ("visits.csv", "routes.csv", "picklists.csv", "van_totals.csv")


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def _score(score: MachineScore, route: str | None) -> dict[str, Any]:
    return {
        "machine_id": score.machine_id,
        "route_id": route,
        "decision": score.decision.value,
        "chosen": score.chosen,
        "score": round(score.score, 2),
        "prize": score.prize,
        "lost_margin": score.lost_margin,
        "lost_units": round(score.lost_units, 2),
        "depletion": round(score.depletion, 4),
        "sold_out": list(score.sold_out),
        "reasons": [
            {"code": r.code, "detail": r.detail, "points": round(r.points, 2)}
            for r in score.reasons
        ],
    }


def _pick(line: PickLine) -> dict[str, Any]:
    return {
        "selection": line.selection,
        "sku": line.sku,
        "on_hand": line.on_hand,
        "par": line.par,
        "capacity": line.capacity,
        "need": line.need,
        "quantity": line.quantity,
        "pack_size": line.pack_size,
        "note": line.note,
    }


def _stop(number: int, stop: StopSheet, location_id: str) -> dict[str, Any]:
    return {
        "stop": number,
        "machine_id": stop.machine_id,
        "location_id": location_id,
        "arrival": _iso(stop.arrival),
        "service_start": _iso(stop.service_start),
        "departure": _iso(stop.departure),
        "units": stop.picks.units,
        "reasons": [r.code for r in stop.reasons],
        "picks": [_pick(line) for line in stop.picks.lines],
    }


def _van(van: VanSheet, where: Callable[[str], str]) -> dict[str, Any]:
    return {
        "van_id": van.van_id,
        "depart": _iso(van.depart),
        "back": _iso(van.back),
        "distance_m": van.distance_m,
        "cost": van.cost,
        "load_units": van.load_units,
        "stops": [_stop(k, s, where(s.machine_id)) for k, s in enumerate(van.stops, start=1)],
        "totals": [
            {
                "sku": t.sku,
                "name": t.name,
                "units": t.units,
                "cases": t.cases,
                "loose_units": t.loose_units,
            }
            for t in van.totals
        ],
    }


def plan_document(
    plan: DayPlan,
    *,
    depot_id: str,
    timezone: str,
    routes: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
    locations: Mapping[str, LocationRef] | None = None,
) -> dict[str, Any]:
    """The whole plan as plain JSON-ready values. ``locations`` (from
    `fleet.locations.machine_locations`) names and types the stores; without it machines
    are grouped by the plan's own locations (their sites' location ids)."""
    route_of = routes or {}
    placed = locations or {}

    def where(machine_id: str) -> str:
        return _location(machine_id, plan, placed)

    chosen = [s for s in plan.scores if s.chosen]
    stores = store_rollup(plan, placed)
    split = [
        f"store {s['location_id']}: its units are visited apart ({_visit_list(s)})"
        for s in stores
        if not s["together"]
    ]
    return {
        "day": plan.day.isoformat(),
        "made_at": _iso(plan.made_at),
        "timezone": timezone,
        "depot": depot_id,
        "feasible": plan.feasible,
        "summary": {
            "machines": len(plan.scores),
            "chosen": len(chosen),
            "routed": sum(len(v.stops) for v in plan.vans),
            "dropped": len(plan.dropped),
            "vans_used": len(plan.vans),
            "distance_m": sum(v.distance_m for v in plan.vans),
            "units": sum(v.load_units for v in plan.vans),
            "cost": sum(v.cost for v in plan.vans),
        },
        "machines": [_score(s, route_of.get(s.machine_id)) for s in plan.scores],
        "routes": [_van(v, where) for v in plan.vans],
        "dropped": [
            {
                "machine_id": d.stop_id,
                "location_id": where(d.stop_id),
                "required": d.required,
                "reason": d.reason,
            }
            for d in plan.dropped
        ],
        "stores": stores,
        "problems": [str(p) for p in plan.problems],
        "notes": [*notes, *plan.notes, *split],
    }


def _location(machine_id: str, plan: DayPlan, locations: Mapping[str, LocationRef]) -> str:
    ref = locations.get(machine_id)
    return ref.location_id if ref is not None else plan.locations.get(machine_id, machine_id)


def store_rollup(plan: DayPlan, locations: Mapping[str, LocationRef]) -> list[dict[str, Any]]:
    """Per location with a chosen machine: its routed units in visit order, the dropped
    ones, the visits, and the pick summed per product; by location id. `together`: the
    routed units are on one van, one right after another."""
    names = {t.sku: t.name for van in plan.vans for t in van.totals}
    groups: dict[str, dict[str, Any]] = {}

    def group(machine_id: str) -> dict[str, Any]:
        ref = locations.get(machine_id)
        key = _location(machine_id, plan, locations)
        if key not in groups:
            groups[key] = {
                "location_id": key,
                "name": ref.name if ref is not None else "",
                "kind": ref.kind if ref is not None else "site",
                "machines": [],
                "dropped": [],
                "visits": [],
                "units": 0,
                "picks": Counter(),
            }
        return groups[key]

    for van in plan.vans:
        for number, stop in enumerate(van.stops, start=1):
            g = group(stop.machine_id)
            g["machines"].append(stop.machine_id)
            g["visits"].append(
                {
                    "van_id": van.van_id,
                    "stop": number,
                    "machine_id": stop.machine_id,
                    "arrival": _iso(stop.arrival),
                }
            )
            g["units"] += stop.picks.units
            for line in stop.picks.lines:
                if line.quantity:
                    g["picks"][line.sku] += line.quantity
    for dropped in plan.dropped:
        group(dropped.stop_id)["dropped"].append(dropped.stop_id)
    out = []
    for key in sorted(groups):
        g = groups[key]
        picks: Counter[str] = g.pop("picks")
        g["together"] = _together(g["visits"])
        g["picks"] = [
            {"sku": sku, "name": names.get(sku, ""), "units": units}
            for sku, units in sorted(picks.items())
        ]
        out.append(g)
    return out


def _together(visits: Sequence[Mapping[str, Any]]) -> bool:
    """One van, consecutive stops (a lone machine trivially so)."""
    if len({v["van_id"] for v in visits}) > 1:
        return False
    stops = sorted(v["stop"] for v in visits)
    return stops == list(range(stops[0], stops[0] + len(stops))) if stops else True


def _visit_list(store: Mapping[str, Any]) -> str:
    seen = [f"{v['machine_id']} van {v['van_id']} stop {v['stop']}" for v in store["visits"]]
    seen += [f"{m} not routed" for m in store["dropped"]]
    return ", ".join(seen)


def csv_tables(document: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The document's flat tables, keyed by file name (see `CSV_FILES`)."""
    scores = {m["machine_id"]: m for m in document["machines"]}
    visits: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    picks: list[dict[str, Any]] = []
    totals: list[dict[str, Any]] = []

    def reasons(machine_id: str) -> str:
        return "; ".join(r["detail"] for r in scores[machine_id]["reasons"])

    for van in document["routes"]:
        vid = van["van_id"]
        routes.append(
            {
                "van_id": vid,
                "depart": van["depart"],
                "back": van["back"],
                "stops": len(van["stops"]),
                "distance_km": f"{van['distance_m'] / 1000:.3f}",
                "cost": van["cost"],
                "load_units": van["load_units"],
            }
        )
        for stop in van["stops"]:
            mid = stop["machine_id"]
            visits.append(
                {
                    "status": "routed",
                    "van_id": vid,
                    "stop": stop["stop"],
                    "machine_id": mid,
                    "location_id": stop["location_id"],
                    "route_id": scores[mid]["route_id"] or "",
                    "decision": scores[mid]["decision"],
                    "score": scores[mid]["score"],
                    "arrival": stop["arrival"],
                    "service_start": stop["service_start"],
                    "departure": stop["departure"],
                    "units": stop["units"],
                    "reasons": reasons(mid),
                }
            )
            for line in stop["picks"]:
                on_hand = "" if line["on_hand"] is None else line["on_hand"]
                picks.append(
                    {
                        "van_id": vid,
                        "stop": stop["stop"],
                        "machine_id": mid,
                        "location_id": stop["location_id"],
                        **line,
                    }
                    | {"on_hand": on_hand}
                )
        totals.extend({"van_id": vid, **total} for total in van["totals"])
    for dropped in document["dropped"]:
        mid = dropped["machine_id"]
        visits.append(
            {
                "status": "dropped",
                "van_id": "",
                "stop": "",
                "machine_id": mid,
                "location_id": dropped["location_id"],
                "route_id": scores[mid]["route_id"] or "",
                "decision": scores[mid]["decision"],
                "score": scores[mid]["score"],
                "arrival": "",
                "service_start": "",
                "departure": "",
                "units": "",
                "reasons": f"{reasons(mid)}; dropped: {dropped['reason']}",
            }
        )
    return dict(zip(CSV_FILES, (visits, routes, picks, totals), strict=True))


_HEADERS = {
    "visits.csv": (
        "status", "van_id", "stop", "machine_id", "location_id", "route_id", "decision", "score",
        "arrival",
        "service_start", "departure", "units", "reasons",
    ),
    "routes.csv": (
        "van_id", "depart", "back", "stops", "distance_km", "cost", "load_units",
    ),
    "picklists.csv": (
        "van_id", "stop", "machine_id", "location_id", "selection", "sku", "on_hand", "par",
        "capacity",
        "need", "quantity", "pack_size", "note",
    ),
    "van_totals.csv": ("van_id", "sku", "name", "units", "cases", "loose_units"),
}  # fmt: skip


def write_csvs(document: Mapping[str, Any], folder: Path) -> list[Path]:
    """The four CSV files in ``folder`` (created); headers even when a table is empty."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in csv_tables(document).items():
        path = folder / name
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=_HEADERS[name])
            writer.writeheader()
            writer.writerows(rows)
        written.append(path)
    return written
