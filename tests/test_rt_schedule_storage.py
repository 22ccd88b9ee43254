"""E017 and E018 in storage: changed content under one header timestamp, and a header going back."""

from __future__ import annotations

import pytest

from tests.test_gtfs_realtime import count, last_run, make, poll, rows, server_with, source_of

pytestmark = pytest.mark.timeout(60)

ONE = {"metro": ("trip-updates",)}


async def test_changed_content_under_the_same_header_is_stored_and_flagged_e017(
    tmp_path, open_orch
):
    """New entities under an unchanged header timestamp are new data: stored as revision 1, E017."""
    async with server_with(feeds=ONE) as server:
        orch = await open_orch(make(tmp_path, server))
        await poll(orch)
        db = tmp_path / "data" / "gtfs_realtime.sqlite"
        first = count(db, "trip_updates")
        source_of(server).version = 2  # new entities, the same header timestamp
        status, reason = await poll(orch)
        report = (await last_run(orch))["quality"]
    assert status == "succeeded", reason
    assert count(db, "trip_updates") == 2 * first
    assert rows(db, "SELECT revision, flags FROM feeds ORDER BY revision") == [
        (0, None),
        (1, "E017"),
    ]
    assert rows(db, "SELECT DISTINCT revision FROM trip_updates ORDER BY 1") == [(0,), (1,)]
    endpoint = report["endpoints"]["metro_trip_updates"]
    assert endpoint["status"] == "stored"
    assert endpoint["flags"] == ["E017"]
    assert "E017" in endpoint["reason"]


async def test_the_same_content_under_the_same_header_stays_unchanged(tmp_path, open_orch):
    """The same bytes again are unchanged, as before: nothing stored, no flag."""
    async with server_with(feeds=ONE) as server:
        orch = await open_orch(make(tmp_path, server))
        await poll(orch)
        db = tmp_path / "data" / "gtfs_realtime.sqlite"
        status, _ = await poll(orch)
    assert status == "unchanged"
    assert rows(db, "SELECT revision, flags FROM feeds") == [(0, None)]


async def test_a_header_going_back_is_flagged_e018_and_stored_nowhere(tmp_path, open_orch):
    """A header timestamp older than the newest stored is E018, not 'unchanged', and not stored."""
    async with server_with(feeds=ONE) as server:
        orch = await open_orch(make(tmp_path, server))
        await poll(orch)
        db = tmp_path / "data" / "gtfs_realtime.sqlite"
        before = count(db, "trip_updates")
        source = source_of(server)
        source.set_timestamp(source.timestamp - 60)
        status, reason = await poll(orch)
        report = (await last_run(orch))["quality"]
        # Still going back on the next poll: reported again, not hidden as the same payload.
        status2, reason2 = await poll(orch)
    assert count(db, "trip_updates") == before
    assert count(db, "feeds") == 1
    endpoint = report["endpoints"]["metro_trip_updates"]
    assert endpoint["status"] == "backwards"
    assert endpoint["flags"] == ["E018"]
    assert "E018" in endpoint["reason"] and "60 s before" in endpoint["reason"]
    assert reason is not None and "E018" in reason and "unchanged" not in reason
    assert reason2 is not None and "E018" in reason2
    assert status == status2


#: The realtime dataset as schema version 1 wrote it (before revisions and joins).
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, fetched_at TEXT NOT NULL,
    age_s REAL NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, entities INTEGER NOT NULL,
    gtfs_realtime_version TEXT, incrementality TEXT, run_id TEXT NOT NULL,
    PRIMARY KEY (endpoint, header_timestamp)
);
CREATE TABLE IF NOT EXISTS trip_updates (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    trip_id TEXT, route_id TEXT, direction_id INTEGER, start_time TEXT, start_date TEXT,
    schedule_relationship TEXT, vehicle_id TEXT, vehicle_label TEXT, timestamp INTEGER,
    delay INTEGER
);
CREATE TABLE IF NOT EXISTS stop_time_updates (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    position INTEGER NOT NULL, stop_sequence INTEGER, stop_id TEXT, arrival_time INTEGER,
    arrival_delay INTEGER, departure_time INTEGER, departure_delay INTEGER,
    schedule_relationship TEXT
);
CREATE TABLE IF NOT EXISTS vehicle_positions (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    trip_id TEXT, route_id TEXT, start_date TEXT, vehicle_id TEXT, vehicle_label TEXT,
    latitude REAL, longitude REAL, bearing REAL, speed REAL, current_stop_sequence INTEGER,
    stop_id TEXT, current_status TEXT, timestamp INTEGER, congestion_level TEXT,
    occupancy_status TEXT
);
CREATE TABLE IF NOT EXISTS alerts (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    cause TEXT, effect TEXT, severity_level TEXT, active_periods TEXT
);
CREATE TABLE IF NOT EXISTS alert_informed_entities (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    position INTEGER NOT NULL, agency_id TEXT, route_id TEXT, route_type INTEGER,
    direction_id INTEGER, trip_id TEXT, stop_id TEXT
);
CREATE TABLE IF NOT EXISTS alert_texts (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    field TEXT NOT NULL, language TEXT, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trip_updates_by_feed ON trip_updates (endpoint, header_timestamp);
CREATE INDEX IF NOT EXISTS trip_updates_by_trip ON trip_updates (trip_id);
CREATE INDEX IF NOT EXISTS stop_time_updates_by_feed
    ON stop_time_updates (endpoint, header_timestamp, entity_id);
CREATE INDEX IF NOT EXISTS vehicle_positions_by_feed
    ON vehicle_positions (endpoint, header_timestamp);
CREATE INDEX IF NOT EXISTS alerts_by_feed ON alerts (endpoint, header_timestamp);
CREATE INDEX IF NOT EXISTS alert_informed_entities_by_feed
    ON alert_informed_entities (endpoint, header_timestamp, entity_id);
CREATE INDEX IF NOT EXISTS alert_texts_by_feed
    ON alert_texts (endpoint, header_timestamp, entity_id);
"""


def test_a_version_1_file_is_migrated_in_place_keeping_its_rows(tmp_path):
    """A file written before revisions gains them (rows kept, revision 0) and the join tables."""
    import sqlite3

    from interlock.components.gtfs_realtime.dataset import connect

    db = tmp_path / "rt.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SCHEMA)
    conn.execute(
        "INSERT INTO feeds VALUES ('metro', 100, '2026-01-01T00:00:00+00:00', 1.0, 'ab', 3, 1, "
        "'2.0', 'FULL_DATASET', 'run')"
    )
    conn.execute(
        "INSERT INTO stop_time_updates VALUES ('metro', 100, 'e1', 0, 1, 's1', 5, 60, 5, 60, NULL)"
    )
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    migrated = connect(db)
    try:
        feeds = migrated.execute("SELECT revision, schedule_version, flags FROM feeds")
        assert feeds.fetchall() == [(0, None, None)]
        assert migrated.execute(
            "SELECT revision, delay_s, delay_source FROM stop_time_updates"
        ).fetchall() == [(0, None, None)]
        migrated.execute(
            "INSERT INTO feeds (endpoint, header_timestamp, fetched_at, age_s, sha256, size, "
            "entities, run_id, revision) VALUES ('metro', 100, 'x', 1, 'cd', 3, 1, 'run', 1)"
        )
        assert migrated.execute("SELECT count(*) FROM feed_joins").fetchone() == (0,)
        assert migrated.execute("PRAGMA user_version").fetchone() == (2,)
    finally:
        migrated.close()
