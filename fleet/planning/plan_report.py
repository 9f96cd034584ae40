"""A DayPlan as one JSON document and as CSV tables, for operators and their tools.

Times are ISO 8601 in the planning time zone (with the offset), distances in metres,
money in integer minor units. The CSV files are flat views of the same document:
visits.csv (every chosen machine, routed or dropped), routes.csv (one row per van),
picklists.csv (one row per selection to load) and van_totals.csv (the warehouse pick).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

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


def _stop(number: int, stop: StopSheet) -> dict[str, Any]:
    return {
        "stop": number,
        "machine_id": stop.machine_id,
        "arrival": _iso(stop.arrival),
        "service_start": _iso(stop.service_start),
        "departure": _iso(stop.departure),
        "units": stop.picks.units,
        "reasons": [r.code for r in stop.reasons],
        "picks": [_pick(line) for line in stop.picks.lines],
    }


def _van(van: VanSheet) -> dict[str, Any]:
    return {
        "van_id": van.van_id,
        "depart": _iso(van.depart),
        "back": _iso(van.back),
        "distance_m": van.distance_m,
        "cost": van.cost,
        "load_units": van.load_units,
        "stops": [_stop(k, s) for k, s in enumerate(van.stops, start=1)],
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
) -> dict[str, Any]:
    """The whole plan as plain JSON-ready values."""
    route_of = routes or {}
    chosen = [s for s in plan.scores if s.chosen]
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
        "routes": [_van(v) for v in plan.vans],
        "dropped": [
            {"machine_id": d.stop_id, "required": d.required, "reason": d.reason}
            for d in plan.dropped
        ],
        "problems": [str(p) for p in plan.problems],
        "notes": list(notes),
    }


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
                    {"van_id": vid, "stop": stop["stop"], "machine_id": mid, **line}
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
        "status", "van_id", "stop", "machine_id", "route_id", "decision", "score", "arrival",
        "service_start", "departure", "units", "reasons",
    ),
    "routes.csv": (
        "van_id", "depart", "back", "stops", "distance_km", "cost", "load_units",
    ),
    "picklists.csv": (
        "van_id", "stop", "machine_id", "selection", "sku", "on_hand", "par", "capacity",
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
