"""GTFS-realtime payloads into rows: the checks a payload must pass, and the SQLite tables.

:func:`decode_feed` refuses what is not a usable feed (empty, an HTML page, not
protobuf, no header timestamp, stamped in the future or too old), saying which.
:func:`feed_rows` flattens a feed into rows; :func:`append_polls` writes the rows
of one poll of every endpoint in one transaction, each row keyed by its endpoint
and the feed header timestamp.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as rt
from interlock.errors import FeedRejectedError

SCHEMA = """
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

TABLES = (
    "trip_updates",
    "stop_time_updates",
    "vehicle_positions",
    "alerts",
    "alert_informed_entities",
    "alert_texts",
)
_INSERT = {
    "trip_updates": 13,
    "stop_time_updates": 11,
    "vehicle_positions": 18,
    "alerts": 7,
    "alert_informed_entities": 10,
    "alert_texts": 6,
}


def _names(enum: Any) -> dict[int, str]:
    return {v.number: v.name for v in enum.DESCRIPTOR.values}


_TRIP_REL = _names(rt.TripDescriptor.ScheduleRelationship)
_STOP_REL = _names(rt.TripUpdate.StopTimeUpdate.ScheduleRelationship)
_VEHICLE_STATUS = _names(rt.VehiclePosition.VehicleStopStatus)
_CONGESTION = _names(rt.VehiclePosition.CongestionLevel)
_OCCUPANCY = _names(rt.VehiclePosition.OccupancyStatus)
_CAUSE = _names(rt.Alert.Cause)
_EFFECT = _names(rt.Alert.Effect)
_SEVERITY = _names(rt.Alert.SeverityLevel)
_INCREMENTALITY = _names(rt.FeedHeader.Incrementality)
_TEXT_FIELDS = ("header_text", "description_text", "url", "tts_header_text", "tts_description_text")


@dataclass(frozen=True)
class FeedLimits:
    """How old (seconds) a feed may be, and how far ahead of our clock it may be stamped."""

    max_age_s: float = 3600.0
    max_future_s: float = 300.0


def decode_feed(
    data: bytes, *, now: float, limits: FeedLimits, content_type: str | None = None
) -> rt.FeedMessage:
    """Parse ``data`` as a feed or raise :class:`FeedRejectedError` saying why not."""
    if not data:
        raise FeedRejectedError("empty body (0 bytes) where a GTFS-realtime feed was expected")
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"{")) or "html" in (content_type or ""):
        kind = content_type or "unknown content type"
        start = data[:40].decode("utf-8", "replace")
        raise FeedRejectedError(
            f"the source sent {kind} starting {start!r}, not a protobuf feed "
            "(an error or maintenance page served with status 200)"
        )
    msg = rt.FeedMessage()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise FeedRejectedError(
            f"malformed protobuf ({len(data)} bytes): {exc or 'cannot be decoded'}"
        ) from None
    if not msg.HasField("header") or not msg.header.gtfs_realtime_version:
        raise FeedRejectedError(
            f"malformed feed ({len(data)} bytes): no FeedHeader with gtfs_realtime_version; "
            "the payload is not a GTFS-realtime FeedMessage"
        )
    stamp = msg.header.timestamp
    if not stamp:
        raise FeedRejectedError("the feed header has no timestamp; its age cannot be judged")
    age = now - stamp
    if -age > limits.max_future_s:
        raise FeedRejectedError(
            f"the feed is stamped {-age:.0f} s in the future (header timestamp {stamp}); "
            f"over max_future_seconds {limits.max_future_s:g}: check the source's clock"
        )
    if age > limits.max_age_s:
        raise FeedRejectedError(
            f"the feed is stale: stamped {age / 3600:.1f} h ago (header timestamp {stamp}), "
            f"over max_feed_age_seconds {limits.max_age_s:g}"
        )
    return msg


@dataclass
class FeedRows:
    """The rows of one endpoint's feed, table -> tuples, plus the feed's own record."""

    endpoint: str
    header_timestamp: int
    feed: tuple[Any, ...]
    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    duplicates: int = 0

    @property
    def records(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


def feed_rows(msg: rt.FeedMessage, endpoint: str, feed: tuple[Any, ...]) -> FeedRows:
    """Flatten ``msg`` into rows, each starting with (endpoint, header_timestamp, entity_id)."""
    ts = msg.header.timestamp
    tu_rows: list[tuple[Any, ...]] = []
    stu_rows: list[tuple[Any, ...]] = []
    vp_rows: list[tuple[Any, ...]] = []
    al_rows: list[tuple[Any, ...]] = []
    ie_rows: list[tuple[Any, ...]] = []
    tx_rows: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    duplicates = 0
    for entity in msg.entity:
        eid = entity.id
        if eid in seen:
            duplicates += 1
        seen.add(eid)
        if entity.HasField("trip_update"):
            tu = entity.trip_update
            trip = tu.trip
            veh = tu.vehicle
            tu_rows.append(
                (
                    endpoint,
                    ts,
                    eid,
                    trip.trip_id or None,
                    trip.route_id or None,
                    trip.direction_id if trip.HasField("direction_id") else None,
                    trip.start_time or None,
                    trip.start_date or None,
                    _TRIP_REL.get(trip.schedule_relationship),
                    veh.id or None,
                    veh.label or None,
                    tu.timestamp or None,
                    tu.delay if tu.HasField("delay") else None,
                )
            )
            for pos, stu in enumerate(tu.stop_time_update):
                arr = stu.arrival
                dep = stu.departure
                has_arr = stu.HasField("arrival")
                has_dep = stu.HasField("departure")
                stu_rows.append(
                    (
                        endpoint,
                        ts,
                        eid,
                        pos,
                        stu.stop_sequence if stu.HasField("stop_sequence") else None,
                        stu.stop_id or None,
                        (arr.time or None) if has_arr else None,
                        arr.delay if has_arr and arr.HasField("delay") else None,
                        (dep.time or None) if has_dep else None,
                        dep.delay if has_dep and dep.HasField("delay") else None,
                        _STOP_REL.get(stu.schedule_relationship),
                    )
                )
        if entity.HasField("vehicle"):
            vp = entity.vehicle
            has_pos = vp.HasField("position")
            p = vp.position
            vp_rows.append(
                (
                    endpoint,
                    ts,
                    eid,
                    vp.trip.trip_id or None,
                    vp.trip.route_id or None,
                    vp.trip.start_date or None,
                    vp.vehicle.id or None,
                    vp.vehicle.label or None,
                    p.latitude if has_pos else None,
                    p.longitude if has_pos else None,
                    p.bearing if has_pos and p.HasField("bearing") else None,
                    p.speed if has_pos and p.HasField("speed") else None,
                    vp.current_stop_sequence if vp.HasField("current_stop_sequence") else None,
                    vp.stop_id or None,
                    _VEHICLE_STATUS.get(vp.current_status)
                    if vp.HasField("current_status")
                    else None,
                    vp.timestamp or None,
                    _CONGESTION.get(vp.congestion_level)
                    if vp.HasField("congestion_level")
                    else None,
                    _OCCUPANCY.get(vp.occupancy_status)
                    if vp.HasField("occupancy_status")
                    else None,
                )
            )
        if entity.HasField("alert"):
            al = entity.alert
            periods = [[p.start or None, p.end or None] for p in al.active_period]
            al_rows.append(
                (
                    endpoint,
                    ts,
                    eid,
                    _CAUSE.get(al.cause) if al.HasField("cause") else None,
                    _EFFECT.get(al.effect) if al.HasField("effect") else None,
                    _SEVERITY.get(al.severity_level) if al.HasField("severity_level") else None,
                    json.dumps(periods) if periods else None,
                )
            )
            for pos, ie in enumerate(al.informed_entity):
                ie_rows.append(
                    (
                        endpoint,
                        ts,
                        eid,
                        pos,
                        ie.agency_id or None,
                        ie.route_id or None,
                        ie.route_type if ie.HasField("route_type") else None,
                        ie.direction_id if ie.HasField("direction_id") else None,
                        ie.trip.trip_id or None,
                        ie.stop_id or None,
                    )
                )
            for name in _TEXT_FIELDS:
                if al.HasField(name):
                    for tr in getattr(al, name).translation:
                        tx_rows.append((endpoint, ts, eid, name, tr.language or None, tr.text))
    tables = {
        "trip_updates": tu_rows,
        "stop_time_updates": stu_rows,
        "vehicle_positions": vp_rows,
        "alerts": al_rows,
        "alert_informed_entities": ie_rows,
        "alert_texts": tx_rows,
    }
    return FeedRows(endpoint, ts, feed, tables, duplicates)


def feed_record(
    msg: rt.FeedMessage,
    endpoint: str,
    *,
    fetched_at: str,
    age_s: float,
    sha256: str,
    size: int,
    run_id: str,
) -> tuple[Any, ...]:
    """The ``feeds`` row of one stored poll of ``endpoint``."""
    h = msg.header
    return (
        endpoint,
        h.timestamp,
        fetched_at,
        round(age_s, 3),
        sha256,
        size,
        len(msg.entity),
        h.gtfs_realtime_version,
        _INCREMENTALITY.get(h.incrementality),
        run_id,
    )


def connect(db: Path) -> sqlite3.Connection:
    """The append dataset, created if needed; WAL so readers never wait for a poll."""
    db.parent.mkdir(parents=True, exist_ok=True)
    # Used from worker threads one at a time (PollWriter serialises its callers).
    conn = sqlite3.connect(db, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


_OPEN: dict[Path, tuple[sqlite3.Connection, int]] = {}
_OPEN_LOCK = threading.Lock()


def shared_connection(db: Path) -> sqlite3.Connection:
    """The dataset's connection, kept open across polls.

    Opening per poll re-runs the schema script, and closing the last connection
    checkpoints the WAL: together most of a small poll's cost. The file's inode is
    checked on every use, so a dataset deleted or replaced under the daemon gets a
    fresh connection rather than writes into an unlinked file.
    """
    key = db.resolve()
    with _OPEN_LOCK:
        cached = _OPEN.get(key)
        try:
            inode: int | None = os.stat(key).st_ino
        except FileNotFoundError:
            inode = None
        if cached is not None and cached[1] == inode:
            return cached[0]
        if cached is not None:
            cached[0].close()
        conn = connect(key)
        _OPEN[key] = (conn, os.stat(key).st_ino)
        return conn


def latest_timestamps(db: Path) -> dict[str, int]:
    """The newest stored header timestamp per endpoint (empty when nothing is stored)."""
    if not db.exists():
        return {}
    rows = (
        shared_connection(db)
        .execute("SELECT endpoint, max(header_timestamp) FROM feeds GROUP BY endpoint")
        .fetchall()
    )
    return {endpoint: int(ts) for endpoint, ts in rows}


class PollWriter:
    """One poll's transaction: each endpoint's rows go in as they arrive, committed once.

    Rows are not held until every endpoint has answered, which keeps memory flat
    however many endpoints a component polls. Blocking: call from a worker thread,
    one call at a time.
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self.conn: sqlite3.Connection | None = None
        self.written = dict.fromkeys(("feeds", *TABLES), 0)

    def add(self, poll: FeedRows) -> bool:
        """Append one feed; False when that feed (endpoint, header timestamp) is stored."""
        if self.conn is None:
            self.conn = shared_connection(self.db)
            self.conn.execute("BEGIN IMMEDIATE")
        conn = self.conn
        cur = conn.execute(
            "INSERT INTO feeds VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", poll.feed
        )
        if cur.rowcount == 0:
            return False
        self.written["feeds"] += 1
        for table, rows in poll.tables.items():
            if rows:
                marks = ",".join("?" * _INSERT[table])
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
                self.written[table] += len(rows)
        return True

    def commit(self) -> dict[str, int]:
        """Commit the poll; return rows written per table."""
        if self.conn is not None:
            conn, self.conn = self.conn, None
            conn.execute("COMMIT")
        return dict(self.written)

    def rollback(self) -> None:
        """Drop the poll's rows (after a failure or cancellation). Idempotent."""
        if self.conn is not None:
            conn, self.conn = self.conn, None
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def prune(db: Path, fetched_before: str) -> dict[str, int]:
    """Delete every feed fetched before ``fetched_before`` (ISO UTC) and all its rows.

    Retention counts from when a feed was stored, not from its header stamp, so a
    feed accepted as old (``max_feed_age_seconds``) is not deleted at once. Per
    endpoint, stored header stamps rise with fetch time, so the cut is one stamp per
    endpoint and every delete walks the (endpoint, header_timestamp) index.
    """
    if not db.exists():
        return {}
    conn = shared_connection(db)
    cuts = conn.execute(
        "SELECT endpoint, max(header_timestamp) FROM feeds WHERE fetched_at < ? GROUP BY endpoint",
        (fetched_before,),
    ).fetchall()
    deleted = dict.fromkeys(("feeds", *TABLES), 0)
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table in deleted:
            for endpoint, stamp in cuts:
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE endpoint = ? AND header_timestamp <= ?",
                    (endpoint, stamp),
                )
                deleted[table] += cur.rowcount
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return {t: n for t, n in deleted.items() if n}


def append_polls(db: Path, polls: Sequence[FeedRows]) -> dict[str, int]:
    """Append every poll's rows in one transaction; return rows written per table.

    A feed already stored (same endpoint and header timestamp) is not stored twice.
    """
    writer = PollWriter(db)
    try:
        for poll in polls:
            writer.add(poll)
    except BaseException:
        writer.rollback()
        raise
    return writer.commit()
