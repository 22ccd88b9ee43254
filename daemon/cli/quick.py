"""The quick paths of ``status`` and ``history``: a daemon's answer over its socket, or the
state database read with sqlite3, read-only, without loading the config, the engine or the
async store.

Each returns None where it cannot answer as the full path would (the config file does not
parse, a crashed run awaits its ``interrupted`` record, an older database); the command then
takes its full path, which also reports any problem in the usual words.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from interlock.cli.adminclient import AdminClient
from interlock.config.admin_socket import resolve_socket
from interlock.config.model import default_config_path
from interlock.store.lock import StateLock

STATE_DB = "state.sqlite"  # interlock.store.sqlite.STATE_DB, without aiosqlite
#: The component_runs columns ``history`` shows; a database without them takes the full path.
HISTORY_COLUMNS = frozenset(
    {"run_id", "component", "status", "reason", "error", "started_at", "finished_at"}
    | {"duration_s", "records", "inputs", "quality", "metrics"}
)


def config_runtime(config_path: Path) -> tuple[Path, str] | None:
    """``runtime_settings.state_dir`` (resolved as the loader does) and ``timezone`` of a
    config file, read without validating it; None when the file does not parse."""
    try:
        doc = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    rt = doc.get("runtime_settings", {}) if isinstance(doc, dict) else None
    if not isinstance(rt, dict):
        return None
    if isinstance(rt.get("state_store"), dict) and "postgresql" in rt["state_store"]:
        return None  # the state is in PostgreSQL, not a file: the full path reads it
    # The loader's defaults: systemd's StateDirectory= (first entry), else /var/lib/interlock.
    default_state = os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "/var/lib/interlock"
    state_dir, zone = rt.get("state_dir", default_state), rt.get("timezone", "Australia/Melbourne")
    if not isinstance(state_dir, str) or not isinstance(zone, str):
        return None
    return config_path.resolve().parent / state_dir, zone


def daemon_for(args: argparse.Namespace) -> tuple[AdminClient | None, Path | None, str | None]:
    """(a client when a daemon serves the config's state, that state dir, its zone name).

    The client is None when no daemon holds the state directory's lock or its socket is
    not listening; the state dir is None when the config file does not parse.
    """
    config_path = args.config or default_config_path()
    runtime = config_runtime(config_path)
    if runtime is None:
        return None, None, None
    state_dir, zone = runtime
    try:
        live = StateLock(state_dir).held_elsewhere()
    except OSError:
        live = True  # the lock is not readable by this user; the socket will tell
    if not live:
        return None, state_dir, zone
    client = AdminClient(
        resolve_socket(None, config_path), timeout_s=getattr(args, "timeout", 30.0)
    )
    return (client if client.listening() else None), state_dir, zone


def zone(name: str) -> tzinfo | None:
    """The IANA zone ``name``, or None (the full path reports a config's unknown zone)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _connect(db: Path) -> sqlite3.Connection | None:
    if not db.is_file():
        return None
    try:
        return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None


def read_history(
    state_dir: Path, tz: tzinfo, *, component: str | None, limit: int
) -> list[dict[str, Any]] | None:
    """``history`` rows from the state database, newest first, times in ``tz``.

    [] when there is no database; None when the full path must answer: runs left
    ``running`` with no daemon alive (they are recorded ``interrupted`` first), an older
    schema, or a database that cannot be read here.
    """
    db = state_dir / STATE_DB
    if not db.exists():
        return []
    conn = _connect(db)
    if conn is None:
        return None
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(component_runs)")}
        if not columns.issuperset(HISTORY_COLUMNS):
            return None
        if conn.execute("SELECT 1 FROM runs WHERE status = 'running' LIMIT 1").fetchone():
            try:
                if not StateLock(state_dir).held_elsewhere():
                    return None  # a crash left it running: the full path records it
            except OSError:
                return None
        sql, params = "SELECT * FROM component_runs", []
        if component:
            sql += " WHERE component = ?"
            params.append(component)
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute(sql, [*params, limit])]
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    for row in rows:
        for key in ("inputs", "quality", "metrics"):
            row[key] = json.loads(row[key]) if row[key] else None
        for key in ("started_at", "finished_at"):
            if row[key]:
                row[key] = datetime.fromisoformat(row[key]).astimezone(tz).isoformat()
    return rows
