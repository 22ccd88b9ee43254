"""The GTFS schedule dataset (``<data_dir>/<component>.sqlite``) described column by column.

The spec tables come from :data:`.spec.TABLES` (one declaration for the loader, the
validator and this page); the units come from each field's kind. Checked against a
really loaded feed by ``tests/test_dataset_schema.py``.
"""

from __future__ import annotations

from interlock.components.gtfs_schedule.schema import Field, Kind
from interlock.components.gtfs_schedule.schema import Table as SpecTable
from interlock.components.gtfs_schedule.spec import TABLES as SPEC_TABLES
from interlock.components.gtfs_schedule.views import MAX_DAYS
from interlock.kit.tables import PUBLISH_STAMP, Column, Database, Table, View, col

_UNITS = {
    Kind.LATITUDE: "degrees WGS84",
    Kind.LONGITUDE: "degrees WGS84",
    Kind.DATE: "YYYYMMDD text (service day)",
    Kind.TIME: "H:MM:SS or HH:MM:SS text, service-day time, may pass 24:00:00",
    Kind.COLOR: "RRGGBB hex text",
    Kind.TIMEZONE: "IANA time zone name",
    Kind.URL: "URL",
    Kind.EMAIL: "e-mail address",
    Kind.CURRENCY: "ISO 4217 code",
}
_SPEC = "https://gtfs.org/documentation/schedule/reference/"
_MODE = col(
    "mode",
    "TEXT",
    "The per-mode folder of Victoria's zip of zips the row came from (1 regional train, "
    "2 metro train, 3 tram, 4 bus, 5 coach, 6 regional bus...); absent for a flat feed. "
    "Ids are unique within a mode only: join on (mode, id).",
)


def _columns(table: SpecTable) -> list[Column]:
    out = [_MODE]
    for f in table.fields:
        out.append(_column(table, f))
        if f.kind is Kind.TIME:
            out.append(
                col(
                    f"{f.name}_secs",
                    "INTEGER",
                    f"{f.name} in seconds after the service day's start (noon minus 12 h); "
                    "above 86400 for times past midnight.",
                    "seconds",
                )
            )
    return out


def _column(table: SpecTable, f: Field) -> Column:
    need = "required" if f.required else "optional"
    meaning = f"GTFS {table.filename} field {f.name} ({need}; see {_SPEC}#{table.name}txt)."
    if f.required:
        meaning += " NULL only where the feed broke the rule (a notice says so)."
    return col(f.name, f.kind.sql_type, meaning, _UNITS.get(f.kind, ""))


PROVENANCE = Table(
    "provenance",
    "One row: where this dataset's feed came from.",
    (
        col("source_url", "TEXT", "URL fetched."),
        col("sha256", "TEXT", "SHA-256 of the zip (its raw-archive name).", "hex", null=False),
        col("size", "INTEGER", "Zip size.", "bytes"),
        col("etag", "TEXT", "The server's ETag."),
        col("last_modified", "TEXT", "The server's Last-Modified.", "HTTP date text"),
        col("fetched_at", "TEXT", "When interlock fetched it.", "ISO 8601 text, UTC", null=False),
        col(
            "published_at", "TEXT", "When interlock published it.", "ISO 8601 text, UTC", null=False
        ),
        col("modes", "TEXT", "Mode folders loaded.", "JSON text (list)"),
        col("record_counts", "TEXT", "Rows per table.", "JSON text (object)", null=False),
        col("run_id", "TEXT", "The interlock run.", null=False),
    ),
)

SERVICE_DAYS = Table(
    "service_days",
    "The calendar expanded: one row per service and day it runs (calendar weekdays within "
    "start_date..end_date, plus calendar_dates additions, minus removals). Built at load; "
    f"covers at most {MAX_DAYS} days from the first calendar day.",
    (
        _MODE,
        col("service_id", "TEXT", "calendar / calendar_dates service_id.", null=False),
        col("date", "TEXT", "A day the service runs.", "YYYYMMDD text (service day)", null=False),
    ),
    key=("mode", "service_id", "date"),
)
_STOP_TIME = "GTFS stop_times.txt"
DEPARTURES = View(
    "departures",
    "Scheduled departures per service day: stop_times joined to trips, service_days, "
    "routes and stops. Times past 24:00:00 stay on their service day (departure_secs > "
    "86400); departure_local is the wall-clock time they fall on. Frequency-based trips "
    "(frequencies.txt) appear once, at their stop_times' times.",
    "",
    (
        col("service_date", "TEXT", "The service day.", "YYYYMMDD text (service day)"),
        _MODE,
        col("trip_id", "TEXT", "Trip."),
        col("route_id", "TEXT", "Route."),
        col("route_short_name", "TEXT", "Route short name."),
        col("route_long_name", "TEXT", "Route long name."),
        col("route_type", "INTEGER", "Route type (GTFS or Google's extended types)."),
        col("trip_headsign", "TEXT", "Headsign."),
        col("direction_id", "INTEGER", "Direction (0 or 1)."),
        col("stop_sequence", "INTEGER", "Order of the stop in the trip."),
        col("stop_id", "TEXT", "Stop (a platform; its station is parent_station)."),
        col("stop_name", "TEXT", "Stop name."),
        col("parent_station", "TEXT", "The stop's station."),
        col("arrival_time", "TEXT", f"{_STOP_TIME} arrival_time.", _UNITS[Kind.TIME]),
        col("departure_time", "TEXT", f"{_STOP_TIME} departure_time.", _UNITS[Kind.TIME]),
        col("arrival_secs", "INTEGER", "arrival_time after the service day's start.", "seconds"),
        col(
            "departure_secs", "INTEGER", "departure_time after the service day's start.", "seconds"
        ),
        col(
            "departure_local",
            "TEXT",
            "Service day + departure_secs: the local wall-clock time of the departure (off by "
            "the shift on the two days a year clocks change, for times before 3 am).",
            "YYYY-MM-DD HH:MM:SS text, Melbourne local time",
        ),
    ),
    example="""-- The next departures from Southern Cross (platform 20001) on 26 January 2026
SELECT departure_local, route_short_name, trip_headsign
FROM departures
WHERE stop_id = '20001' AND service_date = '20260126'
ORDER BY departure_secs, route_short_name
LIMIT 3;""",
)

DATASET = Database(
    name="gtfs_schedule",
    meaning="The GTFS schedule, one table per GTFS file (every spec table is created, empty "
    "when its file is absent). Values are stored as the feed has them; each TIME column "
    "gains an integer <name>_secs. A snapshot: each publish replaces the whole file.",
    file="<data_dir>/<component>.sqlite (snapshot, swapped in by rename)",
    version=1,
    migrations=("",),  # 0 -> 1: same tables; a snapshot is rebuilt, never migrated
    tables=(
        *(
            Table(t.name, f"Rows of GTFS {t.filename}.", tuple(_columns(t)), key=t.primary_key)
            for t in SPEC_TABLES
        ),
        SERVICE_DAYS,
        PROVENANCE,
        PUBLISH_STAMP,
    ),
    views=(DEPARTURES,),
)
