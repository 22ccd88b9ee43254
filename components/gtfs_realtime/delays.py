"""Delays of stop-time updates: the feed's own, or derived from the schedule in force.

A StopTimeEvent with a ``delay`` keeps it (source ``feed``). One with only a ``time``
gets ``time - scheduled`` (source ``derived``), the scheduled time being the trip's
stop time at that stop (by ``stop_sequence``, else ``stop_id``) on its service day.
GTFS times count from noon minus 12 h of the service day in the agency's time zone,
so they may pass 24:00:00 and stay right on the days clocks change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from interlock.components.gtfs_realtime.schedule_index import ScheduleIndex, StopTime

FEED, DERIVED = "feed", "derived"
#: A derived delay further off than this is taken as the wrong service day (or a
#: mismatched trip), not a delay: no delay is stored.
MAX_DERIVED_S = 12 * 3600


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=1024)
def service_day_origin(day: date, tz: str) -> int | None:
    """Epoch seconds of noon minus 12 h on ``day`` in ``tz``: where GTFS times count from.

    On a day the clocks change this is not local midnight (it is 23:00 or 01:00).
    """
    zone = _zone(tz)
    if zone is None:
        return None
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
    return int(noon.timestamp()) - 12 * 3600


def parse_start_date(text: str | None) -> date | None:
    """A TripDescriptor.start_date (YYYYMMDD); None when absent or not a date."""
    if not text or len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def derive(secs: int | None, actual: int, tz: str, service_day: date | None) -> int | None:
    """``actual - scheduled`` for a stop scheduled ``secs`` into the service day.

    Without the trip's start_date the service day is the one (of the actual time's
    local date, the day before or after) that gives the smallest delay.
    """
    if secs is None:
        return None
    if service_day is not None:
        origin = service_day_origin(service_day, tz)
        if origin is None:
            return None
        delay = actual - (origin + secs)
        return delay if abs(delay) <= MAX_DERIVED_S else None
    zone = _zone(tz)
    if zone is None:
        return None
    local = datetime.fromtimestamp(actual, zone).date()
    best: int | None = None
    for shift in (-1, 0, 1):
        origin = service_day_origin(local + timedelta(days=shift), tz)
        if origin is None:
            continue
        delay = actual - (origin + secs)
        if best is None or abs(delay) < abs(best):
            best = delay
    return best if best is not None and abs(best) <= MAX_DERIVED_S else None


def match_stop(
    times: list[StopTime], stop_sequence: int | None, stop_id: str | None, after: int
) -> int | None:
    """Where in ``times`` the scheduled stop an update refers to is: by stop_sequence,
    else the first visit of stop_id at or after the position ``after``."""
    if stop_sequence is not None:
        for i, st in enumerate(times):
            if st.stop_sequence == stop_sequence:
                return i
        return None
    if stop_id is None:
        return None
    for i in range(after, len(times)):
        if times[i].stop_id == stop_id:
            return i
    for i in range(min(after, len(times))):
        if times[i].stop_id == stop_id:
            return i
    return None


class DelayDeriver:
    """Derives delays for one feed against ``index``; stop times cached per trip."""

    def __init__(self, index: ScheduleIndex) -> None:
        self.index = index
        self._times: dict[str, list[StopTime]] = {}
        self.derived = 0

    def for_trip(
        self, trip_id: str | None, start_date: str | None
    ) -> Callable[[int | None, str | None, int | None, int | None], int | None] | None:
        """A function (stop_sequence, stop_id, arrival_time, departure_time) -> delay_s
        for the stop-time updates of ``trip_id``; None when the schedule lacks the trip."""
        if not trip_id or not self.index.has_trip(trip_id):
            return None
        tz = self.index.timezone_of(trip_id)
        if tz is None:
            return None
        times = self._times.get(trip_id)
        if times is None:
            times = self._times[trip_id] = self.index.stop_times(trip_id)
        if not times:
            return None
        day = parse_start_date(start_date)
        where = [0]

        def delay(
            seq: int | None, stop: str | None, arr: int | None, dep: int | None
        ) -> int | None:
            at = match_stop(times, seq, stop, where[0])
            if at is None:
                return None
            where[0], st = at, times[at]
            out: int | None = None
            if arr is not None:
                out = derive(st.arrival_secs, arr, tz, day)
            if out is None and dep is not None:
                out = derive(st.departure_secs, dep, tz, day)
            if out is not None:
                self.derived += 1
            return out

        return delay
