"""Loads a GTFS schedule zip (flat, or Transport Victoria's zip of per-mode zips) into
a new SQLite file, validating as it streams; :func:`load_feed` is the entry point.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from interlock.components.gtfs_schedule.csvstream import CSV_ERRORS, open_rows
from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.order import OrderTracker
from interlock.components.gtfs_schedule.parallel import (
    Staged,
    Tuning,
    Unfit,
    WorkerPool,
    load_member,
)
from interlock.components.gtfs_schedule.rows import Caches, RawNotice, build_converter
from interlock.components.gtfs_schedule.schema import Table, create_table_sql
from interlock.components.gtfs_schedule.spec import (
    RECOMMENDED_FILES,
    SERVICE_FILES,
    TABLES,
    TABLES_BY_FILE,
)
from interlock.components.gtfs_schedule.validate import (
    KEYED_TABLES,
    ROWID_BITS,
    FeedFiles,
    build_clean_keys,
    build_indexes,
    build_primary_keys,
    check_foreign_keys,
)
from interlock.components.gtfs_schedule.writer import Insert
from interlock.components.gtfs_schedule.zipsafe import Budget, SafeZip, ZipLimits
from interlock.errors import UnsafeArchiveError, ValidationFailedError, WorkCancelledError

Progress = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class FeedLoadResult:
    """What a load produced: per-table counts, the quality report and rule inputs."""

    record_counts: dict[str, int]
    total_records: int
    report: dict[str, object]
    stats: dict[str, int]
    modes_loaded: list[str]


@dataclass(slots=True)
class _Tally:
    rows: int = 0
    checked: int = 0
    nulls: int = 0


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise WorkCancelledError("GTFS load cancelled; the partial database was removed")


def _open_db(db_path: Path, moded: bool) -> sqlite3.Connection:
    # "x" mode: refuse to clobber a database someone else may be serving.
    db_path.open("xb").close()
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    # A small page cache: the load appends pages and every later pass is sequential, so
    # a bigger cache buys nothing measurable. It also caps each index build's in-memory
    # sort (cache_size bytes; bigger sorts spill to temp files), and with threads=0 no
    # helper threads sort in parallel, so peak memory is the same whatever the feed size.
    pragmas = ("journal_mode=OFF", "synchronous=OFF", "cache_size=-4096", "threads=0")
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("BEGIN")
    for table in TABLES:
        conn.execute(create_table_sql(table, moded))
    return conn


class _FeedLoader:
    """Loads the members of one feed (a mode or the flat feed) into the open database."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        book: NoticeBook,
        tally: _Tally,
        cancel: threading.Event | None,
        progress: Progress | None,
        tuning: Tuning,
        scratch: Path,
    ) -> None:
        self.conn = conn
        self.book = book
        self.tally = tally
        self.cancel = cancel
        self.progress = progress
        self.tuning = tuning
        self.scratch = scratch
        self.pool: WorkerPool | None = None
        self.caches = Caches()
        self.order = OrderTracker(book.examples_per_code)
        self.counts: dict[str, int] = {t.name: 0 for t in TABLES}

    def close(self) -> None:
        """Stop the worker processes (killing busy ones) and remove their files."""
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.close()

    def load(self, zf: SafeZip, prefix: str, mode: str | None, ordinal: int) -> FeedFiles:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in zf.files:
            name = info.filename[len(prefix) :]
            if name.lower().endswith(".zip"):
                raise UnsafeArchiveError(
                    f"zip {zf.label!r}: member {info.filename!r} is a zip inside a per-mode "
                    "zip; nesting deeper than a zip of zips is refused"
                )
            members[name] = info
        files = FeedFiles(mode, set(members))
        for name in sorted(members):
            if name not in TABLES_BY_FILE:
                self.book.add(Notice("unknown_file", name, mode=mode))
        for table in TABLES:
            member = members.get(table.filename)
            if member is None:
                if table.required_file:
                    self.book.add(Notice("missing_required_file", table.filename, mode=mode))
                continue
            self._load_table(zf, member, table, mode, ordinal << ROWID_BITS)
        if not any(f in members for f in SERVICE_FILES):
            self.book.add(Notice("missing_calendar_and_calendar_date_files", mode=mode))
        for name in RECOMMENDED_FILES:
            if name not in members:
                self.book.add(Notice("missing_recommended_file", name, mode=mode))
        return files

    def _load_table(
        self, zf: SafeZip, info: zipfile.ZipInfo, table: Table, mode: str | None, base: int
    ) -> None:
        big = info.file_size >= self.tuning.min_member_bytes
        if big and self.tuning.workers >= 2 and self._load_parallel(zf, info, table, mode, base):
            return
        file = table.filename
        loaded = 0
        with zf.open(info) as binary:
            try:
                header, reader = open_rows(binary)
                if header is None:
                    self.book.add(Notice("empty_file", file, mode=mode))
                    return
                notices, loadable = _judge_header(table, header, mode)
                for notice in notices:
                    self.book.add(notice)
                if not loadable:
                    return
                order = self.order if table.name == "stop_times" else None
                if order is not None:
                    order.begin_file(mode)
                conv = build_converter(
                    table, header, mode=mode, rowid_base=base, caches=self.caches, order=order
                )
                insert = Insert.build(self.conn, table.name, conv.columns)
                rowno = 1
                for block in reader:
                    _check(self.cancel)
                    out: list[object] = []
                    raw: list[RawNotice] = []
                    rowno, nulls = conv.convert(block, rowno, out, raw)
                    for code, row, field, value in raw:
                        self.book.add(Notice(code, file, row, field, value, mode))
                    insert.run(self.conn, out)
                    rows = len(out) // len(conv.columns)
                    loaded += rows
                    self.tally.nulls += nulls
                    self.tally.checked += rows * conv.required_fields
                    if self.progress is not None:
                        self.progress(table.name, loaded)
            except CSV_ERRORS as exc:
                self.book.add(Notice("csv_parsing_failed", file, value=str(exc)[:200], mode=mode))
                # A half-read file would be a silent partial table; drop what was loaded.
                self.conn.execute(
                    f"DELETE FROM {table.name} WHERE rowid BETWEEN ? AND ?",
                    (base, base + (1 << ROWID_BITS) - 1),
                )
                if table.name == "stop_times":
                    self.order.abandon_file()
                self.tally.checked -= loaded * len([f for f in table.fields if f.required])
                loaded = 0
        self.counts[table.name] += loaded
        self.tally.rows += loaded

    def _load_parallel(
        self, zf: SafeZip, info: zipfile.ZipInfo, table: Table, mode: str | None, base: int
    ) -> bool:
        """Load the member through worker processes; False when the serial path must."""
        spent = zf.budget.total
        try:
            if self.pool is None:
                self.pool = WorkerPool(self.tuning.workers, self.scratch)
            with zf.open(info) as binary:
                header, staged = load_member(
                    self.pool,
                    binary,
                    table=table.name,
                    mode=mode,
                    rowid_base=base,
                    key="trip_id" if table.name == "stop_times" else None,
                    tuning=self.tuning,
                    examples=self.book.examples_per_code,
                    accept=lambda h: _judge_header(table, h, mode)[1],
                    copy=lambda *args: self._copy_chunk(table.name, *args),
                    cancel=self.cancel,
                    progress=None if self.progress is None else lambda n: self._report(table, n),
                )
        except (Unfit, OSError):
            # Start the member again from its first byte: drop what was copied, close
            # the pool (busy workers are killed), and do not count the abandoned read
            # against the payload's byte limit a second time.
            self.close()
            self.conn.execute(
                f"DELETE FROM {table.name} WHERE rowid BETWEEN ? AND ?",
                (base, base + (1 << ROWID_BITS) - 1),
            )
            zf.budget.total = spent
            return False
        for notice in _judge_header(table, header, mode)[0]:
            self.book.add(notice)
        self._absorb(table, mode, staged)
        return True

    def _report(self, table: Table, loaded: int) -> None:
        assert self.progress is not None
        self.progress(table.name, loaded)

    def _copy_chunk(self, name: str, path: Path, before: int, last: int, whole: bool) -> None:
        """Append a chunk file's rows, keeping their rowids (the CSV row numbers)."""
        conn = self.conn
        conn.execute("ATTACH ? AS chunk", (str(path),))
        if whole:
            # The transfer optimisation moves whole records without decoding them, but
            # numbers them max(rowid) + 1 onwards: right for a chunk without gaps once
            # the row before it is the table's last. A placeholder stands in for that
            # row when it was dropped (or belongs to an earlier chunk or feed).
            top = conn.execute(f"SELECT max(rowid) FROM main.{name}").fetchone()[0]
            if top != before:
                conn.execute(f"INSERT INTO main.{name} (rowid) VALUES (?)", (before,))
            conn.execute(f"INSERT INTO main.{name} SELECT * FROM chunk.{name}")
            if top != before:
                conn.execute(f"DELETE FROM main.{name} WHERE rowid = ?", (before,))
        else:
            cols = ", ".join(r[1] for r in conn.execute(f"PRAGMA main.table_info({name})"))
            conn.execute(
                f"INSERT INTO main.{name} (rowid, {cols}) SELECT rowid, {cols} FROM chunk.{name}"
            )
        # A whole chunk must end at its last row's number; anything else is a bug, and
        # the serial path loads the member instead of leaving wrong row numbers.
        top = conn.execute(f"SELECT max(rowid) FROM main.{name}").fetchone()[0] if whole else last
        conn.execute("COMMIT")  # DETACH is refused inside a transaction
        conn.execute("DETACH chunk")
        conn.execute("BEGIN")
        if top != last:
            raise Unfit(f"chunk {path.name!r} ended at rowid {top}, not {last}")

    def _absorb(self, table: Table, mode: str | None, staged: Staged) -> None:
        self.book.absorb(staged.book)
        if table.name == "stop_times":
            self.order.begin_file(mode)
            self.order.absorb(staged.runs, staged.ordered, staged.order_count, staged.order_found)
        self.tally.nulls += staged.nulls
        self.tally.checked += staged.checked
        self.counts[table.name] += staged.loaded
        self.tally.rows += staged.loaded


def _judge_header(table: Table, header: list[str], mode: str | None) -> tuple[list[Notice], bool]:
    """The header's notices, and whether its rows can load (no required column missing)."""
    file = table.filename
    known = {f.name for f in table.fields}
    notices = [
        Notice("unknown_column", file, 1, col, mode=mode) for col in header if col not in known
    ]
    missing = [f.name for f in table.fields if f.required and f.name not in header]
    notices += [Notice("missing_required_column", file, 1, col, mode=mode) for col in missing]
    return notices, not missing


def _flat_prefix(zf: SafeZip) -> str:
    """'' when the txt files sit at the root, 'folder/' when all sit in one top folder."""
    tops = {PurePosixPath(i.filename).parts[0] for i in zf.files}
    nested = all(len(PurePosixPath(i.filename).parts) > 1 for i in zf.files)
    if nested and len(tops) == 1:
        return f"{tops.pop()}/"
    return ""


def _inner_zips(zf: SafeZip) -> dict[str, zipfile.ZipInfo]:
    """Mode folder -> inner zip member, for a zip of zips; empty for a flat feed."""
    inner: dict[str, zipfile.ZipInfo] = {}
    for info in zf.files:
        path = PurePosixPath(info.filename)
        if path.suffix.lower() != ".zip":
            continue
        if len(path.parts) > 2:
            raise UnsafeArchiveError(
                f"zip {zf.label!r}: inner zip {info.filename!r} is nested deeper than "
                "<mode>/google_transit.zip"
            )
        mode = path.parts[0] if len(path.parts) == 2 else path.stem
        if mode in inner:
            raise ValidationFailedError(
                f"zip {zf.label!r} holds two zips for mode {mode!r}; expected one per folder"
            )
        inner[mode] = info
    return inner


def _mode_key(mode: str) -> tuple[int, str]:
    return (int(mode), "") if mode.isdigit() else (1 << 30, mode)


@contextmanager
def _progress_guard(conn: sqlite3.Connection, cancel: threading.Event | None) -> Iterator[None]:
    """Let a set cancel event interrupt long SQL statements (index builds, checks)."""
    if cancel is not None:
        conn.set_progress_handler(lambda: 1 if cancel.is_set() else 0, 100_000)
    try:
        yield
    except sqlite3.OperationalError as exc:
        if cancel is not None and cancel.is_set():
            raise WorkCancelledError("GTFS load cancelled during post-load checks") from exc
        raise
    finally:
        conn.set_progress_handler(None, 0)


def load_feed(
    zip_path: Path,
    db_path: Path,
    *,
    modes: Sequence[str] | None = None,
    limits: ZipLimits = ZipLimits(),  # noqa: B008 - immutable frozen dataclass
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    tuning: Tuning = Tuning(),  # noqa: B008 - immutable frozen dataclass
) -> FeedLoadResult:
    """Validate ``zip_path`` and load it into the new SQLite file ``db_path``.

    Raises UnsafeArchiveError for unsafe or unreadable zips, WorkCancelledError when
    ``cancel`` is set; on any failure ``db_path`` is removed. Feed-level problems are
    not raised: they are notices in the result's report for the caller's rules.

    Every spec table is created (empty when its file is absent); only spec columns
    load (others are unknown_column notices), each TIME column gains ``<name>_secs``.
    As in gtfs-validator, a row whose value does not parse, or whose length differs
    from the header's, is dropped; a missing required value loads as NULL and an out
    of range value loads as is. Duplicate-key rows after the first are dropped.

    ``tuning`` decides which members load through worker processes (the result is
    the same either way, only faster); ``Tuning(workers=0)`` keeps the load in-process.
    """
    _check(cancel)
    if db_path.exists():
        raise FileExistsError(
            f"database {str(db_path)!r} already exists; load_feed needs a new path"
        )
    budget = Budget(limits)
    book = NoticeBook()
    tally = _Tally()
    conn: sqlite3.Connection | None = None
    loader: _FeedLoader | None = None
    try:
        with SafeZip(zip_path, budget) as outer:
            inner = _inner_zips(outer)
            moded = bool(inner)
            conn = _open_db(db_path, moded)
            loader = _FeedLoader(conn, book, tally, cancel, progress, tuning, db_path.parent)
            feeds: list[FeedFiles] = []
            wanted = sorted(inner, key=_mode_key)
            if modes is not None:
                unknown = sorted(set(modes) - set(inner))
                if unknown:
                    raise ValidationFailedError(
                        f"modes {unknown!r} are not in {zip_path.name!r}; it holds {wanted!r}"
                    )
                wanted = [m for m in wanted if m in set(modes)]
            if not moded:
                feeds.append(loader.load(outer, _flat_prefix(outer), None, 0))
            with tempfile.TemporaryDirectory(prefix=".gtfs-inner-", dir=db_path.parent) as tmp:
                for ordinal, mode in enumerate(wanted):
                    _check(cancel)
                    dest = Path(tmp) / f"{mode}.zip"
                    outer.extract_to(inner[mode], dest)
                    label = f"{zip_path.name}:{inner[mode].filename}"
                    with SafeZip(dest, budget, label=label) as zf:
                        feeds.append(loader.load(zf, _flat_prefix(zf), mode, ordinal))
                    dest.unlink()
            loader.close()
        _check(cancel)
        conn.execute("COMMIT")
        # Post-load statements may fail (a unique index over duplicates) and need a
        # rollback journal to fail cleanly; DELETE mode also keeps the result in one
        # file so the caller can rename it. New index pages are not journalled.
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("BEGIN")
        with _progress_guard(conn, cancel):
            # Indexes before the reference checks, which then read them instead of
            # sorting the tables again; duplicates are dropped only after the checks
            # (which see every row), and a table with duplicates stops the early
            # index builds there so that the indexes are created in the same order.
            done = build_clean_keys(conn, moded)
            clean = done == len(KEYED_TABLES)
            if clean:
                build_indexes(conn, moded)
            check_foreign_keys(conn, feeds, book)
            keyed, dups = build_primary_keys(conn, moded, book, done)
            if not clean:
                build_indexes(conn, moded)
            loader.order.check(conn, moded, book)
            conn.execute("COMMIT")
        counts = {
            name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in loader.counts
        }
        conn.close()
        conn = None
    except BaseException:
        if loader is not None:
            loader.close()
        if conn is not None:
            conn.close()
        with suppress(FileNotFoundError):
            db_path.unlink()
        raise
    report = book.report()
    stats = {
        "records": sum(counts.values()),
        "checked_cells": tally.checked,
        "null_cells": tally.nulls,
        "keyed_rows": keyed,
        "duplicate_rows": dups,
        "error_notices": book.total("ERROR"),
        "warning_notices": book.total("WARNING"),
    }
    return FeedLoadResult(
        record_counts=counts,
        total_records=stats["records"],
        report=report,
        stats=stats,
        modes_loaded=list(wanted),
    )
