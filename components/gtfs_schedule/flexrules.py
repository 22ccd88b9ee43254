"""gtfs-validator's ERROR rules on GTFS-Flex stop_times, elevators and trip lengths, as
SQL over the loaded feed (see :mod:`.rules`): ``forbidden_shape_dist_traveled``,
``missing_stop_times_record``, ``missing_level_id``,
``trip_distance_exceeds_shape_distance`` and the booking rules' ones.

Each runs only for feeds whose headers hold the columns it reads, and the one over
every trip seeks each trip's last stop_time through the primary-key index instead of
scanning stop_times.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.rules import RowRule, modes_parsed, same
from interlock.components.gtfs_schedule.shapes import _metres
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

_ROW_MASK = (1 << ROWID_BITS) - 1
# gtfs-validator's TripAndShapeDistanceValidator: a trip longer than its shape is an
# ERROR when its last stop is farther than this from the shape's farthest point.
_SHAPE_END_M = 11.1
_WINDOW_COLUMNS = (
    "start_pickup_drop_off_window",
    "end_pickup_drop_off_window",
    "pickup_type",
    "drop_off_type",
)
_ELEVATOR = 5


def _endpoint(end: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM pathways w WHERE w.pathway_mode = {_ELEVATOR} "
        f"AND w.{end}_stop_id = stops.stop_id AND {same('w')})"
    )


FLEX_RULES: tuple[RowRule, ...] = (
    # StopTimesShapeDistTraveledPresenceValidator: only a stop may have a distance.
    RowRule(
        "forbidden_shape_dist_traveled",
        "stop_times",
        "shape_dist_traveled",
        "stop_id IS NULL AND (location_group_id IS NOT NULL OR location_id IS NOT NULL) "
        "AND shape_dist_traveled IS NOT NULL",
        "trip_id",
        columns=("location_group_id", "location_id"),
    ),
    # MissingLevelIdValidator: each stop at an end of an elevator needs a level, once.
    RowRule(
        "missing_level_id",
        "stops",
        "level_id",
        f"level_id IS NULL AND ({_endpoint('from')} OR {_endpoint('to')})",
        "stop_id",
        ("pathways",),
    ),
)


def _booking(code: str, field: str, where: str) -> RowRule:
    return RowRule(code, "booking_rules", field, where, "booking_rule_id")


def _any(*fields: str) -> str:
    return "(" + " OR ".join(f"prior_notice_{f} IS NOT NULL" for f in fields) + ")"


# BookingRulesEntityValidator; booking_type 0 is real time, 1 same day, 2 prior day(s).
BOOKING_RULES: tuple[RowRule, ...] = (
    _booking(
        "forbidden_real_time_booking_field_value",
        "booking_type",
        "booking_type = 0 AND "
        + _any(
            "duration_min",
            "duration_max",
            "last_day",
            "last_time",
            "start_day",
            "start_time",
            "service_id",
        ),
    ),
    _booking(
        "forbidden_same_day_booking_field_value",
        "booking_type",
        "booking_type = 1 AND " + _any("last_day", "last_time", "service_id"),
    ),
    _booking(
        "forbidden_prior_day_booking_field_value",
        "booking_type",
        "booking_type = 2 AND " + _any("duration_min", "duration_max"),
    ),
    _booking(
        "missing_prior_notice_duration_min",
        "prior_notice_duration_min",
        "booking_type = 1 AND prior_notice_duration_min IS NULL",
    ),
    _booking(
        "invalid_prior_notice_duration_min",
        "prior_notice_duration_min",
        "prior_notice_duration_max < prior_notice_duration_min",
    ),
    _booking(
        "forbidden_prior_notice_start_day",
        "prior_notice_start_day",
        "prior_notice_duration_max IS NOT NULL AND prior_notice_start_day IS NOT NULL",
    ),
    _booking(
        "prior_notice_last_day_after_start_day",
        "prior_notice_last_day",
        "prior_notice_last_day > prior_notice_start_day",
    ),
    _booking(
        "missing_prior_notice_last_day",
        "prior_notice_last_day",
        "booking_type = 2 AND prior_notice_last_day IS NULL",
    ),
    _booking(
        "missing_prior_notice_last_time",
        "prior_notice_last_time",
        "booking_type = 2 AND prior_notice_last_time IS NULL",
    ),
    _booking(
        "forbidden_prior_notice_start_time",
        "prior_notice_start_time",
        "prior_notice_start_time IS NOT NULL AND prior_notice_start_day IS NULL",
    ),
    _booking(
        "missing_prior_notice_start_time",
        "prior_notice_start_time",
        "prior_notice_start_time IS NULL AND prior_notice_start_day IS NOT NULL",
    ),
)


def _moded(feeds: Sequence[FeedFiles]) -> bool:
    return bool(feeds) and feeds[0].mode is not None


def check_stop_times_records(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """missing_stop_times_record: a stop_time with a pickup/drop-off window and both
    types 2 (phone) is the only stop_time of its trip, where travel needs two.

    Runs once the primary-key index exists: a count per (rare) candidate row.
    """
    moded = _moded(feeds)
    modes = modes_parsed(book, feeds, ("stop_times",)) & {
        f.mode
        for f in feeds
        if set(_WINDOW_COLUMNS) <= f.columns.get("stop_times.txt", frozenset())
    }
    if not modes:
        return
    same_mode = "AND o.mode IS stop_times.mode " if moded else ""
    sql = f"""
        SELECT rowid, {"mode" if moded else "NULL"}, trip_id FROM stop_times
        WHERE start_pickup_drop_off_window IS NOT NULL AND end_pickup_drop_off_window IS NOT NULL
          AND pickup_type = 2 AND drop_off_type = 2
          AND NOT EXISTS (SELECT 1 FROM stop_times o WHERE o.trip_id = stop_times.trip_id
                          {same_mode}AND o.rowid != stop_times.rowid)
        ORDER BY rowid
    """
    for rowid, mode, trip in conn.execute(sql):
        if mode in modes:
            book.add(
                Notice(
                    "missing_stop_times_record",
                    "stop_times.txt",
                    rowid & _ROW_MASK,
                    "trip_id",
                    trip,
                    mode,
                )
            )


def check_trip_distances(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """trip_distance_exceeds_shape_distance: a trip's last stop_time (by stop_sequence)
    is farther along than its shape's farthest point, and its stop lies more than
    11.1 m from that point (closer is gtfs-validator's WARNING, not reported here).

    One pass over shapes for each shape's length, then an index seek per trip with a
    shape; points are read only for the (rare) trips longer than their shape.
    """
    moded = _moded(feeds)
    dist = "shape_dist_traveled"
    modes = modes_parsed(book, feeds, ("trips", "stop_times", "stops", "shapes")) & {
        f.mode
        for f in feeds
        if dist in f.columns.get("stop_times.txt", frozenset())
        and dist in f.columns.get("shapes.txt", frozenset())
    }
    if not modes:
        return
    m = "mode, " if moded else ""

    def eq(a: str, b: str) -> str:
        return f"AND {a}.mode IS {b}.mode " if moded else ""

    sql = f"""
        WITH len AS (
            SELECT {m}shape_id, max(coalesce({dist}, 0)) AS d FROM shapes
            WHERE shape_id IS NOT NULL GROUP BY {m}shape_id HAVING d != 0),
        last AS (
            SELECT t.rowid AS r, {"t.mode" if moded else "NULL"} AS m, t.trip_id, t.shape_id,
                   len.d AS d,
                   (SELECT st.rowid FROM stop_times st WHERE st.trip_id = t.trip_id
                    {eq("st", "t")}ORDER BY st.stop_sequence DESC LIMIT 1) AS st_row
            FROM trips t JOIN len ON len.shape_id = t.shape_id {eq("len", "t")})
        SELECT last.r, last.m, last.trip_id, last.shape_id, last.d,
               coalesce(s.stop_lat, 0), coalesce(s.stop_lon, 0)
        FROM last JOIN stop_times st ON st.rowid = last.st_row
        JOIN stops s ON s.stop_id = st.stop_id {eq("s", "st")}
        WHERE coalesce(st.{dist}, 0) > last.d
          AND s.rowid = (SELECT min(f.rowid) FROM stops f WHERE f.stop_id = st.stop_id
                         {eq("f", "st")})
        ORDER BY last.r
    """
    point = (
        "SELECT coalesce(shape_pt_lat, 0), coalesce(shape_pt_lon, 0) FROM shapes "
        f"WHERE shape_id = ? {'AND mode IS ? ' if moded else ''}"
        f"AND coalesce({dist}, 0) = ? ORDER BY shape_pt_sequence LIMIT 1"
    )
    for rowid, mode, trip, shape, length, lat, lon in conn.execute(sql).fetchall():
        if mode not in modes:
            continue
        args = (shape, mode, length) if moded else (shape, length)
        plat, plon = conn.execute(point, args).fetchone()
        if _metres(plat, plon, lat, lon) > _SHAPE_END_M:
            code = "trip_distance_exceeds_shape_distance"
            book.add(Notice(code, "trips.txt", rowid & _ROW_MASK, "shape_id", trip, mode))


def check_default_rider_categories(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """fare_product_with_multiple_default_rider_categories, as
    FareProductDefaultRiderCategoriesValidator counts: each default rider category
    belongs to the first fare_products row that names it, and a fare product holding
    two or more of them is one notice."""
    moded = _moded(feeds)
    modes = modes_parsed(book, feeds, ("fare_products", "rider_categories"))
    if not modes:
        return
    m = "mode, " if moded else ""
    same = "AND f.mode IS r.mode " if moded else ""
    sql = f"""
        SELECT min(row), m, fare_product_id FROM (
            SELECT {"r.mode" if moded else "NULL"} AS m,
                   (SELECT f.rowid FROM fare_products f WHERE f.rider_category_id =
                    r.rider_category_id {same}ORDER BY f.rowid LIMIT 1) AS row,
                   (SELECT f.fare_product_id FROM fare_products f WHERE f.rider_category_id =
                    r.rider_category_id {same}ORDER BY f.rowid LIMIT 1) AS fare_product_id
            FROM (SELECT DISTINCT {m}rider_category_id FROM rider_categories
                  WHERE is_default_fare_category = 1) AS r)
        WHERE fare_product_id IS NOT NULL
        GROUP BY m, fare_product_id HAVING count(*) > 1 ORDER BY min(row)
    """
    for rowid, mode, product in conn.execute(sql):
        if mode in modes:
            code = "fare_product_with_multiple_default_rider_categories"
            row = rowid & _ROW_MASK
            book.add(Notice(code, "fare_products.txt", row, "rider_category_id", product, mode))
