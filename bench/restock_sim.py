"""Restocking policies side by side: our scheduler against a fixed weekly round.

Both run on the same seeded synthetic fleet (fleet.planning.simulation), from the same
warmed-up state and against the same true demand, for --weeks measured weeks. The
scheduler plans every evening from sales records and visit counts only; the weekly
round visits each machine on its fixed weekday and fills it to par. Both are routed by
the same planner and router with --time-limit seconds per day.

Prints visits, km, van-days, units sold and lost, stock-out rate (lost / demand) and
slot-days empty per policy, and the ratio scheduler / weekly; plus lost margin and
lost margin + km cost (VND at the vans' cost per km), the economic bottom line. The companion test
(tests/fleet/planning/test_simulation.py) asserts the levels; this script only prints.

Run: ``.venv/bin/python bench/restock_sim.py [--machines 50] [--weeks 4] [--seed 0]
[--time-limit 0.3] [--seeds 3]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet.planning.simulation import (
    Policy,
    PolicyResult,
    SimSettings,
    build_world,
    run_policy,
    warmed_up,
)

ROWS: tuple[tuple[str, str], ...] = (
    ("visits", "{:.0f}"),
    ("distance_km", "{:.1f}"),
    ("van_days", "{:.0f}"),
    ("demand", "{:.0f}"),
    ("sold", "{:.0f}"),
    ("lost", "{:.0f}"),
    ("lost_margin", "{:,.0f}"),
    ("stockout_rate", "{:.2%}"),
    ("slot_days_empty", "{:.1f}"),
    ("missed", "{:.0f}"),
)


def show(
    ours: PolicyResult, weekly: PolicyResult, seconds: dict[Policy, float], per_km: int
) -> None:
    print(f"{'':16} {'scheduler':>11} {'weekly':>11} {'ratio':>7}")
    for name, fmt in ROWS:
        a, b = float(getattr(ours, name)), float(getattr(weekly, name))
        ratio = f"{a / b:7.2f}" if b else "      -"
        print(f"{name:16} {fmt.format(a):>11} {fmt.format(b):>11} {ratio}")
    cost_a = ours.lost_margin + round(ours.distance_km * per_km)
    cost_b = weekly.lost_margin + round(weekly.distance_km * per_km)
    print(f"{'lost + km cost':16} {cost_a:>11,} {cost_b:>11,} {cost_a / max(cost_b, 1):7.2f}")
    print(f"{'run time s':16} {seconds[Policy.SCHEDULER]:11.1f} {seconds[Policy.WEEKLY]:11.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machines", type=int, default=50)
    ap.add_argument("--weeks", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="run this many seeds from --seed")
    ap.add_argument("--time-limit", type=float, default=0.3, help="routing seconds per day")
    ap.add_argument("--units-per-day", type=float, default=SimSettings().units_per_day)
    ap.add_argument("--van-capacity", type=int, default=SimSettings().van_capacity)
    args = ap.parse_args()
    for seed in range(args.seed, args.seed + args.seeds):
        settings = SimSettings(
            machines=args.machines,
            weeks=args.weeks,
            seed=seed,
            time_limit_s=args.time_limit,
            units_per_day=args.units_per_day,
            van_capacity=args.van_capacity,
        )
        world = build_world(settings)
        start = warmed_up(world)
        print(
            f"\nseed {seed}: {args.machines} machines, {len(world.slots)} selections, "
            f"{args.weeks} weeks measured after {settings.warmup_weeks} weeks of warm-up, "
            f"{settings.vans} vans x {settings.van_capacity} units, "
            f"true demand {sum(world.true_rate):.0f} units/day"
        )
        results: dict[Policy, PolicyResult] = {}
        seconds: dict[Policy, float] = {}
        for policy in (Policy.SCHEDULER, Policy.WEEKLY):
            started = time.perf_counter()
            results[policy] = run_policy(world, policy, start=start)
            seconds[policy] = time.perf_counter() - started
        per_km = min(v.cost_per_km for v in world.vans)
        show(results[Policy.SCHEDULER], results[Policy.WEEKLY], seconds, per_km)


if __name__ == "__main__":
    main()
