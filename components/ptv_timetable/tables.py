"""The PTV Timetable dataset (``<data_dir>/<component>.sqlite``) described column by column.

``tests/test_dataset_schema.py`` checks :data:`DATASET` against the file
:mod:`.storage` creates; a new column goes here, in :data:`.storage.SCHEMA` and (for
files already written) in a migration step.
"""

from __future__ import annotations

from interlock.kit.tables import Database, Table, col

_UTC = "ISO 8601 text, UTC (YYYY-MM-DDTHH:MM:SSZ)"
_JSON_IDS = "JSON text (list of integers)"
_T, _I, _R = "TEXT", "INTEGER", "REAL"
_SEEN = (
    col("first_seen_at", _T, "Poll time it was first seen.", _UTC, null=False),
    col("last_seen_at", _T, "Poll time it was last seen.", _UTC, null=False),
)

DATASET = Database(
    name="ptv_timetable",
    meaning="What the PTV Timetable API v3 said, one transaction per poll: departures are "
    "a rolling snapshot replaced by each changed poll; route types, routes, stops, "
    "directions, runs and disruptions are upserted and keep when they were seen. Ids are "
    "PTV's (not GTFS's): routes.route_gtfs_id joins GTFS routes.",
    file="<data_dir>/<component>.sqlite (append, written in place)",
    version=3,
    migrations=(
        # 0 -> 1: version 0 is the same schema without a number; the file leaves WAL
        # for rollback-journal mode when it is next written.
        "",
        # 1 -> 2: runs keep PTV's interchange (feeder and distributor runs).
        "ALTER TABLE runs ADD COLUMN interchange TEXT;",
        # 2 -> 3: each poll names its answers' bundle in the raw archive (replay). The
        # CREATE is a no-op on every file the code wrote; it spares a file holding only
        # some tables (the ALTER needs polls there).
        "CREATE TABLE IF NOT EXISTS polls (poll_id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "run_id TEXT NOT NULL, polled_at TEXT NOT NULL, requests INTEGER NOT NULL, "
        "departures INTEGER NOT NULL, disruptions INTEGER NOT NULL, changed INTEGER NOT NULL, "
        "fingerprint TEXT NOT NULL);\n"
        "ALTER TABLE polls ADD COLUMN bundle_sha256 TEXT;",
    ),
    tables=(
        Table(
            "route_types",
            "PTV route types (0 train, 1 tram, 2 bus, 3 V/Line, 4 night bus).",
            (
                col("route_type", _I, "PTV route type number.", null=False),
                col("route_type_name", _T, "Its name."),
                col("last_seen_at", _T, "Poll time it was last seen.", _UTC, null=False),
            ),
            key=("route_type",),
        ),
        Table(
            "routes",
            "PTV routes.",
            (
                col("route_id", _I, "PTV route id.", null=False),
                col("route_type", _I, "PTV route type."),
                col("route_name", _T, "Route name."),
                col("route_number", _T, "Public route number (buses, trams)."),
                col("route_gtfs_id", _T, "The route's GTFS id (e.g. 2-ALM)."),
                col("service_status", _T, "Service status description (e.g. Good Service)."),
                col("last_seen_at", _T, "Poll time it was last seen.", _UTC, null=False),
            ),
            key=("route_id",),
        ),
        Table(
            "stops",
            "PTV stops, per route type (PTV stop ids are unique within a route type).",
            (
                col("route_type", _I, "PTV route type.", null=False),
                col("stop_id", _I, "PTV stop id (Data Vic's Stop_ID for stations).", null=False),
                col("stop_name", _T, "Stop name."),
                col("stop_suburb", _T, "Suburb."),
                col("stop_latitude", _R, "Latitude.", "degrees WGS84"),
                col("stop_longitude", _R, "Longitude.", "degrees WGS84"),
                col("stop_landmark", _T, "Nearby landmark."),
                *_SEEN,
            ),
            key=("route_type", "stop_id"),
        ),
        Table(
            "directions",
            "Directions of travel of each route.",
            (
                col("direction_id", _I, "PTV direction id.", null=False),
                col("route_id", _I, "PTV route id.", null=False),
                col("direction_name", _T, "Direction name (e.g. City (Flinders Street))."),
                col("route_type", _I, "PTV route type."),
            ),
            key=("direction_id", "route_id"),
        ),
        Table(
            "runs",
            "Runs (trips) seen in departures, with their vehicle when PTV gives one; pruned "
            "past keep_runs.",
            (
                col("run_ref", _T, "PTV run reference (text id).", null=False),
                col("run_id", _I, "PTV numeric run id (legacy)."),
                col("route_id", _I, "PTV route id."),
                col("route_type", _I, "PTV route type."),
                col("final_stop_id", _I, "PTV stop id of its last stop."),
                col("destination_name", _T, "Destination shown."),
                col("status", _T, "scheduled, updated, ..."),
                col("direction_id", _I, "PTV direction id."),
                col("express_stop_count", _I, "Stops it skips.", "count"),
                col("vehicle_latitude", _R, "Vehicle position latitude.", "degrees WGS84"),
                col("vehicle_longitude", _R, "Vehicle position longitude.", "degrees WGS84"),
                col("vehicle_bearing", _R, "Vehicle bearing.", "degrees clockwise from north"),
                col(
                    "vehicle_position_at",
                    _T,
                    "When the position was taken (PTV's datetime_utc, which metro trains send "
                    "in Melbourne local time, converted to real UTC).",
                    _UTC,
                ),
                col("vehicle_id", _T, "Vehicle id."),
                col("vehicle_description", _T, "Vehicle description."),
                *_SEEN,
                col(
                    "interchange",
                    _T,
                    "The run's connections as PTV sends them: feeder (the run arriving into "
                    "it) and distributor (the run it continues as), each with run_ref, "
                    "route_id, stop_id, advertised, destination_name; run_ref '0' means none. "
                    "NULL when PTV gives none.",
                    "JSON text (object)",
                ),
            ),
            key=("run_ref",),
        ),
        Table(
            "departures",
            "The departures of the latest changed poll (the rolling snapshot).",
            (
                col("poll_id", _I, "The poll that stored them (polls.poll_id).", null=False),
                col("stop_id", _I, "PTV stop id.", null=False),
                col("route_type", _I, "PTV route type.", null=False),
                col("route_id", _I, "PTV route id."),
                col("run_ref", _T, "PTV run reference (runs.run_ref).", null=False),
                col("run_id", _I, "PTV numeric run id (legacy)."),
                col("direction_id", _I, "PTV direction id."),
                col("scheduled_departure_utc", _T, "Timetabled departure.", _UTC, null=False),
                col("estimated_departure_utc", _T, "Realtime estimate, when PTV has one.", _UTC),
                col(
                    "at_platform",
                    _I,
                    "1 when the vehicle is at the platform.",
                    "0 or 1",
                    null=False,
                ),
                col("platform_number", _T, "Platform."),
                col("flags", _T, "PTV departure flags (e.g. RR, S_WCA), as PTV sends them."),
                col("departure_sequence", _I, "Order of the departure at the stop."),
                col("disruption_ids", _T, "Disruptions that affect it.", _JSON_IDS, null=False),
            ),
        ),
        Table(
            "disruptions",
            "Disruptions, upserted by id.",
            (
                col("disruption_id", _I, "PTV disruption id.", null=False),
                col("title", _T, "Title."),
                col("url", _T, "PTV web page."),
                col("description", _T, "Description."),
                col("disruption_status", _T, "Current, Planned, ..."),
                col("disruption_type", _T, "Planned Works, Minor Delays, ..."),
                col("published_on", _T, "When PTV published it.", _UTC),
                col("last_updated", _T, "When PTV last updated it.", _UTC),
                col("from_date", _T, "Start of the disruption.", _UTC),
                col("to_date", _T, "End of the disruption (NULL: open-ended).", _UTC),
                col("colour", _T, "Display colour.", "#rrggbb text"),
                col("display_on_board", _I, "Shown on platform boards.", "0 or 1"),
                col("display_status", _I, "Shown as a service status.", "0 or 1"),
                col("route_ids", _T, "PTV route ids affected.", _JSON_IDS),
                col("stop_ids", _T, "PTV stop ids affected.", _JSON_IDS),
                col(
                    "category",
                    _T,
                    "The disruption category it was listed under (e.g. metro_train).",
                ),
                *_SEEN,
            ),
            key=("disruption_id",),
        ),
        Table(
            "polls",
            "One row per poll.",
            (
                col("poll_id", _I, "Poll number (increasing).", null=False),
                col("run_id", _T, "The interlock run.", null=False),
                col("polled_at", _T, "When it polled.", _UTC, null=False),
                col("requests", _I, "API requests it made.", "count", null=False),
                col("departures", _I, "Departures it got.", "count", null=False),
                col("disruptions", _I, "Disruptions it got.", "count", null=False),
                col(
                    "changed",
                    _I,
                    "1 when the answer differed from the previous poll.",
                    "0 or 1",
                    null=False,
                ),
                col("fingerprint", _T, "Fingerprint of the answer.", null=False),
                col(
                    "bundle_sha256",
                    _T,
                    "SHA-256 of the poll's answers as archived in <data_dir>/raw/<component>/"
                    "<sha256>.zip, what interlock replay re-parses. NULL for polls stored "
                    "before schema version 3.",
                    "hex text",
                ),
            ),
            key=("poll_id",),
        ),
    ),
)
