"""gtfs-validator's WARNINGs about how rows link up: unused or unusable rows, dangling
pathway nodes, duplicate route names, files of one row holding several.

Each is one query over the loaded tables that an index serves: stop_times is read
only through its (trip_id, stop_sequence) and stop_id indexes, a lookup or two per
trip or stop, never scanned whole.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.rules import modes_parsed
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

_ROW_MASK = (1 << ROWID_BITS) - 1
_GENERIC_NODE = 3


def check_trip_usage(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, moded: bool
) -> None:
    """unused_trip (no stop_times) and unusable_trip (fewer than two), two index
    lookups per trip at most."""
    modes = modes_parsed(book, feeds, ("trips", "stop_times"))
    if not modes:
        return
    mode = "t.mode" if moded else "NULL"
    same = "s.mode IS t.mode AND " if moded else ""
    sql = f"""
        SELECT t.rowid, {mode}, t.trip_id, (SELECT count(*) FROM (SELECT 1 FROM stop_times s
            WHERE {same}s.trip_id = t.trip_id LIMIT 2)) AS n
        FROM trips t WHERE t.trip_id IS NOT NULL AND n < 2 ORDER BY t.rowid
    """
    for rowid, m, trip, n in conn.execute(sql):
        if m not in modes:
            continue
        row = rowid & _ROW_MASK
        if n == 0:
            book.add(Notice("unused_trip", "trips.txt", row, "trip_id", trip, m))
        book.add(Notice("unusable_trip", "trips.txt", row, "trip_id", trip, m))


def check_stop_usage(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, moded: bool
) -> None:
    """stop_without_stop_time: a stop or platform no stop_time serves, itself or in a
    location group that a stop_time serves."""
    modes = modes_parsed(book, feeds, ("stops", "stop_times"))
    if not modes:
        return
    mode = "t.mode" if moded else "NULL"
    same = "s.mode IS t.mode AND " if moded else ""
    same_g = "g.mode IS t.mode AND " if moded else ""
    m = "mode, " if moded else ""
    key = "(g.mode, g.location_group_id)" if moded else "g.location_group_id"
    sql = f"""
        SELECT t.rowid, {mode}, t.stop_id FROM stops t
        WHERE coalesce(t.location_type, 0) = 0 AND t.stop_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM stop_times s WHERE {same}s.stop_id = t.stop_id)
          AND NOT EXISTS (SELECT 1 FROM location_group_stops g WHERE {same_g}g.stop_id = t.stop_id
              AND {key} IN (SELECT {m}location_group_id FROM stop_times
                            WHERE location_group_id IS NOT NULL))
        ORDER BY t.rowid
    """
    for rowid, m, stop in conn.execute(sql):
        if m in modes:
            notice = Notice(
                "stop_without_stop_time", "stops.txt", rowid & _ROW_MASK, "stop_id", stop, m
            )
            book.add(notice)


def check_shape_usage(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, moded: bool
) -> None:
    """unused_shape: a shape no trip uses, at its first point's row."""
    modes = modes_parsed(book, feeds, ("shapes", "trips"))
    if not modes:
        return
    m = "mode, " if moded else ""
    mode = "mode" if moded else "NULL"
    key = f"({m}shape_id)" if moded else "shape_id"
    sql = f"""
        SELECT min(rowid), {mode}, shape_id FROM shapes WHERE shape_id IS NOT NULL
        GROUP BY {m}shape_id
        HAVING {key} NOT IN (SELECT {m}shape_id FROM trips WHERE shape_id IS NOT NULL)
        ORDER BY min(rowid)
    """
    for rowid, md, shape in conn.execute(sql):
        if md in modes:
            book.add(Notice("unused_shape", "shapes.txt", rowid & _ROW_MASK, "shape_id", shape, md))


def check_shape_distances(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, moded: bool
) -> None:
    """trip_with_shape_dist_traveled_but_no_shape_distances (INFO): a trip with a
    shape_dist_traveled on a stop_time whose shape has none (one pass over the shapes
    key index finds those shapes; only their trips' stop_times are looked up)."""
    modes = modes_parsed(book, feeds, ("trips", "shapes", "stop_times"))
    if not modes:
        return
    m = "mode, " if moded else ""
    bare = conn.execute(
        f"SELECT {m}shape_id FROM shapes WHERE shape_id IS NOT NULL GROUP BY {m}shape_id "
        "HAVING max(shape_dist_traveled) IS NULL"
    ).fetchall()
    if not bare:
        return
    same = "s.mode IS t.mode AND " if moded else ""
    sql = f"""
        SELECT rowid, {"mode" if moded else "NULL"}, trip_id FROM trips t
        WHERE {"t.mode IS ? AND " if moded else ""}t.shape_id = ? AND EXISTS (
            SELECT 1 FROM stop_times s WHERE {same}s.trip_id = t.trip_id
            AND s.shape_dist_traveled IS NOT NULL)
        ORDER BY rowid
    """
    found = []
    for key in bare:
        found += conn.execute(sql, key).fetchall()
    code = "trip_with_shape_dist_traveled_but_no_shape_distances"
    for rowid, md, trip in sorted(found):
        if md in modes:
            book.add(Notice(code, "trips.txt", rowid & _ROW_MASK, "shape_id", trip, md))


def check_route_names(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, moded: bool
) -> None:
    """duplicate_route_name: a route with the same short and long name, type and agency
    as an earlier route."""
    modes = modes_parsed(book, feeds, ("routes",))
    if not modes:
        return
    m = "mode, " if moded else ""
    mode = "mode" if moded else "NULL"
    key = "route_short_name, route_long_name, route_type, agency_id"
    sql = f"""
        SELECT rowid, {mode}, route_id FROM routes
        WHERE rowid NOT IN (SELECT min(rowid) FROM routes GROUP BY {m}{key})
        ORDER BY rowid
    """
    for rowid, md, route in conn.execute(sql):
        if md in modes:
            notice = Notice(
                "duplicate_route_name", "routes.txt", rowid & _ROW_MASK, "route_id", route, md
            )
            book.add(notice)


def check_block_types(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, moded: bool
) -> None:
    """inconsistent_route_type_for_block_id: a block whose trips' routes are of more
    than one route_type, at the block's first trip."""
    modes = modes_parsed(book, feeds, ("trips", "routes"))
    if not modes:
        return
    m = "t.mode, " if moded else ""
    same = "r.mode IS t.mode AND " if moded else ""
    sql = f"""
        SELECT min(t.rowid), {"t.mode" if moded else "NULL"}, t.block_id FROM trips t
        JOIN routes r ON {same}r.route_id = t.route_id
        WHERE t.block_id IS NOT NULL GROUP BY {m}t.block_id
        HAVING count(DISTINCT r.route_type) > 1 ORDER BY min(t.rowid)
    """
    for rowid, md, block in conn.execute(sql):
        if md in modes:
            code = "inconsistent_route_type_for_block_id"
            book.add(Notice(code, "trips.txt", rowid & _ROW_MASK, "block_id", block, md))


def check_single_entities(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, moded: bool
) -> None:
    """more_than_one_entity: feed_info.txt holds one row; one notice when it holds more."""
    modes = modes_parsed(book, feeds, ("feed_info",))
    mode = "mode" if moded else "NULL"
    sql = f"SELECT {mode}, count(*) FROM feed_info GROUP BY {mode} HAVING count(*) > 1"
    for md, n in conn.execute(sql):
        if md in modes:
            book.add(Notice("more_than_one_entity", "feed_info.txt", None, None, n, md))


def check_dangling_nodes(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, moded: bool
) -> None:
    """pathway_dangling_generic_node: a generic node its pathways (either way) join to
    one location only. Pathways are a small table, read per mode into memory."""
    for md in sorted(modes_parsed(book, feeds, ("stops", "pathways")), key=str):
        where = "WHERE mode IS ?" if moded else ""
        args = (md,) if moded else ()
        incident: dict[str, set[str]] = defaultdict(set)
        sql = f"SELECT from_stop_id, to_stop_id FROM pathways {where}"
        for a, b in conn.execute(sql, args):
            if a is not None and b is not None:
                incident[a].add(b)
                incident[b].add(a)
        if not incident:
            continue
        cond = f"{'mode IS ? AND ' if moded else ''}location_type = {_GENERIC_NODE}"
        sql = f"SELECT rowid, stop_id FROM stops WHERE {cond} ORDER BY rowid"
        for rowid, stop in conn.execute(sql, args):
            if len(incident.get(stop, ())) == 1:
                notice = Notice(
                    "pathway_dangling_generic_node",
                    "stops.txt",
                    rowid & _ROW_MASK,
                    "stop_id",
                    stop,
                    md,
                )
                book.add(notice)


def check_link_warnings(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """Every WARNING of this module."""
    moded = bool(feeds) and feeds[0].mode is not None
    for check in (
        check_trip_usage,
        check_stop_usage,
        check_shape_usage,
        check_shape_distances,
        check_route_names,
        check_block_types,
        check_single_entities,
        check_dangling_nodes,
    ):
        check(conn, feeds, book, moded)
