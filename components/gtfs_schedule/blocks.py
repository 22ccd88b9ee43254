"""gtfs-validator's block_trips_with_overlapping_stop_times: two trips of one block
(one vehicle) whose times overlap on a day both run.

Only trips with a block_id are read, each with its first and last stop_time through
the stop_times key index; the active dates are worked out only for their services.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.rules import modes_parsed
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

CODE = "block_trips_with_overlapping_stop_times"
_ROW_MASK = (1 << ROWID_BITS) - 1
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MAX_DAYS = 3 * 366  # a calendar row spanning more is cut there: overlaps show long before


def _day(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def _service_dates(
    conn: sqlite3.Connection, moded: bool, mode: str | None, services: set[str]
) -> dict[str, set[date]]:
    where = "WHERE mode IS ?" if moded else ""
    args = (mode,) if moded else ()
    dates: dict[str, set[date]] = defaultdict(set)
    cols = ", ".join(_DAYS)
    sql = f"SELECT service_id, start_date, end_date, {cols} FROM calendar {where}"
    for service, start, end, *week in conn.execute(sql, args):
        if service not in services or start is None or end is None:
            continue
        first, last = _day(start), _day(end)
        for n in range(min((last - first).days + 1, _MAX_DAYS)):
            d = first + timedelta(days=n)
            if week[d.weekday()] == 1:
                dates[service].add(d)
    sql = f"SELECT service_id, date, exception_type FROM calendar_dates {where} ORDER BY rowid"
    for service, day, kind in conn.execute(sql, args):
        if service in services and day is not None:
            if kind == 1:
                dates[service].add(_day(day))
            elif kind == 2:
                dates[service].discard(_day(day))
    return dates


def check_blocks(conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook) -> None:
    """One notice per pair of overlapping trips of a block, by the first trip's row."""
    moded = bool(feeds) and feeds[0].mode is not None
    same = " AND s.mode IS t.mode" if moded else ""
    edge = (
        "(SELECT coalesce(s.{a}_time_secs, s.{b}_time_secs) FROM stop_times s "
        f"WHERE s.trip_id = t.trip_id{same} ORDER BY s.stop_sequence {{way}} LIMIT 1)"
    )
    start = edge.format(a="departure", b="arrival", way="ASC")
    end = edge.format(a="arrival", b="departure", way="DESC")
    for mode in sorted(modes_parsed(book, feeds, ("trips", "stop_times")), key=str):
        where = " AND t.mode IS ?" if moded else ""
        sql = (
            f"SELECT t.rowid, t.trip_id, t.block_id, t.service_id, {start}, {end} "
            f"FROM trips t WHERE t.block_id IS NOT NULL{where} ORDER BY t.rowid"
        )
        blocks: dict[str, list[tuple[int, str, str, int, int]]] = defaultdict(list)
        for rowid, trip, block, service, lo, hi in conn.execute(sql, (mode,) if moded else ()):
            if lo is not None and hi is not None and service is not None:
                blocks[block].append((rowid, trip, service, lo, hi))
        if not blocks:
            continue
        services = {t[2] for trips in blocks.values() for t in trips}
        dates = _service_dates(conn, moded, mode, services)
        found = []
        for trips in blocks.values():
            for i, (row_a, _, svc_a, lo_a, hi_a) in enumerate(trips):
                for row_b, trip_b, svc_b, lo_b, hi_b in trips[i + 1 :]:
                    if (
                        lo_a < hi_b
                        and lo_b < hi_a
                        and dates.get(svc_a, set()) & dates.get(svc_b, set())
                    ):
                        found.append((row_a, row_b, trip_b))
        for row_a, _, trip_b in sorted(found):
            book.add(Notice(CODE, "trips.txt", row_a & _ROW_MASK, "block_id", trip_b, mode))
