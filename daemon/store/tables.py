"""A database described once: tables, columns (type, unit, nullability, meaning), views,
its schema version and the ordered migration steps that reach it.

The state database (``store``) and every dataset (components, through ``interlock.kit.tables``)
declare themselves with these types. ``interlock schema`` renders them, and tests compare
each declaration with ``PRAGMA table_info`` of a database the code really built, so the
documentation cannot drift from the files. :func:`migrate` applies the steps in place,
in one transaction, and refuses a file newer than the code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interlock.errors import SchemaVersionError

SQL_TYPES = frozenset({"TEXT", "INTEGER", "REAL", "BLOB"})


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its SQLite type, unit (or text format), whether it may be NULL, what it means."""

    name: str
    type: str
    meaning: str
    unit: str = ""
    nullable: bool = True

    def __post_init__(self) -> None:
        if self.type not in SQL_TYPES:
            raise ValueError(f"column {self.name!r}: type {self.type!r} is not one of {SQL_TYPES}")


def col(name: str, type_: str, meaning: str, unit: str = "", *, null: bool = True) -> Column:
    """A :class:`Column`, short enough for long declarations."""
    return Column(name, type_, meaning, unit, null)


@dataclass(frozen=True, slots=True)
class Table:
    """One table: what a row is, its columns in order, its key, and when it exists."""

    name: str
    meaning: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    #: Empty when the table is always there; else when it is (e.g. "one layout of two").
    present: str = ""

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class View:
    """A view over the tables, with the query people run against it."""

    name: str
    meaning: str
    sql: str
    columns: tuple[Column, ...]
    example: str = ""


@dataclass(frozen=True, slots=True)
class Database:
    """One SQLite file: where it lives, what it holds, its schema version and how to reach it.

    ``migrations[i]`` is the SQL script that takes version ``i`` to ``i + 1``, so
    ``len(migrations) == version``. Snapshot datasets are rebuilt by every publish and
    only ever stamped with the current version; append datasets and the state database
    are migrated in place when opened for writing.
    """

    name: str
    meaning: str
    file: str
    tables: tuple[Table, ...]
    version: int
    migrations: tuple[str, ...] = ()
    views: tuple[View, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.migrations) != self.version:
            raise ValueError(
                f"database {self.name!r}: version {self.version} needs {self.version} "
                f"migration steps, has {len(self.migrations)}"
            )

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)


def table_info(conn: sqlite3.Connection, table: str) -> list[tuple[str, str, bool]]:
    """(name, type, nullable) of each column of ``table`` as SQLite sees it.

    A primary-key column counts as not nullable: interlock never writes NULL into one.
    """
    rows = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    return [(r[1], (r[2] or "").upper(), not (r[3] or r[5])) for r in rows]


def drift(conn: sqlite3.Connection, db: Database, *, optional: Sequence[str] = ()) -> list[str]:
    """How the database behind ``conn`` differs from ``db`` (empty when it matches).

    Tables named in ``optional`` (or declared with ``present``) may be missing.
    """
    found = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table','view') "
            "AND name NOT LIKE 'sqlite_%'"
        )
    }
    problems = []
    declared = {t.name for t in db.tables} | {v.name for v in db.views}
    problems += [f"table {name!r} is not declared" for name in sorted(found - declared)]
    for t in db.tables:
        if t.name not in found:
            if not (t.present or t.name in optional):
                problems.append(f"table {t.name!r} is declared but missing")
            continue
        want = [(c.name, c.type, c.nullable) for c in t.columns]
        have = table_info(conn, t.name)
        if want != have:
            problems.append(f"table {t.name!r}: declared {want}, database has {have}")
    for v in db.views:
        if v.name not in found:
            problems.append(f"view {v.name!r} is declared but missing")
            continue
        have_names = [c[0] for c in table_info(conn, v.name)]
        if have_names != [c.name for c in v.columns]:
            problems.append(
                f"view {v.name!r}: declared {[c.name for c in v.columns]}, has {have_names}"
            )
    return problems


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def refuse_newer(path: Path | str, found: int, db: Database) -> None:
    """Raise :class:`SchemaVersionError` when the file's version is newer than the code's."""
    if found > db.version:
        raise SchemaVersionError(
            f"{str(path)!r} ({db.name}) has schema version {found}, newer than this "
            f"interlock's {db.version}: it was written by a newer interlock. Upgrade "
            "interlock, or move the file aside to start it afresh"
        )


def upgrade_script(found: int, has_tables: bool, db: Database, create: str) -> str | None:
    """The script taking a file at version ``found`` to ``db.version`` (None: nothing to do).

    ``create`` is the code's CREATE ... IF NOT EXISTS script: a new file gets it alone;
    an old one gets the migration steps first, then it (for tables the steps did not add).
    """
    if found == db.version:
        return None
    steps = list(db.migrations[found:]) if has_tables else []
    return "\n".join([*steps, create, f"PRAGMA user_version={db.version};"])


def migrate(conn: sqlite3.Connection, path: Path | str, db: Database, create: str) -> int:
    """Bring the file behind ``conn`` to ``db.version`` in one transaction; returns the old version.

    ``conn`` must have no transaction open. Raises :class:`SchemaVersionError` for a
    file newer than the code; a failing step rolls everything back.
    """
    found = user_version(conn)
    refuse_newer(path, found, db)
    has_tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
    script = upgrade_script(found, bool(has_tables[0]), db, create)
    if script is None:
        return found
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nCOMMIT;")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise SchemaVersionError(
            f"cannot migrate {str(path)!r} ({db.name}) from schema version {found} to "
            f"{db.version}: {exc}; the file is unchanged"
        ) from None
    return found


def as_dict(db: Database) -> dict[str, Any]:
    """The declaration as plain JSON-ready data."""

    def cols(columns: tuple[Column, ...]) -> list[dict[str, Any]]:
        return [
            {
                "name": c.name,
                "type": c.type,
                "unit": c.unit,
                "nullable": c.nullable,
                "meaning": c.meaning,
            }
            for c in columns
        ]

    return {
        "name": db.name,
        "meaning": db.meaning,
        "file": db.file,
        "version": db.version,
        "notes": list(db.notes),
        "tables": [
            {
                "name": t.name,
                "meaning": t.meaning,
                "key": list(t.key),
                "present": t.present,
                "columns": cols(t.columns),
            }
            for t in db.tables
        ],
        "views": [
            {"name": v.name, "meaning": v.meaning, "example": v.example, "columns": cols(v.columns)}
            for v in db.views
        ],
    }
