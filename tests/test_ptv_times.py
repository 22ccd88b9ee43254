"""PTV vehicle times stored as real UTC (metro trains send Melbourne local time under the
name datetime_utc) and runs' interchange kept, on the real PTV answers."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from interlock.components.ptv_timetable.model import Poll, vehicle_utc
from interlock.components.ptv_timetable.storage import write_poll
from interlock.components.ptv_timetable.tables import DATASET
from interlock.kit.tables import drift


def document(shared_data: Path, name: str) -> dict[str, Any]:
    doc = json.loads((shared_data / "ptv" / name).read_bytes())
    if isinstance(doc.get("disruptions"), list):
        # A stopping pattern: runs and departures as a departures answer has them, its
        # disruptions a list where departures key them by id.
        doc["disruptions"] = {str(d["disruption_id"]): d for d in doc["disruptions"]}
    return doc


def answer(shared_data: Path, name: str) -> Poll:
    poll = Poll()
    poll.add_departures(f"PTV {name}", document(shared_data, name), 0)
    return poll


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_real_metro_position_time_is_melbourne_local_stored_as_utc(shared_data):
    """Run 967425 near Hughesdale at local 12:42:29 is 02:42:29Z, 23 s before it departs."""
    poll = answer(shared_data, "metro-pattern-cbe.json")
    run = poll.runs["967425"]
    assert run[12] == "2024-06-30T02:42:29Z"
    (hughesdale,) = [d for d in poll.departures if d[0] == 1098]
    assert hughesdale[7] == "2024-06-30T02:42:52Z"
    assert timedelta(0) < moment(hughesdale[7]) - moment(run[12]) < timedelta(minutes=1)


def test_the_other_real_metro_answer_converts_the_same_way(shared_data):
    """metro-departures' run 952217 at local 11:21:22 (AEST) is 01:21:22Z."""
    poll = answer(shared_data, "metro-departures.json")
    assert poll.runs["952217"][12] == "2024-04-25T01:21:22Z"


def test_a_real_bus_position_time_with_z_is_kept_as_utc(shared_data):
    """Bus positions come with Z and are real UTC: 00:02:19Z stays 00:02:19Z."""
    poll = answer(shared_data, "chirnside-departures.json")
    assert poll.runs["29-679--1-MF15-22"][12] == "2024-06-28T00:02:19Z"


@pytest.mark.parametrize(
    ("local", "near", "expected"),
    [
        ("2024-06-30T12:42:29", [], "2024-06-30T02:42:29Z"),  # winter: +10
        ("2025-01-15T12:00:00.1234567", [], "2025-01-15T01:00:00Z"),  # summer: +11
        # 2024-04-07 02:30 happens twice (daylight saving ends at 03:00 AEDT).
        ("2024-04-07T02:30:00", [], "2024-04-06T15:30:00Z"),
        ("2024-04-07T02:30:00", ["2024-04-06T16:31:00Z"], "2024-04-06T16:30:00Z"),
        ("2024-04-07T02:30:00", ["2024-04-06T15:33:00Z"], "2024-04-06T15:30:00Z"),
        # 2024-10-06 02:30 never happens (clocks jump 02:00 -> 03:00): the nearer reading.
        ("2024-10-06T02:30:00", ["2024-10-05T15:40:00Z"], "2024-10-05T15:30:00Z"),
        ("2024-10-06T02:30:00", ["2024-10-05T16:40:00Z"], "2024-10-05T16:30:00Z"),
        ("2024-06-30T02:42:29+00:00", [], "2024-06-30T02:42:29Z"),
        ("", [], None),
    ],
)
def test_vehicle_times_by_zone_and_daylight_saving(local, near, expected):
    """Local times convert by Melbourne's rules; a repeated or skipped hour takes the
    reading nearer the run's departures; an explicit zone is honoured."""
    assert vehicle_utc(local, [moment(t) for t in near]) == expected


def test_a_real_departure_places_a_repeated_hour_reading(shared_data):
    """In the repeated hour the run's own departures in the answer pick the reading."""
    doc = document(shared_data, "metro-pattern-cbe.json")
    run = doc["runs"]["967425"]
    run["vehicle_position"]["datetime_utc"] = "2024-04-07T02:42:29"
    for dep in doc["departures"]:
        dep["scheduled_departure_utc"] = "2024-04-06T16:43:00Z"
        dep["estimated_departure_utc"] = None
    poll = Poll()
    poll.add_departures("PTV pattern", doc, 0)
    assert poll.runs["967425"][12] == "2024-04-06T16:42:29Z"


def test_interchange_is_stored_as_json(shared_data, tmp_path):
    """runs.interchange keeps the feeder and distributor PTV gives; NULL without one."""
    poll = answer(shared_data, "metro-departures.json")
    db = tmp_path / "ptv.sqlite"
    now = datetime(2024, 4, 25, 1, 30, tzinfo=UTC)
    write_poll(
        db,
        poll,
        run_id="r1",
        polled_at=now,
        requests=1,
        fingerprint="f",
        changed=True,
        keep_runs=timedelta(days=1),
    )
    conn = sqlite3.connect(db)
    try:
        got = dict(conn.execute("SELECT run_ref, interchange FROM runs").fetchall())
        assert drift(conn, DATASET) == []
    finally:
        conn.close()
    assert got["17387"] is None
    interchange = json.loads(got["952217"])
    assert interchange["feeder"]["run_ref"] == "952000"
    assert interchange["distributor"]["stop_id"] == 1198


def test_a_version_1_file_gains_the_column_and_keeps_its_runs(shared_data, tmp_path):
    """A file written before interchange migrates in place: old runs stay, the column is NULL."""
    db = tmp_path / "ptv.sqlite"
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE runs (run_ref TEXT PRIMARY KEY, run_id INTEGER, route_id INTEGER, "
        "route_type INTEGER, final_stop_id INTEGER, destination_name TEXT, status TEXT, "
        "direction_id INTEGER, express_stop_count INTEGER, vehicle_latitude REAL, "
        "vehicle_longitude REAL, vehicle_bearing REAL, vehicle_position_at TEXT, "
        "vehicle_id TEXT, vehicle_description TEXT, first_seen_at TEXT NOT NULL, "
        "last_seen_at TEXT NOT NULL)"
    )
    conn.execute(
        "INSERT INTO runs (run_ref, first_seen_at, last_seen_at) VALUES ('old', '2024', '2024')"
    )
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    now = datetime(2024, 4, 25, 1, 30, tzinfo=UTC)
    write_poll(
        db,
        answer(shared_data, "metro-departures.json"),
        run_id="r1",
        polled_at=now,
        requests=1,
        fingerprint="f",
        changed=False,
        keep_runs=timedelta(days=1),
    )
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT interchange FROM runs WHERE run_ref='old'").fetchall() == [
            (None,)
        ]
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
        assert drift(conn, DATASET) == []
    finally:
        conn.close()
