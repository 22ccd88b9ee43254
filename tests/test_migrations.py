"""Schema versions: files written before versions existed are migrated in place with their
data, a file newer than the code is refused with a message that says what to do, and a
failing step leaves the file as it was.

The version-0 schemas are the CREATE statements of interlock before ``user_version``,
kept here verbatim as fixtures.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from interlock.components.gtfs_realtime.dataset import connect as connect_realtime
from interlock.components.gtfs_realtime.dataset import release
from interlock.components.gtfs_realtime.tables import DATASET as REALTIME
from interlock.components.ptv_timetable.storage import _connect as connect_ptv
from interlock.components.ptv_timetable.tables import DATASET as PTV
from interlock.errors import SchemaVersionError
from interlock.store.sqlite.schema import connect_writer
from interlock.store.sqlite.tables import STATE
from interlock.store.tables import drift, migrate, user_version

STATE_V0 = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, trigger TEXT NOT NULL, status TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, duration_s REAL, components TEXT, counts TEXT);
CREATE TABLE component_runs (run_id TEXT NOT NULL, component TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, started_at TEXT NOT NULL, finished_at TEXT,
    duration_s REAL, records INTEGER, attempts INTEGER, error TEXT, fingerprint TEXT,
    inputs TEXT, quality TEXT, metrics TEXT, PRIMARY KEY (run_id, component));
CREATE INDEX component_runs_by_component ON component_runs (component, started_at);
CREATE INDEX component_runs_by_time ON component_runs (started_at);
CREATE TABLE component_state (component TEXT PRIMARY KEY, last_started_at TEXT,
    last_status TEXT, last_finished_at TEXT, last_success_at TEXT, fingerprint TEXT,
    published_at TEXT, records INTEGER, inputs TEXT, last_error TEXT, memory TEXT);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO runs VALUES ('r1', 'manual', 'ok', '2026-01-01T00:00:00+00:00',
    '2026-01-01T00:01:00+00:00', 60.0, '["gtfs_schedule"]', '{"published":1}');
INSERT INTO meta VALUES ('paused', '[]');
"""

PTV_V0 = """
PRAGMA journal_mode=WAL;
CREATE TABLE route_types (
    route_type INTEGER PRIMARY KEY, route_type_name TEXT, last_seen_at TEXT NOT NULL);
CREATE TABLE routes (
    route_id INTEGER PRIMARY KEY, route_type INTEGER, route_name TEXT, route_number TEXT,
    route_gtfs_id TEXT, service_status TEXT, last_seen_at TEXT NOT NULL);
CREATE TABLE stops (
    route_type INTEGER NOT NULL, stop_id INTEGER NOT NULL, stop_name TEXT, stop_suburb TEXT,
    stop_latitude REAL, stop_longitude REAL, stop_landmark TEXT,
    first_seen_at TEXT NOT NULL, last_seen_at TEXT NOT NULL,
    PRIMARY KEY (route_type, stop_id));
CREATE TABLE directions (
    direction_id INTEGER NOT NULL, route_id INTEGER NOT NULL, direction_name TEXT,
    route_type INTEGER, PRIMARY KEY (direction_id, route_id));
CREATE TABLE runs (
    run_ref TEXT PRIMARY KEY, run_id INTEGER, route_id INTEGER, route_type INTEGER,
    final_stop_id INTEGER, destination_name TEXT, status TEXT, direction_id INTEGER,
    express_stop_count INTEGER, vehicle_latitude REAL, vehicle_longitude REAL,
    vehicle_bearing REAL, vehicle_position_at TEXT, vehicle_id TEXT, vehicle_description TEXT,
    first_seen_at TEXT NOT NULL, last_seen_at TEXT NOT NULL);
CREATE TABLE departures (
    poll_id INTEGER NOT NULL, stop_id INTEGER NOT NULL, route_type INTEGER NOT NULL,
    route_id INTEGER, run_ref TEXT NOT NULL, run_id INTEGER, direction_id INTEGER,
    scheduled_departure_utc TEXT NOT NULL, estimated_departure_utc TEXT,
    at_platform INTEGER NOT NULL, platform_number TEXT, flags TEXT,
    departure_sequence INTEGER, disruption_ids TEXT NOT NULL);
CREATE INDEX departures_stop ON departures (route_type, stop_id);
CREATE TABLE disruptions (
    disruption_id INTEGER PRIMARY KEY, title TEXT, url TEXT, description TEXT,
    disruption_status TEXT, disruption_type TEXT, published_on TEXT, last_updated TEXT,
    from_date TEXT, to_date TEXT, colour TEXT, display_on_board INTEGER,
    display_status INTEGER, route_ids TEXT, stop_ids TEXT, category TEXT,
    first_seen_at TEXT NOT NULL, last_seen_at TEXT NOT NULL);
CREATE TABLE polls (
    poll_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, polled_at TEXT NOT NULL,
    requests INTEGER NOT NULL, departures INTEGER NOT NULL, disruptions INTEGER NOT NULL,
    changed INTEGER NOT NULL, fingerprint TEXT NOT NULL);
INSERT INTO route_types VALUES (0, 'Train', '2026-01-01T00:00:00Z');
INSERT INTO runs (run_ref, run_id, route_id, first_seen_at, last_seen_at)
    VALUES ('948000', 948000, 6, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
INSERT INTO polls (run_id, polled_at, requests, departures, disruptions, changed, fingerprint)
    VALUES ('r1', '2026-01-01T00:00:00Z', 3, 10, 1, 1, 'abc');
"""

REALTIME_V0 = """
PRAGMA journal_mode=WAL;
CREATE TABLE feeds (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, fetched_at TEXT NOT NULL,
    age_s REAL NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, entities INTEGER NOT NULL,
    gtfs_realtime_version TEXT, incrementality TEXT, run_id TEXT NOT NULL,
    PRIMARY KEY (endpoint, header_timestamp));
CREATE TABLE trip_updates (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    trip_id TEXT, route_id TEXT, direction_id INTEGER, start_time TEXT, start_date TEXT,
    schedule_relationship TEXT, vehicle_id TEXT, vehicle_label TEXT, timestamp INTEGER,
    delay INTEGER);
CREATE TABLE stop_time_updates (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    position INTEGER NOT NULL, stop_sequence INTEGER, stop_id TEXT, arrival_time INTEGER,
    arrival_delay INTEGER, departure_time INTEGER, departure_delay INTEGER,
    schedule_relationship TEXT);
CREATE TABLE vehicle_positions (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    trip_id TEXT, route_id TEXT, start_date TEXT, vehicle_id TEXT, vehicle_label TEXT,
    latitude REAL, longitude REAL, bearing REAL, speed REAL, current_stop_sequence INTEGER,
    stop_id TEXT, current_status TEXT, timestamp INTEGER, congestion_level TEXT,
    occupancy_status TEXT);
CREATE TABLE alerts (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    cause TEXT, effect TEXT, severity_level TEXT, active_periods TEXT);
CREATE TABLE alert_informed_entities (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    position INTEGER NOT NULL, agency_id TEXT, route_id TEXT, route_type INTEGER,
    direction_id INTEGER, trip_id TEXT, stop_id TEXT);
CREATE TABLE alert_texts (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    field TEXT NOT NULL, language TEXT, text TEXT NOT NULL);
INSERT INTO feeds VALUES ('metro', 1767225600, '2026-01-01T00:00:05+00:00', 5.0, 'ab', 10, 1,
    '2.0', 'FULL_DATASET', 'r1');
INSERT INTO trip_updates VALUES ('metro', 1767225600, 'e1', 't1', 'r', 0, '10:00:00',
    '20260101', 'SCHEDULED', NULL, NULL, NULL, 60);
"""


def _v0(path: Path, script: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.close()


def _read(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _open_state(path: Path) -> None:
    async def go() -> None:
        db = await connect_writer(path)
        await db.close()

    asyncio.run(go())


def test_a_version_0_state_database_is_migrated_with_its_data(tmp_path: Path) -> None:
    """The store opens a state database written before versions: version set, rows kept."""
    db = tmp_path / "state.sqlite"
    _v0(db, STATE_V0)
    _open_state(db)
    assert _read(db, "PRAGMA user_version") == [(STATE.version,)]
    assert _read(db, "SELECT run_id, status, duration_s FROM runs") == [("r1", "ok", 60.0)]
    assert _read(db, "SELECT value FROM meta WHERE key = 'paused'") == [("[]",)]
    conn = sqlite3.connect(db)
    assert drift(conn, STATE) == []
    conn.close()


def test_a_new_state_database_starts_at_the_current_version(tmp_path: Path) -> None:
    """A fresh state database is created at the code's version, not 0."""
    db = tmp_path / "state.sqlite"
    _open_state(db)
    assert _read(db, "PRAGMA user_version") == [(STATE.version,)]


def test_a_state_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    """A newer file is left alone; the message names it, both versions and what to do."""
    db = tmp_path / "state.sqlite"
    _v0(db, STATE_V0 + f"PRAGMA user_version={STATE.version + 5};")
    with pytest.raises(SchemaVersionError) as err:
        _open_state(db)
    message = str(err.value)
    assert str(db) in message and str(STATE.version + 5) in message
    assert str(STATE.version) in message and "Upgrade interlock" in message
    assert _read(db, "PRAGMA user_version") == [(STATE.version + 5,)]


def test_a_version_0_ptv_dataset_is_migrated_out_of_wal_with_its_data(tmp_path: Path) -> None:
    """The PTV writer migrates a version-0 WAL file: version set, rollback journal, rows kept."""
    db = tmp_path / "ptv.sqlite"
    _v0(db, PTV_V0)
    connect_ptv(db).close()
    assert _read(db, "PRAGMA user_version") == [(PTV.version,)]
    assert _read(db, "PRAGMA journal_mode") == [("delete",)]
    assert _read(db, "SELECT route_type_name FROM route_types") == [("Train",)]
    assert _read(db, "SELECT run_id, departures FROM polls") == [("r1", 10)]
    assert _read(db, "SELECT run_ref, route_id FROM runs") == [("948000", 6)]
    conn = sqlite3.connect(db)
    assert drift(conn, PTV) == []  # the tables version 0 lacked were created
    conn.close()


def test_a_version_0_realtime_dataset_is_migrated_with_its_data(tmp_path: Path) -> None:
    """The realtime writer migrates a version-0 file to the declared schema, rows kept, and
    leaves it in rollback-journal mode when it lets go."""
    db = tmp_path / "rt.sqlite"
    _v0(db, REALTIME_V0)
    release(connect_realtime(db))
    assert _read(db, "PRAGMA user_version") == [(REALTIME.version,)]
    assert _read(db, "PRAGMA journal_mode") == [("delete",)]
    assert _read(db, "SELECT endpoint, header_timestamp, run_id FROM feeds") == [
        ("metro", 1767225600, "r1")
    ]
    assert _read(db, "SELECT trip_id, delay FROM trip_updates") == [("t1", 60)]
    conn = sqlite3.connect(db)
    assert drift(conn, REALTIME) == []
    conn.close()


def test_a_failing_migration_step_leaves_the_file_unchanged(tmp_path: Path) -> None:
    """A step that fails rolls back every step before it and the version stays where it was."""
    db = tmp_path / "ptv.sqlite"
    _v0(db, PTV_V0)
    broken = replace(
        PTV,
        version=3,
        migrations=(
            "",
            "ALTER TABLE polls ADD COLUMN note TEXT;",
            "ALTER TABLE no_such_table ADD COLUMN x TEXT;",
        ),
    )
    conn = sqlite3.connect(db, isolation_level=None)
    with pytest.raises(SchemaVersionError) as err:
        migrate(conn, db, broken, "")
    assert str(db) in str(err.value) and "from schema version 0 to 3" in str(err.value)
    assert user_version(conn) == 0
    assert "note" not in {r[1] for r in conn.execute("PRAGMA table_info(polls)")}
    conn.close()


def test_migration_steps_run_in_order_from_the_file_version(tmp_path: Path) -> None:
    """A file at version 1 gets only the steps after 1, and ends at the code's version."""
    db = tmp_path / "ptv.sqlite"
    _v0(db, PTV_V0 + "PRAGMA user_version=1;")
    later = replace(
        PTV,
        version=3,
        migrations=(
            "ALTER TABLE no_such_table ADD COLUMN x TEXT;",  # 0 -> 1: must not run
            "ALTER TABLE polls ADD COLUMN note TEXT;",
            "UPDATE polls SET note = 'migrated';",
        ),
    )
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, db, later, "") == 1
    assert user_version(conn) == 3
    assert conn.execute("SELECT note FROM polls").fetchall() == [("migrated",)]
    conn.close()
