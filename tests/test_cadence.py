"""Tables for daemon.cadence: parsing, next due time and is-due, including Melbourne DST.

Melbourne 2026 (checked in test_melbourne_transitions_are_where_the_tables_assume):
- fall back: 2026-04-05 03:00 AEDT (+11) -> 02:00 AEST (+10), at 2026-04-04 16:00 UTC;
  local 02:00-02:59 happens twice (fold=0 is AEDT, fold=1 is AEST).
- spring forward: 2026-10-04 02:00 AEST (+10) -> 03:00 AEDT (+11), at 2026-10-03 16:00 UTC;
  local 02:00-02:59 does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from interlock.cadence import Frequency, is_due, next_due, parse_frequency

MEL = ZoneInfo("Australia/Melbourne")

Decision = Callable[[Frequency, datetime | None, datetime, ZoneInfo], object]


def mel(
    y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0, *, fold: int = 0
) -> datetime:
    """Melbourne wall time as a UTC instant (fold=1 picks the second of a repeated time)."""
    return datetime(y, mo, d, h, mi, s, us, tzinfo=MEL, fold=fold).astimezone(UTC)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def test_melbourne_transitions_are_where_the_tables_assume() -> None:
    """The tz database puts Melbourne's 2026 transitions where the DST rows expect them."""
    second = timedelta(seconds=1)
    back, forward = utc(2026, 4, 4, 16), utc(2026, 10, 3, 16)
    assert (back - second).astimezone(MEL).utcoffset() == timedelta(hours=11)
    assert back.astimezone(MEL).utcoffset() == timedelta(hours=10)
    assert back.astimezone(MEL).replace(tzinfo=None) == datetime(2026, 4, 5, 2)
    assert (forward - second).astimezone(MEL).utcoffset() == timedelta(hours=10)
    assert forward.astimezone(MEL).replace(tzinfo=None) == datetime(2026, 10, 4, 3)


# --- parsing -------------------------------------------------------------------------

PARSED = [
    ("30s", Frequency("30s", "interval", interval=timedelta(seconds=30))),
    ("15m", Frequency("15m", "interval", interval=timedelta(minutes=15))),
    ("6h", Frequency("6h", "interval", interval=timedelta(hours=6))),
    ("1d", Frequency("1d", "interval", interval=timedelta(days=1))),
    ("1s", Frequency("1s", "interval", interval=timedelta(seconds=1))),
    ("90m", Frequency("90m", "interval", interval=timedelta(minutes=90))),
    ("365d", Frequency("365d", "interval", interval=timedelta(days=365))),
    ("hourly", Frequency("hourly", "hourly")),
    ("daily", Frequency("daily", "daily")),
    ("weekly", Frequency("weekly", "weekly")),
    ("monthly", Frequency("monthly", "monthly")),
    ("daily@03:30", Frequency("daily@03:30", "daily", at=time(3, 30))),
    ("daily@00:00", Frequency("daily@00:00", "daily", at=time(0))),
    ("daily@23:59", Frequency("daily@23:59", "daily", at=time(23, 59))),
    ("weekly@mon 06:00", Frequency("weekly@mon 06:00", "weekly", at=time(6), weekday=0)),
    ("weekly@sun 02:30", Frequency("weekly@sun 02:30", "weekly", at=time(2, 30), weekday=6)),
    ("monthly@1 02:00", Frequency("monthly@1 02:00", "monthly", at=time(2), day=1)),
    ("monthly@28 23:00", Frequency("monthly@28 23:00", "monthly", at=time(23), day=28)),
]


@pytest.mark.parametrize(("text", "expected"), PARSED, ids=[t for t, _ in PARSED])
def test_parse_frequency(text: str, expected: Frequency) -> None:
    """Each accepted form parses to the expected fields and keeps its original text."""
    parsed = parse_frequency(text)
    assert parsed == expected
    assert parsed.text == text


def test_frequency_is_hashable() -> None:
    """Parsed frequencies can be set members and dict keys; equal texts collapse."""
    assert len({parse_frequency("hourly"), parse_frequency("hourly"), parse_frequency("1h")}) == 2


FORMS = (
    "expected 'hourly', 'daily', 'weekly' or 'monthly' (optionally with a time: "
    "'daily@03:30', 'weekly@mon 06:00', 'monthly@1 02:00'), or an interval such as "
    "'30s', '15m', '6h' or '1d'"
)
INTERVAL = (
    "an interval is a whole number followed by s, m, h or d, such as '30s', '15m', '6h' or '1d'"
)
DAILY = "'daily@' needs a time HH:MM from 00:00 to 23:59, such as 'daily@03:30'"
WEEKLY = (
    "'weekly@' needs a weekday (mon, tue, wed, thu, fri, sat or sun) and a time HH:MM, "
    "such as 'weekly@mon 06:00'"
)
MONTHLY = (
    "'monthly@' needs a day of the month from 1 to 28 and a time HH:MM, such as 'monthly@1 02:00'"
)

PARSE_ERRORS: list[tuple[object, str]] = [
    ("0s", "invalid frequency '0s': an interval must be at least 1s"),
    ("000m", "invalid frequency '000m': an interval must be at least 1s"),
    ("-5m", f"invalid frequency '-5m': {INTERVAL}"),
    ("+5m", f"invalid frequency '+5m': {INTERVAL}"),
    ("1.5h", f"invalid frequency '1.5h': {INTERVAL}"),
    (".5h", f"invalid frequency '.5h': {INTERVAL}"),
    ("10x", f"invalid frequency '10x': {INTERVAL}"),
    ("10", f"invalid frequency '10': {INTERVAL}"),
    ("10 m", f"invalid frequency '10 m': {INTERVAL}"),
    ("10M", f"invalid frequency '10M': {INTERVAL}"),
    ("1w", f"invalid frequency '1w': {INTERVAL}"),
    (
        "366d",
        "invalid frequency '366d': an interval must be at most 365d; "
        "use 'monthly' for longer periods",
    ),
    ("", f"invalid frequency ''; {FORMS}"),
    ("h", f"invalid frequency 'h'; {FORMS}"),
    ("fortnightly", f"invalid frequency 'fortnightly'; {FORMS}"),
    ("Daily", f"invalid frequency 'Daily'; {FORMS}"),
    (" daily", f"invalid frequency ' daily'; {FORMS}"),
    ("daily ", f"invalid frequency 'daily '; {FORMS}"),
    (30, f"invalid frequency 30: expected a string; {FORMS}"),
    ("hourly@00:30", "invalid frequency 'hourly@00:30': 'hourly' takes no time of day"),
    ("daily@", f"invalid frequency 'daily@': {DAILY}"),
    ("daily@3:30", f"invalid frequency 'daily@3:30': {DAILY}"),
    ("daily@24:00", f"invalid frequency 'daily@24:00': {DAILY}"),
    ("daily@12:60", f"invalid frequency 'daily@12:60': {DAILY}"),
    ("daily@03:30:00", f"invalid frequency 'daily@03:30:00': {DAILY}"),
    ("weekly@mon", f"invalid frequency 'weekly@mon': {WEEKLY}"),
    ("weekly@06:00", f"invalid frequency 'weekly@06:00': {WEEKLY}"),
    ("weekly@monday 06:00", f"invalid frequency 'weekly@monday 06:00': {WEEKLY}"),
    ("weekly@Mon 06:00", f"invalid frequency 'weekly@Mon 06:00': {WEEKLY}"),
    ("monthly@0 02:00", f"invalid frequency 'monthly@0 02:00': {MONTHLY}"),
    ("monthly@29 02:00", f"invalid frequency 'monthly@29 02:00': {MONTHLY}"),
    ("monthly@01 02:00", f"invalid frequency 'monthly@01 02:00': {MONTHLY}"),
    ("monthly@1", f"invalid frequency 'monthly@1': {MONTHLY}"),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS, ids=[repr(t) for t, _ in PARSE_ERRORS])
def test_parse_frequency_rejects(text: str, message: str) -> None:
    """A malformed frequency raises ValueError naming the value and the allowed forms."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_frequency(text)


# --- next_due ------------------------------------------------------------------------

# (frequency, last_started, expected next_due); all in UTC, written as Melbourne wall time.
NEXT_DUE = [
    # intervals: real elapsed time from the last start, never aligned to the clock
    ("30s", mel(2026, 3, 10, 10, 0, 5), mel(2026, 3, 10, 10, 0, 35)),
    ("15m", mel(2026, 3, 10, 10, 7), mel(2026, 3, 10, 10, 22)),
    ("6h", mel(2026, 3, 10, 22, 0), mel(2026, 3, 11, 4, 0)),
    ("1d", mel(2026, 3, 10, 10, 7), mel(2026, 3, 11, 10, 7)),
    ("1h", mel(2026, 4, 5, 2, 30), mel(2026, 4, 5, 2, 30, fold=1)),  # AEDT -> AEST, 3600 s
    ("1h", mel(2026, 4, 5, 1, 30), mel(2026, 4, 5, 2, 30)),  # into the repeated hour
    ("1h", mel(2026, 10, 4, 1, 30), mel(2026, 10, 4, 3, 30)),  # over the gap, 3600 s
    ("1d", mel(2026, 4, 4, 12), mel(2026, 4, 5, 11)),  # 86400 s, not a calendar day
    ("1d", mel(2026, 10, 3, 12), mel(2026, 10, 4, 13)),
    # hourly: every instant the local clock reads HH:00:00
    ("hourly", mel(2026, 3, 10, 10, 15), mel(2026, 3, 10, 11)),
    ("hourly", mel(2026, 3, 10, 10), mel(2026, 3, 10, 11)),  # strictly after
    ("hourly", mel(2026, 3, 10, 10, 59, 59, 999_999), mel(2026, 3, 10, 11)),
    ("hourly", mel(2026, 3, 10, 23, 30), mel(2026, 3, 11, 0)),
    ("hourly", mel(2026, 12, 31, 23, 30), mel(2027, 1, 1, 0)),
    ("hourly", mel(2026, 4, 5, 1, 30), mel(2026, 4, 5, 2)),  # 02:00 AEDT
    ("hourly", mel(2026, 4, 5, 2), mel(2026, 4, 5, 2, fold=1)),  # 02:00 AEDT -> 02:00 AEST
    ("hourly", mel(2026, 4, 5, 2, 30), mel(2026, 4, 5, 2, fold=1)),
    ("hourly", mel(2026, 4, 5, 2, fold=1), mel(2026, 4, 5, 3)),
    ("hourly", mel(2026, 10, 4, 1), mel(2026, 10, 4, 3)),  # 02:00 does not exist
    ("hourly", mel(2026, 10, 4, 1, 59, 59), mel(2026, 10, 4, 3)),
    ("hourly", mel(2026, 10, 4, 3), mel(2026, 10, 4, 4)),
    # daily: local midnight; Melbourne's change days are 25 h and 23 h long
    ("daily", mel(2026, 3, 10, 12), mel(2026, 3, 11)),
    ("daily", mel(2026, 3, 10), mel(2026, 3, 11)),
    ("daily", mel(2026, 3, 10, 23, 59, 59), mel(2026, 3, 11)),
    ("daily", mel(2026, 12, 31, 8), mel(2027, 1, 1)),
    ("daily", mel(2026, 4, 4), mel(2026, 4, 5)),
    ("daily", mel(2026, 4, 5), mel(2026, 4, 6)),
    ("daily", mel(2026, 10, 4), mel(2026, 10, 5)),
    ("daily", mel(2028, 2, 28, 12), mel(2028, 2, 29)),  # leap day
    ("daily", mel(2027, 2, 28, 12), mel(2027, 3, 1)),
    # daily@02:30 across both transitions
    ("daily@02:30", mel(2026, 3, 10, 2, 29), mel(2026, 3, 10, 2, 30)),
    ("daily@02:30", mel(2026, 3, 10, 2, 30), mel(2026, 3, 11, 2, 30)),
    ("daily@02:30", mel(2026, 4, 4, 2, 30), mel(2026, 4, 5, 2, 30)),  # first occurrence (AEDT)
    ("daily@02:30", mel(2026, 4, 5, 2, 30), mel(2026, 4, 6, 2, 30)),  # not again at AEST
    ("daily@02:30", mel(2026, 4, 5, 2, 10, fold=1), mel(2026, 4, 6, 2, 30)),
    ("daily@02:30", mel(2026, 10, 3, 2, 30), utc(2026, 10, 3, 16, 30)),  # = 03:30 AEDT
    ("daily@02:30", mel(2026, 10, 4, 3, 10), utc(2026, 10, 3, 16, 30)),
    ("daily@02:30", mel(2026, 10, 4, 3, 30), mel(2026, 10, 5, 2, 30)),
    # weekly: Monday midnight, or the given weekday and time
    ("weekly", mel(2026, 3, 11, 9), mel(2026, 3, 16)),  # Wednesday -> Monday
    ("weekly", mel(2026, 3, 16), mel(2026, 3, 23)),  # Monday midnight, strictly after
    ("weekly", mel(2026, 3, 15, 23, 59), mel(2026, 3, 16)),  # Sunday night
    ("weekly", mel(2026, 12, 30, 12), mel(2027, 1, 4)),  # over the new year
    ("weekly", mel(2028, 2, 26), mel(2028, 2, 28)),
    ("weekly", mel(2028, 2, 28), mel(2028, 3, 6)),  # over the leap day
    ("weekly", mel(2026, 3, 31), mel(2026, 4, 6)),  # over the April change
    ("weekly@mon 06:00", mel(2026, 3, 16, 5, 59), mel(2026, 3, 16, 6)),
    ("weekly@mon 06:00", mel(2026, 3, 16, 6), mel(2026, 3, 23, 6)),
    ("weekly@fri 17:00", mel(2026, 3, 16, 6), mel(2026, 3, 20, 17)),
    ("weekly@sun 02:30", mel(2026, 3, 29, 2, 30), mel(2026, 4, 5, 2, 30)),  # first occurrence
    ("weekly@sun 02:30", mel(2026, 4, 5, 2, 30), mel(2026, 4, 12, 2, 30)),
    ("weekly@sun 02:30", mel(2026, 9, 27, 2, 30), utc(2026, 10, 3, 16, 30)),  # = 03:30 AEDT
    # monthly: the 1st at midnight, or the given day and time
    ("monthly", mel(2026, 1, 15), mel(2026, 2, 1)),
    ("monthly", mel(2026, 1, 31, 23, 59), mel(2026, 2, 1)),
    ("monthly", mel(2026, 2, 1), mel(2026, 3, 1)),  # strictly after
    ("monthly", mel(2026, 11, 15), mel(2026, 12, 1)),
    ("monthly", mel(2026, 12, 15), mel(2027, 1, 1)),  # December -> January
    ("monthly", mel(2026, 12, 1), mel(2027, 1, 1)),
    ("monthly", mel(2028, 2, 29, 12), mel(2028, 3, 1)),  # leap day
    ("monthly", mel(2026, 4, 1), mel(2026, 5, 1)),  # AEDT -> AEST between them
    ("monthly", mel(2026, 9, 30), mel(2026, 10, 1)),
    ("monthly@1 02:00", mel(2026, 3, 1, 1, 59), mel(2026, 3, 1, 2)),
    ("monthly@1 02:00", mel(2026, 3, 1, 2), mel(2026, 4, 1, 2)),
    ("monthly@28 23:00", mel(2028, 2, 27), mel(2028, 2, 28, 23)),
    ("monthly@28 23:00", mel(2028, 2, 28, 23), mel(2028, 3, 28, 23)),
    ("monthly@28 23:00", mel(2026, 12, 28, 23), mel(2027, 1, 28, 23)),
    # coalescing: after downtime the next due is the first boundary after the last start
    ("hourly", mel(2026, 1, 1, 10, 5), mel(2026, 1, 1, 11)),
    ("monthly", mel(2016, 1, 15), mel(2016, 2, 1)),
]


@pytest.mark.parametrize(("text", "last", "expected"), NEXT_DUE)
def test_next_due(text: str, last: datetime, expected: datetime) -> None:
    """next_due is the interval after, or the first boundary strictly after, the last start."""
    now = mel(2030, 1, 1)
    assert next_due(parse_frequency(text), last, now, MEL) == expected


# (zone, frequency, last_started, expected next_due): offsets that are not whole hours
OTHER_ZONES = [
    # Lord Howe moves its clocks by 30 minutes: local 02:00 is skipped in October
    ("Australia/Lord_Howe", "hourly", utc(2026, 10, 3, 15, 10), utc(2026, 10, 3, 16)),
    ("Australia/Lord_Howe", "hourly", utc(2026, 4, 4, 14, 40), utc(2026, 4, 4, 15, 30)),
    # Caracas 2016: 02:30 -04:30 became 03:00 -04:00, an hour top before the old phase's
    ("America/Caracas", "hourly", utc(2016, 5, 1, 6, 40), utc(2016, 5, 1, 7)),
    # Caracas 2007: 03:00 -04:00 became 02:30 -04:30, so 03:00 came half an hour later
    ("America/Caracas", "hourly", utc(2007, 12, 9, 6, 50), utc(2007, 12, 9, 7, 30)),
    ("Asia/Kolkata", "hourly", utc(2026, 1, 1, 0, 10), utc(2026, 1, 1, 0, 30)),
    ("UTC", "hourly", utc(2026, 1, 1, 0, 10), utc(2026, 1, 1, 1)),
    # Dhaka 2009-06-19 jumped 23:00 -> 00:00, so that day's 23:30 fires at 00:30 on the 20th
    ("Asia/Dhaka", "daily@23:30", utc(2009, 6, 18, 17, 30), utc(2009, 6, 19, 17, 30)),
    ("Asia/Dhaka", "daily@23:30", utc(2009, 6, 19, 17, 26), utc(2009, 6, 19, 17, 30)),
]


@pytest.mark.parametrize(
    ("zone", "text", "last", "expected"),
    OTHER_ZONES,
    ids=[f"{z}-{t}-{last:%Y%m%dT%H%M}" for z, t, last, _ in OTHER_ZONES],
)
def test_next_due_in_other_zones(zone: str, text: str, last: datetime, expected: datetime) -> None:
    """Boundaries follow the local clock in zones with part-hour offsets or changes."""
    assert next_due(parse_frequency(text), last, last, ZoneInfo(zone)) == expected


@pytest.mark.parametrize(
    ("day", "fires"), [((2026, 4, 5), 25), ((2026, 10, 4), 23), ((2026, 6, 1), 24)]
)
def test_hourly_fires_once_per_real_hour(day: tuple[int, int, int], fires: int) -> None:
    """Following next_due through a Melbourne local day fires once per real hour in it."""
    freq = parse_frequency("hourly")
    start = mel(*day)
    end = (datetime(*day, tzinfo=MEL) + timedelta(days=1)).astimezone(UTC)
    times = [start]
    while (following := next_due(freq, times[-1], start, MEL)) < end:
        times.append(following)
    assert len(times) == fires
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(times))


def test_next_due_never_started_is_now() -> None:
    """A component that has never started is due at `now`, returned in UTC."""
    now = datetime(2026, 4, 5, 2, 30, tzinfo=MEL, fold=1)
    due = next_due(parse_frequency("daily"), None, now, MEL)
    assert due == now.astimezone(UTC)
    assert due.tzinfo is UTC


@pytest.mark.parametrize("text", ["15m", "hourly", "daily@02:30", "weekly", "monthly"])
def test_next_due_is_utc(text: str) -> None:
    """next_due returns UTC datetimes even when given Melbourne-zoned ones."""
    last = datetime(2026, 4, 5, 2, 30, tzinfo=MEL)
    assert next_due(parse_frequency(text), last, last, MEL).tzinfo is UTC


def test_interval_from_zoned_last_start_counts_real_seconds() -> None:
    """An interval added to a Melbourne-zoned start is real time, not wall-clock time."""
    last = datetime(2026, 4, 5, 2, 30, tzinfo=MEL)  # 02:30 AEDT, the first of two
    assert next_due(parse_frequency("1h"), last, last, MEL) == utc(2026, 4, 4, 16, 30)


@pytest.mark.parametrize(
    ("last", "now", "name"),
    [
        (datetime(2026, 3, 10, 10), mel(2026, 3, 10), "last_started"),
        (mel(2026, 3, 10), datetime(2026, 3, 10, 10), "now"),
        (None, datetime(2026, 3, 10, 10), "now"),
    ],
)
@pytest.mark.parametrize("decide", [next_due, is_due])
def test_naive_datetimes_are_rejected(
    decide: Decision, last: datetime | None, now: datetime, name: str
) -> None:
    """A naive last_started or now raises ValueError naming the argument."""
    message = f"{name} must be timezone-aware; got naive '2026-03-10T10:00:00'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        decide(parse_frequency("hourly"), last, now, MEL)


# --- is_due --------------------------------------------------------------------------

# (frequency, last_started, now, due)
IS_DUE = [
    ("hourly", None, mel(2026, 3, 10, 10, 15), True),
    ("15m", None, mel(2026, 3, 10, 10, 15), True),
    ("hourly", mel(2026, 3, 10, 10, 15), mel(2026, 3, 10, 10, 59, 59, 999_999), False),
    ("hourly", mel(2026, 3, 10, 10, 15), mel(2026, 3, 10, 11), True),
    ("15m", mel(2026, 3, 10, 10, 15), mel(2026, 3, 10, 10, 29, 59), False),
    ("15m", mel(2026, 3, 10, 10, 15), mel(2026, 3, 10, 10, 30), True),
    ("daily@02:30", mel(2026, 4, 4, 2, 30), mel(2026, 4, 5, 2, 29), False),
    ("daily@02:30", mel(2026, 4, 4, 2, 30), mel(2026, 4, 5, 2, 30), True),
    ("daily@02:30", mel(2026, 4, 5, 2, 30), mel(2026, 4, 5, 2, 30, fold=1), False),
    ("daily@02:30", mel(2026, 10, 3, 2, 30), mel(2026, 10, 4, 3, 29), False),
    ("daily@02:30", mel(2026, 10, 3, 2, 30), mel(2026, 10, 4, 3, 30), True),
    ("hourly", mel(2026, 4, 5, 2, 30), mel(2026, 4, 5, 2, 59), False),
    ("hourly", mel(2026, 4, 5, 2, 30), mel(2026, 4, 5, 2, fold=1), True),
    # coalescing: long downtime makes it due once; after that run, not until the next boundary
    ("hourly", mel(2026, 1, 1, 10), mel(2026, 3, 1, 12, 34), True),
    ("hourly", mel(2026, 3, 1, 12, 34), mel(2026, 3, 1, 12, 35), False),
    ("daily", mel(2025, 6, 1, 0), mel(2026, 3, 1, 12, 34), True),
    ("daily", mel(2026, 3, 1, 12, 34), mel(2026, 3, 1, 23, 59), False),
    ("15m", mel(2026, 1, 1, 10), mel(2026, 3, 1, 12, 34), True),
    ("15m", mel(2026, 3, 1, 12, 34), mel(2026, 3, 1, 12, 48), False),
    # a last start in the future (clock stepped back) is not due
    ("hourly", mel(2026, 3, 1, 12, 34), mel(2026, 3, 1, 9), False),
]


@pytest.mark.parametrize(("text", "last", "now", "due"), IS_DUE)
def test_is_due(text: str, last: datetime | None, now: datetime, due: bool) -> None:
    """is_due is `now >= next_due`, so missed boundaries coalesce into one run."""
    assert is_due(parse_frequency(text), last, now, MEL) is due


def test_is_due_accepts_zoned_now() -> None:
    """is_due compares instants, so a Melbourne-zoned `now` in the repeated hour works."""
    freq = parse_frequency("hourly")
    last = mel(2026, 4, 5, 2, 30)  # 02:30 AEDT
    assert not is_due(freq, last, datetime(2026, 4, 5, 2, 59, tzinfo=MEL), MEL)
    assert is_due(freq, last, datetime(2026, 4, 5, 2, 0, tzinfo=MEL, fold=1), MEL)


def test_wakes_after_downtime_run_once_per_boundary() -> None:
    """A scheduler waking every minute after a week down runs an hourly job once, then hourly."""
    freq = parse_frequency("hourly")
    last: datetime | None = mel(2026, 3, 1, 10, 5)
    now = mel(2026, 3, 8, 10, 30)
    starts = []
    for _ in range(3 * 60):
        if is_due(freq, last, now, MEL):
            starts.append(now)
            last = now
        now += timedelta(minutes=1)
    expected = [
        mel(2026, 3, 8, 10, 30),
        mel(2026, 3, 8, 11),
        mel(2026, 3, 8, 12),
        mel(2026, 3, 8, 13),
    ]
    assert starts == expected
