"""When a component is due: parse its ``frequency`` and compute its next start.

Pure functions of (frequency, last start, now, timezone): no I/O and no clock reads.

Grammar (exact, lower case, no spaces except the one shown)::

    frequency := interval | "hourly" | daily | weekly | monthly
    interval  := N unit              N a whole number >= 1, unit one of s m h d;
                                     at most 365d ("1d" is 86400 s, not a calendar day)
    daily     := "daily"   ["@" HH:MM]         e.g. "daily@03:30"
    weekly    := "weekly"  ["@" DAY " " HH:MM]  DAY in mon..sun, e.g. "weekly@mon 06:00"
    monthly   := "monthly" ["@" DOM " " HH:MM]  DOM in 1..28, e.g. "monthly@1 02:00"

HH:MM is two-digit 24-hour time, 00:00 to 23:59. Without "@", daily/weekly/monthly fire
at local midnight (weekly on Monday, monthly on the 1st).

Semantics: never started means due now. An interval is due ``interval`` real seconds
after the last start. A calendar frequency is due at the first boundary strictly after
the last start, so any number of boundaries missed during downtime coalesce into one run.

Daylight saving, in the configured zone:

- hourly fires at every instant the local clock reads HH:00:00, so each real hour fires
  once: an hour repeated when clocks go back fires twice, a skipped hour never fires.
- daily/weekly/monthly map their local time with ``fold=0``. A time that occurs twice
  fires once, at its first occurrence. A time in a spring-forward gap fires at the wall
  time plus the gap (the pre-transition offset): 02:30 on Melbourne's October change day
  fires at 03:30 daylight time (16:30 UTC), not at 03:00.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = ["Frequency", "is_due", "next_due", "parse_frequency"]

Kind = Literal["interval", "hourly", "daily", "weekly", "monthly"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_INTERVAL = timedelta(days=365)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOUR = timedelta(hours=1)

_INTERVAL = re.compile(r"([0-9]+)([smhd])")
_HHMM = r"([01][0-9]|2[0-3]):([0-5][0-9])"

_FORMS = (
    "expected 'hourly', 'daily', 'weekly' or 'monthly' (optionally with a time: "
    "'daily@03:30', 'weekly@mon 06:00', 'monthly@1 02:00'), or an interval such as "
    "'30s', '15m', '6h' or '1d'"
)
_INTERVAL_FORM = (
    "an interval is a whole number followed by s, m, h or d, such as '30s', '15m', '6h' or '1d'"
)
# name -> (kind, what may follow "@", what to say when it does not match)
_CALENDAR: dict[str, tuple[Kind, re.Pattern[str], str]] = {
    "daily": (
        "daily",
        re.compile(_HHMM),
        "'daily@' needs a time HH:MM from 00:00 to 23:59, such as 'daily@03:30'",
    ),
    "weekly": (
        "weekly",
        re.compile(rf"({'|'.join(_WEEKDAYS)}) {_HHMM}"),
        "'weekly@' needs a weekday (mon, tue, wed, thu, fri, sat or sun) and a time HH:MM, "
        "such as 'weekly@mon 06:00'",
    ),
    "monthly": (
        "monthly",
        re.compile(rf"([1-9]|1[0-9]|2[0-8]) {_HHMM}"),
        "'monthly@' needs a day of the month from 1 to 28 and a time HH:MM, "
        "such as 'monthly@1 02:00'",
    ),
}


@dataclass(frozen=True)
class Frequency:
    """A parsed frequency; build it with :func:`parse_frequency`."""

    text: str
    """The string it was parsed from, for messages and logs."""
    kind: Kind
    interval: timedelta | None = None
    """Set for ``kind == "interval"`` only."""
    at: time = time(0)
    """Local time of day for daily, weekly and monthly."""
    weekday: int = 0
    """0 is Monday; weekly only."""
    day: int = 1
    """Day of the month, 1 to 28; monthly only."""


def parse_frequency(text: str) -> Frequency:
    """Parse a frequency string (grammar in the module docstring); raise ValueError if bad."""
    if not isinstance(text, str):
        # The config is JSON, so a bare number (30 rather than "30s") can reach us.
        raise ValueError(f"invalid frequency {text!r}: expected a string; {_FORMS}")
    # A sign or a decimal point means an attempted interval: say what intervals look like.
    if text[:1].isdigit() or text[:1] in ("-", "+", "."):
        return _parse_interval(text)
    name, sep, at = text.partition("@")
    if name == "hourly":
        if sep:
            raise ValueError(f"invalid frequency {text!r}: 'hourly' takes no time of day")
        return Frequency(text, "hourly")
    if name not in _CALENDAR:
        raise ValueError(f"invalid frequency {text!r}; {_FORMS}")
    kind, pattern, form = _CALENDAR[name]
    if not sep:
        return Frequency(text, kind)
    match = pattern.fullmatch(at)
    if match is None:
        raise ValueError(f"invalid frequency {text!r}: {form}")
    *head, hh, mm = match.groups()
    at_time = time(int(hh), int(mm))
    if kind == "weekly":
        return Frequency(text, kind, at=at_time, weekday=_WEEKDAYS.index(head[0]))
    if kind == "monthly":
        return Frequency(text, kind, at=at_time, day=int(head[0]))
    return Frequency(text, kind, at=at_time)


def _parse_interval(text: str) -> Frequency:
    match = _INTERVAL.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid frequency {text!r}: {_INTERVAL_FORM}")
    count, unit = match.groups()
    if int(count) == 0:
        raise ValueError(f"invalid frequency {text!r}: an interval must be at least 1s")
    if int(count) * _UNITS[unit] > _MAX_INTERVAL.total_seconds():
        raise ValueError(
            f"invalid frequency {text!r}: an interval must be at most 365d; "
            "use 'monthly' for longer periods"
        )
    return Frequency(text, "interval", interval=timedelta(seconds=int(count) * _UNITS[unit]))


def next_due(
    freq: Frequency, last_started: datetime | None, now: datetime, tz: ZoneInfo
) -> datetime:
    """Return, in UTC, when ``freq`` is next due given its last start (None: never)."""
    now = _utc(now, "now")
    if last_started is None:
        return now
    last = _utc(last_started, "last_started")
    if freq.interval is not None:
        return last + freq.interval
    if freq.kind == "hourly":
        return _next_hour(last, tz)
    for day in _candidate_days(freq, last.astimezone(tz).date()):
        # fold=0: first occurrence of a repeated time; gap times shift forward by the gap.
        boundary = datetime.combine(day, freq.at, tzinfo=tz).astimezone(UTC)
        if boundary > last:
            return boundary
    raise AssertionError("unreachable: _candidate_days is infinite")


def is_due(freq: Frequency, last_started: datetime | None, now: datetime, tz: ZoneInfo) -> bool:
    """Return whether ``freq`` is due at ``now`` given its last start (None: never)."""
    return _utc(now, "now") >= next_due(freq, last_started, now, tz)


def _utc(value: datetime, name: str) -> datetime:
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware; got naive {value.isoformat()!r}")
    return value.astimezone(UTC)


def _past_top(local: datetime) -> timedelta:
    """How far the local wall clock is past the top of its hour."""
    return timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)


def _next_hour(last: datetime, tz: ZoneInfo) -> datetime:
    """The first instant strictly after ``last`` at which the local clock reads HH:00:00.

    Whole-hour offset changes keep the UTC phase of the local hour, so one step is exact
    and needs no loop however long the downtime. A change by a fraction of an hour
    (Lord Howe's 30 minutes) moves the phase; then the top of the hour under the new
    offset is either just before the first guess or just after it.
    """
    guess = last + _HOUR - _past_top(last.astimezone(tz))
    off = _past_top(guess.astimezone(tz))
    if not off:
        return guess
    earlier = guess - off
    if earlier > last and not _past_top(earlier.astimezone(tz)):
        return earlier
    return guess + _HOUR - off


def _candidate_days(freq: Frequency, today: date) -> Iterator[date]:
    """Dates ``freq`` fires on, in order, from the last one before ``today`` or on it.

    Daily starts a day early: a gap that ends at midnight shifts a late time onto the
    next date (Asia/Dhaka 2009-06-19: 23:30 does not exist and fires at 00:30 on the 20th).
    A shift is at most a day, so weekly and monthly (day <= 28) need no such margin.
    """
    if freq.kind == "monthly":
        year, month = today.year, today.month
        while True:
            yield date(year, month, freq.day)
            year, month = (year, month + 1) if month < 12 else (year + 1, 1)
    elif freq.kind == "weekly":
        step = timedelta(days=7)
        day = today - timedelta(days=(today.weekday() - freq.weekday) % 7)
    else:
        step = timedelta(days=1)
        day = today - step
    while True:
        yield day
        day += step


def human_time(when: datetime, tz: tzinfo) -> str:
    """``when`` as people read it: wall time in ``tz``, to the second (no offset)."""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
