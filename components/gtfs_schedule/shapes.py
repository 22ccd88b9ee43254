"""gtfs-validator's checks of consecutive shape points (by shape_pt_sequence):
``decreasing_shape_distance`` and ``equal_shape_distance_diff_coordinates``.

One window query over the shapes key index; the distance between two points is
computed only for the rare pairs at the same shape_dist_traveled.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.rules import modes_parsed
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

_ROW_MASK = (1 << ROWID_BITS) - 1
_EARTH_M = 6_371_008.8
# Points this far apart at the same distance along the shape are an ERROR; closer
# ones only gtfs-validator's WARNING, as are points at the same place.
_SAME_PLACE_M = 1.11


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2
    a += math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_M * math.asin(min(1.0, math.sqrt(a)))


def check_shapes(conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook) -> None:
    modes = modes_parsed(book, feeds, ("shapes",))
    if not modes:
        return
    moded = feeds[0].mode is not None
    part = "mode, shape_id" if moded else "shape_id"
    sql = f"""
        SELECT rowid, m, d, p, lat, lon, plat, plon FROM (
            SELECT rowid, {"mode" if moded else "NULL"} AS m, shape_dist_traveled AS d,
                   shape_pt_lat AS lat, shape_pt_lon AS lon,
                   lag(shape_dist_traveled) OVER w AS p,
                   lag(shape_pt_lat) OVER w AS plat, lag(shape_pt_lon) OVER w AS plon
            FROM shapes WHERE shape_id IS NOT NULL AND shape_pt_sequence IS NOT NULL
            WINDOW w AS (PARTITION BY {part} ORDER BY shape_pt_sequence))
        WHERE d IS NOT NULL AND p IS NOT NULL AND d <= p
        ORDER BY rowid
    """
    for rowid, mode, dist, prev, lat, lon, plat, plon in conn.execute(sql):
        if mode not in modes:
            continue
        if dist < prev:
            code = "decreasing_shape_distance"
        elif None in (lat, lon, plat, plon):
            continue
        elif (lat, lon) == (plat, plon):
            code = "equal_shape_distance_same_coordinates"
        elif _metres(plat, plon, lat, lon) >= _SAME_PLACE_M:
            code = "equal_shape_distance_diff_coordinates"
        else:
            code = "equal_shape_distance_diff_coordinates_distance_below_threshold"
        row = rowid & _ROW_MASK
        book.add(Notice(code, "shapes.txt", row, "shape_dist_traveled", dist, mode))
