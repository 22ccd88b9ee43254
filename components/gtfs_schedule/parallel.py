"""Loads a big CSV member with worker processes: the parent reads and cuts the member,
each worker converts a chunk into its own scratch SQLite file, and the parent copies
the chunks into the feed database in row order.

Conversion is pure Python and holds the GIL, so threads cannot share it; processes
can. The copy is SQLite's ``INSERT INTO t SELECT * FROM chunk.t`` transfer, which
moves whole records without decoding them. Any chunk that cannot be loaded exactly
as the serial path would (a quoted newline, bad UTF-8, a CSV error, a row count
that does not add up) raises :class:`Unfit`, and the caller loads the member serially.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import IO

from interlock.components.gtfs_schedule.chunkworker import ChunkResult, ChunkTask
from interlock.components.gtfs_schedule.notices import NoticeBook
from interlock.components.gtfs_schedule.splitter import parse_header, split
from interlock.errors import WorkCancelledError

# How often a wait for a worker looks at the cancel event.
_POLL_S = 0.05
# The worker imports only the chunk module (not the daemon) so it starts in milliseconds.
_BOOT = "from interlock.components.gtfs_schedule.chunkworker import main; main()"


# (chunk file, rowid before its first row, rowid of its last row, every row loaded)
Copy = Callable[[Path, int, int, bool], None]


class Unfit(Exception):
    """The member must be loaded by the serial path; the message says why."""


@dataclass(frozen=True, slots=True)
class Tuning:
    """When and how wide a table load goes parallel; ``workers`` < 2 keeps it serial."""

    workers: int = min(2, os.cpu_count() or 1)
    min_member_bytes: int = 16 * 1024 * 1024
    chunk_bytes: int = 2 * 1024 * 1024


@dataclass(slots=True)
class Staged:
    """A member's results, kept aside until every chunk has loaded (the stop-time
    order fields are for stop_times only)."""

    book: NoticeBook
    loaded: int = 0
    nulls: int = 0
    checked: int = 0
    runs: int = 0
    ordered: bool = True
    order_count: int = 0
    order_found: list[tuple[int, str]] = field(default_factory=list)
    dist_count: int = 0
    dist_found: list[tuple[int, float]] = field(default_factory=list)
    last_trip: str | None = None


class _Worker:
    def __init__(self) -> None:
        mine, theirs = socket.socketpair()
        with mine, theirs:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
            self.conn = Connection(os.dup(mine.fileno()))

    def result(self, cancel: threading.Event | None) -> ChunkResult:
        while not wait([self.conn], _POLL_S):
            if cancel is not None and cancel.is_set():
                raise WorkCancelledError("GTFS load cancelled; the partial database was removed")
        try:
            result = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise Unfit(f"worker {self.proc.pid} ended ({exc!r})") from exc
        assert isinstance(result, ChunkResult)
        return result

    def stop(self, now: bool) -> None:
        if not now:
            try:
                self.conn.send(None)
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.conn.close()


class WorkerPool:
    """Worker processes and a scratch directory for their chunk files; close() is
    idempotent and kills workers that are still busy."""

    def __init__(self, size: int, scratch_parent: Path) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix=".gtfs-chunks-", dir=scratch_parent)
        self.scratch = Path(self._scratch.name)
        self._workers: list[_Worker] = []
        try:
            for _ in range(size):
                self._workers.append(_Worker())
        except BaseException:
            self.close()
            raise
        self.idle: deque[_Worker] = deque(self._workers)
        self.broken = False

    def close(self) -> None:
        workers, self._workers = self._workers, []
        for w in workers:
            w.stop(now=w not in self.idle or self.broken)
        self._scratch.cleanup()


def _read_header(stream: IO[bytes], size: int) -> tuple[list[str], bytes]:
    head = stream.read(min(size, 1 << 20))
    nl = head.find(b"\n")
    header = parse_header(head[: nl + 1]) if nl >= 0 else None
    if header is None:
        raise Unfit("the header is not one plain line")
    return header, head[nl + 1 :]


def _merge_result(staged: Staged, result: ChunkResult, examples: int) -> None:
    staged.loaded += result.loaded
    staged.nulls += result.nulls
    staged.checked += result.checked
    if result.book is not None:
        staged.book.absorb(result.book)
    order = result.order
    if order is None:
        return
    if order.first_trip is not None:
        # A trip cut in two would be two runs here but one in the serial stream: the
        # merged stream cannot vouch for the order, so the full SQL check decides.
        if order.first_trip == staged.last_trip:
            staged.ordered = False
        staged.last_trip = order.last_trip
    staged.runs += order.runs
    staged.ordered = staged.ordered and order.ordered
    staged.order_count += order.count
    staged.order_found.extend(order.found[: max(0, examples - len(staged.order_found))])
    staged.dist_count += order.dist_count
    room = max(0, examples - len(staged.dist_found))
    staged.dist_found.extend((order.dist_found or [])[:room])


def load_member(
    pool: WorkerPool,
    stream: IO[bytes],
    *,
    table: str,
    mode: str | None,
    rowid_base: int,
    key: str | None,
    tuning: Tuning,
    examples: int,
    accept: Callable[[list[str]], bool],
    copy: Copy,
    cancel: threading.Event | None,
    progress: Callable[[int], None] | None,
) -> tuple[list[str], Staged]:
    """Load one member through ``pool``; returns its header and staged results.

    ``accept`` judges the header (False: the serial path must load the member);
    ``copy`` appends a finished chunk file's rows to the feed database, in row order,
    given the rowids just before and at the end of the chunk and whether every row
    in between loaded.
    Raises Unfit (the caller then removes what was copied and loads serially).
    """
    header, head = _read_header(stream, tuning.chunk_bytes)
    if not accept(header):
        raise Unfit("the header needs the serial path's notices")
    key_col = header.index(key) if key is not None and key in header else None
    staged = Staged(NoticeBook(examples))
    inflight: deque[tuple[_Worker, ChunkTask]] = deque()
    first_row = 1
    try:
        chunks = split(stream, head, tuning.chunk_bytes, key_col)
        for n, (data, rows) in enumerate(chunks):
            path = pool.scratch / f"{table}-{n}.sqlite"
            task = ChunkTask(
                table, header, mode, rowid_base, first_row, rows, str(path), examples, data
            )
            del data
            first_row += rows
            done: tuple[ChunkTask, ChunkResult] | None = None
            if not pool.idle:
                worker, done_task = inflight.popleft()
                done = (done_task, worker.result(cancel))
                pool.idle.append(worker)
            worker = pool.idle.popleft()
            worker.conn.send(task)
            inflight.append((worker, _bare(task)))
            del task
            if done is not None:
                _finish(staged, *done, copy, examples, progress)
        while inflight:
            worker, done_task = inflight.popleft()
            result = worker.result(cancel)
            pool.idle.append(worker)
            _finish(staged, done_task, result, copy, examples, progress)
    except ValueError as exc:
        pool.broken = True
        raise Unfit(str(exc)) from exc
    except BaseException:
        pool.broken = True  # busy workers are killed rather than waited for
        raise
    return header, staged


def _bare(task: ChunkTask) -> ChunkTask:
    """``task`` without its data, to remember while a worker runs it."""
    return replace(task, data=b"")


def _finish(
    staged: Staged,
    task: ChunkTask,
    result: ChunkResult,
    copy: Copy,
    examples: int,
    progress: Callable[[int], None] | None,
) -> None:
    if result.unfit is not None:
        raise Unfit(result.unfit)
    path = Path(task.path)
    if result.loaded:
        before = task.rowid_base + task.first_row
        copy(path, before, before + task.rows, result.loaded == task.rows)
    path.unlink()
    _merge_result(staged, result, examples)
    if progress is not None:
        progress(staged.loaded)
