"""Day-by-day fleet simulation: the restocking scheduler against a fixed weekly round.

A seeded synthetic fleet (machines with planograms, a depot, vans) sells against *true*
demand that the planner never sees: a rate per selection from the machine's traffic
and the product's popularity, shaped by the site's weekday and hour profile, with
day-to-day noise and Poisson arrivals. A customer who finds the selection empty is a
lost sale (no substitution), and the time it stands empty is counted.

Both policies start from the same state (a warm-up of weekly rounds gives the planner
its sales history) and see the same demand (common random numbers), so the difference
is the policy alone:

- the scheduler: every evening before a working day, a FleetSnapshot is built from what
  the fleet would know (live sales records and the fill-to levels counted at service
  visits) and `plan_day` plans the next day; its routes are driven, each machine is
  filled by its pick list at the routed service time (no more than the pick list:
  the van carries exactly what was pre-kitted), and km are the routes' distances;
- the weekly round: each machine has a fixed weekday (territories swept by bearing
  from the depot), is filled to par whatever that takes (a van on a fixed round carries
  spare stock), and each day's machines are routed by the same planner and router
  (must-visit list = that day's machines, everything else skipped).

Pure: no I/O, no clock reads; all randomness comes from `random.Random(seed)`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo

from fleet.planning.model import (
    Depot,
    LatLon,
    MachineSite,
    PackRule,
    PlanningError,
    PlanogramSlot,
    Product,
    SaleRecord,
    StockObservation,
    TimeWindow,
    Van,
)
from fleet.planning.plan import DayPlan, FleetSnapshot, PlanSettings, plan_day
from fleet.planning.scoring import ScoringWeights

__all__ = [
    "CATALOGUE",
    "SITE_KINDS",
    "DayCallback",
    "Policy",
    "PolicyResult",
    "SimSettings",
    "SimState",
    "Visit",
    "World",
    "build_world",
    "compare",
    "run_policy",
    "warmed_up",
]

DAY_S = 86_400
CENTRE = LatLon(10.7769, 106.7009)  # Ho Chi Minh City, district 1


class Policy(StrEnum):
    SCHEDULER = "scheduler"
    WEEKLY = "weekly"


@dataclass(frozen=True, slots=True)
class SimSettings:
    machines: int = 50
    weeks: int = 4  # measured
    warmup_weeks: int = 3  # weekly rounds before measuring: the planner's history
    seed: int = 0
    start: date = date(2024, 3, 4)  # a Monday: first day of the warm-up
    tz: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    work_days: frozenset[int] = frozenset(range(6))  # Mon..Sat; no visits on Sunday
    vans: int = 3
    van_capacity: int = 1_200  # units: about 50 cases, a small van
    radius_km: float = 12.0
    units_per_day: float = 8.0  # median machine, all selections together
    plan_hour: int = 20  # the evening plan for the next day
    history_days: int = 28
    time_limit_s: float = 0.5
    weights: ScoringWeights = field(default_factory=ScoringWeights)

    def __post_init__(self) -> None:
        if self.machines < 1 or self.weeks < 1 or self.warmup_weeks < 1:
            raise PlanningError("simulation: machines, weeks and warm-up weeks must be >= 1")
        if not self.work_days or not self.work_days <= set(range(7)):
            raise PlanningError("simulation: work_days must be weekdays 0..6, at least one")
        if self.vans < 1 or self.van_capacity < 1 or self.time_limit_s <= 0:
            raise PlanningError("simulation: vans, van capacity and time limit must be positive")


# --- the synthetic world ---------------------------------------------------------------


def _shape(*peaks: tuple[int, int, float]) -> tuple[float, ...]:
    """24 hourly weights: a small night floor plus (first hour, end hour, weight) bands."""
    w = [0.02] * 24
    for lo, hi, weight in peaks:
        for h in range(lo, hi):
            w[h] += weight
    return tuple(w)


# kind -> (share of sites, Mon..Sun demand factors, hour weights)
SITE_KINDS: dict[str, tuple[float, tuple[float, ...], tuple[float, ...]]] = {
    "office": (0.35, (1.15, 1.15, 1.1, 1.15, 1.05, 0.3, 0.1), _shape((7, 18, 1), (10, 11, 1))),
    "school": (0.15, (1.2, 1.2, 1.2, 1.2, 1.1, 0.4, 0.1), _shape((6, 17, 1), (9, 10, 2))),
    "factory": (0.2, (1.05, 1.05, 1.05, 1.05, 1.05, 0.95, 0.4), _shape((5, 23, 1), (11, 13, 1))),
    "hospital": (0.15, (1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.9), _shape((6, 22, 1))),
    "transit": (0.15, (0.9, 0.9, 0.9, 0.95, 1.1, 1.25, 1.15), _shape((6, 22, 1), (16, 19, 1))),
}

# sku, name, case, pack rule, margin (VND), popularity, column capacity
CATALOGUE: tuple[tuple[str, str, int, PackRule, int, float, int], ...] = (
    ("water", "Water 500ml", 24, PackRule.CASE, 3_000, 1.4, 48),
    ("cola", "Cola 330ml", 24, PackRule.CASE, 4_000, 1.2, 48),
    ("tea", "Iced tea 450ml", 24, PackRule.CASE, 3_500, 1.0, 40),
    ("coffee", "Canned coffee", 24, PackRule.HALF_CASE, 5_000, 1.0, 40),
    ("energy", "Energy drink", 24, PackRule.HALF_CASE, 6_000, 0.7, 36),
    ("juice", "Juice box", 12, PackRule.HALF_CASE, 4_500, 0.6, 30),
    ("chips", "Potato chips", 12, PackRule.HALF_CASE, 4_000, 0.8, 24),
    ("biscuit", "Biscuits", 20, PackRule.UNIT, 3_000, 0.6, 24),
    ("candy", "Candy bar", 30, PackRule.UNIT, 2_000, 0.5, 24),
    ("noodles", "Cup noodles", 12, PackRule.UNIT, 5_000, 0.5, 20),
    ("nuts", "Roasted nuts", 20, PackRule.UNIT, 4_500, 0.4, 20),
    ("gum", "Chewing gum", 40, PackRule.UNIT, 1_500, 0.3, 20),
)
SLOTS_PER_MACHINE = 8


@dataclass(frozen=True, slots=True)
class World:
    """The fleet's master data plus the demand it will meet (hidden from the planner)."""

    settings: SimSettings
    products: tuple[Product, ...]
    slots: tuple[PlanogramSlot, ...]
    sites: tuple[MachineSite, ...]
    depot: Depot
    vans: tuple[Van, ...]
    round_day: Mapping[str, int]  # machine -> weekday of its fixed weekly visit
    kinds: Mapping[str, str]  # machine -> site kind
    true_rate: tuple[float, ...]  # per slot: mean units asked for per (average) day
    demand: tuple[tuple[tuple[float, ...], ...], ...]  # [day][slot] -> seconds into the day

    @property
    def days(self) -> int:
        return len(self.demand)

    @property
    def warmup_days(self) -> int:
        return 7 * self.settings.warmup_weeks


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def build_world(settings: SimSettings) -> World:
    """A seeded fleet: sites around the centre, planograms, traffic, and all future demand."""
    rng = random.Random(settings.seed)  # noqa: S311 - a reproducible simulation, not secrets
    products = tuple(
        Product(sku, name, case, rule, margin) for sku, name, case, rule, margin, _, _ in CATALOGUE
    )
    popularity = {row[0]: row[5] for row in CATALOGUE}
    column = {row[0]: row[6] for row in CATALOGUE}
    kinds_list = list(SITE_KINDS)
    kind_weights = [SITE_KINDS[k][0] for k in kinds_list]
    sites, slots, rates, kinds = [], [], [], {}
    bearings: dict[str, float] = {}
    for m in range(settings.machines):
        mid = f"m{m:03d}"
        kind = rng.choices(kinds_list, kind_weights)[0]
        kinds[mid] = kind
        r = settings.radius_km * math.sqrt(rng.random())
        bearing = rng.random() * 2 * math.pi
        bearings[mid] = bearing
        dlat = r * math.cos(bearing) / 111.32
        dlon = r * math.sin(bearing) / (111.32 * math.cos(math.radians(CENTRE.lat)))
        access = rng.choices(
            (TimeWindow(0, 24 * 60), TimeWindow(7 * 60 + 30, 17 * 60), TimeWindow(7 * 60, 11 * 60)),
            (0.6, 0.3, 0.1),
        )[0]
        loc = LatLon(CENTRE.lat + dlat, CENTRE.lon + dlon)
        sites.append(MachineSite(mid, loc, access))
        # Machine traffic is skewed: most are modest, a few are very busy.
        traffic = settings.units_per_day * rng.lognormvariate(0.0, 0.6)
        chosen = _sample(rng, [row[0] for row in CATALOGUE], popularity, SLOTS_PER_MACHINE)
        total_pop = sum(popularity[sku] for sku in chosen)
        for k, sku in enumerate(chosen):
            cap = column[sku]
            slots.append(PlanogramSlot(mid, f"{k + 1:02d}", sku, cap, cap, core=k == 0))
            rates.append(traffic * popularity[sku] / total_pop * rng.lognormvariate(0.0, 0.25))
    depot = Depot("depot", CENTRE)
    vans = tuple(
        Van(f"van{v + 1}", settings.van_capacity, cost_per_km=5_000, fixed_cost=150_000)
        for v in range(settings.vans)
    )
    demand = _demand(rng, settings, slots, rates, kinds)
    return World(
        settings=settings,
        products=products,
        slots=tuple(slots),
        sites=tuple(sites),
        depot=depot,
        vans=vans,
        round_day=_territories(bearings, sorted(settings.work_days)),
        kinds=kinds,
        true_rate=tuple(rates),
        demand=demand,
    )


def _sample(rng: random.Random, skus: list[str], weight: Mapping[str, float], n: int) -> list[str]:
    """n distinct products, popular ones more likely, most popular first."""
    pool, out = list(skus), list[str]()
    while pool and len(out) < n:
        pick = rng.choices(pool, [weight[s] for s in pool])[0]
        pool.remove(pick)
        out.append(pick)
    return sorted(out, key=lambda s: -weight[s])


def _territories(bearings: Mapping[str, float], days: Sequence[int]) -> dict[str, int]:
    """Fixed-round weekdays: machines swept by bearing from the depot, split evenly."""
    order = sorted(bearings, key=lambda m: (bearings[m], m))
    return {mid: days[i * len(days) // len(order)] for i, mid in enumerate(order)}


def _demand(
    rng: random.Random,
    settings: SimSettings,
    slots: Sequence[PlanogramSlot],
    rates: Sequence[float],
    kinds: Mapping[str, str],
) -> tuple[tuple[tuple[float, ...], ...], ...]:
    n_days = 7 * (settings.warmup_weeks + settings.weeks)
    cum = {}
    for kind, (_, _, hours) in SITE_KINDS.items():
        run, acc = [], 0.0
        for w in hours:
            acc += w
            run.append(acc)
        cum[kind] = run
    days = []
    for d in range(n_days):
        weekday = (settings.start + timedelta(days=d)).weekday()
        noise = {m: rng.lognormvariate(0.0, 0.15) for m in kinds}  # weather, events
        today = []
        for slot, rate in zip(slots, rates, strict=True):
            kind = kinds[slot.machine_id]
            lam = rate * SITE_KINDS[kind][1][weekday] * noise[slot.machine_id]
            n = _poisson(rng, lam)
            at = rng.choices(range(24), cum_weights=cum[kind], k=n)
            today.append(tuple(sorted(h * 3600 + rng.random() * 3600 for h in at)))
        days.append(tuple(today))
    return tuple(days)


# --- running a policy ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyResult:
    policy: Policy
    days: int
    machines: int
    slots: int
    visits: int
    distance_km: float
    van_days: int  # vans that left the depot, summed over days
    demand: int  # units asked for
    sold: int
    lost: int  # asked for while the selection stood empty
    lost_margin: int  # minor units: margin of the lost units
    empty_slot_hours: float
    missed: int  # machines a plan chose (or the round listed) that no route took

    @property
    def stockout_rate(self) -> float:
        return self.lost / self.demand if self.demand else 0.0

    @property
    def slot_days_empty(self) -> float:
        return self.empty_slot_hours / 24.0

    @property
    def empty_share(self) -> float:
        """Share of slot-time spent empty."""
        return self.empty_slot_hours / (24.0 * self.days * self.slots) if self.slots else 0.0


@dataclass(frozen=True, slots=True)
class Visit:
    at_s: int  # service start, seconds into the day
    picks: Mapping[str, int] | None  # selection -> units loaded; None: fill to par


class SimState:
    """Mutable simulated state: true levels, the records the fleet receives, counters."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.level = [s.par for s in world.slots]
        self.empty_since: list[float | None] = [None] * len(world.slots)
        self.sales: list[list[SaleRecord]] = []  # per simulated day
        self.observations: list[StockObservation] = []
        self.demand = self.sold = self.lost = self.lost_margin = 0
        self.empty_s = 0.0
        self.visits = self.van_days = self.missed = 0
        self.distance_m = 0
        margins = {p.sku: p.unit_margin for p in world.products}
        self.margin = [margins[s.sku] for s in world.slots]
        self.day0 = datetime.combine(world.settings.start, time(0), tzinfo=world.settings.tz)
        self.slots_of: dict[str, list[int]] = {}
        for i, s in enumerate(world.slots):
            self.slots_of.setdefault(s.machine_id, []).append(i)
        start = self.day0 - timedelta(minutes=1)
        self.observations += [
            StockObservation(s.machine_id, s.selection, start, s.par) for s in world.slots
        ]

    def fork(self, at_day: int) -> SimState:
        """A copy with the counters zeroed, for measuring a policy from `at_day`."""
        twin = SimState.__new__(SimState)
        twin.world, twin.day0, twin.slots_of = self.world, self.day0, self.slots_of
        twin.margin = self.margin
        twin.level = list(self.level)
        at = float(at_day * DAY_S)
        twin.empty_since = [None if e is None else at for e in self.empty_since]
        twin.sales = list(self.sales)
        twin.observations = list(self.observations)
        twin.demand = twin.sold = twin.lost = twin.lost_margin = 0
        twin.empty_s = 0.0
        twin.visits = twin.van_days = twin.missed = twin.distance_m = 0
        return twin

    def when(self, seconds: float) -> datetime:
        return self.day0 + timedelta(seconds=seconds)

    def run_day(self, d: int, visits: Mapping[str, Visit]) -> None:
        """Sell against the day's demand; service visited machines at their time."""
        base = d * DAY_S
        today: list[SaleRecord] = []
        for i, slot in enumerate(self.world.slots):
            visit = visits.get(slot.machine_id)
            pending = visit is not None
            level = self.level[i]
            for t in self.world.demand[d][i]:
                if visit is not None and pending and t > visit.at_s:
                    level = self._service(i, level, base + visit.at_s, visit)
                    pending = False
                self.demand += 1
                if level > 0:
                    level -= 1
                    self.sold += 1
                    today.append(SaleRecord(slot.machine_id, slot.selection, self.when(base + t)))
                    if level == 0:
                        self.empty_since[i] = base + t
                else:
                    self.lost += 1
                    self.lost_margin += self.margin[i]
            if visit is not None and pending:
                level = self._service(i, level, base + visit.at_s, visit)
            self.level[i] = level
        self.sales.append(today)
        self.visits += len(visits)

    def _service(self, i: int, level: int, at: float, visit: Visit) -> int:
        slot = self.world.slots[i]
        if visit.picks is None:
            new = max(level, slot.par)
        else:
            new = min(slot.capacity, level + visit.picks.get(slot.selection, 0))
        since = self.empty_since[i]
        if new > 0 and since is not None:
            self.empty_s += at - since
            self.empty_since[i] = None
        self.observations.append(
            StockObservation(slot.machine_id, slot.selection, self.when(at), new)
        )
        return new

    def close(self, end_day: int) -> None:
        end = float(end_day * DAY_S)
        for i, since in enumerate(self.empty_since):
            if since is not None:
                self.empty_s += end - since
                self.empty_since[i] = end

    def snapshot(self, d: int) -> FleetSnapshot:
        """What the fleet knows on the evening before day d (sales and visit counts)."""
        w = self.world
        first = max(0, d - w.settings.history_days - 1)
        sales = tuple(r for day in self.sales[first:d] for r in day)
        return FleetSnapshot(
            products=w.products,
            slots=w.slots,
            sites=w.sites,
            depot=w.depot,
            vans=w.vans,
            sales=sales,
            observations=tuple(self.observations),
        )


def _warmup_visits(world: World, d: int) -> dict[str, Visit]:
    """Unrouted weekly fills before measuring (mid-morning, inside the access window)."""
    weekday = (world.settings.start + timedelta(days=d)).weekday()
    out: dict[str, Visit] = {}
    for site in world.sites:
        if world.round_day[site.machine_id] == weekday:
            minute = max(site.access.start_min, min(10 * 60, site.access.end_min))
            out[site.machine_id] = Visit(minute * 60, None)
    return out


def _gap_days(settings: SimSettings, day: date) -> float:
    """Days from `day` to the next working day after it (the next chance to visit)."""
    for k in range(1, 8):
        if (day + timedelta(days=k)).weekday() in settings.work_days:
            return float(k)
    return 7.0


DayCallback = Callable[[Policy, date, DayPlan | None], None]


def run_policy(
    world: World,
    policy: Policy,
    *,
    start: SimState | None = None,
    on_day: DayCallback | None = None,
) -> PolicyResult:
    """Run `policy` over the measured weeks from `start` (default: a fresh warm-up).

    `start` is not changed, so one warm-up can be shared by both policies.
    """
    cfg = world.settings
    fleet = (start or warmed_up(world)).fork(world.warmup_days)
    for d in range(world.warmup_days, world.days):
        day = cfg.start + timedelta(days=d)
        plan: DayPlan | None = None
        visits: dict[str, Visit] = {}
        if day.weekday() in cfg.work_days:
            plan = _plan(world, fleet, policy, d, day)
            visits = _visits(plan, policy, fleet)
        fleet.run_day(d, visits)
        if on_day is not None:
            on_day(policy, day, plan)
    fleet.close(world.days)
    return PolicyResult(
        policy=policy,
        days=world.days - world.warmup_days,
        machines=len(world.sites),
        slots=len(world.slots),
        visits=fleet.visits,
        distance_km=fleet.distance_m / 1000.0,
        van_days=fleet.van_days,
        demand=fleet.demand,
        sold=fleet.sold,
        lost=fleet.lost,
        lost_margin=fleet.lost_margin,
        empty_slot_hours=fleet.empty_s / 3600.0,
        missed=fleet.missed,
    )


def warmed_up(world: World) -> SimState:
    """The fleet after the warm-up weeks of unrouted weekly fills."""
    fleet = SimState(world)
    for d in range(world.warmup_days):
        visits = {}
        if (world.settings.start + timedelta(days=d)).weekday() in world.settings.work_days:
            visits = _warmup_visits(world, d)
        fleet.run_day(d, visits)
    return fleet


def _plan(world: World, fleet: SimState, policy: Policy, d: int, day: date) -> DayPlan:
    cfg = world.settings
    now = fleet.when((d - 1) * DAY_S + cfg.plan_hour * 3600)
    settings = PlanSettings(
        tz=cfg.tz,
        history_days=cfg.history_days,
        next_visit_gap_days=_gap_days(cfg, day),
        weights=cfg.weights,
        time_limit_s=cfg.time_limit_s,
        seed=cfg.seed + d,
    )
    if policy is Policy.WEEKLY:
        today = frozenset(m for m, wd in world.round_day.items() if wd == day.weekday())
        others = frozenset(s.machine_id for s in world.sites) - today
        settings = replace(settings, must_visit=today, skip=others)
    return plan_day(day, fleet.snapshot(d), now, settings)


def _visits(plan: DayPlan, policy: Policy, fleet: SimState) -> dict[str, Visit]:
    out = {}
    day_start = datetime.combine(plan.day, time(0), tzinfo=fleet.world.settings.tz)
    for van in plan.vans:
        if not van.stops:
            continue
        fleet.van_days += 1
        fleet.distance_m += van.distance_m
        for stop in van.stops:
            at = int((stop.service_start - day_start).total_seconds())
            picks = None
            if policy is Policy.SCHEDULER:
                picks = {line.selection: line.quantity for line in stop.picks.lines}
            out[stop.machine_id] = Visit(at, picks)
    fleet.missed += len(plan.dropped) if policy is Policy.WEEKLY else 0
    fleet.missed += sum(1 for d in plan.dropped if d.required) if policy is Policy.SCHEDULER else 0
    return out


def compare(
    settings: SimSettings, on_day: DayCallback | None = None
) -> tuple[PolicyResult, PolicyResult]:
    """(scheduler, weekly round) over the same world, warm-up and demand."""
    world = build_world(settings)
    base = warmed_up(world)
    ours = run_policy(world, Policy.SCHEDULER, on_day=on_day, start=base)
    weekly = run_policy(world, Policy.WEEKLY, on_day=on_day, start=base)
    return ours, weekly
