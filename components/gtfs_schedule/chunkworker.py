"""The worker half of a parallel table load: one line-aligned chunk of a CSV member in,
its typed rows in a scratch SQLite file and a small summary out.

:func:`convert_chunk` is the whole job (runnable in-process too); :func:`serve` runs it
for tasks arriving on a connection, in a child process started by :mod:`.parallel`.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice, repeat, tee
from multiprocessing.connection import Connection

from interlock.components.gtfs_schedule.cells import settle
from interlock.components.gtfs_schedule.csvstream import BLOCK_CHARS, CSV_ERRORS, Block, plain_lines
from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.order import MAX_SEQUENCE, OrderTracker
from interlock.components.gtfs_schedule.rows import Caches, RawNotice, build_converter
from interlock.components.gtfs_schedule.schema import create_table_sql
from interlock.components.gtfs_schedule.spec import TABLES
from interlock.components.gtfs_schedule.writer import Insert

_BY_NAME = {t.name: t for t in TABLES}


@dataclass(frozen=True, slots=True)
class ChunkTask:
    """Rows ``first_row + 1`` to ``first_row + rows`` (CSV row numbers) of one member."""

    table: str
    header: list[str]
    mode: str | None
    rowid_base: int
    first_row: int
    rows: int  # non-blank lines the splitter counted; the worker must see as many rows
    path: str  # the scratch database to create
    examples: int  # notice examples kept per code, as the NoticeBook keeps
    data: bytes


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """The stop-time order tracker's state after one chunk, and its tracked trip ends."""

    runs: int
    ordered: bool
    count: int
    found: list[tuple[int, str]]  # (csv_row, arrival_time), the first ``examples``
    first_trip: str | None
    last_trip: str | None
    dist_count: int = 0
    dist_found: list[tuple[int, float]] | None = None  # (csv_row, shape_dist_traveled)


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What a chunk produced; ``unfit`` says why the serial path must redo the member."""

    loaded: int = 0
    nulls: int = 0
    checked: int = 0
    book: NoticeBook | None = None
    order: OrderSummary | None = None
    unfit: str | None = None


class _Unfit(Exception):
    """The chunk cannot be loaded on its own exactly as the serial path would load it."""


_REFUSED: tuple[type[Exception], ...] = (_Unfit, *CSV_ERRORS)


def _csv_blocks(text: str) -> Iterator[Block]:
    """``text`` (whole lines) through csv, refusing a record that spans lines.

    A quoted newline would make the chunk's rows depend on the previous chunk's last
    line; a sentinel blank line catches a quote still open at the chunk's end.
    """
    lines, raw = tee(_with_sentinel(text))  # each block's own lines, for settle
    reader = csv.reader(lines)
    records = seen = 0
    block: list[list[str]] = []
    for row in reader:
        records += 1
        if row:
            block.append(row)
            if len(block) >= 5_000:
                yield settle(block, list(islice(raw, reader.line_num - seen)))
                block, seen = [], reader.line_num
    if reader.line_num != records:
        raise _Unfit("a quoted value spans lines")
    yield settle(block, list(islice(raw, reader.line_num - seen)))


def _with_sentinel(text: str) -> Iterator[str]:
    yield from io.StringIO(text, newline="")
    yield "\n"


def _blocks(text: str) -> Iterator[Block]:
    """As :func:`.csvstream.open_rows` blocks, for text held in memory."""
    pos, end = 0, len(text)
    while pos < end:
        cut = text.rfind("\n", pos, pos + BLOCK_CHARS) + 1
        if cut <= pos:  # one line longer than a block
            cut = text.find("\n", pos) + 1 or end
        lines = plain_lines(text[pos:cut])
        if lines is None:
            yield from _csv_blocks(text[pos:])
            return
        yield map(str.split, lines, repeat(","))
        pos = cut


def _ends(db: sqlite3.Connection, table: str) -> tuple[str | None, str | None]:
    """The first and last trip the order check tracked (rows it covers, by rowid)."""
    where = f"WHERE trip_id IS NOT NULL AND stop_sequence BETWEEN 0 AND {MAX_SEQUENCE}"
    ends = []
    for way in ("ASC", "DESC"):
        row = db.execute(f"SELECT trip_id FROM {table} {where} ORDER BY rowid {way} LIMIT 1")
        found = row.fetchone()
        ends.append(None if found is None else found[0])
    return ends[0], ends[1]


def convert_chunk(task: ChunkTask, caches: Caches) -> ChunkResult:
    """Convert and insert one chunk into the new database ``task.path``."""
    table = _BY_NAME[task.table]
    try:
        text = task.data.decode("utf-8")
    except UnicodeDecodeError:
        return ChunkResult(unfit="the chunk is not valid UTF-8")
    if "\x00" in text:  # the serial reader names it in a notice (csv itself takes NUL)
        return ChunkResult(unfit="the chunk holds a NUL byte")
    if text and not text.endswith("\n"):
        text += "\n"  # the member's last line; the serial reader adds the newline too
    order = OrderTracker(task.examples) if table.name == "stop_times" else None
    if order is not None:
        order.begin_file(task.mode)
    conv = build_converter(
        table,
        task.header,
        mode=task.mode,
        rowid_base=task.rowid_base,
        caches=caches,
        order=order,
    )
    db = sqlite3.connect(task.path, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-4096"):
            db.execute(f"PRAGMA {pragma}")
        db.execute("BEGIN")
        db.execute(create_table_sql(table, task.mode is not None))
        insert = Insert.build(db, table.name, conv.columns)
        rowno, nulls, loaded = task.first_row, 0, 0
        book = NoticeBook(task.examples)
        file = table.filename
        try:
            for block in _blocks(text):
                out: list[object] = []
                raw: list[RawNotice] = []
                rowno, n = conv.run(block, rowno, out, raw)
                nulls += n
                for code, row, name, value in raw:
                    book.add(Notice(code, file, row, name, value, task.mode))
                insert.run(db, out)
                loaded += len(out) // len(conv.columns)
        except _REFUSED as exc:
            return ChunkResult(unfit=f"{type(exc).__name__}: {exc}")
        if rowno != task.first_row + task.rows:
            return ChunkResult(unfit=f"{rowno - task.first_row} rows, not {task.rows}")
        summary = None
        if order is not None:
            first, last = _ends(db, table.name)
            found = [(row, arrival) for row, arrival, _ in order.found]
            dist = [(row, d) for row, d, _ in order.dist_found]
            summary = OrderSummary(
                order.runs, order.ordered, order.count, found, first, last, order.dist_count, dist
            )
        db.execute("COMMIT")
    finally:
        db.close()
    return ChunkResult(
        loaded=loaded,
        nulls=nulls,
        checked=loaded * conv.required_fields,
        book=book,
        order=summary,
    )


def serve(conn: Connection) -> None:
    """Answer each task on ``conn`` with its result until ``None`` or the parent goes."""
    caches = Caches()  # memo tables only: shared across chunks, results do not depend on it
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            result = convert_chunk(task, caches)
        except Exception as exc:  # any failure sends the member to the serial path
            result = ChunkResult(unfit=f"worker failed: {type(exc).__name__}: {exc}")
        del task
        try:
            conn.send(result)
        except OSError:
            return


def main() -> None:
    """Entry point of a worker process: argv[1] is the inherited socket's descriptor."""
    serve(Connection(int(sys.argv[1])))
