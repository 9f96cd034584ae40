"""Vehicle routing with time windows, capacities, shifts and optional visits (PyVRP).

The only module that imports PyVRP. Its inputs are plain integers: a travel matrix
(distance and duration units are the caller's; the planner uses metres and seconds),
stops with demand per load dimension, service time, a time window, and for optional
stops a prize (the margin lost if skipped), so the solver drops low-value stops first
when vans run out of room or time.

Problems the solver cannot fix are found before solving and named: a stop whose window
cannot be reached from the depot within any shift, a stop larger than every van,
must-visits that together exceed the fleet. Must-visits are given the solver as stops
with a prize above anything dropping them could save, rather than as hard constraints,
so a plan always comes back; a returned route that still breaks a window or a capacity
is repaired by taking out its least valuable stops, and any must-visit left out is
reported afterwards.

Scale: PyVRP's penalties for a late second or a unit of excess load are bounded, so
keep costs near "one unit per metre" (the planner normalises van costs that way).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pyvrp import Client, Depot, Location, ProblemData, Route, Solution, VehicleType, solve
from pyvrp.exceptions import PenaltyBoundWarning

from fleet.planning.distances import TravelMatrix
from fleet.planning.model import PlanningError

NO_LIMIT = 2**40  # capacity of a load dimension a vehicle does not count


@dataclass(frozen=True, slots=True)
class StopSpec:
    stop_id: str
    location: str  # id in the travel matrix
    demand: tuple[int, ...]  # one entry per load dimension
    service: int
    tw_early: int
    tw_late: int
    required: bool = True
    prize: int = 0  # cost units; only meaningful for optional stops


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    vehicle_id: str
    capacity: tuple[int, ...]  # per load dimension; NO_LIMIT where not counted
    shift_start: int
    shift_end: int
    unit_distance_cost: int = 1
    fixed_cost: int = 0
    count: int = 1  # identical vehicles (ids get "#2", "#3", ...)


@dataclass(frozen=True, slots=True)
class RoutingProblem:
    matrix: TravelMatrix
    depot: str  # location id in the matrix
    vehicles: tuple[VehicleSpec, ...]
    stops: tuple[StopSpec, ...]
    depot_open: int = 0
    depot_close: int = 2**40

    def __post_init__(self) -> None:
        if not self.vehicles:
            raise PlanningError("routing: no vehicles")
        dims = {len(v.capacity) for v in self.vehicles} | {len(s.demand) for s in self.stops}
        if len(dims) > 1:
            raise PlanningError("routing: vehicles and stops disagree on load dimensions")
        ids = [s.stop_id for s in self.stops]
        if len(set(ids)) != len(ids):
            raise PlanningError("routing: duplicate stop ids")
        self.matrix.index(self.depot)
        for s in self.stops:
            self.matrix.index(s.location)
            if s.tw_late < s.tw_early or s.service < 0 or s.prize < 0 or min(s.demand) < 0:
                raise PlanningError(f"routing: stop {s.stop_id} has a bad window/demand/prize")
        for v in self.vehicles:
            if v.shift_end < v.shift_start or v.count < 1 or min(v.capacity) < 0:
                raise PlanningError(f"routing: vehicle {v.vehicle_id} has a bad shift/capacity")


@dataclass(frozen=True, slots=True)
class Infeasibility:
    stop_id: str | None  # None: a fleet-wide problem
    reason: str

    def __str__(self) -> str:
        return f"{self.stop_id}: {self.reason}" if self.stop_id else self.reason


@dataclass(frozen=True, slots=True)
class RouteVisit:
    stop_id: str
    arrival: int
    service_start: int
    departure: int
    load_after: tuple[int, ...]  # still on board after this stop
    distance_from_previous: int


@dataclass(frozen=True, slots=True)
class VehicleRoute:
    vehicle_id: str
    visits: tuple[RouteVisit, ...]
    start: int  # leaves the depot
    end: int  # back at the depot
    distance: int
    load: tuple[int, ...]  # loaded at the depot
    cost: int  # distance cost + fixed cost


@dataclass(frozen=True, slots=True)
class DroppedStop:
    stop_id: str
    required: bool
    prize: int
    reason: str


@dataclass(frozen=True, slots=True)
class SolveProgress:
    elapsed_s: float
    limit_s: float
    iterations: int
    best_cost: int


ProgressCallback = Callable[[SolveProgress], None]


@dataclass(frozen=True, slots=True)
class RoutingResult:
    routes: tuple[VehicleRoute, ...]
    dropped: tuple[DroppedStop, ...]
    problems: tuple[Infeasibility, ...]
    feasible: bool  # every must-visit routed and no route breaks a constraint
    distance: int
    cost: int
    iterations: int = 0
    runtime_s: float = 0.0
    unused_vehicles: tuple[str, ...] = field(default_factory=tuple)


def hhmm(seconds: int) -> str:
    minutes = seconds // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def check_problem(problem: RoutingProblem) -> list[Infeasibility]:
    """Everything that makes a stop impossible, found without solving."""
    m = problem.matrix
    depot = m.index(problem.depot)
    out: list[Infeasibility] = []
    for stop in problem.stops:
        loc = m.index(stop.location)
        fits = [
            v
            for v in problem.vehicles
            if all(d <= c for d, c in zip(stop.demand, v.capacity, strict=True))
        ]
        if not fits:
            out.append(Infeasibility(stop.stop_id, _too_big(stop, problem.vehicles)))
            continue
        why = _reach(problem, stop, depot, loc, fits)
        if why:
            out.append(Infeasibility(stop.stop_id, why))
    required = [s for s in problem.stops if s.required]
    for dim in range(len(problem.vehicles[0].capacity)):
        caps = [v.capacity[dim] * v.count for v in problem.vehicles]
        if any(c >= NO_LIMIT for c in caps):
            continue
        need = sum(s.demand[dim] for s in required)
        if need > sum(caps):
            biggest = sorted(required, key=lambda s: -s.demand[dim])[:5]
            names = ", ".join(f"{s.stop_id} ({s.demand[dim]})" for s in biggest)
            out.append(
                Infeasibility(
                    None,
                    f"must-visit demand {need} exceeds the fleet's capacity {sum(caps)} "
                    f"(load dimension {dim}); largest: {names}",
                )
            )
    return out


def _too_big(stop: StopSpec, vehicles: Sequence[VehicleSpec]) -> str:
    for dim, need in enumerate(stop.demand):
        largest = max(v.capacity[dim] for v in vehicles)
        if need > largest:
            return f"needs {need} (load dimension {dim}) but the largest van carries {largest}"
    return "no single van can carry its load in every dimension"


def _reach(
    problem: RoutingProblem, stop: StopSpec, depot: int, loc: int, vans: Sequence[VehicleSpec]
) -> str:
    """Empty if some van can get there inside the window and back within its shift."""
    m = problem.matrix
    there, back = m.duration_s[depot][loc], m.duration_s[loc][depot]
    reasons = []
    for van in vans:
        leave = max(van.shift_start, problem.depot_open)
        arrive = leave + there
        start = max(arrive, stop.tw_early)
        home_by = min(van.shift_end, problem.depot_close)
        if start > stop.tw_late:
            reasons.append(
                f"earliest arrival {hhmm(arrive)} is after its window closes "
                f"{hhmm(stop.tw_late)} ({van.vehicle_id} leaves {hhmm(leave)})"
            )
        elif start + stop.service + back > home_by:
            reasons.append(
                f"a visit at {hhmm(start)} cannot be back at the depot before "
                f"{hhmm(home_by)} ({van.vehicle_id}'s shift end)"
            )
        else:
            return ""
    return "unreachable: " + reasons[0]


class _Stop:
    """Stopping criterion with progress reports (PyVRP calls it once per iteration)."""

    def __init__(self, limit_s: float, progress: ProgressCallback | None, every_s: float) -> None:
        self.limit_s = limit_s
        self.progress = progress
        self.every_s = every_s
        self.started: float | None = None
        self.last_report = -1.0
        self.iterations = 0

    def __call__(self, best_cost: int) -> bool:
        now = time.perf_counter()
        if self.started is None:
            self.started = now
        self.iterations += 1
        elapsed = now - self.started
        done = elapsed > self.limit_s
        if self.progress and (done or elapsed - self.last_report >= self.every_s):
            self.last_report = elapsed
            cost = int(min(best_cost, 2**62))
            self.progress(
                SolveProgress(min(elapsed, self.limit_s), self.limit_s, self.iterations, cost)
            )
        return done


def solve_routes(
    problem: RoutingProblem,
    time_limit_s: float = 10.0,
    *,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    progress_every_s: float = 0.25,
    soft_must_visits: bool = True,
) -> RoutingResult:
    """Check, solve and read back routes; never raises for an infeasible plan, reports it."""
    if time_limit_s <= 0:
        raise PlanningError("routing: time limit must be positive")
    problems = check_problem(problem)
    impossible = {p.stop_id for p in problems if p.stop_id is not None}
    dropped = [
        DroppedStop(s.stop_id, s.required, s.prize, str(_first(problems, s.stop_id)))
        for s in problem.stops
        if s.stop_id in impossible
    ]
    stops = [s for s in problem.stops if s.stop_id not in impossible]
    data, vehicle_ids = _problem_data(problem, stops, soft_must_visits)
    started = time.perf_counter()
    stop = _Stop(time_limit_s, progress, progress_every_s)
    if stops:
        with warnings.catch_warnings():
            # Reported by us below (and hit by design when must-visits are soft).
            warnings.simplefilter("ignore", PenaltyBoundWarning)
            best = solve(data, stop=stop, seed=seed, collect_stats=False, display=False).best
    else:
        best = Solution(data, [])
    best = _repair(data, best)
    routes, extra = _read_routes(problem, stops, data, best, vehicle_ids)
    problems += extra
    visited = {v.stop_id for r in routes for v in r.visits}
    for s in stops:
        if s.stop_id in visited:
            continue
        if s.required:
            reason = "must-visit left out: no room or time left in any van's route"
            problems.append(Infeasibility(s.stop_id, reason))
        else:
            reason = "dropped by the solver: its prize did not cover the detour, or no room"
        dropped.append(DroppedStop(s.stop_id, s.required, s.prize, reason))
    used = {r.vehicle_id for r in routes}
    must_missing = any(d.required for d in dropped)
    return RoutingResult(
        routes=tuple(routes),
        dropped=tuple(dropped),
        problems=tuple(problems),
        feasible=best.is_feasible() and not must_missing and not extra,
        distance=sum(r.distance for r in routes),
        cost=sum(r.cost for r in routes) + sum(d.prize for d in dropped if not d.required),
        iterations=stop.iterations,
        runtime_s=time.perf_counter() - started,
        unused_vehicles=tuple(v for v in vehicle_ids if v not in used),
    )


def _first(problems: Sequence[Infeasibility], stop_id: str) -> str:
    return next(p.reason for p in problems if p.stop_id == stop_id)


def _must_visit_prize(problem: RoutingProblem, stops: Sequence[StopSpec]) -> int:
    """More than any detour, van or set of optional stops a must-visit could displace."""
    longest = max((max(row) for row in problem.matrix.distance_m), default=0)
    per_metre = max(v.unit_distance_cost for v in problem.vehicles)
    fixed = max(v.fixed_cost for v in problem.vehicles)
    optional = sum(s.prize for s in stops if not s.required)
    return 4 * longest * per_metre + fixed + optional + 1


def _repair(data: ProblemData, best: Solution) -> Solution:
    """Take stops out of routes that break a window or capacity, least valuable first."""
    if best.is_feasible():
        return best
    routes = []
    for route in best.routes():
        visits = [act.idx for act in route.schedule() if act.is_client()]
        vt = route.vehicle_type()
        current = route
        while not current.is_feasible() and visits:
            trials = []
            for k in range(len(visits)):
                trial = Route(data, visits[:k] + visits[k + 1 :], vt)
                broken = trial.time_warp() + sum(trial.excess_load())
                trials.append((broken, data.client(visits[k]).prize, k, trial))
            _, _, k, current = min(trials, key=lambda t: (t[0], t[1], t[2]))
            visits.pop(k)
        if visits:
            routes.append(current)
    return Solution(data, routes)


def _problem_data(
    problem: RoutingProblem, stops: Sequence[StopSpec], soft: bool
) -> tuple[ProblemData, list[str]]:
    m = problem.matrix
    idx = [m.index(problem.depot)] + [m.index(s.location) for s in stops]
    dist = np.asarray(m.distance_m, dtype=np.int64)[np.ix_(idx, idx)]
    dur = np.asarray(m.duration_s, dtype=np.int64)[np.ix_(idx, idx)]
    must_prize = _must_visit_prize(problem, stops)
    locations = [Location(0.0, 0.0, name=problem.depot)]
    locations += [Location(0.0, 0.0, name=s.location) for s in stops]
    clients = [
        Client(
            location=i + 1,
            delivery=list(s.demand),
            service_duration=s.service,
            tw_early=s.tw_early,
            tw_late=s.tw_late,
            prize=must_prize if (s.required and soft) else s.prize,
            required=s.required and not soft,
            name=s.stop_id,
        )
        for i, s in enumerate(stops)
    ]
    depot = Depot(0, tw_early=problem.depot_open, tw_late=problem.depot_close)
    types = []
    vehicle_ids: list[str] = []
    for v in problem.vehicles:
        types.append(
            VehicleType(
                num_available=v.count,
                capacity=list(v.capacity),
                fixed_cost=v.fixed_cost,
                tw_early=max(v.shift_start, problem.depot_open),
                tw_late=min(v.shift_end, problem.depot_close),
                unit_distance_cost=v.unit_distance_cost,
                name=v.vehicle_id,
            )
        )
        vehicle_ids += [v.vehicle_id] + [f"{v.vehicle_id}#{k}" for k in range(2, v.count + 1)]
    data = ProblemData(locations, clients, [depot], types, [dist], [dur])  # type: ignore[list-item]
    return data, vehicle_ids


def _read_routes(
    problem: RoutingProblem,
    stops: Sequence[StopSpec],
    data: ProblemData,
    best: Solution,
    vehicle_ids: list[str],
) -> tuple[list[VehicleRoute], list[Infeasibility]]:
    first_id = [0]
    for v in problem.vehicles[:-1]:
        first_id.append(first_id[-1] + v.count)
    taken = [0] * len(problem.vehicles)
    dist = data.distance_matrix(0)
    routes: list[VehicleRoute] = []
    problems: list[Infeasibility] = []
    for route in best.routes():
        t = route.vehicle_type()
        vid = vehicle_ids[first_id[t] + taken[t]]
        taken[t] += 1
        load = list(route.delivery())
        visits = []
        prev = 0
        for act in route.schedule():
            if not act.is_client():
                continue
            stop = stops[act.idx]
            load = [a - b for a, b in zip(load, stop.demand, strict=True)]
            here = act.idx + 1
            visits.append(
                RouteVisit(
                    stop_id=stop.stop_id,
                    arrival=act.start_time - act.wait_duration,
                    service_start=act.start_time,
                    departure=act.end_time,
                    load_after=tuple(load),
                    distance_from_previous=int(dist[prev, here]),
                )
            )
            prev = here
        if not route.is_feasible():
            problems.append(
                Infeasibility(
                    None,
                    f"route of {vid} breaks a constraint (late by {route.time_warp()}, "
                    f"over capacity by {route.excess_load()})",
                )
            )
        routes.append(
            VehicleRoute(
                vehicle_id=vid,
                visits=tuple(visits),
                start=route.start_time(),
                end=route.end_time(),
                distance=route.distance(),
                load=tuple(route.delivery()),
                cost=route.distance_cost() + route.fixed_vehicle_cost(),
            )
        )
    return routes, problems
