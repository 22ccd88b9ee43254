"""Whole-feed checks run in SQL once the rows are loaded: keys, references, ordering.

Doing these in SQLite keeps memory flat (no Python sets of millions of ids) and lets
the indexes the consumers need anyway serve the checks too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.schema import Table
from interlock.components.gtfs_schedule.spec import TABLES

ROWID_BITS = 40
_ROW_MASK = (1 << ROWID_BITS) - 1
KEYED_TABLES: tuple[Table, ...] = tuple(t for t in TABLES if t.primary_key)


@dataclass(slots=True)
class FeedFiles:
    """What one feed (a mode, or the whole flat feed) held, for the skip rules."""

    mode: str | None
    present: set[str]
    # Each loaded file's header, for the rules about which columns a feed uses.
    columns: dict[str, frozenset[str]] = field(default_factory=dict)


def _csv_row(rowid: int) -> int:
    return rowid & _ROW_MASK


def _key_cols(table: Table, moded: bool) -> list[str]:
    return (["mode"] if moded else []) + list(table.primary_key)


def _nullable(table: Table) -> bool:
    return any(not table.field(k).required for k in table.primary_key)


def _create_key(conn: sqlite3.Connection, table: Table, moded: bool) -> None:
    cols = ", ".join(_key_cols(table, moded))
    conn.execute(f"CREATE UNIQUE INDEX {table.name}_pk ON {table.name} ({cols})")


def _create_scan_index(conn: sqlite3.Connection, table: Table, moded: bool) -> None:
    cols = ", ".join(_key_cols(table, moded))
    conn.execute(f"CREATE INDEX {table.name}_scan ON {table.name} ({cols})")


def build_clean_keys(conn: sqlite3.Connection, moded: bool) -> frozenset[str]:
    """Index every keyed table on its key before the checks; the tables with duplicates.

    A table without duplicate keys gets its unique key index now (one sort both proves
    uniqueness and builds it). A table with duplicates keeps them for the reference
    checks (which see every row, as gtfs-validator's do) and gets a plain index on its
    key meanwhile, so that the checks look rows up instead of scanning the table per
    row; :func:`build_primary_keys` later drops its duplicates and makes the key unique.
    """
    dirty: set[str] = set()
    for table in KEYED_TABLES:
        # NULL key parts never collide in a UNIQUE index, but gtfs-validator treats an
        # empty optional key part as a value, so such tables are checked by query.
        if _nullable(table):
            duplicated = conn.execute(f"SELECT EXISTS ({_duplicates_sql(table, moded)})")
            if not duplicated.fetchone()[0]:
                _create_key(conn, table, moded)
                continue
        else:
            try:
                _create_key(conn, table, moded)
                continue
            except sqlite3.IntegrityError:
                pass
        dirty.add(table.name)
        _create_scan_index(conn, table, moded)
    return frozenset(dirty)


def build_primary_keys(
    conn: sqlite3.Connection, moded: bool, book: NoticeBook, dirty: frozenset[str]
) -> tuple[int, int]:
    """Drop the duplicate-key rows of the ``dirty`` tables (keeping the first) and give
    them their unique key index, in place of the plain one :func:`build_clean_keys`
    built.

    Returns (keyed_rows, duplicate_rows).
    """
    keyed = dups = 0
    for table in KEYED_TABLES:
        keyed += conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
        if table.name not in dirty:
            continue
        dups += _drop_duplicates(conn, table, moded, book)
        conn.execute(f"DROP INDEX {table.name}_scan")
        _create_key(conn, table, moded)
    return keyed, dups


def _duplicates_sql(table: Table, moded: bool) -> str:
    """Rows whose key an earlier row (lower rowid) already has."""
    cols = ", ".join(_key_cols(table, moded))
    not_null = " AND ".join(
        f"{k} IS NOT NULL" for k in table.primary_key if table.field(k).required
    )
    where = f"WHERE {not_null}" if not_null else ""
    return (
        f"SELECT rowid, {cols} FROM {table.name} {where} "
        f"{'AND' if where else 'WHERE'} rowid NOT IN "
        f"(SELECT min(rowid) FROM {table.name} {where} GROUP BY {cols})"
    )


def _drop_duplicates(conn: sqlite3.Connection, table: Table, moded: bool, book: NoticeBook) -> int:
    conn.execute("CREATE TEMP TABLE _dups (r INTEGER PRIMARY KEY)")
    n = 0
    field = ",".join(table.primary_key)
    for rowid, *vals in conn.execute(_duplicates_sql(table, moded)):
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
            # A feed whose header lacks the column has no references to check.
            modes = {
                f.mode
                for f in feeds
                if not _skip_reference(book, f, child, parent)
                and fk.field in f.columns.get(child.filename, frozenset())
            }
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
