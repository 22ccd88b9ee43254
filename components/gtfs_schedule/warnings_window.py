"""gtfs-guru's INFOs about a feed's service window against today and feed_info:
future_calendar, future_feed, service_extends_far_in_the_future,
feed_valid_beyond_total_service_window and service_window_outside_feed_period.

They read the per-service date spans that warnings_calendar.py computes anyway (one
service at a time) and feed_info's first row; the window is that of the services
some trip runs on.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.validate import ROWID_BITS

_ROW_MASK = (1 << ROWID_BITS) - 1
_FAR_YEARS = 2
_SLACK = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Span:
    """A service's first and last dates, its calendar.txt row, and whether trips run."""

    service: str
    row: int | None
    first: date
    last: date
    used: bool


def _years_on(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _feed_dates(
    conn: sqlite3.Connection, mode: str | None, moded: bool
) -> tuple[date | None, date | None]:
    where = "WHERE mode IS ?" if moded else ""
    row = conn.execute(
        f"SELECT feed_start_date, feed_end_date FROM feed_info {where} ORDER BY rowid LIMIT 1",
        (mode,) if moded else (),
    ).fetchone()
    if row is None:
        return None, None
    return tuple(_day(v) for v in row)  # type: ignore[return-value]


def _day(text: object) -> date | None:
    if not isinstance(text, str) or len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def check_windows(
    conn: sqlite3.Connection,
    spans: list[Span],
    now: date,
    book: NoticeBook,
    mode: str | None,
    moded: bool,
    feed_info_ok: bool,
) -> None:
    """The five notices for one feed (mode) whose services span ``spans``."""
    far = _years_on(now, _FAR_YEARS)
    for s in spans:
        if s.last > far:
            row = None if s.row is None else s.row & _ROW_MASK
            book.add(
                Notice(
                    "service_extends_far_in_the_future",
                    "calendar.txt",
                    row,
                    "end_date",
                    s.service,
                    mode,
                )
            )
    used = [s for s in spans if s.used]
    if used and min(s.first for s in used) > now:
        book.add(Notice("future_calendar", "calendar.txt", None, "start_date", None, mode))
    if not feed_info_ok:
        return
    start, end = _feed_dates(conn, mode, moded)
    if start is not None and start > now:
        book.add(Notice("future_feed", "feed_info.txt", 2, "feed_start_date", None, mode))
    if not used:
        return
    first, last = min(s.first for s in used), max(s.last for s in used)
    if (end is not None and end > last + _SLACK) or (start is not None and start < first - _SLACK):
        code = "feed_valid_beyond_total_service_window"
        book.add(Notice(code, "feed_info.txt", 2, "feed_end_date", None, mode))
    for s in used:
        if (start is not None and s.first < start) or (end is not None and s.last > end):
            row = None if s.row is None else s.row & _ROW_MASK
            book.add(
                Notice(
                    "service_window_outside_feed_period",
                    "calendar.txt",
                    row,
                    "service_id",
                    s.service,
                    mode,
                )
            )
