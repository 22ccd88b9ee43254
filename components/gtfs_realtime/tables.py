"""The realtime append dataset (``<data_dir>/<component>.sqlite``) described column by column.

``tests/test_dataset_schema.py`` checks :data:`DATASET` against the file
:func:`.dataset.connect` creates; a new column goes here, in :data:`.dataset.SCHEMA`
and (for files already written) in a migration step.
"""

from __future__ import annotations

from interlock.components.gtfs_realtime.joins import REVISIONS_STEP
from interlock.kit.tables import Column, Database, Table, View, col

_EPOCH = "epoch seconds (UTC)"
_DATE = "YYYYMMDD text (service day)"
_T, _I, _R = "TEXT", "INTEGER", "REAL"


_REVISION = col(
    "revision",
    _I,
    "The feed's revision under its header timestamp: 0, or n when the same timestamp came "
    "back with different content (notice E017).",
    null=False,
)


def _head(*, position: bool = False) -> tuple[Column, ...]:
    cols: tuple[Column, ...] = (
        col(
            "endpoint", _T, "Which feed: the endpoint's name in the component settings.", null=False
        ),
        col(
            "header_timestamp",
            _I,
            "The feed header's timestamp: which poll of the feed.",
            _EPOCH,
            null=False,
        ),
        col("entity_id", _T, "The FeedEntity id.", null=False),
    )
    if position:
        cols += (
            col("position", _I, "Index of this item within its entity (0-based).", null=False),
        )
    return cols


DATASET = Database(
    name="gtfs_realtime",
    meaning="Every distinct poll of each GTFS-realtime feed, appended (a feed whose header "
    "timestamp is already stored is not stored again) and pruned past retention. Enum "
    "values are stored by their protobuf names (SCHEDULED, IN_TRANSIT_TO...).",
    file="<data_dir>/<component>.sqlite (append, written in place)",
    version=2,
    migrations=(
        # 0 -> 1: version 0 is the same schema without a number; the file leaves WAL
        # for rollback-journal mode when it is next opened (see README, "Reading the data").
        "",
        # 1 -> 2: revisions (E017), delays, the schedule version and joins of each poll.
        REVISIONS_STEP,
    ),
    tables=(
        Table(
            "feeds",
            "One row per stored poll of one endpoint.",
            (
                col("endpoint", _T, "Which feed.", null=False),
                col("header_timestamp", _I, "The feed header's timestamp.", _EPOCH, null=False),
                col(
                    "fetched_at", _T, "When interlock fetched it.", "ISO 8601 text, UTC", null=False
                ),
                col("age_s", _R, "fetched_at minus header_timestamp.", "seconds", null=False),
                col(
                    "sha256",
                    _T,
                    "SHA-256 of the payload (its raw-archive name).",
                    "hex",
                    null=False,
                ),
                col("size", _I, "Payload size.", "bytes", null=False),
                col("entities", _I, "Entities in the feed.", "count", null=False),
                col("gtfs_realtime_version", _T, "The header's gtfs_realtime_version."),
                col("incrementality", _T, "FULL_DATASET or DIFFERENTIAL."),
                col("run_id", _T, "The interlock run that stored it.", null=False),
                _REVISION,
                col(
                    "schedule_version",
                    _T,
                    "Fingerprint of the gtfs_schedule dataset it was checked against.",
                ),
                col("flags", _T, "Problems noted with the poll, when any."),
            ),
            key=("endpoint", "header_timestamp", "revision"),
        ),
        Table(
            "trip_updates",
            "One row per TripUpdate entity.",
            (
                *_head(),
                col("trip_id", _T, "TripDescriptor.trip_id (joins gtfs_schedule.trips)."),
                col("route_id", _T, "TripDescriptor.route_id."),
                col("direction_id", _I, "TripDescriptor.direction_id (0 or 1)."),
                col(
                    "start_time",
                    _T,
                    "TripDescriptor.start_time.",
                    "HH:MM:SS text, may pass 24:00:00",
                ),
                col("start_date", _T, "TripDescriptor.start_date.", _DATE),
                col("schedule_relationship", _T, "TripDescriptor.schedule_relationship (by name)."),
                col("vehicle_id", _T, "VehicleDescriptor.id."),
                col("vehicle_label", _T, "VehicleDescriptor.label."),
                col("timestamp", _I, "TripUpdate.timestamp.", _EPOCH),
                col("delay", _I, "TripUpdate.delay.", "seconds (late > 0)"),
                _REVISION,
            ),
        ),
        Table(
            "stop_time_updates",
            "One row per StopTimeUpdate of a TripUpdate.",
            (
                *_head(position=True),
                col("stop_sequence", _I, "StopTimeUpdate.stop_sequence."),
                col("stop_id", _T, "StopTimeUpdate.stop_id (joins gtfs_schedule.stops)."),
                col("arrival_time", _I, "StopTimeEvent.time of the arrival.", _EPOCH),
                col(
                    "arrival_delay", _I, "StopTimeEvent.delay of the arrival.", "seconds (late > 0)"
                ),
                col("departure_time", _I, "StopTimeEvent.time of the departure.", _EPOCH),
                col(
                    "departure_delay",
                    _I,
                    "StopTimeEvent.delay of the departure.",
                    "seconds (late > 0)",
                ),
                col("schedule_relationship", _T, "StopTimeUpdate.schedule_relationship (by name)."),
                _REVISION,
                col(
                    "delay_s",
                    _I,
                    "The delay: the feed's own, else time minus the scheduled time of the "
                    "schedule in force.",
                    "seconds (late > 0)",
                ),
                col("delay_source", _T, "feed (the feed's delay) or derived (from the schedule)."),
            ),
        ),
        Table(
            "vehicle_positions",
            "One row per VehiclePosition entity.",
            (
                *_head(),
                col("trip_id", _T, "TripDescriptor.trip_id."),
                col("route_id", _T, "TripDescriptor.route_id."),
                col("start_date", _T, "TripDescriptor.start_date.", _DATE),
                col("vehicle_id", _T, "VehicleDescriptor.id."),
                col("vehicle_label", _T, "VehicleDescriptor.label."),
                col("latitude", _R, "Position.latitude.", "degrees WGS84"),
                col("longitude", _R, "Position.longitude.", "degrees WGS84"),
                col("bearing", _R, "Position.bearing.", "degrees clockwise from north"),
                col("speed", _R, "Position.speed.", "metres per second"),
                col("current_stop_sequence", _I, "VehiclePosition.current_stop_sequence."),
                col("stop_id", _T, "VehiclePosition.stop_id."),
                col("current_status", _T, "VehiclePosition.current_status (by name)."),
                col("timestamp", _I, "VehiclePosition.timestamp.", _EPOCH),
                col("congestion_level", _T, "VehiclePosition.congestion_level (by name)."),
                col("occupancy_status", _T, "VehiclePosition.occupancy_status (by name)."),
                _REVISION,
            ),
        ),
        Table(
            "alerts",
            "One row per Alert entity.",
            (
                *_head(),
                col("cause", _T, "Alert.cause (by name)."),
                col("effect", _T, "Alert.effect (by name)."),
                col("severity_level", _T, "Alert.severity_level (by name)."),
                col(
                    "active_periods",
                    _T,
                    "Alert.active_period: [[start, end], ...], each bound epoch seconds or null.",
                    "JSON text",
                ),
                _REVISION,
            ),
        ),
        Table(
            "alert_informed_entities",
            "One row per EntitySelector of an Alert.",
            (
                *_head(position=True),
                col("agency_id", _T, "EntitySelector.agency_id."),
                col("route_id", _T, "EntitySelector.route_id."),
                col("route_type", _I, "EntitySelector.route_type."),
                col("direction_id", _I, "EntitySelector.direction_id."),
                col("trip_id", _T, "EntitySelector.trip.trip_id."),
                col("stop_id", _T, "EntitySelector.stop_id."),
                _REVISION,
            ),
        ),
        Table(
            "alert_texts",
            "One row per translation of an Alert's text fields.",
            (
                *_head(),
                col(
                    "field",
                    _T,
                    "header_text, description_text, url, tts_header_text or tts_description_text.",
                    null=False,
                ),
                col("language", _T, "Translation.language (BCP-47), NULL when unstated."),
                col("text", _T, "Translation.text.", null=False),
                _REVISION,
            ),
        ),
        Table(
            "feed_joins",
            "Per stored poll and kind of id: how many distinct ids the feed named and how "
            "many the schedule in force has.",
            (
                col("endpoint", _T, "Which feed.", null=False),
                col("header_timestamp", _I, "The feed header's timestamp.", _EPOCH, null=False),
                _REVISION,
                col("kind", _T, "trip, route or stop.", null=False),
                col("ids", _I, "Distinct ids the feed named.", "count", null=False),
                col("joined", _I, "Of those, ids the schedule has.", "count", null=False),
                col(
                    "schedule_version",
                    _T,
                    "Fingerprint of the schedule checked against.",
                    null=False,
                ),
                col("missing_samples", _T, "Some ids the schedule lacks.", "JSON text (list)"),
            ),
            key=("endpoint", "header_timestamp", "revision", "kind"),
        ),
        Table(
            "schedule_names",
            "Per schedule version: names of the routes and stops (and each trip's route) the "
            "feeds named, so views can show names without the schedule attached.",
            (
                col("schedule_version", _T, "Fingerprint of the schedule.", null=False),
                col("kind", _T, "trip, route or stop.", null=False),
                col("id", _T, "The GTFS id.", null=False),
                col("name", _T, "Route or stop name."),
                col("route_id", _T, "A trip's route."),
            ),
            key=("schedule_version", "kind", "id"),
        ),
    ),
    views=(
        View(
            "stop_time_update_delays",
            "Each stop-time update with its delay and the route and stop names of the "
            "schedule it was checked against.",
            "",
            (
                *_head()[:2],
                _REVISION,
                col("schedule_version", _T, "Fingerprint of the schedule checked against."),
                _head()[2],
                col("position", _I, "Index within its trip update."),
                col("trip_id", _T, "Trip."),
                col("route_id", _T, "Route (the feed's, else the trip's in the schedule)."),
                col("route_name", _T, "Route name in the schedule."),
                col("stop_sequence", _I, "Stop sequence."),
                col("stop_id", _T, "Stop."),
                col("stop_name", _T, "Stop name in the schedule."),
                col("arrival_time", _I, "Predicted arrival.", _EPOCH),
                col("departure_time", _I, "Predicted departure.", _EPOCH),
                col("delay_s", _I, "Delay.", "seconds (late > 0)"),
                col("delay_source", _T, "feed or derived."),
            ),
            example="SELECT route_name, stop_name, avg(delay_s) FROM stop_time_update_delays "
            "GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10;",
        ),
    ),
)
