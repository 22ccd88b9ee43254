"""gtfs-validator's checks of single rows and small tables, as SQL over the loaded feed.

Each rule is a query over rows already in SQLite, so memory stays flat; the big table
(stop_times) meets only rules that an index serves. A rule is skipped for a feed (a
mode) whose files it reads did not parse cleanly, as gtfs-validator skips it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

_ROW_MASK = (1 << ROWID_BITS) - 1
# location_type: stop or platform (0, also when empty), station, entrance, generic
# node, boarding area.
_TYPE = "coalesce(location_type, 0)"


@dataclass(frozen=True, slots=True)
class RowRule:
    """One notice per row of ``table`` matching ``where``, citing ``field``'s ``value``."""

    code: str
    table: str
    field: str
    where: str
    value: str
    reads: tuple[str, ...] = ()  # other tables the rule reads, which must parse too
    # Columns of ``table``'s file of which one must be in its header for the rule to run
    # (so that a scan of a big table happens only for feeds that use them).
    columns: tuple[str, ...] = ()


def _parent(cond: str) -> str:
    """A predicate on a stop's parent row (same mode), as ``p``."""
    return (
        "EXISTS (SELECT 1 FROM stops p WHERE p.stop_id = stops.parent_station "
        f"AND {same('p')} AND {cond})"
    )


def same(alias: str) -> str:
    """Stands for "``alias``.mode IS <rule table>.mode" in a zip of zips (where ids are
    unique per mode only), for "1" in a flat feed."""
    return f"@same({alias})@"


def keyed(column: str) -> str:
    """Stands for ``column`` with the mode before it in a zip of zips, for ``x IN
    (SELECT ...)`` tests that an index on (mode, column) can serve."""
    return f"@keyed({column})@"


_SAME = re.compile(r"@same\((\w+)\)@")
_KEYED = re.compile(r"@keyed\(((?:(\w+)\.)?\w+)\)@")
_NEAR_ORIGIN = "abs({lat}) <= 1.0 AND abs({lon}) <= 1.0"
_NEAR_POLE = "abs({lat}) >= 89.0"

ROW_RULES: tuple[RowRule, ...] = (
    RowRule(
        "route_both_short_and_long_name_missing",
        "routes",
        "route_short_name",
        "route_short_name IS NULL AND route_long_name IS NULL",
        "route_id",
    ),
    RowRule(
        "start_and_end_range_out_of_order",
        "calendar",
        "start_date",
        "start_date > end_date",
        "start_date",
    ),
    RowRule(
        "start_and_end_range_out_of_order",
        "feed_info",
        "feed_start_date",
        "feed_start_date > feed_end_date",
        "feed_start_date",
    ),
    RowRule(
        "start_and_end_range_out_of_order",
        "frequencies",
        "start_time",
        "start_time_secs > end_time_secs",
        "start_time",
    ),
    RowRule(
        "start_and_end_range_equal",
        "frequencies",
        "start_time",
        "start_time_secs = end_time_secs",
        "start_time",
    ),
    RowRule(
        "point_near_origin",
        "stops",
        "stop_lat",
        _NEAR_ORIGIN.format(lat="stop_lat", lon="stop_lon"),
        "stop_id",
    ),
    RowRule("point_near_pole", "stops", "stop_lat", _NEAR_POLE.format(lat="stop_lat"), "stop_id"),
    RowRule(
        "point_near_origin",
        "shapes",
        "shape_pt_lat",
        _NEAR_ORIGIN.format(lat="shape_pt_lat", lon="shape_pt_lon"),
        "shape_id",
    ),
    RowRule(
        "point_near_pole",
        "shapes",
        "shape_pt_lat",
        _NEAR_POLE.format(lat="shape_pt_lat"),
        "shape_id",
    ),
    RowRule(
        "station_with_parent_station",
        "stops",
        "parent_station",
        "location_type = 1 AND parent_station IS NOT NULL",
        "stop_id",
    ),
    RowRule(
        "location_without_parent_station",
        "stops",
        "parent_station",
        "location_type IN (2, 3, 4) AND parent_station IS NULL",
        "stop_id",
    ),
    RowRule(
        "wrong_parent_location_type",
        "stops",
        "parent_station",
        f"parent_station IS NOT NULL AND ("
        f"({_TYPE} IN (0, 2, 3) AND {_parent('coalesce(p.location_type, 0) != 1')}) OR "
        f"({_TYPE} = 4 AND {_parent('coalesce(p.location_type, 0) != 0')}))",
        "stop_id",
    ),
    RowRule(
        "stop_without_location",
        "stops",
        "stop_lat",
        f"{_TYPE} IN (0, 1, 2) AND (stop_lat IS NULL OR stop_lon IS NULL)",
        "stop_id",
    ),
    RowRule(
        "missing_stop_name",
        "stops",
        "stop_name",
        f"{_TYPE} IN (0, 1, 2) AND stop_name IS NULL",
        "stop_id",
    ),
)


def modes_parsed(
    book: NoticeBook, feeds: Sequence[FeedFiles], tables: Sequence[str]
) -> set[str | None]:
    """The feeds (modes) holding every one of ``tables``' files, each parsed cleanly."""
    files = [f"{t}.txt" for t in tables]
    return {
        f.mode
        for f in feeds
        if all(name in f.present and book.parsed_ok(f.mode, name) for name in files)
    }


def _report(
    conn: sqlite3.Connection,
    book: NoticeBook,
    modes: set[str | None],
    code: str,
    table: str,
    field: str,
    sql: str,
) -> None:
    """Add a notice per row ``sql`` gives as (rowid, mode, value), in rowid order."""
    for rowid, mode, value in conn.execute(sql):
        if mode in modes:
            book.add(Notice(code, f"{table}.txt", rowid & _ROW_MASK, field, value, mode))


def _same_mode(where: str, table: str, moded: bool) -> str:
    where = _SAME.sub(lambda m: f"{m[1]}.mode IS {table}.mode" if moded else "1", where)
    return _KEYED.sub(
        lambda m: f"{m[2] + '.' if m[2] else ''}mode, {m[1]}" if moded else m[1], where
    )


def check_rows(
    conn: sqlite3.Connection,
    feeds: Sequence[FeedFiles],
    book: NoticeBook,
    rules: Sequence[RowRule] = ROW_RULES,
) -> None:
    """Every rule of ``rules``, then the rules over the agencies together."""
    moded = bool(feeds) and feeds[0].mode is not None
    mode = "mode" if moded else "NULL"
    for rule in rules:
        modes = modes_parsed(book, feeds, (rule.table, *rule.reads))
        if rule.columns:
            header = f"{rule.table}.txt"
            used = {f.mode for f in feeds if set(rule.columns) & f.columns.get(header, set())}
            modes &= used
        if modes:
            where = _same_mode(rule.where, rule.table, moded)
            sql = (
                f"SELECT rowid, {mode}, {rule.value} FROM {rule.table} WHERE {where} ORDER BY rowid"
            )
            _report(conn, book, modes, rule.code, rule.table, rule.field, sql)
    _check_agencies(conn, feeds, book, moded)


def _check_agencies(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, moded: bool
) -> None:
    """inconsistent_agency_timezone (each agency whose zone is not the first agency's)
    and missing_required_agency_id (agencies or routes without one among several)."""
    mode = "mode" if moded else "NULL"
    same = "a.mode IS agency.mode" if moded else "1"
    modes = modes_parsed(book, feeds, ("agency",))
    if not modes:
        return
    first = f"(SELECT a.agency_timezone FROM agency a WHERE {same} ORDER BY a.rowid LIMIT 1)"
    sql = (
        f"SELECT rowid, {mode}, agency_timezone FROM agency "
        f"WHERE agency_timezone IS NOT {first} ORDER BY rowid"
    )
    code = "inconsistent_agency_timezone"
    _report(conn, book, modes, code, "agency", "agency_timezone", sql)
    several = f"(SELECT count(*) FROM agency a WHERE {same}) > 1"
    sql = (
        f"SELECT rowid, {mode}, agency_name FROM agency "
        f"WHERE agency_id IS NULL AND {several} ORDER BY rowid"
    )
    _report(conn, book, modes, "missing_required_agency_id", "agency", "agency_id", sql)
    route_modes = modes & modes_parsed(book, feeds, ("routes",))
    same = "a.mode IS routes.mode" if moded else "1"
    sql = (
        f"SELECT rowid, {mode}, route_id FROM routes WHERE agency_id IS NULL AND "
        f"(SELECT count(*) FROM agency a WHERE {same}) > 1 ORDER BY rowid"
    )
    code = "missing_required_agency_id"
    _report(conn, book, route_modes, code, "routes", "agency_id", sql)


def check_trip_edges(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """missing_trip_edge: a trip's first and last stop_times (by stop_sequence) need both
    times, unless they have a pickup/drop-off window instead; one notice per missing
    time and edge (twice for a trip of one stop).

    Runs once duplicate keys are dropped, over the primary-key index: one pass to find
    each trip's edges, then a lookup per edge.
    """
    moded = bool(feeds) and feeds[0].mode is not None
    modes = modes_parsed(book, feeds, ("stop_times",))
    if not modes:
        return
    m = "mode, " if moded else ""
    same = "s.mode IS e.mode AND " if moded else ""
    sql = f"""
        SELECT s.rowid, {"s.mode" if moded else "NULL"}, s.trip_id,
               s.arrival_time IS NULL, s.departure_time IS NULL, e.lo = e.hi
        FROM (SELECT {m}trip_id, min(stop_sequence) AS lo, max(stop_sequence) AS hi
              FROM stop_times WHERE trip_id IS NOT NULL AND stop_sequence IS NOT NULL
              GROUP BY {m}trip_id) AS e
        JOIN stop_times AS s ON {same}s.trip_id = e.trip_id AND s.stop_sequence IN (e.lo, e.hi)
        WHERE (s.arrival_time IS NULL OR s.departure_time IS NULL)
          AND s.start_pickup_drop_off_window IS NULL AND s.end_pickup_drop_off_window IS NULL
        ORDER BY s.rowid
    """
    for rowid, mode, trip, no_arrival, no_departure, single in conn.execute(sql):
        if mode not in modes:
            continue
        for _ in range(2 if single else 1):
            for missing, field in ((no_arrival, "arrival_time"), (no_departure, "departure_time")):
                if missing:
                    notice = Notice(
                        "missing_trip_edge", "stop_times.txt", rowid & _ROW_MASK, field, trip, mode
                    )
                    book.add(notice)
