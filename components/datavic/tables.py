"""The two Data Vic patronage datasets described column by column.

Column types come from :mod:`.parsers` (one declaration for the writer and this page);
``tests/test_dataset_schema.py`` checks both against files really built.
"""

from __future__ import annotations

from collections.abc import Sequence

from interlock.components.datavic.dataset import DATASET_VERSION
from interlock.components.datavic.parsers import PAX, STATION_COLUMNS, _temporal_parsed
from interlock.kit.tables import PUBLISH_STAMP, Column, Database, Table, View, col

_MEANINGS = {
    "fin_year": ("Financial year as published (e.g. FY23-24; July to June).", ""),
    "fin_year_start": ("Calendar year the financial year starts in (2023 for FY23-24).", "year"),
    "stop_id": ("Data Vic Stop_ID: the PTV stop number of the station.", ""),
    "stop_name": ("Station name.", ""),
    "stop_lat": ("Latitude.", "degrees WGS84"),
    "stop_long": ("Longitude.", "degrees WGS84"),
    "resource": ("Name of the CKAN resource (file) the row came from.", ""),
    "gtfs_stop_id": (
        "The GTFS stop (the parent station) this station joins: gtfs_schedule.stops.stop_id.",
        "",
    ),
    "gtfs_join": ("How it joined: stop_id (equal ids) or stop_url (/stop/<n>/ in stop_url).", ""),
    "year": ("Calendar year.", "year"),
    "month": ("Month.", "1-12"),
    "month_name": ("Month name as published.", ""),
    "day_of_week": ("Day of week as published.", ""),
    "day_type": ("Day type as published (e.g. Normal Weekday, Saturday).", ""),
    "mode": ("Transport mode as published (e.g. Metropolitan Train).", ""),
    "pax_daily": ("Average daily patronage.", "boardings per day"),
    "patronage": ("Patronage in the month.", "boardings"),
}
for _p in PAX:
    _MEANINGS[_p] = (f"Data Vic {_p}: {_p[4:].replace('_', ' ')} patronage.", "boardings")


def _columns(spec: Sequence[tuple[str, str]]) -> tuple[Column, ...]:
    out = []
    for name, kind in spec:
        meaning, unit = _MEANINGS[name]
        out.append(col(name, kind.split()[0], meaning, unit, null="NOT NULL" not in kind))
    return tuple(out)


RESOURCES = Table(
    "resources",
    "One row per CKAN resource (CSV file) the dataset was built from.",
    (
        col("resource_id", "TEXT", "CKAN resource id."),
        col("name", "TEXT", "Resource name."),
        col("url", "TEXT", "Where it was downloaded."),
        col("last_modified", "TEXT", "CKAN last_modified.", "ISO 8601 text as CKAN gives it"),
        col("size", "INTEGER", "File size.", "bytes"),
        col("sha256", "TEXT", "SHA-256 of the file.", "hex"),
        col("etag", "TEXT", "The server's ETag."),
        col("rows", "INTEGER", "Data rows loaded.", "rows"),
        col("junk_rows", "INTEGER", "Rows skipped as junk (notes, blank lines).", "rows"),
    ),
)
PROVENANCE = Table(
    "provenance",
    "Key/value: the CKAN dataset, its metadata_modified, fingerprint, published_at, run_id.",
    (
        col("key", "TEXT", "Name.", null=False),
        col("value", "TEXT", "Value.", "JSON text"),
    ),
    key=("key",),
)
_STATION = Table(
    "station_patronage",
    "One row per station per financial year.",
    (
        *_columns(STATION_COLUMNS),
        *_columns((("gtfs_stop_id", "TEXT"), ("gtfs_join", "TEXT"))),
    ),
    key=("fin_year", "stop_id"),
)
GTFS_STATIONS = Table(
    "gtfs_stations",
    "The GTFS stops the stations joined, copied from the gtfs_schedule dataset at build "
    "(a view cannot reach into another file).",
    (
        col("stop_id", "TEXT", "gtfs_schedule stops.stop_id.", null=False),
        col("mode", "TEXT", "The GTFS mode folder it came from (2: metropolitan train)."),
        col("stop_name", "TEXT", "GTFS stop_name."),
        col("stop_lat", "REAL", "GTFS stop_lat.", "degrees WGS84"),
        col("stop_lon", "REAL", "GTFS stop_lon.", "degrees WGS84"),
    ),
    key=("stop_id",),
)
_PAX_VIEW = ("pax_annual", "pax_weekday", "pax_saturday", "pax_sunday")
STATION_STOPS = View(
    "station_patronage_stops",
    "Station patronage with the GTFS station each joined (NULL where none did).",
    "",
    (
        *(_STATION.column(n) for n in ("fin_year", "fin_year_start", "stop_id", "stop_name")),
        *(_STATION.column(n) for n in _PAX_VIEW),
        _STATION.column("gtfs_stop_id"),
        _STATION.column("gtfs_join"),
        col("gtfs_mode", "TEXT", "The GTFS mode folder of the joined stop."),
        col("gtfs_stop_name", "TEXT", "GTFS stop_name of the joined station."),
        col("gtfs_stop_lat", "REAL", "Its latitude.", "degrees WGS84"),
        col("gtfs_stop_lon", "REAL", "Its longitude.", "degrees WGS84"),
    ),
    example="""-- The busiest stations of the latest year, with their GTFS station
SELECT stop_name, pax_annual, gtfs_stop_id, gtfs_stop_name
FROM station_patronage_stops
WHERE fin_year_start = (SELECT max(fin_year_start) FROM station_patronage)
ORDER BY pax_annual DESC
LIMIT 3;""",
)
_LAYOUT = "one of daily_average_patronage and monthly_patronage, as the files' layout says"
_DAILY, _MONTHLY = _temporal_parsed(True), _temporal_parsed(False)

STATION_DATASET = Database(
    name="datavic_station_patronage",
    meaning="Annual patronage per metropolitan train station (Data Vic), stations joined "
    "to the GTFS schedule's stops where the ids allow. A snapshot.",
    file="<data_dir>/<component>.sqlite (snapshot, swapped in by rename)",
    version=DATASET_VERSION,
    migrations=("",),
    tables=(_STATION, GTFS_STATIONS, RESOURCES, PROVENANCE, PUBLISH_STAMP),
    views=(STATION_STOPS,),
)
TEMPORAL_DATASET = Database(
    name="datavic_temporal_patronage",
    meaning="Network patronage over time per mode (Data Vic): daily averages per day type, "
    "or monthly totals, as the published files are laid out. A snapshot.",
    file="<data_dir>/<component>.sqlite (snapshot, swapped in by rename)",
    version=DATASET_VERSION,
    migrations=("",),
    tables=(
        Table(
            _DAILY.table,
            "Average daily patronage per month, day type and mode.",
            _columns(_DAILY.columns),
            key=_DAILY.key,
            present=_LAYOUT,
        ),
        Table(
            _MONTHLY.table,
            "Patronage per month and mode.",
            _columns(_MONTHLY.columns),
            key=_MONTHLY.key,
            present=_LAYOUT,
        ),
        RESOURCES,
        PROVENANCE,
        PUBLISH_STAMP,
    ),
)
