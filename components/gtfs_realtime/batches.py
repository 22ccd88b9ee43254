"""One feed's entities, decoded and written a batch at a time.

Memory per feed is its bytes plus one batch of rows, however many entities it has.
An entity that cannot be decoded or stored is refused alone (counted, with a few
samples of its id and the reason); the others and the other endpoints are stored.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.delays import DelayDeriver
from interlock.components.gtfs_realtime.frame import Frame
from interlock.components.gtfs_realtime.rows import (
    INSERT,
    TABLES,
    EntityRefused,
    RefusedEntity,
    Row,
    RowBatch,
)
from interlock.errors import WorkCancelledError

#: Rows held before they are written (about 2 MB of tuples).
BATCH_ROWS = 5000
#: Entities decoded by one parse (one entity at a time only when that fails).
PARSE_ENTITIES = 256
#: Refused entities described in the report; the rest are only counted.
SAMPLES = 5
#: What SQLite (or the sqlite3 module) raises for a value it cannot store. Anything else
#: (a full disk, a lost lock) is the feed's failure, not one entity's.
_VALUE_ERRORS = (
    OverflowError,
    ValueError,
    TypeError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
)

Mark = tuple[int, ...]
#: What sees each decoded entity of a feed as it is written: its index, the entity and
#: its ``stop_time_updates`` rows (None when it has none or was refused).
Visit = Callable[[int, rt.FeedEntity, Sequence[Row] | None], None]
_STOP_ROWS = TABLES.index("stop_time_updates")


@dataclass
class EntityTally:
    """What writing one feed's entities did: rows per table, duplicates, refusals."""

    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    duplicates: int = 0
    refused: int = 0
    samples: list[RefusedEntity] = field(default_factory=list)
    #: The feed's revision under its header timestamp (0 unless its content changed, E017).
    revision: int = 0
    #: Distinct ids the stored entities name: trip, route, stop.
    ids: tuple[set[str], set[str], set[str]] = field(default_factory=lambda: (set(), set(), set()))
    #: Stop-time updates whose delay was derived from the schedule.
    derived_delays: int = 0
    #: kind -> join of the ids against the schedule in force (empty without one).
    joins: dict[str, Any] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(self.written.values())

    def refuse(self, index: int, entity_id: str | None, reason: str) -> None:
        self.refused += 1
        if len(self.samples) < SAMPLES:
            self.samples.append(RefusedEntity(index, entity_id, reason))


class _Writer:
    def __init__(self, conn: sqlite3.Connection, batch: RowBatch, tally: EntityTally) -> None:
        self.conn = conn
        self.batch = batch
        self.tally = tally
        # (index, id, mark before its rows) of each entity in the batch.
        self.members: list[tuple[int, str, Mark]] = []
        self.rows = 0  # rows in the batch before the last entity added

    def add(self, index: int, entity: rt.FeedEntity) -> None:
        mark = self.batch.mark()
        self.rows = sum(mark)
        try:
            self.batch.add(entity)
        except EntityRefused as exc:
            self.batch.undo(mark)
            self.tally.refuse(index, entity.id, str(exc))
            return
        except Exception as exc:  # a value the row builder cannot read: this entity's problem
            self.batch.undo(mark)
            self.tally.refuse(index, entity.id, f"its rows cannot be built: {exc!r}")
            return
        self.members.append((index, entity.id, mark))

    def flush(self) -> None:
        if not self.members:
            return
        before = high_water(self.conn)
        try:
            self._insert(self.batch.mark(), None)
        except _VALUE_ERRORS:
            cut_back(self.conn, before)
            self._one_by_one()
        self.batch.clear()
        self.members.clear()

    def _insert(self, end: Mark, start: Mark | None) -> None:
        for t, (table, rows) in enumerate(zip(TABLES, self.batch.lists, strict=True)):
            part = rows if start is None else rows[start[t] : end[t]]
            if part:
                self.conn.executemany(INSERT[table], part)
        for t, table in enumerate(TABLES):
            self.tally.written[table] += end[t] - (0 if start is None else start[t])

    def _one_by_one(self) -> None:
        """Insert the batch entity by entity, refusing those SQLite will not take."""
        ends = [m[2] for m in self.members[1:]] + [self.batch.mark()]
        for (index, eid, start), end in zip(self.members, ends, strict=True):
            before = high_water(self.conn)
            try:
                self._insert(end, start)
            except _VALUE_ERRORS as exc:
                cut_back(self.conn, before)
                self.tally.refuse(index, eid, f"SQLite cannot store it: {exc!r}")


def high_water(
    conn: sqlite3.Connection, tables: tuple[str, ...] = ("feeds", *TABLES)
) -> dict[str, int]:
    """The largest rowid of every table: what :func:`cut_back` returns to.

    Rows appended in one transaction take rowids above these, so deleting above them
    undoes exactly those rows. A savepoint would too, but costs a sub-journal write of
    every page it touches, on every feed: about a tenth of the poll's time.
    """
    return {
        table: conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0]
        for table in tables
    }


def cut_back(conn: sqlite3.Connection, marks: dict[str, int]) -> None:
    """Delete every row appended since ``marks`` (from :func:`high_water`) was taken."""
    for table, rowid in marks.items():
        conn.execute(f"DELETE FROM {table} WHERE rowid > ?", (rowid,))


def write_entities(
    conn: sqlite3.Connection,
    data: bytes,
    frame: Frame,
    *,
    endpoint: str,
    header_timestamp: int,
    cancel: threading.Event | None = None,
    visit: Visit | None = None,
    revision: int = 0,
    delays: DelayDeriver | None = None,
) -> EntityTally:
    """Decode and insert the entities ``frame`` places in ``data``, a batch at a time.

    Runs inside the caller's transaction; raises :class:`WorkCancelledError` between
    batches once ``cancel`` is set (the caller rolls the feed back). ``visit`` sees
    each decoded entity with its rows (the realtime rules), so nothing is decoded or
    read twice.
    """
    tally = EntityTally(revision=revision)
    batch = RowBatch(endpoint, header_timestamp, revision=revision, delays=delays)
    writer = _Writer(conn, batch, tally)
    seen: set[str] = set()
    for first in range(0, frame.kept, PARSE_ENTITIES):
        last = min(first + PARSE_ENTITIES, frame.kept)
        for index, entity in _decoded(data, frame, first, last):
            if isinstance(entity, str):
                tally.refuse(index, None, entity)
                continue
            eid = entity.id
            if eid in seen:
                tally.duplicates += 1
            seen.add(eid)
            if visit is None:
                writer.add(index, entity)
            else:
                stop_rows = batch.lists[_STOP_ROWS]
                before = len(stop_rows)
                writer.add(index, entity)
                visit(index, entity, stop_rows[before:] if len(stop_rows) > before else None)
            if writer.rows >= BATCH_ROWS:
                if cancel is not None and cancel.is_set():
                    raise WorkCancelledError(f"storing {endpoint!r} was cancelled")
                writer.flush()
    writer.flush()
    tally.ids = (batch.trip_ids, batch.route_ids, batch.stop_ids)
    tally.derived_delays = delays.derived if delays is not None else 0
    return tally


def _decoded(
    data: bytes, frame: Frame, first: int, last: int
) -> Iterator[tuple[int, rt.FeedEntity | str]]:
    """(index, entity) for entities ``first`` to ``last - 1``; why not, for one that fails."""
    chunk = rt.FeedMessage()
    try:
        # One parse for the lot: the fields between them (if any) are the feed's own.
        chunk.MergeFromString(data[frame.tags[first] : frame.ends[last - 1]])
    except (DecodeError, RuntimeError, ValueError):
        pass
    else:
        if len(chunk.entity) == last - first:
            yield from enumerate(chunk.entity, first)
            return
    for index in range(first, last):
        try:
            yield index, rt.FeedEntity.FromString(data[frame.starts[index] : frame.ends[index]])
        except (DecodeError, RuntimeError, ValueError) as exc:
            yield index, f"it cannot be decoded: {exc or 'invalid protobuf'}"
