"""How each stored poll joins the schedule it was checked against, kept in the dataset.

``feed_joins`` holds, per poll and kind (trip, route, stop), how many distinct ids the
feed named and how many the schedule in force has. ``schedule_names`` keeps, per
schedule version, the route and stop names (and each trip's route) of the ids the
feeds named, so the persistent view ``stop_time_update_delays`` can show names
without the schedule attached (a view in one file cannot refer to another file).
:data:`REVISIONS_STEP` is the migration that brings a file written before these.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from interlock.components.gtfs_realtime.schedule_index import ScheduleIndex

KINDS = ("trip", "route", "stop")
#: Ids named in a report that the schedule lacks, per kind.
SAMPLES = 5

CHECKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS feed_joins (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, revision INTEGER NOT NULL,
    kind TEXT NOT NULL, ids INTEGER NOT NULL, joined INTEGER NOT NULL,
    schedule_version TEXT NOT NULL, missing_samples TEXT,
    PRIMARY KEY (endpoint, header_timestamp, revision, kind)
);
CREATE TABLE IF NOT EXISTS schedule_names (
    schedule_version TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, name TEXT,
    route_id TEXT,
    PRIMARY KEY (schedule_version, kind, id)
);
CREATE VIEW IF NOT EXISTS stop_time_update_delays AS
SELECT s.endpoint, s.header_timestamp, s.revision, f.schedule_version, s.entity_id,
    s.position, t.trip_id, coalesce(t.route_id, tn.route_id) AS route_id,
    rn.name AS route_name, s.stop_sequence, s.stop_id, sn.name AS stop_name,
    s.arrival_time, s.departure_time, s.delay_s, s.delay_source
FROM stop_time_updates s
JOIN feeds f ON f.endpoint = s.endpoint AND f.header_timestamp = s.header_timestamp
    AND f.revision = s.revision
LEFT JOIN trip_updates t ON t.endpoint = s.endpoint AND t.header_timestamp = s.header_timestamp
    AND t.revision = s.revision AND t.entity_id = s.entity_id
LEFT JOIN schedule_names tn ON tn.schedule_version = f.schedule_version AND tn.kind = 'trip'
    AND tn.id = t.trip_id
LEFT JOIN schedule_names rn ON rn.schedule_version = f.schedule_version AND rn.kind = 'route'
    AND rn.id = coalesce(t.route_id, tn.route_id)
LEFT JOIN schedule_names sn ON sn.schedule_version = f.schedule_version AND sn.kind = 'stop'
    AND sn.id = s.stop_id;
"""

#: Schema version 1 -> 2 (revisions, delays, joins): ``feeds`` is rebuilt (its key gains
#: ``revision``), the entity tables gain columns whose defaults describe the rows there.
REVISIONS_STEP = """
ALTER TABLE feeds RENAME TO feeds_before_revisions;
CREATE TABLE feeds (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, fetched_at TEXT NOT NULL,
    age_s REAL NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, entities INTEGER NOT NULL,
    gtfs_realtime_version TEXT, incrementality TEXT, run_id TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0, schedule_version TEXT, flags TEXT,
    PRIMARY KEY (endpoint, header_timestamp, revision)
);
INSERT INTO feeds (endpoint, header_timestamp, fetched_at, age_s, sha256, size, entities,
    gtfs_realtime_version, incrementality, run_id)
    SELECT endpoint, header_timestamp, fetched_at, age_s, sha256, size, entities,
    gtfs_realtime_version, incrementality, run_id FROM feeds_before_revisions;
DROP TABLE feeds_before_revisions;
ALTER TABLE trip_updates ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stop_time_updates ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stop_time_updates ADD COLUMN delay_s INTEGER;
ALTER TABLE stop_time_updates ADD COLUMN delay_source TEXT;
ALTER TABLE vehicle_positions ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alert_informed_entities ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alert_texts ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
"""


@dataclass
class Join:
    """How one kind of id in one feed joins the schedule."""

    ids: int
    joined: int
    missing: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return self.joined / self.ids if self.ids else None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": self.ids, "joined": self.joined}
        if self.ids:
            out["percent"] = round(100.0 * self.joined / self.ids, 2)
        if self.missing:
            out["missing_samples"] = self.missing
        return out


def join_rates(
    index: ScheduleIndex, trips: Collection[str], routes: Collection[str], stops: Collection[str]
) -> dict[str, Join]:
    """kind -> :class:`Join` of the distinct ids a feed named against ``index``."""
    out = {}
    for kind, ids, known in (
        ("trip", trips, index.trip_ids),
        ("route", routes, index.route_ids),
        ("stop", stops, index.stop_ids),
    ):
        missing = [i for i in ids if i not in known]
        out[kind] = Join(len(ids), len(ids) - len(missing), sorted(missing)[:SAMPLES])
    return out


def write_joins(
    conn: sqlite3.Connection,
    endpoint: str,
    stamp: int,
    revision: int,
    index: ScheduleIndex,
    joins: dict[str, Join],
    trips: Collection[str],
    stops: Collection[str],
) -> None:
    """Store one feed's joins and the names its joined ids need (inside the poll's transaction)."""
    conn.executemany(
        "INSERT OR REPLACE INTO feed_joins VALUES (?,?,?,?,?,?,?,?)",
        [
            (
                endpoint,
                stamp,
                revision,
                kind,
                j.ids,
                j.joined,
                index.version,
                json.dumps(j.missing) if j.missing else None,
            )
            for kind, j in joins.items()
        ],
    )
    _write_names(conn, index, trips, stops)


def _write_names(
    conn: sqlite3.Connection, index: ScheduleIndex, trips: Collection[str], stops: Collection[str]
) -> None:
    # Each id is named once per schedule version: the index remembers what it wrote.
    done = index.named
    new_trips = [t for t in trips if index.has_trip(t) and ("trip", t) not in done]
    routes = {index.route_of(t) for t in new_trips} - {None}
    new_routes = [r for r in routes if r is not None and ("route", r) not in done]
    new_stops = [s for s in stops if index.has_stop(s) and ("stop", s) not in done]
    rows: list[tuple[Any, ...]] = [
        (index.version, "trip", t, None, index.route_of(t)) for t in new_trips
    ]
    route_names = index.route_names(new_routes)
    rows += [(index.version, "route", r, route_names.get(r), None) for r in new_routes]
    stop_names = index.names("stops", "stop_id", new_stops, "stop_name")
    rows += [(index.version, "stop", s, stop_names.get(s), None) for s in new_stops]
    if rows:
        conn.executemany("INSERT OR IGNORE INTO schedule_names VALUES (?,?,?,?,?)", rows)
        done.update((r[1], r[2]) for r in rows)
