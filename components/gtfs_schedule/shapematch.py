"""gtfs-validator's stop-to-shape matching (its StopToShapeMatcher), for one shape.

Points are unit vectors as in S2. A stop's potential matches are the local minima of
its distance to the shape's segments within a threshold; a grid of the segments'
bounding boxes finds the few segments near a stop, every other segment being farther
than the threshold (which is all the matcher needs to know of it).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

EARTH_M = 6_371_010.0  # S2Earth's radius
MAX_TO_SHAPE_M = 100.0
LARGE_STATION_FACTOR = 4.0
TOO_MANY_MATCHES = 20
_CELL = 0.01  # degrees; wider than the largest threshold (400 m) in latitude
_M_PER_DEG = math.pi * EARTH_M / 180

Vec = tuple[float, float, float]


def point(lat: float, lon: float) -> Vec:
    p, q = math.radians(lat), math.radians(lon)
    return (math.cos(p) * math.cos(q), math.cos(p) * math.sin(q), math.sin(p))


def _cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def metres(a: Vec, b: Vec) -> float:
    """S2Earth.getDistanceMeters: the angle between two points on the earth."""
    return math.atan2(math.sqrt(_dot(c := _cross(a, b), c)), _dot(a, b)) * EARTH_M


def latlng_metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """S2LatLng.getDistance (haversine) on the earth, for consecutive shape points."""
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    h = math.sin((p2 - p1) / 2) ** 2
    h += math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    return 2 * math.asin(math.sqrt(min(1.0, h))) * EARTH_M


def closest(x: Vec, a: Vec, b: Vec) -> Vec:
    """S2EdgeUtil.getClosestPoint: the point of edge AB closest to X."""
    s, d = (a[0] + b[0], a[1] + b[1], a[2] + b[2]), (b[0] - a[0], b[1] - a[1], b[2] - a[2])
    n = _cross(s, d)
    norm2 = _dot(n, n)
    if norm2 > 0:
        k = _dot(x, n) / norm2
        p = (x[0] - n[0] * k, x[1] - n[1] * k, x[2] - n[2] * k)
        if _dot(_cross(p, n), a) > 0 and _dot(_cross(n, p), b) > 0:
            length = math.sqrt(_dot(p, p))
            return (p[0] / length, p[1] / length, p[2] / length)
    da = (x[0] - a[0]) ** 2 + (x[1] - a[1]) ** 2 + (x[2] - a[2]) ** 2
    db = (x[0] - b[0]) ** 2 + (x[1] - b[1]) ** 2 + (x[2] - b[2]) ** 2
    return a if da <= db else b


@dataclass(slots=True)
class Match:
    index: int = 0
    geo: float = 0.0  # distance along the shape
    to_shape: float = math.inf
    at: Vec = (0.0, 0.0, 0.0)

    def keep(self, at: Vec, to_shape: float, index: int) -> None:
        if to_shape < self.to_shape:
            self.to_shape, self.at, self.index = to_shape, at, index


@dataclass(slots=True)
class Shape:
    """A shape's points with geo and user distances, and a grid of its segments."""

    vecs: list[Vec]
    geo: list[float]
    user: list[float]
    grid: dict[tuple[int, int], list[int]] = field(default_factory=lambda: defaultdict(list))
    everywhere: list[int] = field(default_factory=list)

    @classmethod
    def build(cls, points: Sequence[tuple[float, float, float]]) -> Shape:
        """From (lat, lon, shape_dist_traveled or 0) in shape_pt_sequence order."""
        vecs, geo, user = [], [], []
        total = reach = 0.0
        for i, (lat, lon, dist) in enumerate(points):
            if i:
                total += max(0.0, latlng_metres(points[i - 1][:2], (lat, lon)))
            reach = max(reach, dist)
            vecs.append(point(lat, lon))
            geo.append(total)
            user.append(reach)
        shape = cls(vecs, geo, user)
        for i in range(len(points) - 1):
            (lat1, lon1, _), (lat2, lon2, _) = points[i], points[i + 1]
            r0, r1 = (
                math.floor(min(lat1, lat2) / _CELL) - 1,
                math.floor(max(lat1, lat2) / _CELL) + 1,
            )
            c0, c1 = (
                math.floor(min(lon1, lon2) / _CELL) - 1,
                math.floor(max(lon1, lon2) / _CELL) + 1,
            )
            if (r1 - r0 + 1) * (c1 - c0 + 1) > 400 or abs(lon1 - lon2) > 180:
                shape.everywhere.append(i)
                continue
            for r in range(r0, r1 + 1):
                for c in range(c0, c1 + 1):
                    shape.grid[(r, c)].append(i)
        return shape

    def near(self, lat: float, lon: float, limit: float) -> list[int]:
        """Segments that may lie within ``limit`` metres of (lat, lon), in order."""
        dlat = limit / _M_PER_DEG
        cos = math.cos(math.radians(lat))
        if cos < 0.05:
            return list(range(len(self.vecs) - 1))
        dlon = dlat / cos
        found: set[int] = set(self.everywhere)
        for r in range(math.floor((lat - dlat) / _CELL), math.floor((lat + dlat) / _CELL) + 1):
            c0, c1 = math.floor((lon - dlon) / _CELL), math.floor((lon + dlon) / _CELL)
            for c in range(c0, c1 + 1):
                found.update(self.grid.get((r, c), ()))
        return sorted(found)

    def _fill(self, match: Match) -> Match:
        match.geo = self.geo[match.index] + metres(match.at, self.vecs[match.index])
        return match

    def matches(self, x: Vec, lat: float, lon: float, limit: float) -> list[Match]:
        """ShapePoints.matchesFromLocation: each local minimum within ``limit``."""
        out: list[Match] = []
        local = Match()
        to_end = math.inf
        going_away = False
        last = -2
        for i in self.near(lat, lon, limit):
            if i != last + 1:  # a farther segment between: it closed any local match
                if local.to_shape != math.inf:
                    out.append(local)
                    local = Match()
                going_away = False
            last = i
            at = closest(x, self.vecs[i], self.vecs[i + 1])
            d = metres(x, at)
            if d <= limit:
                if going_away and d < to_end and local.to_shape != math.inf:
                    out.append(local)
                    local = Match()
                local.keep(at, d, i)
            elif local.to_shape != math.inf:
                out.append(local)
                local = Match()
            to_end = metres(x, self.vecs[i + 1])
            going_away = to_end > d
        if local.to_shape != math.inf:
            out.append(local)
        return [self._fill(m) for m in out]

    def from_user(self, dist: float, start: int, x: Vec) -> Match:
        """ShapePoints.matchFromUserDist: the point at user distance ``dist``."""
        prev = nxt = start
        while nxt < len(self.vecs) and dist >= self.user[nxt]:
            prev = nxt
            nxt += 1
        fraction = 0.0
        if not (nxt <= 0 or prev + 1 >= len(self.vecs)):
            lo, hi = self.user[prev], self.user[nxt]
            if not _near(lo, hi):
                fraction = (dist - lo) / (hi - lo)
        a = self.vecs[prev]
        b = a if prev + 1 == len(self.vecs) else self.vecs[prev + 1]
        at = a if metres(a, b) <= 1e-15 * EARTH_M else _interpolate(fraction, a, b)
        g0 = self.geo[prev]
        g1 = g0 if prev + 1 == len(self.vecs) else self.geo[prev + 1]
        return Match(prev, g0 + fraction * (g1 - g0), metres(x, at), at)


def _near(a: float, b: float) -> bool:
    """MathUtil.nearByFractionOrMargin with its defaults (1e-6 fraction, 1e-7 margin)."""
    return abs(a - b) <= max(1e-7, 1e-6 * max(abs(a), abs(b)))


def _interpolate(t: float, a: Vec, b: Vec) -> Vec:
    """S2EdgeUtil.interpolate: the point a fraction ``t`` of the way from A to B."""
    if t == 0:
        return a
    if t == 1:
        return b
    angle = math.atan2(math.sqrt(_dot(c := _cross(a, b), c)), _dot(a, b))
    sa, sb = math.sin((1 - t) * angle), math.sin(t * angle)
    p = (a[0] * sa + b[0] * sb, a[1] * sa + b[1] * sb, a[2] * sa + b[2] * sb)
    n = math.sqrt(_dot(p, p))
    return (p[0] / n, p[1] / n, p[2] / n)


@dataclass(frozen=True, slots=True)
class Stop:
    """A stop_time to match: its position, user distance (0: none) and threshold."""

    row: int
    stop_id: str
    x: Vec
    lat: float
    lon: float
    user: float
    large: bool


Problem = tuple[str, int, str]  # (code, stop_times row, stop_id)


def _best(
    stops: Sequence[Stop], options: list[list[Match]], problems: list[Problem]
) -> list[Match] | None:
    """findBestMatches: the feasible assignment (geo distance never decreasing along the
    stops) of least total distance to the shape, or None with the
    stops_match_shape_out_of_order problem where there is none."""
    partial: list[tuple[float, float, list[int]]] = [(0.0, -math.inf, [])]
    for k, matches in enumerate(options):
        nxt: list[tuple[float, float, list[int]]] = []
        for i, m in enumerate(matches):
            best: tuple[float, float, list[int]] | None = None
            for cand in partial:
                if cand[1] <= m.geo and (best is None or cand[0] < best[0]):
                    best = cand
            if best is not None:
                nxt.append((best[0] + m.to_shape, m.geo, [*best[2], i]))
        if not nxt:
            problems.append(("stops_match_shape_out_of_order", stops[k].row, stops[k].stop_id))
            return None
        partial = nxt
    winner = min(partial, key=lambda p: p[0])
    return [options[k][i] for k, i in enumerate(winner[2])]


Cache = dict[tuple[str, bool], list[Match]]


def _potential(shape: Shape, stop: Stop, problems: list[Problem], cache: Cache) -> list[Match]:
    """computePotentialMatchesUsingGeoDistance, with its two problems."""
    limit = MAX_TO_SHAPE_M * (LARGE_STATION_FACTOR if stop.large else 1)
    key = (stop.stop_id, stop.large)
    found = cache.get(key)
    if found is None:
        found = cache[key] = shape.matches(stop.x, stop.lat, stop.lon, limit)
    if not found:
        if len(shape.vecs) > 1 or metres(stop.x, shape.vecs[0]) > limit:
            problems.append(("stop_too_far_from_shape", stop.row, stop.stop_id))
    elif len(found) > TOO_MANY_MATCHES:
        problems.append(("stop_has_too_many_matches_for_shape", stop.row, stop.stop_id))
    return found


def match_geo(shape: Shape, stops: Sequence[Stop], cache: Cache) -> list[Problem]:
    """matchUsingGeoDistance's problems."""
    problems: list[Problem] = []
    if stops and shape.vecs:
        options = [_potential(shape, s, problems, cache) for s in stops]
        if all(options):
            _best(stops, options, problems)
    return problems


def match_user(shape: Shape, stops: Sequence[Stop], cache: Cache) -> list[Problem]:
    """matchUsingUserDistance's problems, its too-far ones under their own code."""
    problems: list[Problem] = []
    if not stops or not shape.vecs:
        return problems
    options: list[list[Match]] = []
    start = 0
    for s in stops:
        if s.user > 0:
            m = shape.from_user(s.user, start, s.x)
            start = m.index
            options.append([m])
        else:
            found = _potential(shape, s, problems, cache)
            if not found:
                return problems
            options.append(found)
    chosen = _best(stops, options, problems)
    for s, m in zip(stops, chosen or (), strict=False):
        if m.to_shape > MAX_TO_SHAPE_M:
            problems.append((_TOO_FAR, s.row, s.stop_id))
    # Every too-far problem of this matching is reported under the user-distance code.
    return [(_USER_TOO_FAR if p[0] == _TOO_FAR else p[0], p[1], p[2]) for p in problems]


_TOO_FAR = "stop_too_far_from_shape"
_USER_TOO_FAR = "stop_too_far_from_shape_using_user_distance"
TOO_FAR = frozenset((_TOO_FAR, _USER_TOO_FAR))
