"""Writes row batches to SQLite on a second thread while the next batch is parsed.

sqlite3 releases the GIL inside each statement step, so parsing and inserting
overlap; the bounded queue keeps memory at a few batches whatever the feed size.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Sequence
from types import TracebackType

from components.gtfs.rows import Row

_STOP = object()
_Item = tuple[str, Sequence[Row] | tuple[object, ...], bool]


class BatchWriter:
    """``with BatchWriter(conn) as w: w.put(sql, rows)``; exiting drains and joins."""

    def __init__(self, conn: sqlite3.Connection, depth: int = 4) -> None:
        self._conn = conn
        self._queue: queue.Queue[_Item | object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abandon = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gtfs sqlite writer", daemon=True)

    def __enter__(self) -> BatchWriter:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            # The load is failing anyway: skip the queued batches rather than write them.
            self._abandon.set()
        self._queue.put(_STOP)
        self._thread.join()
        if exc is None:
            self._raise_if_failed()

    def put(self, sql: str, rows: Sequence[Row]) -> None:
        """Queue ``rows`` for ``executemany``; blocks while the queue is full."""
        self._raise_if_failed()
        self._queue.put((sql, rows, True))

    def run(self, sql: str, params: tuple[object, ...]) -> None:
        """Run one statement after everything queued so far, and wait for it."""
        self._raise_if_failed()
        self._queue.put((sql, params, False))
        self._queue.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if not isinstance(item, tuple):
                    return  # the _STOP sentinel
                if self._abandon.is_set() or self._error is not None:
                    continue
                sql, data, many = item
                if many:
                    self._conn.executemany(sql, data)
                else:
                    self._conn.execute(sql, data)
            except BaseException as exc:  # handed to the parsing thread, never lost
                self._error = exc
            finally:
                self._queue.task_done()
