"""The router's input from the day's choice: vans as vehicles, chosen machines as units,
and one node per store stop (see stores.py for how units become stops).

Money becomes the solver's cost unit here: "metres driven by the cheapest van" (`per_km`
is that van's cost per km), which keeps the solver's bounded penalties meaningful.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fleet.planning.distances import TravelMatrix, estimated_matrix
from fleet.planning.model import CapacityUnit, Depot, MachineSite, Product, Van
from fleet.planning.picklists import MachinePickList
from fleet.planning.routing import NO_LIMIT, RoutingProblem, StopSpec, VehicleSpec
from fleet.planning.scoring import Decision, MachineScore
from fleet.planning.stores import StoreStop, UnitVisit


def unit_visit(
    score: MachineScore,
    site: MachineSite,
    picks: MachinePickList,
    *,
    products: Mapping[str, Product],
    not_before: int,
    per_km: int,
) -> UnitVisit:
    """A chosen machine with the load and service time of its (estimated) pick list."""
    return UnitVisit(
        machine_id=score.machine_id,
        demand=(picks.units, picks.case_equivalents_milli(products)),
        service_s=site.service_seconds(picks.units),
        tw_early=max(site.access.start_min * 60, not_before),
        tw_late=max(site.access.end_min * 60, not_before),
        required=score.decision is Decision.REQUIRED,
        prize=round(score.prize * 1000 / per_km),
        rider=score.decision is Decision.OPTIONAL
        and any(r.code == "due_soon" for r in score.reasons),
    )


def vehicle_specs(vans: Sequence[Van], *, not_before: int, per_km: int) -> tuple[VehicleSpec, ...]:
    """Two load dimensions: units, and thousandths of a case; a van counts one of them."""
    return tuple(
        VehicleSpec(
            vehicle_id=v.van_id,
            capacity=(v.capacity, NO_LIMIT)
            if v.capacity_unit is CapacityUnit.UNITS
            else (NO_LIMIT, v.capacity * 1000),
            shift_start=max(v.shift.start_min * 60, not_before),
            shift_end=max(v.shift.end_min * 60, not_before),
            unit_distance_cost=max(1, round(v.cost_per_km / per_km)),
            fixed_cost=round(v.fixed_cost * 1000 / per_km),
        )
        for v in vans
    )


def carries(vehicle: VehicleSpec, demand: Sequence[int]) -> bool:
    return all(d <= c for d, c in zip(demand, vehicle.capacity, strict=True))


def routing_problem(
    depot: Depot,
    matrix: TravelMatrix | None,
    sites: Mapping[str, MachineSite],
    stops: Sequence[StoreStop],
    vehicles: tuple[VehicleSpec, ...],
    *,
    road_factor: float,
    speed_kmh: float,
) -> RoutingProblem:
    """One node per store stop, standing where its first-served unit stands. `matrix`
    (over the depot and machine ids) is used when given, else distances are estimated."""
    ids = [depot.depot_id] + [stop.machines[0] for stop in stops]
    if matrix is not None:
        travel = matrix.subset(ids)
    else:
        points = [(depot.depot_id, depot.location)]
        points += [(m, sites[m].location) for m in ids[1:]]
        travel = estimated_matrix(points, road_factor, speed_kmh)
    specs = []
    for stop in stops:
        early, late = stop.window
        specs.append(
            StopSpec(
                stop_id=stop.stop_id,
                location=stop.machines[0],
                demand=stop.demand,
                service=stop.service_s,
                tw_early=early,
                tw_late=late,
                required=stop.required,
                prize=stop.prize,
            )
        )
    return RoutingProblem(
        matrix=travel,
        depot=depot.depot_id,
        vehicles=vehicles,
        stops=tuple(specs),
        depot_open=depot.hours.start_min * 60,
        depot_close=depot.hours.end_min * 60,
    )
