"""The schedule's calendar expanded to days (``service_days``) and the ``departures`` view.

A view cannot expand a calendar into days by itself, so :func:`add_departures` builds a
small table at load, one row per service and day it runs (calendar weekdays in its
date range, with calendar_dates' additions and removals), and a view that joins it to
stop_times, trips, routes and stops. Times past 24:00:00 stay on their service day
(``departure_secs`` above 86400) and ``departure_local`` carries them into the next day.
"""

from __future__ import annotations

import sqlite3

#: The most days ``service_days`` covers, from the feed's first calendar day: a calendar
#: running to 2099 must not cost a row per day for 75 years.
MAX_DAYS = 1100
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def _iso(col: str) -> str:
    return f"substr({col},1,4)||'-'||substr({col},5,2)||'-'||substr({col},7,2)"


def service_days_sql(moded: bool) -> str:
    """The script creating and filling ``service_days``."""
    mode = "c.mode" if moded else "NULL"
    same_mode = "x.mode = c.mode AND " if moded else ""
    weekday = " ".join(f"WHEN {i} THEN c.{day}" for i, day in enumerate(_DAYS))
    added_mode = "d.mode" if moded else "NULL"
    same_added = "c.mode = d.mode AND " if moded else ""
    return f"""
CREATE TABLE service_days (mode TEXT, service_id TEXT NOT NULL, date TEXT NOT NULL);
INSERT INTO service_days
WITH RECURSIVE
    bounds(first, last) AS (
        SELECT julianday(min({_iso("start_date")})),
               min(julianday(max({_iso("end_date")})),
                   julianday(min({_iso("start_date")})) + {MAX_DAYS - 1})
        FROM calendar),
    span(d) AS (SELECT first FROM bounds WHERE first IS NOT NULL
                UNION ALL SELECT d + 1 FROM span, bounds WHERE d < last),
    days(date, dow) AS (SELECT strftime('%Y%m%d', d), CAST(strftime('%w', d) AS INTEGER) FROM span)
SELECT {mode}, c.service_id, days.date
FROM calendar c JOIN days ON days.date BETWEEN c.start_date AND c.end_date
WHERE c.service_id IS NOT NULL AND (CASE days.dow {weekday} END) = 1
  AND NOT EXISTS (SELECT 1 FROM calendar_dates x WHERE {same_mode}x.service_id = c.service_id
                  AND x.date = days.date AND x.exception_type = 2)
UNION ALL
SELECT {added_mode}, d.service_id, d.date FROM calendar_dates d
WHERE d.exception_type = 1 AND d.service_id IS NOT NULL AND d.date IS NOT NULL
  AND NOT EXISTS (  -- a day the calendar part above already gave
      SELECT 1 FROM calendar c, bounds WHERE {same_added}c.service_id = d.service_id
      AND d.date BETWEEN c.start_date AND c.end_date
      AND d.date <= strftime('%Y%m%d', bounds.last)
      AND (CASE CAST(strftime('%w', {_iso("d.date")}) AS INTEGER) {weekday} END) = 1);
CREATE INDEX service_days_by_service ON service_days (mode, service_id, date);
-- A stop's departures on a day start here when the query names no mode.
CREATE INDEX service_days_by_date ON service_days (date);
"""


def departures_sql(moded: bool) -> str:
    """The ``departures`` view."""
    on = "{a}.mode = {b}.mode AND " if moded else ""

    def same(a: str, b: str) -> str:
        return on.format(a=a, b=b)

    mode = "st.mode" if moded else "NULL"
    return f"""
CREATE VIEW departures AS
SELECT sd.date AS service_date, {mode} AS mode, st.trip_id, t.route_id, r.route_short_name,
    r.route_long_name, r.route_type, t.trip_headsign, t.direction_id, st.stop_sequence,
    st.stop_id, s.stop_name, s.parent_station, st.arrival_time, st.departure_time,
    st.arrival_time_secs AS arrival_secs, st.departure_time_secs AS departure_secs,
    datetime({_iso("sd.date")}, '+' || st.departure_time_secs || ' seconds') AS departure_local
FROM stop_times st
JOIN trips t ON {same("t", "st")}t.trip_id = st.trip_id
JOIN service_days sd ON {same("sd", "t")}sd.service_id = t.service_id
JOIN routes r ON {same("r", "t")}r.route_id = t.route_id
JOIN stops s ON {same("s", "st")}s.stop_id = st.stop_id
WHERE st.departure_time_secs IS NOT NULL;
"""


def add_departures(conn: sqlite3.Connection) -> None:
    """Build ``service_days`` and the ``departures`` view in the loaded dataset (blocking)."""
    moded = "mode" in {row[1] for row in conn.execute("PRAGMA table_info(calendar)")}
    conn.executescript("BEGIN;" + service_days_sql(moded) + departures_sql(moded) + "COMMIT;")
