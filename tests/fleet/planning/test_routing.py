"""Routing on small instances. Every constraint is re-checked from the returned stops
against our own matrix, not taken from the solver's feasibility flag."""

from __future__ import annotations

import itertools

from fleet.planning.distances import TravelMatrix
from fleet.planning.routing import (
    NO_LIMIT,
    RoutingProblem,
    RoutingResult,
    SolveProgress,
    StopSpec,
    VehicleSpec,
    solve_routes,
)

# Depot at 0 and sites on a line, 1 km apart; 120 s per km.
POS = {"depot": 0, "a": 1, "b": 2, "c": 3, "d": 5, "e": 8, "far": 40}


def line_matrix() -> TravelMatrix:
    ids = tuple(POS)
    dist = tuple(tuple(abs(POS[i] - POS[j]) * 1000 for j in ids) for i in ids)
    dur = tuple(tuple(abs(POS[i] - POS[j]) * 120 for j in ids) for i in ids)
    return TravelMatrix(ids, dist, dur)


def stop(sid: str, demand: int, early: int = 0, late: int = 10_000, **kw: object) -> StopSpec:
    return StopSpec(sid, sid, (demand,), 300, early, late, **kw)  # type: ignore[arg-type]


def van(vid: str, capacity: int, start: int = 0, end: int = 10_000, count: int = 1) -> VehicleSpec:
    return VehicleSpec(vid, (capacity,), start, end, count=count)


def check(problem: RoutingProblem, result: RoutingResult) -> None:
    m = problem.matrix
    stops = {s.stop_id: s for s in problem.stops}
    vans = {}
    for v in problem.vehicles:
        vans[v.vehicle_id] = v
        for k in range(2, v.count + 1):
            vans[f"{v.vehicle_id}#{k}"] = v
    seen: list[str] = []
    for route in result.routes:
        v = vans[route.vehicle_id]
        assert v.shift_start <= route.start
        prev, t = m.index(problem.depot), route.start
        assert sum(stops[x.stop_id].demand[0] for x in route.visits) <= v.capacity[0]
        for visit in route.visits:
            s = stops[visit.stop_id]
            here = m.index(s.location)
            assert visit.arrival >= t + m.duration_s[prev][here]
            assert visit.service_start >= max(visit.arrival, s.tw_early)
            assert visit.service_start <= s.tw_late, f"{s.stop_id} served after its window"
            assert visit.departure == visit.service_start + s.service
            prev, t = here, visit.departure
            seen.append(s.stop_id)
        assert route.end >= t + m.duration_s[prev][m.index(problem.depot)]
        assert route.end <= v.shift_end, f"{route.vehicle_id} back after its shift"
    assert len(seen) == len(set(seen))


def test_feasible_routes_respect_windows_capacity_and_shifts() -> None:
    problem = RoutingProblem(
        line_matrix(),
        "depot",
        (van("v1", 10), van("v2", 10)),
        (
            stop("a", 4, 0, 2000),
            stop("b", 4, 3000, 4000),
            stop("c", 4, 0, 1500),
            stop("d", 4, 2000, 6000),
            stop("e", 2, 0, 9000),  # 4+4+2 and 4+4: fits two vans of 10
        ),
    )
    result = solve_routes(problem, time_limit_s=0.5)
    check(problem, result)
    assert result.feasible
    assert {v.stop_id for r in result.routes for v in r.visits} == {"a", "b", "c", "d", "e"}
    assert result.distance == sum(r.distance for r in result.routes)


def test_prize_collecting_drops_the_low_value_stop_when_capacity_is_short() -> None:
    problem = RoutingProblem(
        line_matrix(),
        "depot",
        (van("v1", 10),),
        (
            stop("a", 5, required=False, prize=1_000_000),
            stop("b", 5, required=False, prize=10),  # cheapest to lose
            stop("c", 5, required=False, prize=900_000),
        ),
    )
    result = solve_routes(problem, time_limit_s=0.5)
    check(problem, result)
    assert {v.stop_id for r in result.routes for v in r.visits} == {"a", "c"}
    assert [d.stop_id for d in result.dropped] == ["b"]
    assert "prize" in result.dropped[0].reason


def test_unreachable_window_is_explained_by_name() -> None:
    problem = RoutingProblem(
        line_matrix(),
        "depot",
        (van("v1", 10, start=1000),),
        (stop("a", 1), stop("far", 1, 0, 2000)),  # 40 km = 4800 s away, window closes at 2000
    )
    result = solve_routes(problem, time_limit_s=0.3)
    check(problem, result)
    assert not result.feasible
    [problem_far] = [p for p in result.problems if p.stop_id == "far"]
    assert "after its window closes" in problem_far.reason
    assert "far" in str(problem_far)
    assert {v.stop_id for r in result.routes for v in r.visits} == {"a"}


def test_stop_that_cannot_return_before_shift_end() -> None:
    problem = RoutingProblem(line_matrix(), "depot", (van("v1", 10, end=9000),), (stop("far", 1),))
    result = solve_routes(problem, time_limit_s=0.2)
    assert result.problems[0].stop_id == "far"
    assert "back at the depot" in result.problems[0].reason


def test_demand_above_fleet_capacity_names_the_machines() -> None:
    problem = RoutingProblem(
        line_matrix(),
        "depot",
        (van("v1", 10), van("v2", 10)),
        (stop("a", 30), stop("b", 8), stop("c", 8), stop("d", 8)),
    )
    result = solve_routes(problem, time_limit_s=0.3)
    check(problem, result)
    assert not result.feasible
    by_stop = {p.stop_id: p.reason for p in result.problems}
    assert "largest van carries 10" in by_stop["a"]
    fleet_wide = [p.reason for p in result.problems if p.stop_id is None]
    assert fleet_wide
    assert "exceeds the fleet's capacity" in fleet_wide[0]
    assert "a (30)" in fleet_wide[0]
    left_out = [p.stop_id for p in result.problems if p.stop_id in {"b", "c", "d"}]
    assert len(left_out) == 1  # two of three fit in the remaining space


def test_must_visit_that_cannot_fit_is_reported_after_solving() -> None:
    # Each stop is reachable alone, but two tight windows at opposite ends cannot both be
    # met by one van: the solver must leave one out and we must say which.
    problem = RoutingProblem(
        line_matrix(),
        "depot",
        (van("v1", 10),),
        (stop("a", 1, 100, 200), stop("e", 1, 900, 1000), stop("c", 1, 0, 10_000)),
    )
    result = solve_routes(problem, time_limit_s=0.5)
    check(problem, result)
    missing = [p for p in result.problems if p.stop_id in {"a", "e"}]
    assert len(missing) == 1
    assert "must-visit left out" in missing[0].reason
    assert not result.feasible


def test_progress_callback_reports_while_solving() -> None:
    seen: list[SolveProgress] = []
    problem = RoutingProblem(line_matrix(), "depot", (van("v1", 10),), (stop("a", 1), stop("b", 1)))
    solve_routes(problem, time_limit_s=0.3, progress=seen.append, progress_every_s=0.05)
    assert len(seen) >= 2
    assert seen[-1].elapsed_s == seen[-1].limit_s == 0.3
    assert all(a.iterations <= b.iterations for a, b in itertools.pairwise(seen))


def test_unlimited_dimension_and_identical_vans() -> None:
    problem = RoutingProblem(
        line_matrix(),
        "depot",
        (VehicleSpec("v", (5, NO_LIMIT), 0, 10_000, count=3),),
        tuple(StopSpec(s, s, (4, 999_999), 60, 0, 10_000) for s in ("a", "b", "c")),
    )
    result = solve_routes(problem, time_limit_s=0.3)
    assert result.feasible
    assert sorted(r.vehicle_id for r in result.routes) == ["v", "v#2", "v#3"]
