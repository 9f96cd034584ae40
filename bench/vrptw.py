"""Routing quality and planning speed, against published best-known solutions.

Part 1: six classic Solomon (1987) 100-customer VRPTW instances (bench/data/solomon),
10 s each, solved by fleet.planning.routing with the planner's solver settings. The
objective is Solomon's hierarchical one: fewest vehicles first (a fixed cost per
vehicle larger than any route set's total distance), then total distance. Distances
are real-valued Euclidean, the convention of the best-known table we compare to
(bks.json); the solver sees them scaled by 1000 and rounded, and the distance we report
is recomputed in double precision from the routes, with every time window re-checked
in double precision too.

Part 2: plan one day for a generated fleet of 1,000 machines and 25 vans (seeded):
stock estimates, forecasts, scores, visit choice, pick lists and routes, timed.

Run: ``.venv/bin/python bench/vrptw.py [--seconds 10] [--only C101 ...] [--skip-fleet]``.
Targets (TARGETS.md): best-known vehicle count on >= 5 of 6, mean distance gap <= 1 %,
and the 1,000-machine day from scores to routes <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet.planning.model import (
    CashLevel,
    Depot,
    LatLon,
    MachineSite,
    PackRule,
    PlanogramSlot,
    Product,
    SaleRecord,
    StockObservation,
    TimeWindow,
    Van,
)
from fleet.planning.plan import FleetSnapshot, PlanSettings, plan_day
from fleet.planning.routing import SolveProgress
from fleet.planning.solomon import read_solomon, solve_solomon

DATA = Path(__file__).resolve().parent / "data" / "solomon"
INSTANCES = ("C101", "C201", "R101", "R201", "RC101", "RC201")


def run_solomon(names: list[str], seconds: float) -> None:
    if not names:  # `--only` with no instance: the fleet day alone
        return
    bks = json.loads((DATA / "bks.json").read_text(encoding="utf-8"))
    missing = [n for n in names if not (DATA / f"{n}.txt").exists()]
    if missing:
        print(f"skipping Solomon part: instance files missing: {', '.join(missing)}")
        return
    print(f"Solomon VRPTW, {seconds:g} s each, vs best-known ({bks['_source'].split(',')[0]})")
    print(f"{'inst':6} {'veh':>4} {'bks':>4} {'dist':>9} {'bks':>9} {'gap %':>7} {'breaks':>6}")
    matched, gaps_matched, gaps_all = 0, [], []
    for name in names:
        solution = solve_solomon(read_solomon(DATA / f"{name}.txt"), seconds)
        dist = solution.distance
        breaks = len(solution.breaks) + len(solution.unserved)
        ref = bks[name]
        veh = solution.vehicles
        gap = 100.0 * (dist - ref["distance"]) / ref["distance"]
        gaps_all.append(gap)
        if veh == ref["vehicles"]:
            matched += 1
            gaps_matched.append(gap)
        print(
            f"{name:6} {veh:4d} {ref['vehicles']:4d} {dist:9.2f} {ref['distance']:9.2f} "
            f"{gap:7.2f} {breaks:6d}"
        )
    n = len(names)
    mean_matched = sum(gaps_matched) / len(gaps_matched) if gaps_matched else float("nan")
    print(f"best-known vehicle count on {matched} of {n} (target >= 5 of 6)")
    print(
        f"mean distance gap {mean_matched:.2f} % over the {len(gaps_matched)} with the "
        f"best-known vehicle count (target <= 1 %); {sum(gaps_all) / n:.2f} % over all {n}"
    )


# --- part 2: a generated fleet --------------------------------------------------------

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CENTRE = LatLon(10.7769, 106.7009)


def generated_fleet(machines: int, vans: int, seed: int, now: datetime) -> FleetSnapshot:
    rng = random.Random(seed)
    products = tuple(
        Product(
            f"p{k:02d}",
            case_quantity=rng.choice((12, 24, 24, 30)),
            pack_rule=rng.choice((PackRule.UNIT, PackRule.HALF_CASE, PackRule.CASE)),
            unit_margin=rng.randrange(2_000, 9_000, 500),
        )
        for k in range(16)
    )
    sites, slots, sales, obs, cash = [], [], [], [], []
    for m in range(machines):
        mid = f"m{m:04d}"
        r = 0.22 * math.sqrt(rng.random())  # degrees: about 25 km around the centre
        a = rng.random() * 2 * math.pi
        loc = LatLon(CENTRE.lat + r * math.sin(a), CENTRE.lon + r * math.cos(a))
        window = rng.choice(
            (TimeWindow(6 * 60, 20 * 60), TimeWindow(7 * 60, 17 * 60), TimeWindow(8 * 60, 12 * 60))
        )
        sites.append(MachineSite(mid, loc, window, service_fixed_min=8.0))
        busy = rng.lognormvariate(0.5, 0.7)  # units/day per selection
        last_visit = now - timedelta(days=rng.randint(1, 7), hours=rng.randint(0, 8))
        for s in range(8):
            p = products[rng.randrange(len(products))]
            cap = rng.choice((20, 30, 40))
            slot = PlanogramSlot(mid, f"{s + 1}", p.sku, cap, cap - rng.randint(0, 4))
            slots.append(slot)
            obs.append(StockObservation(mid, slot.selection, last_visit, slot.par))
            for day in range(28, 0, -1):
                at = now - timedelta(days=day) + timedelta(hours=rng.randint(0, 10))
                qty = int(rng.expovariate(1 / busy) + 0.5)
                if qty:
                    sales.append(SaleRecord(mid, slot.selection, at, qty))
        if rng.random() < 0.03:
            cash.append(CashLevel(mid, now, cash_box_fill=0.9))
    van_list = tuple(
        Van(f"van{v:02d}", 3_000, shift=TimeWindow(6 * 60, 18 * 60), cost_per_km=5_000)
        for v in range(vans)
    )
    return FleetSnapshot(
        products=products,
        slots=tuple(slots),
        sites=tuple(sites),
        depot=Depot("warehouse", CENTRE),
        vans=van_list,
        sales=tuple(sales),
        observations=tuple(obs),
        cash=tuple(cash),
    )


def run_fleet(machines: int, vans: int, seconds: float, seed: int) -> None:
    now = datetime(2024, 6, 3, 19, tzinfo=TZ)
    fleet = generated_fleet(machines, vans, seed, now)
    print(
        f"\nplan one day: {machines} machines, {len(fleet.slots)} selections, {vans} vans, "
        f"{len(fleet.sales)} sales records, routing limit {seconds:g} s (seed {seed})"
    )
    marks: dict[str, float] = {}

    def progress(p: SolveProgress) -> None:
        marks.setdefault("routing_started", time.perf_counter() - p.elapsed_s)

    started = time.perf_counter()
    plan = plan_day(
        date(2024, 6, 4),
        fleet,
        now,
        PlanSettings(tz=TZ, time_limit_s=seconds, seed=seed),
        progress=progress,
    )
    total = time.perf_counter() - started
    before = marks.get("routing_started", started) - started
    chosen = sum(1 for s in plan.scores if s.chosen)
    routed = sum(len(v.stops) for v in plan.vans)
    print(
        f"chosen {chosen} of {machines} machines, routed {routed} on {len(plan.vans)} vans, "
        f"dropped {len(plan.dropped)}, problems {len(plan.problems)}, feasible {plan.feasible}"
    )
    km = sum(v.distance_m for v in plan.vans) / 1000
    units = sum(v.load_units for v in plan.vans)
    print(f"{km:.0f} km, {units} units loaded")
    print(
        f"estimates+forecasts+scores+pick lists {before:.1f} s, then routing and load "
        f"sheets {total - before:.1f} s; whole day plan {total:.1f} s (target <= 60 s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="per Solomon instance")
    ap.add_argument("--only", nargs="*", default=list(INSTANCES))
    ap.add_argument("--skip-fleet", action="store_true")
    ap.add_argument(
        "--fleet-seconds", type=float, default=30.0, help="routing limit, 1,000 machines"
    )
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    run_solomon(args.only, args.seconds)
    if not args.skip_fleet:
        run_fleet(1000, 25, args.fleet_seconds, args.seed)


if __name__ == "__main__":
    main()
