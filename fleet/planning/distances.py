"""Travel distances and times between depot and sites.

Without a road network, distance is the great-circle (haversine) length times a road
factor (streets are not straight lines; 1.3 is a common urban figure) and time is that
distance at an average speed. A caller with a real matrix (OSRM, a map provider, a
spreadsheet) passes it in instead; it is checked, never trusted blindly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from fleet.planning.model import LatLon, PlanningError

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(a: LatLon, b: LatLon) -> float:
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class TravelMatrix:
    """Square matrices over `ids`: distance in metres and duration in seconds (integers)."""

    ids: tuple[str, ...]
    distance_m: tuple[tuple[int, ...], ...]
    duration_s: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(set(self.ids)) != n:
            raise PlanningError("travel matrix: duplicate location ids")
        for name, matrix in (("distance", self.distance_m), ("duration", self.duration_s)):
            if len(matrix) != n or any(len(row) != n for row in matrix):
                raise PlanningError(f"travel matrix: {name} matrix is not {n}x{n}")
            for i, row in enumerate(matrix):
                if any(v < 0 for v in row):
                    raise PlanningError(f"travel matrix: negative {name} from {self.ids[i]}")

    def index(self, location_id: str) -> int:
        try:
            return self.ids.index(location_id)
        except ValueError:
            raise PlanningError(f"travel matrix has no location {location_id!r}") from None

    def subset(self, ids: Sequence[str]) -> TravelMatrix:
        """The matrix restricted (and reordered) to `ids`."""
        pos = {loc: i for i, loc in enumerate(self.ids)}
        missing = [loc for loc in ids if loc not in pos]
        if missing:
            raise PlanningError(f"travel matrix has no location(s) {', '.join(missing[:5])}")
        idx = [pos[loc] for loc in ids]
        return TravelMatrix(
            tuple(ids),
            tuple(tuple(self.distance_m[i][j] for j in idx) for i in idx),
            tuple(tuple(self.duration_s[i][j] for j in idx) for i in idx),
        )


def estimated_matrix(
    points: Sequence[tuple[str, LatLon]],
    road_factor: float = 1.3,
    speed_kmh: float = 30.0,
) -> TravelMatrix:
    """Haversine x road factor at an average speed, for callers without road data."""
    if road_factor < 1.0:
        raise PlanningError("road_factor below 1 would make roads shorter than straight lines")
    if speed_kmh <= 0:
        raise PlanningError("speed_kmh must be positive")
    metres_per_s = speed_kmh / 3.6
    ids = tuple(pid for pid, _ in points)
    dist: list[tuple[int, ...]] = []
    dur: list[tuple[int, ...]] = []
    for _, a in points:
        row = [haversine_m(a, b) * road_factor for _, b in points]
        dist.append(tuple(round(d) for d in row))
        dur.append(tuple(round(d / metres_per_s) for d in row))
    return TravelMatrix(ids, tuple(dist), tuple(dur))
