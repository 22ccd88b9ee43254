"""Loads the members of one feed (a mode's zip, or the flat feed) into the open database.

Each spec table's file streams in, serially or through worker processes for big
members; the header is judged first, and every dropped row or value is a notice.
"""

from __future__ import annotations

import sqlite3
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
from interlock.components.gtfs_schedule.schema import Table
from interlock.components.gtfs_schedule.spec import (
    RECOMMENDED_FILES,
    SERVICE_FILES,
    TABLES,
    TABLES_BY_FILE,
)
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles
from interlock.components.gtfs_schedule.writer import Insert
from interlock.components.gtfs_schedule.zipsafe import SafeZip
from interlock.errors import UnsafeArchiveError, WorkCancelledError

Progress = Callable[[str, int], None]


@dataclass(slots=True)
class Tally:
    """Rows loaded, required cells checked and cells found empty, across the feed."""

    rows: int = 0
    checked: int = 0
    nulls: int = 0


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise WorkCancelledError once ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise WorkCancelledError("GTFS load cancelled; the partial database was removed")


class FeedLoader:
    """Loads the members of one feed (a mode or the flat feed) into the open database."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        book: NoticeBook,
        tally: Tally,
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
        self._columns: dict[str, frozenset[str]] = {}

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
        self._columns = files.columns
        for name in sorted(members):
            # As gtfs-validator lists a zip's files, those in folders are not the feed's.
            if name not in TABLES_BY_FILE and "/" not in name and name != "locations.geojson":
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
                # Translations need feed_info.txt (its languages), as gtfs-validator has it.
                code = "missing_required_file" if "translations.txt" in members else None
                self.book.add(Notice(code or "missing_recommended_file", name, mode=mode))
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
                if header is not None:
                    self._columns[file] = frozenset(header)
                if header is None:
                    self.book.add(Notice("empty_file", file, mode=mode))
                    return
                notices, loadable = judge_header(table, header, mode)
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
                    check_cancel(self.cancel)
                    out: list[object] = []
                    raw: list[RawNotice] = []
                    rowno, nulls = conv.run(block, rowno, out, raw)
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
                    accept=lambda h: judge_header(table, h, mode)[1],
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
        self._columns[table.filename] = frozenset(header)
        for notice in judge_header(table, header, mode)[0]:
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
            self.order.absorb(
                staged.runs,
                staged.ordered,
                staged.order_count,
                staged.order_found,
                staged.dist_count,
                staged.dist_found,
            )
        self.tally.nulls += staged.nulls
        self.tally.checked += staged.checked
        self.counts[table.name] += staged.loaded
        self.tally.rows += staged.loaded


def judge_header(table: Table, header: list[str], mode: str | None) -> tuple[list[Notice], bool]:
    """The header's notices, and whether its rows can load (no required column missing)."""
    file = table.filename
    known = {f.name for f in table.fields}
    notices: list[Notice] = []
    seen: set[str] = set()
    for col in header:
        if not col:
            notices.append(Notice("empty_column_name", file, 1, col, mode=mode))
            continue
        if col in seen:
            notices.append(Notice("duplicated_column", file, 1, col, mode=mode))
        seen.add(col)
        if col not in known:
            notices.append(Notice("unknown_column", file, 1, col, mode=mode))
    missing = [f.name for f in table.fields if f.required and f.name not in header]
    notices += [Notice("missing_required_column", file, 1, col, mode=mode) for col in missing]
    return notices, not missing
