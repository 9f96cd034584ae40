"""Solomon (1987) VRPTW instances: read the text format, solve, check in exact arithmetic.

The classic layout is a name line, ``VEHICLE`` / ``NUMBER CAPACITY`` and their values,
then ``CUSTOMER`` with a header and one row per node: number, x, y, demand, ready time,
due date, service time; the first row is the depot. The compact layout of
bench/data/solomon (``#`` comments, a capacity line, then the rows) is read too; it
gives no vehicle count, so the fleet is then one vehicle per customer.

Travel time equals Euclidean distance, not rounded. The solver works in integers scaled
by `SCALE`: distances are rounded, but durations, service times and ready times are
rounded up and due dates down, so a route feasible in the solver's integers is feasible
in real numbers too; `exact_check` re-checks every route in double precision anyway.
The default objective is Solomon's hierarchical one: fewest vehicles, then distance (a
fixed cost per vehicle above any possible total distance).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from fleet.planning.distances import TravelMatrix
from fleet.planning.model import PlanningError
from fleet.planning.routing import (
    ProgressCallback,
    RoutingProblem,
    RoutingResult,
    StopSpec,
    VehicleSpec,
    solve_routes,
)

SCALE = 1000  # integer solver units per Solomon distance/time unit
EPS = 1e-6
_HEADER_WORDS = frozenset(
    {"vehicle", "number", "capacity", "customer", "cust", "no", "no.", "xcoord", "xcoord."}
    | {"ycoord", "ycoord.", "demand", "ready", "time", "due", "date", "service"}
)


class SolomonFormatError(PlanningError):
    """A malformed instance file; the message names the line."""


@dataclass(frozen=True, slots=True)
class Node:
    number: int
    x: float
    y: float
    demand: int
    ready: float
    due: float
    service: float


@dataclass(frozen=True, slots=True)
class SolomonInstance:
    name: str
    vehicles: int | None  # None: the file does not say (compact layout)
    capacity: int
    nodes: tuple[Node, ...]  # nodes[0] is the depot

    @property
    def customers(self) -> tuple[Node, ...]:
        return self.nodes[1:]

    @property
    def fleet_size(self) -> int:
        return self.vehicles if self.vehicles is not None else len(self.customers)


class Objective(StrEnum):
    VEHICLES_THEN_DISTANCE = "vehicles"  # Solomon's hierarchical objective
    DISTANCE = "distance"


@dataclass(frozen=True, slots=True)
class SolomonSolution:
    routes: tuple[tuple[int, ...], ...]  # customer numbers in visit order, depot left out
    distance: float  # double precision, recomputed from the routes
    unserved: tuple[int, ...]
    breaks: tuple[str, ...]  # window, shift or capacity violations found in exact arithmetic
    result: RoutingResult

    @property
    def vehicles(self) -> int:
        return len(self.routes)

    @property
    def feasible(self) -> bool:
        return not self.unserved and not self.breaks


def read_solomon(path: Path) -> SolomonInstance:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SolomonFormatError(f"{path}: cannot read: {exc}") from None
    return parse_solomon(text, str(path))


def parse_solomon(text: str, source: str = "<instance>") -> SolomonInstance:
    name = ""
    vehicles: int | None = None
    capacity: int | None = None
    nodes: list[Node] = []
    seen: dict[int, int] = {}
    lone: str | None = None  # a one-number line: the compact layout's capacity, or a name
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{number}"
        tokens = line.split()
        numeric = all(_is_number(t) for t in tokens)
        if not numeric:
            if nodes:
                raise SolomonFormatError(f"{where}: expected 7 numbers for a customer: {line!r}")
            words = {t.lower() for t in tokens}
            if "vehicle" in words and lone is not None:
                name, capacity, lone = name or lone, None, None  # a numeric name, not a capacity
            if not name and capacity is None and not words <= _HEADER_WORDS:
                name = line
            elif not words <= _HEADER_WORDS:
                raise SolomonFormatError(f"{where}: unexpected text {line!r}")
            continue
        if len(tokens) == 7:
            if capacity is None:
                raise SolomonFormatError(f"{where}: customer row before the vehicle capacity")
            node = _node(tokens, where)
            if node.number in seen:
                raise SolomonFormatError(
                    f"{where}: customer {node.number} already given at line {seen[node.number]}"
                )
            if node.demand > capacity:
                raise SolomonFormatError(
                    f"{where}: demand {node.demand} exceeds the vehicle capacity {capacity}"
                )
            seen[node.number] = number
            nodes.append(node)
        elif len(tokens) == 2 and capacity is None and not nodes:
            vehicles = _whole(tokens[0], where, "vehicle number", 1)
            capacity = _whole(tokens[1], where, "capacity", 1)
        elif len(tokens) == 1 and capacity is None and not nodes:
            capacity = _whole(tokens[0], where, "capacity", 1)
            lone = tokens[0]
        else:
            raise SolomonFormatError(
                f"{where}: expected 7 numbers (number x y demand ready due service), "
                f"got {len(tokens)}"
            )
    if capacity is None:
        raise SolomonFormatError(f"{source}: no VEHICLE NUMBER / CAPACITY line")
    if len(nodes) < 2:
        raise SolomonFormatError(f"{source}: needs the depot row and at least one customer")
    return SolomonInstance(name or Path(source).stem, vehicles, capacity, tuple(nodes))


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _whole(token: str, where: str, what: str, low: int) -> int:
    value = float(token)
    if not math.isfinite(value) or value != int(value) or value < low:
        raise SolomonFormatError(f"{where}: {what} must be a whole number >= {low}, got {token}")
    return int(value)


def _node(tokens: list[str], where: str) -> Node:
    values = [float(t) for t in tokens]
    if not all(math.isfinite(v) for v in values):
        raise SolomonFormatError(f"{where}: numbers must be finite")
    number = _whole(tokens[0], where, "customer number", 0)
    demand = _whole(tokens[3], where, "demand", 0)
    _, x, y, _, ready, due, service = values
    if ready < 0 or due < ready:
        raise SolomonFormatError(f"{where}: time window [{ready:g}, {due:g}] is empty or negative")
    if service < 0:
        raise SolomonFormatError(f"{where}: negative service time {service:g}")
    return Node(number, x, y, demand, ready, due, service)


def euclid(a: Node, b: Node) -> float:
    return math.hypot(a.x - b.x, a.y - b.y)


def solomon_problem(
    instance: SolomonInstance, objective: Objective = Objective.VEHICLES_THEN_DISTANCE
) -> RoutingProblem:
    nodes = instance.nodes
    ids = tuple(str(n.number) for n in nodes)
    legs = [[euclid(a, b) * SCALE for b in nodes] for a in nodes]
    dist = tuple(tuple(round(v) for v in row) for row in legs)
    dur = tuple(tuple(math.ceil(v - EPS) for v in row) for row in legs)
    depot = nodes[0]
    longest = max(max(row) for row in dist)
    # Above any route set's distance: every customer and vehicle leaves a node once.
    per_vehicle = (len(nodes) + instance.fleet_size) * longest + 1
    stops = tuple(
        StopSpec(
            stop_id=str(n.number),
            location=str(n.number),
            demand=(n.demand,),
            service=math.ceil(n.service * SCALE - EPS),
            tw_early=math.ceil(n.ready * SCALE - EPS),
            tw_late=math.floor(n.due * SCALE + EPS),
        )
        for n in instance.customers
    )
    open_, close = math.ceil(depot.ready * SCALE - EPS), math.floor(depot.due * SCALE + EPS)
    van = VehicleSpec(
        "vehicle",
        (instance.capacity,),
        open_,
        close,
        fixed_cost=per_vehicle if objective is Objective.VEHICLES_THEN_DISTANCE else 0,
        count=instance.fleet_size,
    )
    return RoutingProblem(
        TravelMatrix(ids, dist, dur), ids[0], (van,), stops, depot_open=open_, depot_close=close
    )


def exact_check(
    instance: SolomonInstance, routes: tuple[tuple[int, ...], ...]
) -> tuple[float, list[str]]:
    """Total distance and every violation, recomputed in double precision."""
    by_number = {n.number: n for n in instance.nodes}
    depot = instance.nodes[0]
    total = 0.0
    breaks: list[str] = []
    for k, route in enumerate(routes, start=1):
        path = [depot, *(by_number[c] for c in route), depot]
        t, load = depot.ready, 0
        for a, b in itertools.pairwise(path):
            leg = euclid(a, b)
            total += leg
            t += leg
            if b is depot:
                continue
            t = max(t, b.ready)
            if t > b.due + EPS:
                breaks.append(f"route {k}: customer {b.number} served at {t:.3f} > {b.due:g}")
            t += b.service
            load += b.demand
        if t > depot.due + EPS:
            breaks.append(f"route {k}: back at the depot at {t:.3f} > {depot.due:g}")
        if load > instance.capacity:
            breaks.append(f"route {k}: load {load} > capacity {instance.capacity}")
    return total, breaks


def solve_solomon(
    instance: SolomonInstance,
    time_limit_s: float,
    *,
    objective: Objective = Objective.VEHICLES_THEN_DISTANCE,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> SolomonSolution:
    problem = solomon_problem(instance, objective)
    result = solve_routes(
        problem, time_limit_s, seed=seed, progress=progress, soft_must_visits=False
    )
    routes = tuple(tuple(int(v.stop_id) for v in r.visits) for r in result.routes if r.visits)
    served = {c for r in routes for c in r}
    unserved = tuple(n.number for n in instance.customers if n.number not in served)
    distance, breaks = exact_check(instance, routes)
    return SolomonSolution(routes, distance, unserved, tuple(breaks), result)
