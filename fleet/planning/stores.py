"""A store's units are one stop: the chosen machines grouped by location for the router.

Several units at one location (an automated store's kiosk towers and cabinet, a bank of
smart cabinets) are served in one visit, so the router sees one node per location:

- **demand** is the sum of the units' loads (units and case equivalents);
- **service time** is the sum of the units' own service times (`MachineSite.service_fixed_min`
  plus the per-unit seconds): the crew parks once and restocks the units one after another;
  to model a store's shared overhead, give the full fixed minutes to one unit and only the
  extra minutes per cabinet to the others;
- **time window**: the units are served in order of their access closing time (then id),
  each starting where the previous one ended, and the node's window is the set of start
  times at which every unit starts inside its own access hours -- the intersection of the
  units' hours, narrowed by the service of the units before each one;
- **where**: the node stands at its first-served unit (give a store's units one set of
  coordinates; walking between them is part of the service time).

Selection per store: units chosen on their own score (or forced) make the visit. A unit
offered only because it is due soon (a "may-go", see scoring.pull_forward) rides along
with them: on a visit that happens anyway it adds only its service time and load. A
rider that would empty the window or overfill every van is left out and reported.

Fallback: when the core units alone cannot share one visit (their hours do not overlap,
or their load is more than the largest van carries), the store is split into as few
stops as first-fit finds (ids "LOC", "LOC#2", ...) and a note says why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from fleet.planning.model import MachineSite, PlanningError, Reason
from fleet.planning.routing import DroppedStop, Infeasibility, hhmm
from fleet.planning.scoring import MachineScore

Fits = Callable[[tuple[int, ...]], bool]


def location_of(site: MachineSite) -> str:
    """The location a machine stands at: its site's location id, else its own id (the same
    rule as `fleet.locations.location_key`)."""
    return site.location_id.strip() or site.machine_id


@dataclass(frozen=True, slots=True)
class UnitVisit:
    """One chosen machine, as the router needs it; times in seconds since midnight."""

    machine_id: str
    demand: tuple[int, ...]
    service_s: int
    tw_early: int
    tw_late: int
    required: bool
    prize: int  # router cost units; ignored when required
    rider: bool = False  # chosen only as due soon: rides along with the store's visit

    def __post_init__(self) -> None:
        if self.tw_late < self.tw_early or self.service_s < 0:
            raise PlanningError(f"unit {self.machine_id}: bad window or service time")


@dataclass(frozen=True, slots=True)
class StoreStop:
    """One router node: the units of one location served in one visit, in service order."""

    stop_id: str
    location_id: str
    units: tuple[UnitVisit, ...]

    def __post_init__(self) -> None:
        if not self.units:
            raise PlanningError(f"store stop {self.stop_id}: no units")

    @property
    def machines(self) -> tuple[str, ...]:
        return tuple(u.machine_id for u in self.units)

    @property
    def demand(self) -> tuple[int, ...]:
        return tuple(sum(dim) for dim in zip(*(u.demand for u in self.units), strict=True))

    @property
    def service_s(self) -> int:
        return sum(u.service_s for u in self.units)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Seconds from the node's service start to each unit's."""
        out, clock = [], 0
        for u in self.units:
            out.append(clock)
            clock += u.service_s
        return tuple(out)

    @property
    def required(self) -> bool:
        return any(u.required for u in self.units)

    @property
    def prize(self) -> int:
        return sum(u.prize for u in self.units if not u.required)

    @property
    def window(self) -> tuple[int, int]:
        found = store_window(self.units)
        if found is None:
            raise PlanningError(f"store stop {self.stop_id}: its units' hours do not overlap")
        return found


@dataclass(frozen=True, slots=True)
class LeftOut:
    machine_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Grouping:
    stops: tuple[StoreStop, ...]
    left_out: tuple[LeftOut, ...]  # riders that could not join their store's visit
    notes: tuple[str, ...]  # stores split over several stops, and why


def service_order(units: Sequence[UnitVisit]) -> list[UnitVisit]:
    """Earliest closing first: the order that best keeps every unit inside its hours."""
    return sorted(units, key=lambda u: (u.tw_late, u.machine_id))


def store_window(units: Sequence[UnitVisit]) -> tuple[int, int] | None:
    """Node service starts at which every unit, served in this order back to back, starts
    inside its own window; None if there is none."""
    early, late, offset = 0, 2**62, 0
    for u in units:
        early = max(early, u.tw_early - offset)
        late = min(late, u.tw_late - offset)
        offset += u.service_s
    return (early, late) if units and early <= late else None


def _summed(units: Sequence[UnitVisit]) -> tuple[int, ...]:
    return tuple(sum(dim) for dim in zip(*(u.demand for u in units), strict=True))


def _joins(group: Sequence[UnitVisit], unit: UnitVisit, fits: Fits) -> bool:
    trial = service_order([*group, unit])
    return store_window(trial) is not None and fits(_summed(trial))


def group_stops(
    units: Mapping[str, Sequence[UnitVisit]],
    fits: Fits,
    taken: frozenset[str] = frozenset(),
) -> Grouping:
    """Chosen units per location id -> router nodes. `fits(demand)`: some van carries it.
    `taken`: ids a split part must not reuse (every location id of the fleet)."""
    stops: list[StoreStop] = []
    left_out: list[LeftOut] = []
    notes: list[str] = []
    for location in sorted(units):
        members = list(units[location])
        core = [u for u in members if not u.rider] or members
        riders = [u for u in members if u.rider and core is not members]
        groups: list[list[UnitVisit]] = []
        for unit in service_order(core):
            home = next((g for g in groups if _joins(g, unit, fits)), None)
            if home is None:
                groups.append([unit])
            else:
                home.append(unit)
        for rider in service_order(riders):
            home = next((g for g in groups if _joins(g, rider, fits)), None)
            if home is None:
                left_out.append(LeftOut(rider.machine_id, _no_room(location, groups, rider)))
            else:
                home.append(rider)
        ids = _stop_ids(location, len(groups), taken)
        parts = [
            StoreStop(stop_id, location, tuple(service_order(g)))
            for stop_id, g in zip(ids, groups, strict=True)
        ]
        stops += parts
        if len(parts) > 1:
            notes.append(_split_note(location, core, parts, fits))
    return Grouping(tuple(stops), tuple(left_out), tuple(notes))


def _stop_ids(location: str, count: int, taken: frozenset[str]) -> list[str]:
    ids = [location] + [f"{location}#{k}" for k in range(2, count + 1)]
    clash = sorted(set(ids[1:]) & taken)
    if clash:
        raise PlanningError(
            f"store {location} must be split but {clash[0]!r} is already a location id"
        )
    return ids


def _no_room(location: str, groups: Sequence[Sequence[UnitVisit]], rider: UnitVisit) -> str:
    with_whom = ", ".join(u.machine_id for g in groups for u in g)
    return (
        f"due soon, but cannot ride along with {with_whom} at store {location}: "
        f"its access {hhmm(rider.tw_early)}-{hhmm(rider.tw_late)} or its load leaves no room"
    )


def _split_note(
    location: str, core: Sequence[UnitVisit], parts: Sequence[StoreStop], fits: Fits
) -> str:
    if store_window(service_order(core)) is None:
        hours = ", ".join(
            f"{u.machine_id} {hhmm(u.tw_early)}-{hhmm(u.tw_late)}" for u in service_order(core)
        )
        why = f"its units' access hours leave no common time ({hours})"
    elif not fits(_summed(core)):
        why = f"its load {'/'.join(map(str, _summed(core)))} is more than one van carries"
    else:
        why = "no one visit fits every unit's hours and load"
    listed = "; ".join(f"{p.stop_id}: {', '.join(p.machines)}" for p in parts)
    return f"store {location} is served as {len(parts)} stops: {why} ({listed})"


# --- back from stops to units ------------------------------------------------------------


def ride_along(scores: Sequence[MachineScore], stops: Sequence[StoreStop]) -> list[MachineScore]:
    """Riders that joined a store's visit say so among their reasons."""
    joined: dict[str, Reason] = {}
    for stop in stops:
        core = [u.machine_id for u in stop.units if not u.rider]
        if not core:
            continue
        for unit in stop.units:
            if unit.rider:
                joined[unit.machine_id] = Reason(
                    "store_ride_along",
                    f"rides along to store {stop.location_id}, visited for {', '.join(core)}: "
                    "adds only its service time",
                )
    return [
        replace(s, reasons=(*s.reasons, joined[s.machine_id])) if s.machine_id in joined else s
        for s in scores
    ]


def unit_dropped(dropped: Sequence[DroppedStop], grouping: Grouping) -> tuple[DroppedStop, ...]:
    """The router's dropped stops as the machines they held, plus riders left out."""
    stops = {stop.stop_id: stop for stop in grouping.stops}
    sizes = Counter(stop.location_id for stop in grouping.stops for _ in stop.units)
    out: list[DroppedStop] = []
    for d in dropped:
        stop = stops[d.stop_id]
        alone = sizes[stop.location_id] == 1
        reason = d.reason if alone else f"{d.reason} ({_named(stop)})"
        out += [DroppedStop(u.machine_id, u.required, u.prize, reason) for u in stop.units]
    out += [
        DroppedStop(lo.machine_id, required=False, prize=0, reason=lo.reason)
        for lo in grouping.left_out
    ]
    return tuple(out)


def unit_problems(
    problems: Sequence[Infeasibility], stops: Sequence[StoreStop]
) -> tuple[Infeasibility, ...]:
    """Problems of a multi-unit stop name its units too."""
    by_id = {stop.stop_id: stop for stop in stops}
    out = []
    for problem in problems:
        stop = by_id.get(problem.stop_id or "")
        if stop is not None and len(stop.units) > 1:
            out.append(Infeasibility(problem.stop_id, f"{problem.reason} ({_named(stop)})"))
        else:
            out.append(problem)
    return tuple(out)


def _named(stop: StoreStop) -> str:
    return f"store {stop.location_id}: {', '.join(stop.machines)}"
