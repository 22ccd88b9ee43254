"""gtfs-validator's date WARNINGs: expired services, trip coverage, feed expiry.

They depend on "today", which the caller passes (a test passes the oracle's date);
by default it is today in the feed's own zone (its first agency's timezone).
Services are expanded one at a time (a service is at most a few hundred dates), and
trips are counted per service through the trips index, so memory stays flat.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles
from interlock.components.gtfs_schedule.warnings_window import Span, check_windows

_ROW_MASK = (1 << ROWID_BITS) - 1
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# TripCalendarUtil's majority service window.
_MAX_DATE_RATIO, _MAX_DATE_LIMIT, _MAJORITY_RATIO = 0.90, 30, 0.75
_GAP_DAYS = 14  # days between two active dates, 13 of them without service


def feed_today(conn: sqlite3.Connection) -> date:
    """Today in the zone of the feed's first agency (UTC when it names none we know)."""
    row = conn.execute(
        "SELECT agency_timezone FROM agency WHERE agency_timezone IS NOT NULL ORDER BY rowid"
    ).fetchone()
    try:
        zone = ZoneInfo(row[0]) if row else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.now(zone).date()


def _day(text: object) -> date | None:
    if not isinstance(text, str) or len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _usable(book: NoticeBook, feed: FeedFiles, tables: Sequence[str]) -> bool:
    """Each of ``tables`` that the feed holds parsed cleanly (absent ones are empty)."""
    return all(book.parsed_ok(feed.mode, f"{t}.txt") for t in tables if f"{t}.txt" in feed.present)


def _services(
    conn: sqlite3.Connection, mode: str | None, moded: bool
) -> Iterator[tuple[str, int | None, list[date]]]:
    """(service_id, its calendar.txt rowid or None, its sorted dates) per service, as
    gtfs-validator's CalendarUtil builds them: calendar's weekdays in its range, plus
    calendar_dates' additions, less its removals."""
    m = "mode IS ? AND " if moded else ""
    args: tuple[str | None, ...] = (mode,) if moded else ()
    cols = ", ".join(_DAYS)
    calendar = conn.execute(
        f"SELECT rowid, service_id, start_date, end_date, {cols} FROM calendar "
        f"WHERE {m}service_id IS NOT NULL ORDER BY rowid",
        args,
    )
    seen: set[str] = set()
    for rowid, service, start, end, *days in calendar:
        seen.add(service)
        dates: set[date] = set()
        first, last = _day(start), _day(end)
        if first is not None and last is not None:
            day = first
            while day <= last:
                if days[day.weekday()] == 1:
                    dates.add(day)
                day += timedelta(days=1)
        yield service, rowid, _exceptions(conn, m, args, service, dates)
    only = conn.execute(
        f"SELECT DISTINCT service_id FROM calendar_dates WHERE {m}service_id IS NOT NULL "
        "ORDER BY service_id",
        args,
    )
    for (service,) in only.fetchall():
        if service not in seen:
            yield service, None, _exceptions(conn, m, args, service, set())


def _exceptions(
    conn: sqlite3.Connection, m: str, args: tuple[str | None, ...], service: str, dates: set[date]
) -> list[date]:
    sql = f"SELECT date, exception_type FROM calendar_dates WHERE {m}service_id = ?"
    for text, kind in conn.execute(sql, (*args, service)):
        day = _day(text)
        if day is None:
            continue
        if kind == 1:
            dates.add(day)
        elif kind == 2:
            dates.discard(day)
    return sorted(dates)


def _trips_per_service(conn: sqlite3.Connection, mode: str | None, moded: bool) -> dict[str, int]:
    """Trips per service_id, a frequency-based trip counting the runs its headways make."""
    m = "t.mode IS ? AND " if moded else ""
    same = "f.mode IS t.mode AND " if moded else ""
    sql = f"""
        SELECT t.service_id, sum(coalesce((
            SELECT sum(1 + CASE WHEN f.headway_secs > 0
                THEN (f.end_time_secs - f.start_time_secs - 1) / f.headway_secs ELSE 0 END)
            FROM frequencies f WHERE {same}f.trip_id = t.trip_id), 1))
        FROM trips t WHERE {m}t.service_id IS NOT NULL GROUP BY t.service_id
    """
    return dict(conn.execute(sql, (mode,) if moded else ()))


def _majority(counts: Counter[date]) -> tuple[date, date] | None:
    if not counts:
        return None
    ordered = sorted(counts.values())
    index = max(int(len(ordered) * _MAX_DATE_RATIO), len(ordered) - _MAX_DATE_LIMIT)
    threshold = int(_MAJORITY_RATIO * ordered[index])
    days = sorted(counts)
    start = next((d for d in days if counts[d] >= threshold), days[0])
    end = next((d for d in reversed(days) if counts[d] >= threshold), days[-1])
    return start, end


def check_calendar_warnings(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, today: date | None
) -> None:
    """expired_calendar, trip_coverage_not_active_for_next7_days, and feed_info's
    feed_expiration_date7_days / feed_expiration_date30_days / missing_feed_info_date."""
    moded = bool(feeds) and feeds[0].mode is not None
    now = today if today is not None else feed_today(conn)
    for feed in feeds:
        mode = feed.mode
        if _usable(book, feed, ("calendar", "calendar_dates")):
            trips = (
                _trips_per_service(conn, mode, moded)
                if _usable(book, feed, ("trips", "frequencies"))
                else None
            )
            per_day: Counter[date] = Counter()
            spans: list[Span] = []
            for service, rowid, dates in _services(conn, mode, moded):
                if dates and dates[-1] < now and rowid is not None:
                    notice = Notice(
                        "expired_calendar",
                        "calendar.txt",
                        rowid & _ROW_MASK,
                        "service_id",
                        service,
                        mode,
                    )
                    book.add(notice)
                runs = trips.get(service, 0) if trips else 0
                if dates:
                    spans.append(Span(service, rowid, dates[0], dates[-1], runs > 0))
                if rowid is not None:
                    _gaps(service, rowid, dates, book, mode)
                if runs:
                    for day in dates:
                        per_day[day] += runs
            window = _majority(per_day)
            if window is not None and (window[0] > now or window[1] < now + timedelta(days=7)):
                value = f"{window[0]:%Y%m%d}-{window[1]:%Y%m%d}"
                book.add(
                    Notice(
                        "trip_coverage_not_active_for_next7_days",
                        "trips.txt",
                        None,
                        None,
                        value,
                        mode,
                    )
                )
            info_ok = _usable(book, feed, ("feed_info",))
            check_windows(conn, spans, now, book, mode, moded, info_ok)
        if _usable(book, feed, ("feed_info",)):
            _check_feed_info(conn, mode, moded, now, book)


def _gaps(service: str, rowid: int, dates: list[date], book: NoticeBook, mode: str | None) -> None:
    """big_gap_in_service (INFO): 14 days or more without service between two active
    dates of a calendar.txt service, one notice per gap."""
    for a, b in pairwise(dates):
        if (b - a).days > _GAP_DAYS:
            notice = Notice(
                "big_gap_in_service", "calendar.txt", rowid & _ROW_MASK, "service_id", service, mode
            )
            book.add(notice)


def _check_feed_info(
    conn: sqlite3.Connection, mode: str | None, moded: bool, now: date, book: NoticeBook
) -> None:
    where = "WHERE mode IS ?" if moded else ""
    sql = f"SELECT rowid, feed_start_date, feed_end_date FROM feed_info {where} ORDER BY rowid"
    for rowid, start, end in conn.execute(sql, (mode,) if moded else ()):
        row = rowid & _ROW_MASK
        if (start is None) != (end is None):
            field = "feed_end_date" if end is None else "feed_start_date"
            book.add(Notice("missing_feed_info_date", "feed_info.txt", row, field, None, mode))
        last = _day(end)
        if last is None:
            continue
        if last <= now + timedelta(days=7):  # as gtfs-guru; older Java: before
            code = "feed_expiration_date7_days"
        elif last <= now + timedelta(days=30):
            code = "feed_expiration_date30_days"
        else:
            continue
        book.add(Notice(code, "feed_info.txt", row, "feed_end_date", end, mode))
