"""Whole-feed checks run in SQL once the rows are loaded: keys, references, ordering.

Doing these in SQLite keeps memory flat (no Python sets of millions of ids) and lets
the indexes the consumers need anyway serve the checks too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from components.gtfs.notices import Notice, NoticeBook
from components.gtfs.schema import Table
from components.gtfs.spec import TABLES

ROWID_BITS = 40
_ROW_MASK = (1 << ROWID_BITS) - 1
# Departure seconds (< 2**21, i.e. 582 h) are packed under stop_sequence so one MAX()
# window finds the departure of the latest earlier stop that has one.
_DEP_BITS = 21


@dataclass(slots=True)
class FeedFiles:
    """What one feed (a mode, or the whole flat feed) held, for the skip rules."""

    mode: str | None
    present: set[str]


def _csv_row(rowid: int) -> int:
    return rowid & _ROW_MASK


def _key_cols(table: Table, moded: bool) -> list[str]:
    return (["mode"] if moded else []) + list(table.primary_key)


def build_primary_keys(conn: sqlite3.Connection, moded: bool, book: NoticeBook) -> tuple[int, int]:
    """Drop duplicate-key rows (keeping the first) and build unique key indexes.

    Returns (keyed_rows, duplicate_rows). The unique index is attempted first because
    in a healthy feed it both proves uniqueness and builds the index in one sort.
    """
    keyed = dups = 0
    for table in TABLES:
        if not table.primary_key:
            continue
        keyed += conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
        cols = ", ".join(_key_cols(table, moded))
        create = f"CREATE UNIQUE INDEX {table.name}_pk ON {table.name} ({cols})"
        # NULL key parts never collide in a UNIQUE index, but gtfs-validator treats an
        # empty optional key part as a value, so such tables are always checked.
        nullable = any(not table.field(k).required for k in table.primary_key)
        if not nullable:
            try:
                conn.execute(create)
                continue
            except sqlite3.IntegrityError:
                pass
        dups += _drop_duplicates(conn, table, moded, book)
        conn.execute(create)
    return keyed, dups


def _drop_duplicates(conn: sqlite3.Connection, table: Table, moded: bool, book: NoticeBook) -> int:
    key = _key_cols(table, moded)
    cols = ", ".join(key)
    not_null = " AND ".join(
        f"{k} IS NOT NULL" for k in table.primary_key if table.field(k).required
    )
    where = f"WHERE {not_null}" if not_null else ""
    dup_sql = (
        f"SELECT rowid, {cols} FROM {table.name} {where} "
        f"{'AND' if where else 'WHERE'} rowid NOT IN "
        f"(SELECT min(rowid) FROM {table.name} {where} GROUP BY {cols})"
    )
    conn.execute("CREATE TEMP TABLE _dups (r INTEGER PRIMARY KEY)")
    n = 0
    field = ",".join(table.primary_key)
    for rowid, *vals in conn.execute(dup_sql):
        mode = vals.pop(0) if moded else None
        value = ",".join("" if v is None else str(v) for v in vals)
        book.add(Notice("duplicate_key", table.filename, _csv_row(rowid), field, value, mode))
        conn.execute("INSERT INTO _dups VALUES (?)", (rowid,))
        n += 1
    conn.execute(f"DELETE FROM {table.name} WHERE rowid IN (SELECT r FROM _dups)")
    conn.execute("DROP TABLE _dups")
    return n


def build_indexes(conn: sqlite3.Connection, moded: bool) -> None:
    """Secondary indexes for the common joins, built after the bulk load (one sort each).

    In a zip of zips ids are unique only within a mode, so every join has to carry
    the mode and the indexes lead with it.
    """
    for table in TABLES:
        for cols in table.indexes:
            full = (["mode"] if moded else []) + list(cols)
            name = f"{table.name}_{'_'.join(cols)}"
            conn.execute(f"CREATE INDEX {name} ON {table.name} ({', '.join(full)})")


def _skip_reference(book: NoticeBook, files: FeedFiles, child: Table, parent: Table) -> bool:
    """gtfs-validator skips a reference check when either table did not parse cleanly."""
    if child.filename not in files.present:
        return True
    if parent.filename not in files.present and parent.required_file:
        return True
    return not (
        book.parsed_ok(files.mode, child.filename) and book.parsed_ok(files.mode, parent.filename)
    )


def check_foreign_keys(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """One foreign_key_violation per child row whose reference has no parent row.

    Runs before duplicates are dropped because gtfs-validator checks every row, and
    once per reference across all modes so a big table is scanned once, not per mode.
    """
    by_name = {t.name: t for t in TABLES}
    moded = bool(feeds) and feeds[0].mode is not None
    for child in TABLES:
        for fk in child.foreign_keys:
            parent = by_name[fk.parent]
            modes = {f.mode for f in feeds if not _skip_reference(book, f, child, parent)}
            if modes:
                parents = [(parent.name, fk.parent_field)]
                _report_orphans(conn, modes, moded, child, fk.field, parents, book)
    # trips.service_id is deliberately not checked: gtfs-validator (and the gtfs-guru
    # oracle) raise no foreign_key_violation for it, and counts must match theirs.


def _report_orphans(
    conn: sqlite3.Connection,
    modes: set[str | None],
    moded: bool,
    child: Table,
    field: str,
    parents: Sequence[tuple[str, str]],
    book: NoticeBook,
) -> None:
    # Distinct missing values first (one pass, a b-tree of distinct ids), then the
    # rows that hold them: a second pass happens only when there are orphans.
    m = "mode, " if moded else ""
    union = " UNION ".join(f"SELECT {m}{pf} FROM {pt} WHERE {pf} IS NOT NULL" for pt, pf in parents)
    key = f"({m}{field})" if moded else field
    sql = (
        f"SELECT rowid, {'mode' if moded else 'NULL'}, {field} FROM {child.name} "
        f"WHERE {key} IN (SELECT {m}{field} FROM {child.name} WHERE {field} IS NOT NULL "
        f"EXCEPT {union}) ORDER BY rowid"
    )
    for rowid, mode, value in conn.execute(sql):
        if mode in modes:
            book.add(
                Notice("foreign_key_violation", child.filename, _csv_row(rowid), field, value, mode)
            )


def check_stop_time_order(conn: sqlite3.Connection, moded: bool, book: NoticeBook) -> None:
    """stop_time_with_arrival_before_previous_departure_time, as gtfs-validator walks trips."""
    part = "mode, trip_id" if moded else "trip_id"
    mode_col = "mode" if moded else "NULL"
    sql = f"""
        SELECT rowid, m, arrival_time FROM (
            SELECT rowid, {mode_col} AS m, arrival_time, arrival_time_secs AS a,
                   MAX(CASE WHEN departure_time_secs IS NOT NULL
                            THEN (stop_sequence << {_DEP_BITS}) | departure_time_secs END)
                   OVER (PARTITION BY {part} ORDER BY stop_sequence
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS p
            FROM stop_times
            WHERE trip_id IS NOT NULL AND stop_sequence BETWEEN 0 AND {(1 << 41) - 1}
        )
        WHERE a IS NOT NULL AND p IS NOT NULL AND a < (p & {(1 << _DEP_BITS) - 1})
        ORDER BY rowid
    """
    for rowid, mode, arrival in conn.execute(sql):
        book.add(
            Notice(
                "stop_time_with_arrival_before_previous_departure_time",
                "stop_times.txt",
                _csv_row(rowid),
                "arrival_time",
                arrival,
                mode,
            )
        )
