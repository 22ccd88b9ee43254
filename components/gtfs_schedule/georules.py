"""gtfs-validator's rules that read ``locations.geojson`` with the loaded tables:
stop_times' ``location_id`` references (``foreign_key_violation``),
``overlapping_zone_and_pickup_drop_off_window`` and ``duplicate_geography_id``.

The features' ids are a TEMP table so that each rule is one SQL statement; stop_times
is read only by feeds whose header has ``location_id``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from interlock.components.gtfs_schedule.geojson import (
    FILENAME,
    Locations,
    load_locations,
    store_ids,
)
from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles
from interlock.components.gtfs_schedule.zipsafe import SafeZip

_ROW_MASK = (1 << ROWID_BITS) - 1
_WINDOW = "start_pickup_drop_off_window_secs", "end_pickup_drop_off_window_secs"


def read_locations(
    zf: SafeZip, prefix: str, mode: str | None, book: NoticeBook
) -> Locations | None:
    """The feed's locations.geojson, parsed with its notices; None when it has none."""
    for info in zf.files:
        if info.filename == prefix + FILENAME:
            with zf.open(info) as member:
                return load_locations(member.read(), mode, book)
    return None


def _parsed(book: NoticeBook, feed: FeedFiles, name: str) -> bool:
    return name not in feed.present or book.parsed_ok(feed.mode, name)


def check_locations(
    conn: sqlite3.Connection,
    feeds: Sequence[FeedFiles],
    book: NoticeBook,
    locations: dict[str | None, Locations],
) -> None:
    """The three rules, for every feed (mode) whose files they read parsed."""
    for mode, loaded in locations.items():
        if loaded.ok:
            store_ids(conn, mode, loaded)
    usable = {f.mode: locations[f.mode].ok for f in feeds if f.mode in locations}
    with_ids = [f for f in feeds if "location_id" in f.columns.get("stop_times.txt", ())]
    refs = {
        f.mode for f in with_ids if usable.get(f.mode, True) and _parsed(book, f, "stop_times.txt")
    }
    if refs:
        _check_references(conn, feeds, book, locations, refs)
    overlap = {m for m in refs if usable.get(m, False)}
    if overlap:
        _check_overlaps(conn, feeds, book, locations, overlap)
    for feed in feeds:
        names = ("stops.txt", "location_groups.txt")
        if usable.get(feed.mode, True) and all(_parsed(book, feed, n) for n in names):
            _check_geography_ids(conn, feed.mode, feeds[0].mode is not None, book)


def _check_references(
    conn: sqlite3.Connection,
    feeds: Sequence[FeedFiles],
    book: NoticeBook,
    locations: dict[str | None, Locations],
    modes: set[str | None],
) -> None:
    """A location_id no feature of the feed's locations.geojson has (any, without one)."""
    moded = feeds[0].mode is not None
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS geo_locations (mode TEXT, location_id TEXT, idx INTEGER)"
    )
    same = "g.mode IS s.mode AND " if moded else ""
    sql = f"""
        SELECT s.rowid, {"s.mode" if moded else "NULL"}, s.location_id FROM stop_times s
        WHERE s.location_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM geo_locations g WHERE {same}g.location_id = s.location_id)
        ORDER BY s.rowid
    """
    for rowid, mode, value in conn.execute(sql):
        if mode in modes:
            row = rowid & _ROW_MASK
            notice = Notice(
                "foreign_key_violation", "stop_times.txt", row, "location_id", value, mode
            )
            book.add(notice)


def _check_overlaps(
    conn: sqlite3.Connection,
    feeds: Sequence[FeedFiles],
    book: NoticeBook,
    locations: dict[str | None, Locations],
    modes: set[str | None],
) -> None:
    """Two stop_times of a trip at different zones that overlap (JTS's ``overlaps``),
    with windows that overlap (touching ends do not) and the same pickup_type or
    drop_off_type (0 when empty), as OverlappingPickupDropOffZoneValidator pairs them."""
    moded = feeds[0].mode is not None
    start, end = _WINDOW
    same = "b.mode IS a.mode AND " if moded else ""
    has = " AND ".join(f"{t}.{c} IS NOT NULL" for t in "ab" for c in (*_WINDOW, "location_id"))
    sql = f"""
        SELECT a.rowid, {"a.mode" if moded else "NULL"}, a.trip_id, a.location_id, b.location_id
        FROM stop_times a JOIN stop_times b ON {same}b.trip_id = a.trip_id AND b.rowid > a.rowid
        WHERE {has} AND a.location_id != b.location_id
          AND (coalesce(a.pickup_type, 0) = coalesce(b.pickup_type, 0)
               OR coalesce(a.drop_off_type, 0) = coalesce(b.drop_off_type, 0))
          AND a.{start} < b.{end} AND a.{end} > b.{start}
        ORDER BY a.rowid, b.rowid
    """
    for rowid, mode, trip, first, second in conn.execute(sql).fetchall():
        if mode not in modes:
            continue
        shapes = locations[mode].shapes
        one, two = shapes.get(first), shapes.get(second)
        if one is not None and two is not None and one.overlaps(two):
            code = "overlapping_zone_and_pickup_drop_off_window"
            book.add(Notice(code, "stop_times.txt", rowid & _ROW_MASK, "location_id", trip, mode))


def _check_geography_ids(
    conn: sqlite3.Connection, mode: str | None, moded: bool, book: NoticeBook
) -> None:
    """An id that is a stop, a location group or a zone of locations.geojson at once."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS geo_locations (mode TEXT, location_id TEXT, idx INTEGER)"
    )
    where = "WHERE mode IS ?" if moded else ""
    args: tuple[str | None, ...] = (mode,) if moded else ()
    others = conn.execute(
        f"SELECT (SELECT count(*) FROM location_groups {where}) "
        f"+ (SELECT count(*) FROM geo_locations {where})",
        args * 2,
    ).fetchone()[0]
    if not others:
        return  # ids of one file only: duplicates there are duplicate_key
    sql = f"""
        SELECT id FROM (
            SELECT DISTINCT stop_id AS id, 1 AS src FROM stops {where}
            UNION ALL SELECT DISTINCT location_group_id, 2 FROM location_groups {where}
            UNION ALL SELECT DISTINCT location_id, 3 FROM geo_locations {where})
        WHERE id IS NOT NULL GROUP BY id HAVING count(*) > 1 ORDER BY id
    """
    for (value,) in conn.execute(sql, args * 3):
        book.add(Notice("duplicate_geography_id", FILENAME, None, "id", value, mode))
