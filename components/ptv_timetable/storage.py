"""``<data_dir>/ptv_timetable.sqlite``: what the PTV Timetable API said, one transaction per poll.

Departures are a rolling snapshot: each poll replaces them. Route types, routes,
stops, directions and runs are upserted; disruptions are upserted by id and keep
when they were first and last seen. Readers never see half of a poll; the file
is in rollback-journal mode so any reader with read access can open it (see
:func:`_connect`).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from interlock.components.ptv_timetable.model import Poll
from interlock.components.ptv_timetable.tables import DATASET
from interlock.kit.files import DATA_FILE, restrict
from interlock.kit.tables import migrate

SCHEMA = """
CREATE TABLE IF NOT EXISTS route_types (
    route_type INTEGER PRIMARY KEY, route_type_name TEXT, last_seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS routes (
    route_id INTEGER PRIMARY KEY, route_type INTEGER, route_name TEXT, route_number TEXT,
    route_gtfs_id TEXT, service_status TEXT, last_seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stops (
    route_type INTEGER NOT NULL, stop_id INTEGER NOT NULL, stop_name TEXT, stop_suburb TEXT,
    stop_latitude REAL, stop_longitude REAL, stop_landmark TEXT,
    first_seen_at TEXT NOT NULL, last_seen_at TEXT NOT NULL,
    PRIMARY KEY (route_type, stop_id));
CREATE TABLE IF NOT EXISTS directions (
    direction_id INTEGER NOT NULL, route_id INTEGER NOT NULL, direction_name TEXT,
    route_type INTEGER, PRIMARY KEY (direction_id, route_id));
CREATE TABLE IF NOT EXISTS runs (
    run_ref TEXT PRIMARY KEY, run_id INTEGER, route_id INTEGER, route_type INTEGER,
    final_stop_id INTEGER, destination_name TEXT, status TEXT, direction_id INTEGER,
    express_stop_count INTEGER, vehicle_latitude REAL, vehicle_longitude REAL,
    vehicle_bearing REAL, vehicle_position_at TEXT, vehicle_id TEXT, vehicle_description TEXT,
    first_seen_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, interchange TEXT);
CREATE TABLE IF NOT EXISTS departures (
    poll_id INTEGER NOT NULL, stop_id INTEGER NOT NULL, route_type INTEGER NOT NULL,
    route_id INTEGER, run_ref TEXT NOT NULL, run_id INTEGER, direction_id INTEGER,
    scheduled_departure_utc TEXT NOT NULL, estimated_departure_utc TEXT,
    at_platform INTEGER NOT NULL, platform_number TEXT, flags TEXT,
    departure_sequence INTEGER, disruption_ids TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS departures_stop ON departures (route_type, stop_id);
CREATE TABLE IF NOT EXISTS disruptions (
    disruption_id INTEGER PRIMARY KEY, title TEXT, url TEXT, description TEXT,
    disruption_status TEXT, disruption_type TEXT, published_on TEXT, last_updated TEXT,
    from_date TEXT, to_date TEXT, colour TEXT, display_on_board INTEGER,
    display_status INTEGER, route_ids TEXT, stop_ids TEXT, category TEXT,
    first_seen_at TEXT NOT NULL, last_seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS polls (
    poll_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, polled_at TEXT NOT NULL,
    requests INTEGER NOT NULL, departures INTEGER NOT NULL, disruptions INTEGER NOT NULL,
    changed INTEGER NOT NULL, fingerprint TEXT NOT NULL, bundle_sha256 TEXT);
"""


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def connect(db: Path) -> sqlite3.Connection:
    """The dataset, created or migrated to the code's schema version (autocommit mode)."""
    return _connect(db)


def _connect(db: Path) -> sqlite3.Connection:
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        restrict(db, DATA_FILE)  # the group may read, whatever the umask
        # Rollback-journal mode, not WAL: a read-only reader (another user, mode=ro) can
        # open a WAL file only while a writer holds it open (it cannot create the -shm).
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, db, DATASET, SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def write_poll(
    db: Path,
    poll: Poll,
    *,
    run_id: str,
    polled_at: datetime,
    requests: int,
    fingerprint: str,
    changed: bool,
    keep_runs: timedelta,
    bundle_sha256: str | None = None,
) -> int:
    """Store ``poll`` in one transaction; returns its poll id.

    ``changed`` False (the API said exactly what it said last time) only refreshes
    when things were last seen and records the poll; departures stay as they are.
    ``bundle_sha256`` names the poll's answers in the raw archive (:mod:`.bundle`).
    """
    conn = _connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            poll_id = store_poll(
                conn,
                poll,
                None,
                run_id=run_id,
                polled_at=polled_at,
                requests=requests,
                fingerprint=fingerprint,
                changed=changed,
                keep_runs=keep_runs,
                bundle_sha256=bundle_sha256,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return poll_id


def store_poll(
    conn: sqlite3.Connection,
    poll: Poll,
    poll_id: int | None,
    *,
    run_id: str,
    polled_at: datetime,
    requests: int,
    fingerprint: str,
    changed: bool,
    keep_runs: timedelta,
    bundle_sha256: str | None,
) -> int:
    """:func:`write_poll`'s rows, in the caller's transaction (``poll_id`` None: the next)."""
    now = _stamp(polled_at)
    cur = conn.execute(
        "INSERT INTO polls (poll_id, run_id, polled_at, requests, departures, disruptions, "
        "changed, fingerprint, bundle_sha256) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            poll_id,
            run_id,
            now,
            requests,
            len(poll.departures),
            len(poll.disruptions),
            int(changed),
            fingerprint,
            bundle_sha256,
        ),
    )
    stored = int(cur.lastrowid or 0)
    _upsert_seen(conn, poll, now)
    if changed:
        _replace_departures(conn, poll, stored)
        horizon = _stamp(polled_at - keep_runs)
        conn.execute("DELETE FROM runs WHERE last_seen_at < ?", (horizon,))
    return stored


def _upsert_seen(conn: sqlite3.Connection, poll: Poll, now: str) -> None:
    conn.executemany(
        "INSERT INTO route_types VALUES (?,?,?) ON CONFLICT (route_type) DO UPDATE SET "
        "route_type_name = excluded.route_type_name, last_seen_at = excluded.last_seen_at",
        [(*row, now) for row in poll.route_types.values()],
    )
    conn.executemany(
        "INSERT INTO routes VALUES (?,?,?,?,?,?,?) ON CONFLICT (route_id) DO UPDATE SET "
        "route_type = excluded.route_type, route_name = excluded.route_name, "
        "route_number = excluded.route_number, route_gtfs_id = excluded.route_gtfs_id, "
        "service_status = coalesce(excluded.service_status, service_status), "
        "last_seen_at = excluded.last_seen_at",
        [(*row, now) for row in poll.routes.values()],
    )
    conn.executemany(
        "INSERT INTO stops VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (route_type, stop_id) DO "
        "UPDATE SET stop_name = excluded.stop_name, stop_suburb = excluded.stop_suburb, "
        "stop_latitude = excluded.stop_latitude, stop_longitude = excluded.stop_longitude, "
        "stop_landmark = excluded.stop_landmark, last_seen_at = excluded.last_seen_at",
        [(*row, now, now) for row in poll.stops.values()],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO directions VALUES (?,?,?,?)", list(poll.directions.values())
    )
    conn.executemany(
        "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (run_ref) DO "
        "UPDATE SET run_id = excluded.run_id, route_id = excluded.route_id, "
        "route_type = excluded.route_type, final_stop_id = excluded.final_stop_id, "
        "destination_name = excluded.destination_name, status = excluded.status, "
        "direction_id = excluded.direction_id, express_stop_count = excluded.express_stop_count, "
        "vehicle_latitude = excluded.vehicle_latitude, "
        "vehicle_longitude = excluded.vehicle_longitude, "
        "vehicle_bearing = excluded.vehicle_bearing, "
        "vehicle_position_at = excluded.vehicle_position_at, vehicle_id = excluded.vehicle_id, "
        "vehicle_description = excluded.vehicle_description, "
        "last_seen_at = excluded.last_seen_at, interchange = excluded.interchange",
        # interchange came after the seen columns (a migration appends it).
        [(*row[:-1], now, now, row[-1]) for row in poll.runs.values()],
    )
    conn.executemany(
        "INSERT INTO disruptions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (disruption_id) DO UPDATE SET title = excluded.title, url = excluded.url, "
        "description = excluded.description, disruption_status = excluded.disruption_status, "
        "disruption_type = excluded.disruption_type, published_on = excluded.published_on, "
        "last_updated = excluded.last_updated, from_date = excluded.from_date, "
        "to_date = excluded.to_date, colour = excluded.colour, "
        "display_on_board = excluded.display_on_board, "
        "display_status = excluded.display_status, route_ids = excluded.route_ids, "
        "stop_ids = excluded.stop_ids, category = coalesce(excluded.category, category), "
        "last_seen_at = excluded.last_seen_at",
        [(*row, now, now) for row in poll.disruptions.values()],
    )


def _replace_departures(conn: sqlite3.Connection, poll: Poll, poll_id: int) -> None:
    conn.execute("DELETE FROM departures")
    conn.executemany(
        "INSERT INTO departures VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(poll_id, *row) for row in poll.departures],
    )
