"""The append dataset of GTFS-realtime polls: its SQLite tables, writes and retention.

:class:`PollWriter` and :func:`append_polls` write the rows of one poll of every
endpoint in one transaction, each row keyed by its endpoint and the feed header
timestamp; :func:`prune` deletes what is past retention.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from interlock.components.gtfs_realtime.batches import (
    EntityTally,
    Visit,
    cut_back,
    high_water,
    write_entities,
)
from interlock.components.gtfs_realtime.delays import DelayDeriver
from interlock.components.gtfs_realtime.frame import Frame
from interlock.components.gtfs_realtime.joins import CHECKS_SCHEMA, join_rates, write_joins
from interlock.components.gtfs_realtime.rows import INSERT, TABLES, FeedRows, Row
from interlock.components.gtfs_realtime.schedule_index import ScheduleIndex
from interlock.components.gtfs_realtime.tables import DATASET
from interlock.errors import FeedRejectedError
from interlock.kit.files import DATA_FILE, restrict
from interlock.kit.tables import migrate

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS feeds (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, fetched_at TEXT NOT NULL,
    age_s REAL NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, entities INTEGER NOT NULL,
    gtfs_realtime_version TEXT, incrementality TEXT, run_id TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0, schedule_version TEXT, flags TEXT,
    PRIMARY KEY (endpoint, header_timestamp, revision)
);
CREATE TABLE IF NOT EXISTS trip_updates (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    trip_id TEXT, route_id TEXT, direction_id INTEGER, start_time TEXT, start_date TEXT,
    schedule_relationship TEXT, vehicle_id TEXT, vehicle_label TEXT, timestamp INTEGER,
    delay INTEGER, revision INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS stop_time_updates (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    position INTEGER NOT NULL, stop_sequence INTEGER, stop_id TEXT, arrival_time INTEGER,
    arrival_delay INTEGER, departure_time INTEGER, departure_delay INTEGER,
    schedule_relationship TEXT, revision INTEGER NOT NULL DEFAULT 0, delay_s INTEGER,
    delay_source TEXT
);
CREATE TABLE IF NOT EXISTS vehicle_positions (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    trip_id TEXT, route_id TEXT, start_date TEXT, vehicle_id TEXT, vehicle_label TEXT,
    latitude REAL, longitude REAL, bearing REAL, speed REAL, current_stop_sequence INTEGER,
    stop_id TEXT, current_status TEXT, timestamp INTEGER, congestion_level TEXT,
    occupancy_status TEXT, revision INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS alerts (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    cause TEXT, effect TEXT, severity_level TEXT, active_periods TEXT,
    revision INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS alert_informed_entities (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    position INTEGER NOT NULL, agency_id TEXT, route_id TEXT, route_type INTEGER,
    direction_id INTEGER, trip_id TEXT, stop_id TEXT, revision INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS alert_texts (
    endpoint TEXT NOT NULL, header_timestamp INTEGER NOT NULL, entity_id TEXT NOT NULL,
    field TEXT NOT NULL, language TEXT, text TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0
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
    + CHECKS_SCHEMA
)


def connect(db: Path) -> sqlite3.Connection:
    """The append dataset, created or migrated if needed; WAL while open (see :func:`release`).

    WAL so readers never wait for a poll nor a poll for a long read. A read-only reader
    of another user opens a WAL file through its -wal and -shm, which SQLite gives the
    file's mode (group-readable); they exist while this connection is open.
    """
    db.parent.mkdir(parents=True, exist_ok=True)
    # Used from worker threads one at a time (PollWriter serialises its callers).
    conn = sqlite3.connect(db, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        restrict(db, DATA_FILE)  # before the WAL: SQLite gives -wal and -shm the file's mode
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, db, DATASET, SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def release(conn: sqlite3.Connection) -> None:
    """Close a writer connection, leaving the file in rollback-journal (DELETE) mode.

    SQLite deletes -wal and -shm when the last connection closes, and a read-only reader
    cannot create them: a WAL file nobody holds open cannot be read by another user. So
    the writer leaves it in DELETE mode, which needs nothing but read access. When a
    reader holds the file at that instant the switch is skipped; this connection is then
    not the last, so -wal and -shm stay and readers keep working through them.
    """
    try:
        conn.execute("PRAGMA busy_timeout=200")  # never hold up a shutdown for a reader
        conn.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error:
        pass
    conn.close()


_OPEN: dict[Path, tuple[sqlite3.Connection, int]] = {}
_OPEN_LOCK = threading.Lock()


@atexit.register
def release_all() -> None:
    """Release every shared connection (at exit: the daemon leaves readable files behind)."""
    with _OPEN_LOCK:
        for conn, _ in _OPEN.values():
            release(conn)
        _OPEN.clear()


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
    however many endpoints a component polls. A feed that fails half-way has its
    rows deleted again, so it leaves none and the poll goes on.
    Blocking: call from a worker thread, one call at a time.
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self.conn: sqlite3.Connection | None = None
        self.written = dict.fromkeys(("feeds", *TABLES), 0)
        self._lost: str | None = None

    def _check_not_lost(self) -> None:
        if self._lost is not None:
            raise sqlite3.OperationalError(
                f"the poll's transaction on {str(self.db)!r} was lost ({self._lost}); "
                "nothing of this poll was stored"
            )

    def _begin(self) -> sqlite3.Connection:
        self._check_not_lost()
        if self.conn is None:
            self.conn = shared_connection(self.db)
            self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def add(self, poll: FeedRows) -> bool:
        """Append one decoded feed; False when that feed (endpoint, header timestamp) is stored."""
        conn = self._begin()
        cur = conn.execute(INSERT["feeds"] + " ON CONFLICT DO NOTHING", poll.feed)
        if cur.rowcount == 0:
            return False
        self.written["feeds"] += 1
        for table, rows in poll.tables.items():
            if rows:
                conn.executemany(INSERT[table], rows)
                self.written[table] += len(rows)
        return True

    def add_feed(
        self,
        data: bytes,
        frame: Frame,
        record: Row,
        *,
        cancel: threading.Event | None = None,
        visit: Visit | None = None,
        schedule: ScheduleIndex | None = None,
    ) -> EntityTally | None:
        """Append the feed ``frame`` scanned in ``data``, its entities a batch at a time.

        None when that feed (endpoint, header timestamp, payload) is already stored. A
        different payload under a stored header timestamp is stored as the next
        ``revision`` and flagged E017. With ``schedule``, delays given only as times are
        derived and the feed's ids are joined against it. Raises
        :class:`FeedRejectedError` when none of its entities can be stored; on any
        error the feed's rows are rolled back and the rest of the poll stands.
        """
        endpoint, stamp, sha = record[0], record[1], record[4]
        conn = self._begin()
        stored = conn.execute(
            "SELECT sha256, revision FROM feeds WHERE endpoint = ? AND header_timestamp = ?",
            (endpoint, stamp),
        ).fetchall()
        if any(row[0] == sha for row in stored):
            return None
        revision = max((row[1] for row in stored), default=-1) + 1
        version = schedule.version if schedule is not None else None
        record = (*record[:10], revision, version, "E017" if revision else None)
        before = high_water(conn)
        before.update(high_water(conn, ("feed_joins", "schedule_names")))
        try:
            conn.execute(INSERT["feeds"], record)
            tally = write_entities(
                conn,
                data,
                frame,
                endpoint=endpoint,
                header_timestamp=stamp,
                cancel=cancel,
                visit=visit,
                revision=revision,
                delays=DelayDeriver(schedule) if schedule is not None else None,
            )
            if frame.count and tally.refused == frame.count:
                first = tally.samples[0]
                raise FeedRejectedError(
                    f"none of the {frame.count:,} entities can be stored (first, "
                    f"{first.entity_id!r}: {first.reason})"
                )
            if schedule is not None:
                trips, routes, stops = tally.ids
                tally.joins = join_rates(schedule, trips, routes, stops)
                write_joins(conn, endpoint, stamp, revision, schedule, tally.joins, trips, stops)
        except BaseException:
            self._undo(conn, before)
            raise
        self.written["feeds"] += 1
        for table, n in tally.written.items():
            self.written[table] += n
        return tally

    def _undo(self, conn: sqlite3.Connection, before: dict[str, int]) -> None:
        try:
            cut_back(conn, before)
        except sqlite3.Error as exc:
            self._lost = repr(exc)
        if not conn.in_transaction:
            # SQLite itself rolled everything back (a full disk, say): the feeds stored
            # before this one went with it, so the poll must not commit as if they had not.
            self._lost = self._lost or "SQLite rolled the transaction back"

    def commit(self) -> dict[str, int]:
        """Commit the poll; return rows written per table."""
        self._check_not_lost()
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
    deleted = dict.fromkeys(("feeds", *TABLES, "feed_joins"), 0)
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
