"""The SQLite state database: its file name, schema and connections, and how values are stored.

Times are stored as UTC ISO strings (so text order is time order and the first 13
characters name the UTC hour), small structures as compact JSON.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from interlock.errors import StoreError
from interlock.store.sqlite.tables import STATE
from interlock.store.tables import refuse_newer, upgrade_script

STATE_DB = "state.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s REAL,
    components TEXT,
    counts TEXT
);
CREATE TABLE IF NOT EXISTS component_runs (
    run_id TEXT NOT NULL,
    component TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s REAL,
    records INTEGER,
    attempts INTEGER,
    error TEXT,
    fingerprint TEXT,
    inputs TEXT,
    quality TEXT,
    metrics TEXT,
    PRIMARY KEY (run_id, component)
);
CREATE INDEX IF NOT EXISTS component_runs_by_component ON component_runs (component, started_at);
CREATE INDEX IF NOT EXISTS component_runs_by_time ON component_runs (started_at);
CREATE TABLE IF NOT EXISTS component_state (
    component TEXT PRIMARY KEY,
    last_started_at TEXT,
    last_status TEXT,
    last_finished_at TEXT,
    last_success_at TEXT,
    fingerprint TEXT,
    published_at TEXT,
    records INTEGER,
    inputs TEXT,
    last_error TEXT,
    memory TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
TABLES = frozenset({"runs", "component_runs", "component_state", "meta"})


def iso(value: datetime | None) -> str | None:
    """A stored time (None stays None)."""
    return value.isoformat() if value is not None else None


def utc_iso(value: datetime) -> str:
    """A bound to compare stored times with: the same instant in UTC."""
    return value.astimezone(UTC).isoformat()


def from_iso(value: str | None) -> datetime | None:
    """A stored time read back (empty or None: None)."""
    return datetime.fromisoformat(value) if value else None


def to_json(value: Any) -> str | None:
    """A structure as stored: compact JSON (None stays None)."""
    return None if value is None else json.dumps(value, default=str, separators=(",", ":"))


def from_json(value: str | None) -> Any:
    """A stored structure read back (empty or None: None)."""
    return json.loads(value) if value else None


async def _migrate(db: aiosqlite.Connection, path: Path) -> None:
    """Create the schema, or migrate an older one in place (one transaction)."""
    async with db.execute("PRAGMA user_version") as cur:
        found = int((await cur.fetchone() or (0,))[0])
    refuse_newer(path, found, STATE)
    async with db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'") as cur:
        has_tables = bool((await cur.fetchone() or (0,))[0])
    script = upgrade_script(found, has_tables, STATE, SCHEMA)
    if script is None:
        return
    try:
        await db.executescript(f"BEGIN IMMEDIATE;\n{script}\nCOMMIT;")
    except aiosqlite.Error as exc:
        if db.in_transaction:
            await db.rollback()
        raise StoreError(
            f"cannot migrate the state database {str(path)!r} from schema version {found} "
            f"to {STATE.version}: {exc}; the file is unchanged"
        ) from None


async def connect_writer(path: Path) -> aiosqlite.Connection:
    """The daemon's connection: the file created if need be, WAL, the schema in place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # History holds error texts from outside: the file (and SQLite's -wal and -shm,
        # which copy its mode) is the service user's alone, whatever the umask.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        db = await aiosqlite.connect(path)
    except (OSError, aiosqlite.Error) as exc:
        raise StoreError(
            f"cannot open the state database {str(path)!r}: {exc}; check that "
            "runtime_settings.state_dir exists and is writable"
        ) from None
    try:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA busy_timeout=5000")
        await _migrate(db, path)
    except BaseException:
        await db.close()
        raise
    return db


async def connect_reader(path: Path, *, live: bool, timeout_s: float) -> aiosqlite.Connection:
    """A read-only connection that writes nothing, not even a file that is missing.

    With no live writer (``live`` false) the file is opened immutable, so SQLite
    creates no -wal/-shm files beside it. A database that does not exist yet (or
    has no schema) is read as an empty one, in memory.
    """
    if path.exists():  # noqa: ASYNC240 - one stat before a read-only open
        mode = "mode=ro" if live else "mode=ro&immutable=1"
        uri = f"{path.resolve().as_uri()}?{mode}"  # noqa: ASYNC240 - as above
        db = await aiosqlite.connect(uri, uri=True, timeout=timeout_s)
        try:
            async with db.execute("SELECT name FROM sqlite_master WHERE type='table'") as cur:
                found = {row[0] for row in await cur.fetchall()}
        except BaseException:
            await db.close()
            raise
        if TABLES.issubset(found):
            return db
        await db.close()
    db = await aiosqlite.connect(":memory:")
    try:
        await db.executescript(SCHEMA)
    except BaseException:
        await db.close()
        raise
    return db
