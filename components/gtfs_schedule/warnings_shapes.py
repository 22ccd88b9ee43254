"""gtfs-validator's WARNINGs from matching each trip's stops to its shape:
stop_too_far_from_shape, stop_too_far_from_shape_using_user_distance,
stop_has_too_many_matches_for_shape and stops_match_shape_out_of_order.

Shape by shape: its points (through the shapes key index), then its trips (through
the trips shape_id index) and their stop_times (through the stop_times key); trips
with the same stops and distances as one already matched on the shape are not matched
again, as in gtfs-validator. Only one shape and one trip are held at a time, with the
stops' positions (a small table).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.rules import modes_parsed
from interlock.components.gtfs_schedule.shapematch import (
    TOO_FAR,
    Cache,
    Shape,
    Stop,
    match_geo,
    match_user,
    point,
)
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

_ROW_MASK = (1 << ROWID_BITS) - 1
_RAIL = 2
_TABLES = ("stops", "trips", "routes", "stop_times", "shapes")


def _positions(
    conn: sqlite3.Connection, mode: str | None, moded: bool
) -> dict[str, tuple[float, float]]:
    """Each stop's position, or its nearest ancestor's (StopUtil.getStopOrParentLatLng)."""
    where = "WHERE mode IS ?" if moded else ""
    rows: dict[str, tuple[float | None, float | None, str | None]] = {}
    sql = f"SELECT stop_id, stop_lat, stop_lon, parent_station FROM stops {where} ORDER BY rowid"
    for stop, lat, lon, parent in conn.execute(sql, (mode,) if moded else ()):
        rows.setdefault(stop, (lat, lon, parent))
    out: dict[str, tuple[float, float]] = {}
    for stop in rows:
        seen: set[str] = set()
        at: str | None = stop
        while at is not None and at in rows and at not in seen:
            lat, lon, parent = rows[at]
            if lat is not None and lon is not None:
                out[stop] = (lat, lon)
                break
            seen.add(at)
            at = parent
    return out


def check_shape_matching(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    moded = bool(feeds) and feeds[0].mode is not None
    for mode in sorted(modes_parsed(book, feeds, _TABLES), key=str):
        _check_mode(conn, mode, moded, book)


def _check_mode(conn: sqlite3.Connection, mode: str | None, moded: bool, book: NoticeBook) -> None:
    m = "mode IS ? AND " if moded else ""
    args: tuple[str | None, ...] = (mode,) if moded else ()
    shapes = conn.execute(
        f"SELECT DISTINCT shape_id FROM trips WHERE {m}shape_id IS NOT NULL ORDER BY shape_id", args
    ).fetchall()
    if not shapes:
        return
    positions = _positions(conn, mode, moded)
    route_types = dict(
        conn.execute(
            f"SELECT route_id, route_type FROM routes WHERE {m}1 ORDER BY rowid DESC", args
        )
    )
    for (shape_id,) in shapes:
        pts = conn.execute(
            f"SELECT shape_pt_lat, shape_pt_lon, coalesce(shape_dist_traveled, 0) FROM shapes "
            f"WHERE {m}shape_id = ? AND shape_pt_lat IS NOT NULL AND shape_pt_lon IS NOT NULL "
            "ORDER BY shape_pt_sequence",
            (*args, shape_id),
        ).fetchall()
        if pts:
            _check_shape(
                conn, m, args, shape_id, Shape.build(pts), positions, route_types, mode, book
            )


def _check_shape(
    conn: sqlite3.Connection,
    m: str,
    args: tuple[str | None, ...],
    shape_id: str,
    shape: Shape,
    positions: dict[str, tuple[float, float]],
    route_types: dict[str, int],
    mode: str | None,
    book: NoticeBook,
) -> None:
    seen: set[tuple[tuple[str, float], ...]] = set()
    reported: set[str] = set()
    cache: Cache = {}
    trips = conn.execute(
        f"SELECT trip_id, route_id FROM trips WHERE {m}shape_id = ? ORDER BY rowid",
        (*args, shape_id),
    ).fetchall()
    for trip_id, route_id in trips:
        rows = conn.execute(
            f"SELECT rowid, coalesce(stop_id, ''), coalesce(shape_dist_traveled, 0) "
            f"FROM stop_times WHERE {m}trip_id = ? ORDER BY stop_sequence",
            (*args, trip_id),
        ).fetchall()
        pattern = tuple((stop, dist) for _, stop, dist in rows)
        if pattern in seen:
            continue
        seen.add(pattern)
        if route_id not in route_types:
            continue
        large = route_types[route_id] == _RAIL
        stops = []
        for k, (rowid, stop, dist) in enumerate(rows):
            lat, lon = positions.get(stop, (0.0, 0.0))
            edge = k in (0, len(rows) - 1)
            stops.append(
                Stop(rowid & _ROW_MASK, stop, point(lat, lon), lat, lon, dist, large and edge)
            )
        problems = match_geo(shape, stops, cache)
        if stops and stops[-1].user > 0 and shape.user[-1] > 0:
            problems += match_user(shape, stops, cache)
        for code, row, stop in problems:
            if code in TOO_FAR:
                if stop in reported:
                    continue
                reported.add(stop)
            book.add(Notice(code, "stop_times.txt", row, "stop_id", stop, mode))
