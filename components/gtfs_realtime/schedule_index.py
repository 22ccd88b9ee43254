"""The schedule a realtime poll is checked against: ids in memory, stop times by SQL.

:class:`ScheduleSource` watches the live ``<data_dir>/<schedule>.sqlite`` that the
``gtfs_schedule`` component publishes and hands out a :class:`ScheduleIndex` of the
version live at poll time. It opens the file read-only (``mode=ro``, never a copy)
and rebuilds the index only when the file's identity (device, inode, size, mtime)
changes, which every publish does (it renames a new file in). An index keeps its own
connection to the file it indexed, so a schedule republished mid-poll does not change
what that poll sees: the old file stays readable as ``.previous`` and as an open inode.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interlock.kit.publish import STAMP_TABLE

#: File identity: a publish renames a new file in, so any of these changes.
Identity = tuple[int, int, int, int]
#: Trips whose stop times are kept after a lookup: feeds name the same trips poll after
#: poll, so this saves most lookups; bounded (a few MB) whatever the schedule's size.
CACHED_TRIPS = 4096


@dataclass(frozen=True, slots=True)
class StopTime:
    """One scheduled stop of a trip: seconds after the service day's noon minus 12 h."""

    stop_sequence: int
    stop_id: str | None
    arrival_secs: int | None
    departure_secs: int | None


class ScheduleIndex:
    """The trip, route and stop ids of one published schedule version.

    ``version`` is the publish fingerprint (the SHA-256 of the schedule zip) and
    ``feed_version`` what its ``feed_info.txt`` says (None without one). Ids are sets
    in memory; stop times stay in the dataset and are read by :meth:`stop_times`
    through its ``(mode, trip_id, stop_sequence)`` key index. In a zip of zips ids are
    unique only within a mode: a trip id found in several modes is taken from the
    lowest-numbered one. Thread-safe; :meth:`close` when done (idempotent).
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, identity: Identity) -> None:
        self.path = path
        self.identity = identity
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self.moded = "mode" in _columns(conn, "trips")
        self.version, self.published_at = _stamp(conn)
        self.feed_version = _feed_version(conn)
        self._route_of: dict[str, str | None] = {}
        self._mode_of: dict[str, str] = {}
        mode_sql = "mode" if self.moded else "NULL"
        rows = conn.execute(f"SELECT trip_id, route_id, {mode_sql} FROM trips ORDER BY rowid")
        for trip_id, route_id, mode in rows:
            if trip_id is None or trip_id in self._route_of:
                continue
            self._route_of[trip_id] = None if route_id is None else sys.intern(route_id)
            if mode is not None:
                self._mode_of[trip_id] = sys.intern(mode)
        self.route_ids: frozenset[str] = _ids(conn, "routes", "route_id")
        self.stop_ids: frozenset[str] = _ids(conn, "stops", "stop_id")
        self._stop_times: OrderedDict[str, list[StopTime]] = OrderedDict()
        self._cache_lock = threading.Lock()
        #: (kind, id) pairs whose names a realtime dataset already holds for this version.
        self.named: set[tuple[str, str]] = set()
        self._timezones: dict[str | None, str] = {}
        for mode, tz in conn.execute(
            f"SELECT {'mode' if self.moded else 'NULL'}, agency_timezone FROM agency "
            "WHERE agency_timezone IS NOT NULL ORDER BY rowid"
        ):
            self._timezones.setdefault(mode, tz)
        #: Every agency_id of agency.txt (E034).
        self.agency_ids: frozenset[str] = _ids(conn, "agency", "agency_id")
        # Stops whose location_type is not 0 (stations, entrances: few), for E015.
        self._location_types: dict[str, int] = dict(
            conn.execute(
                "SELECT stop_id, location_type FROM stops WHERE stop_id IS NOT NULL "
                "AND coalesce(location_type, 0) != 0"
            ).fetchall()
        )
        #: The stops whose location_type is not 0 (where no vehicle stops: E015), as a
        #: set the rules test each update against without a call.
        self.stations: frozenset[str] = frozenset(self._location_types)
        # Trips in frequencies.txt (usually none or few); their periods are read by SQL.
        try:
            self._frequent: frozenset[str] = _ids(conn, "frequencies", "trip_id")
        except sqlite3.OperationalError:  # a dataset from before frequencies were loaded
            self._frequent = frozenset()
        self._trip_facts: OrderedDict[str, tuple[Any, ...]] = OrderedDict()

    @property
    def trip_ids(self) -> Collection[str]:
        """Every trip id of the schedule (a set-like view)."""
        return self._route_of.keys()

    def has_trip(self, trip_id: str) -> bool:
        return trip_id in self._route_of

    def has_route(self, route_id: str) -> bool:
        return route_id in self.route_ids

    def has_stop(self, stop_id: str) -> bool:
        return stop_id in self.stop_ids

    def route_of(self, trip_id: str) -> str | None:
        """The route of ``trip_id``; None for an unknown trip (or a trip without a route)."""
        return self._route_of.get(trip_id)

    def mode_of(self, trip_id: str) -> str | None:
        """The mode folder ``trip_id`` comes from in a zip of zips; None in a flat feed."""
        return self._mode_of.get(trip_id)

    def timezone_of(self, trip_id: str | None = None) -> str | None:
        """The agency time zone that ``trip_id``'s times count in (the first agency's)."""
        mode = self._mode_of.get(trip_id) if trip_id is not None else None
        return self._timezones.get(mode) or next(iter(self._timezones.values()), None)

    def stop_times(self, trip_id: str) -> list[StopTime]:
        """The scheduled stops of ``trip_id`` in stop_sequence order; empty if unknown.

        The list is shared (the last :data:`CACHED_TRIPS` trips looked up are kept):
        do not modify it.
        """
        if trip_id not in self._route_of:
            return []
        with self._cache_lock:
            cached = self._stop_times.get(trip_id)
            if cached is not None:
                self._stop_times.move_to_end(trip_id)
                return cached
        if self.moded:
            sql = (
                "SELECT stop_sequence, stop_id, arrival_time_secs, departure_time_secs "
                "FROM stop_times WHERE mode = ? AND trip_id = ? ORDER BY stop_sequence"
            )
            params: tuple[Any, ...] = (self._mode_of.get(trip_id), trip_id)
        else:
            sql = (
                "SELECT stop_sequence, stop_id, arrival_time_secs, departure_time_secs "
                "FROM stop_times WHERE trip_id = ? ORDER BY stop_sequence"
            )
            params = (trip_id,)
        found = [StopTime(*row) for row in self.query(sql, params)]
        with self._cache_lock:
            self._stop_times[trip_id] = found
            if len(self._stop_times) > CACHED_TRIPS:
                self._stop_times.popitem(last=False)
        return found

    def location_type_of(self, stop_id: str) -> int | None:
        """``stop_id``'s location_type (0 when empty); None for an unknown stop."""
        if stop_id not in self.stop_ids:
            return None
        return self._location_types.get(stop_id, 0)

    def direction_of(self, trip_id: str) -> int | None:
        """``trip_id``'s direction_id in trips.txt; None when unknown or empty."""
        return self._facts(trip_id)[0]

    def block_of(self, trip_id: str) -> str | None:
        """``trip_id``'s block_id in trips.txt; None when unknown or empty."""
        return self._facts(trip_id)[1]

    def frequencies_of(self, trip_id: str) -> tuple[tuple[int, int, int, int], ...]:
        """``trip_id``'s periods in frequencies.txt as (start, end, headway, exact_times)
        seconds, by start; empty for a trip not in it (no query then)."""
        if trip_id not in self._frequent:
            return ()
        return self._facts(trip_id)[2]

    def _facts(self, trip_id: str) -> tuple[Any, ...]:
        """(direction_id, block_id, frequencies) of a trip, by the trips and frequencies
        key indexes; the last :data:`CACHED_TRIPS` trips asked are kept."""
        if trip_id not in self._route_of:
            return (None, None, ())
        with self._cache_lock:
            cached = self._trip_facts.get(trip_id)
            if cached is not None:
                self._trip_facts.move_to_end(trip_id)
                return cached
        where = "mode = ? AND trip_id = ?" if self.moded else "trip_id = ?"
        params: tuple[Any, ...] = (
            (self._mode_of.get(trip_id), trip_id) if self.moded else (trip_id,)
        )
        row = self.query(f"SELECT direction_id, block_id FROM trips WHERE {where}", params)
        direction, block = row[0] if row else (None, None)
        periods: tuple[tuple[int, int, int, int], ...] = ()
        if trip_id in self._frequent:
            periods = tuple(
                (int(a), int(b), int(h), int(x or 0))
                for a, b, h, x in self.query(
                    "SELECT start_time_secs, end_time_secs, headway_secs, exact_times "
                    f"FROM frequencies WHERE {where} AND start_time_secs IS NOT NULL "
                    "AND end_time_secs IS NOT NULL AND headway_secs IS NOT NULL "
                    "ORDER BY start_time_secs",
                    params,
                )
            )
        facts = (direction, block or None, periods)
        with self._cache_lock:
            self._trip_facts[trip_id] = facts
            if len(self._trip_facts) > CACHED_TRIPS:
                self._trip_facts.popitem(last=False)
        return facts

    def names(self, table: str, key: str, ids: Collection[str], name: str) -> dict[str, str]:
        """``key -> name`` for ``ids`` in ``table`` (route or stop names), by the key index."""
        out: dict[str, str] = {}
        wanted = list(ids)
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT {key}, {name} FROM {table} WHERE {key} IN ({marks})"
            for k, v in self.query(sql, part):
                if v is not None:
                    out.setdefault(k, v)
        return out

    def route_names(self, ids: Collection[str]) -> dict[str, str]:
        """``route_id -> name`` (the long name, else the short name) for ``ids``."""
        return self.names(
            "routes", "route_id", ids, "coalesce(nullif(route_long_name, ''), route_short_name)"
        )

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only ``sql`` on this version's file (one caller at a time)."""
        with self._lock:
            if self._conn is None:
                raise sqlite3.ProgrammingError(
                    f"the schedule index of {str(self.path)!r} is closed"
                )
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class ScheduleSource:
    """The schedule dataset at ``path`` and the index of its live version.

    :meth:`current` returns the index of the version live now (rebuilt only when the
    file's identity changed), or None when there is none usable; :attr:`reason` then
    says why in a sentence (no schedule published yet, or the file cannot be read).
    Blocking: call from a worker thread. Old indexes are closed when replaced; a poll
    still using one keeps working until it finishes, since queries hold the lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reason: str | None = None
        self._index: ScheduleIndex | None = None
        self._failed: Identity | None = None
        self._lock = threading.Lock()
        self._retired: list[ScheduleIndex] = []

    def current(self) -> ScheduleIndex | None:
        with self._lock:
            for _attempt in range(3):  # a publish between stat and open: look again
                before = _identity(self.path)
                if before is None:
                    self._swap(None)
                    self.reason = (
                        f"no schedule published yet at {str(self.path)!r}; checks against "
                        "the schedule are skipped until it is"
                    )
                    return None
                if self._index is not None and self._index.identity == before:
                    return self._index
                if self._failed == before:
                    return None  # the same broken file: said once already
                try:
                    index = _open(self.path, before)
                except sqlite3.Error as exc:
                    if _identity(self.path) != before:
                        continue
                    self._swap(None)
                    self._failed = before
                    self.reason = (
                        f"cannot read the schedule dataset {str(self.path)!r} ({exc}); checks "
                        "against the schedule are skipped until it is published again"
                    )
                    return None
                if index is None or _identity(self.path) != before:
                    if index is not None:
                        index.close()
                    continue
                self._swap(index)
                return index
            self.reason = f"the schedule dataset {str(self.path)!r} kept changing while read"
            return self._index

    def _swap(self, index: ScheduleIndex | None) -> None:
        # The old index may still be in use by a poll: closed on the next swap.
        for old in self._retired:
            old.close()
        self._retired = [self._index] if self._index is not None else []
        self._index, self._failed, self.reason = index, None, None

    def close(self) -> None:
        with self._lock:
            self._swap(None)
            self._swap(None)


def _identity(path: Path) -> Identity | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _open(path: Path, identity: Identity) -> ScheduleIndex | None:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    try:
        return ScheduleIndex(path, conn, identity)
    except BaseException:
        conn.close()
        raise


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    cols = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    if not cols:
        raise sqlite3.DatabaseError(f"it has no {table} table")
    return cols


def _ids(conn: sqlite3.Connection, table: str, column: str) -> frozenset[str]:
    rows = conn.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL")
    return frozenset(row[0] for row in rows)


def _stamp(conn: sqlite3.Connection) -> tuple[str, str | None]:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (STAMP_TABLE,)
    ).fetchone()
    if found is not None:
        row = conn.execute(f"SELECT fingerprint, published_at FROM {STAMP_TABLE}").fetchone()
        if row is not None:
            return str(row[0]), row[1]
    row = conn.execute(
        "SELECT sha256, published_at FROM provenance ORDER BY rowid DESC LIMIT 1"
    ).fetchone()
    if row is None:
        raise sqlite3.DatabaseError("it has no publish stamp and no provenance")
    return str(row[0]), row[1]


def _feed_version(conn: sqlite3.Connection) -> str | None:
    try:
        rows = conn.execute(
            "SELECT DISTINCT feed_version FROM feed_info WHERE feed_version IS NOT NULL "
            "ORDER BY feed_version"
        ).fetchall()
    except sqlite3.OperationalError:
        return None
    return ",".join(r[0] for r in rows) or None
