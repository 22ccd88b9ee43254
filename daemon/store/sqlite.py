"""The SQLite state store (aiosqlite, WAL): history, component state, small key-values.

One connection, one worker thread. Events arrive in batches from the history
subscriber and are written in one transaction per batch, which keeps the cost
per scheduling decision in microseconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
from interlock import events as ev
from interlock.errors import StateError, StoreError
from interlock.store.abc import ComponentState

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


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _js(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, separators=(",", ":"))


class SqliteStateStore:
    """:class:`daemon.abc.StateStore` on a local SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        # One connection is shared by several writers (history, notifications, quota):
        # a write transaction must not commit another writer's half-done batch.
        self._write = asyncio.Lock()

    async def __aenter__(self) -> SqliteStateStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StateError(f"state store {str(self.path)!r} is not open; call open() first")
        return self._db

    @classmethod
    async def read_states(cls, path: Path, *, live: bool = True) -> dict[str, ComponentState]:
        """Component states from an existing database, opened read-only (``plan``).

        With no live writer (``live`` false) the file is opened immutable, so SQLite
        creates no -wal/-shm files beside it: a read really writes nothing.
        """
        if not path.exists():  # noqa: ASYNC240 - one stat before a read-only open
            return {}
        store = cls(path)
        mode = "mode=ro" if live else "mode=ro&immutable=1"
        store._db = await aiosqlite.connect(f"file:{path}?{mode}", uri=True)
        try:
            return await store.component_states()
        finally:
            await store.close()

    async def open(self) -> None:
        if self._db is not None:
            raise StateError(f"state store {str(self.path)!r} is already open")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path)
        except (OSError, aiosqlite.Error) as exc:
            raise StoreError(
                f"cannot open the state database {str(self.path)!r}: {exc}; check that "
                "runtime_settings.state_dir exists and is writable"
            ) from None
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.executescript(SCHEMA)
            await db.commit()
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def recover_interrupted(self, now: datetime) -> list[tuple[str, str]]:
        # A run still 'running' was cut short by a crash or a kill. Its components
        # without a recorded outcome are recorded as interrupted; components are not
        # written when they start, which halves the writes per scheduling decision.
        async with self.db.execute(
            "SELECT run_id, started_at, components FROM runs WHERE status = 'running'"
        ) as cur:
            runs = await cur.fetchall()
        when = _ts(now)
        out: list[tuple[str, str]] = []
        states = await self.component_states() if runs else {}
        for run_id, run_started, components in runs:
            async with self.db.execute(
                "SELECT component FROM component_runs WHERE run_id=?", (run_id,)
            ) as cur:
                recorded = {r[0] for r in await cur.fetchall()}
            for name in json.loads(components or "[]"):
                if name in recorded:
                    continue
                state = states.get(name)
                began = state.last_started_at if state else None
                ran = began is not None and began >= datetime.fromisoformat(run_started)
                reason = (
                    "the daemon stopped while it ran (crash or kill)"
                    if ran
                    # Its start may simply not have been written before the crash.
                    else "the daemon stopped before this component finished (crash or kill)"
                )
                await self.db.execute(
                    "INSERT OR REPLACE INTO component_runs (run_id, component, status, reason, "
                    "started_at, finished_at, duration_s, records, attempts) "
                    "VALUES (?, ?, 'interrupted', ?, ?, ?, NULL, 0, ?)",
                    (run_id, name, reason, _ts(began) if ran else when, when, int(ran)),
                )
                if ran:
                    await self.db.execute(
                        "UPDATE component_state SET last_status='interrupted', "
                        "last_finished_at=? WHERE component=?",
                        (when, name),
                    )
                    out.append((run_id, name))
        await self.db.execute(
            "UPDATE runs SET status='interrupted', finished_at=? WHERE status='running'", (when,)
        )
        await self.db.commit()
        return out

    async def component_states(self) -> dict[str, ComponentState]:
        out: dict[str, ComponentState] = {}
        async with self.db.execute("SELECT * FROM component_state") as cur:
            cols = [d[0] for d in cur.description]
            for row in await cur.fetchall():
                r = dict(zip(cols, row, strict=True))
                out[r["component"]] = ComponentState(
                    name=r["component"],
                    last_started_at=_dt(r["last_started_at"]),
                    last_status=r["last_status"],
                    last_finished_at=_dt(r["last_finished_at"]),
                    last_success_at=_dt(r["last_success_at"]),
                    fingerprint=r["fingerprint"],
                    published_at=_dt(r["published_at"]),
                    records=r["records"],
                    inputs=json.loads(r["inputs"]) if r["inputs"] else {},
                    last_error=r["last_error"],
                    memory=json.loads(r["memory"]) if r["memory"] else {},
                )
        return out

    async def record_events(self, events: Sequence[ev.Event]) -> None:
        batch = _Batch()
        for i, event in enumerate(events):
            if i and i % 16 == 0:
                await asyncio.sleep(0)  # a large batch must not hold up the scheduler
            batch.add(event)
        db = self.db
        async with self._write:
            try:
                for sql, rows in batch.statements():
                    await db.executemany(sql, rows)
                await db.commit()
            except BaseException:
                await db.rollback()
                raise

    async def history(
        self, *, component: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM component_runs"
        args: list[Any] = []
        if component:
            sql += " WHERE component = ?"
            args.append(component)
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
        async with self.db.execute(sql, args) as cur:
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, row, strict=True)) for row in await cur.fetchall()]
        for row in rows:
            for key in ("inputs", "quality", "metrics"):
                row[key] = json.loads(row[key]) if row[key] else None
        return rows

    async def prune_history(self, before: datetime) -> int:
        """Delete runs and component runs that started before ``before``; rows deleted.

        Component state (fingerprints, remembered validators) is never pruned.
        """
        when = _ts(before)
        async with self._write:
            cur = await self.db.execute(
                "DELETE FROM component_runs WHERE started_at < ? AND status != 'running'",
                (when,),
            )
            deleted = cur.rowcount
            await self.db.execute(
                "DELETE FROM runs WHERE started_at < ? AND status != 'running'", (when,)
            )
            await self.db.commit()
        return deleted

    async def get_meta(self, key: str) -> Any:
        async with self.db.execute("SELECT value FROM meta WHERE key=?", (key,)) as cur:
            row = await cur.fetchone()
        return json.loads(row[0]) if row else None

    async def set_meta(self, key: str, value: Any) -> None:
        async with self._write:
            await self.db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value=excluded.value",
                (key, json.dumps(value)),
            )
            await self.db.commit()

    # --- monitoring and reports (daemon/monitor.py, daemon/report.py) ----------------

    async def recent_outcomes(self, window: int) -> dict[str, list[bool]]:
        """Per component, whether each of its last ``window`` finished runs succeeded."""
        sql = (
            "SELECT component, status FROM (SELECT component, status, started_at, "
            "ROW_NUMBER() OVER (PARTITION BY component ORDER BY started_at DESC) AS n "
            "FROM component_runs WHERE status IN "
            "('succeeded','unchanged','failed','timed_out')) WHERE n <= ? "
            "ORDER BY component, started_at"
        )
        out: dict[str, list[bool]] = {}
        async with self.db.execute(sql, (window,)) as cur:
            for component, status in await cur.fetchall():
                out.setdefault(component, []).append(status in ("succeeded", "unchanged"))
        return out

    async def runs_between(
        self, since: datetime, until: datetime, *, component: str | None = None
    ) -> list[dict[str, Any]]:
        """Component runs started in ``[since, until)``, oldest first, metrics parsed."""
        sql = (
            "SELECT component, status, reason, started_at, finished_at, duration_s, records, "
            "attempts, error, metrics FROM component_runs WHERE started_at >= ? AND "
            "started_at < ?"
        )
        args: list[Any] = [since.isoformat(), until.isoformat()]
        if component:
            sql += " AND component = ?"
            args.append(component)
        sql += " ORDER BY started_at"
        async with self.db.execute(sql, args) as cur:
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, row, strict=True)) for row in await cur.fetchall()]
        for row in rows:
            row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else None
        return rows


_INSERT_RUN = (
    "INSERT OR REPLACE INTO runs (run_id, trigger, status, started_at, components) "
    "VALUES (?, ?, 'running', ?, ?)"
)
_FINISH_RUN = "UPDATE runs SET status=?, finished_at=?, duration_s=?, counts=? WHERE run_id=?"
_END_COMPONENT = (
    "INSERT OR REPLACE INTO component_runs (run_id, component, status, reason, started_at, "
    "finished_at, duration_s, records, attempts, error, fingerprint, inputs, quality, metrics) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


class _Batch:
    """Turns a batch of events into a few ``executemany`` calls.

    Statements run in an order that respects every per-key dependency (a run's
    insert before its update, a run's components after the run), and the
    component-state changes of a batch are folded into one upsert per component.
    """

    def __init__(self) -> None:
        self.run_inserts: list[tuple[Any, ...]] = []
        self.ends: list[tuple[Any, ...]] = []
        self.run_updates: list[tuple[Any, ...]] = []
        self.state: dict[str, dict[str, Any]] = {}

    def add(self, e: ev.Event) -> None:
        # The same timestamp or inputs mapping lands in several columns: convert each
        # once per event (this runs for every event the scheduler emits).
        at = e.at.isoformat()
        done: dict[int, Any] = {id(e.at): at}
        if isinstance(e, ev.ComponentFinished):
            inputs = _js(e.inputs)
            done[id(e.inputs)] = inputs
            self.ends.append(
                (
                    e.run_id,
                    e.component,
                    e.status,
                    e.reason,
                    e.started_at.isoformat(),
                    at,
                    e.duration_s,
                    e.records,
                    e.attempts,
                    e.error,
                    e.fingerprint,
                    inputs,
                    _js(e.quality),
                    _js(e.metrics),
                )
            )
        elif isinstance(e, ev.ComponentSkipped):
            self.ends.append(
                (
                    e.run_id,
                    e.component,
                    "skipped",
                    e.reason,
                    at,
                    at,
                    0.0,
                    0,
                    0,
                    e.detail,
                    None,
                    None,
                    None,
                    None,
                )
            )
        elif isinstance(e, ev.RunStarted):
            self.run_inserts.append((e.run_id, e.trigger, at, _js(list(e.components))))
        elif isinstance(e, ev.RunFinished):
            self.run_updates.append((e.status, at, e.duration_s, _js(e.counts), e.run_id))
        change = ev.component_state_changes(e)
        if change is not None:
            fields = self.state.setdefault(change[0], {})
            for k, v in change[1].items():
                if isinstance(v, datetime | dict):
                    v = done.get(id(v)) or (v.isoformat() if isinstance(v, datetime) else _js(v))
                fields[k] = v

    def statements(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        out = [
            (_INSERT_RUN, self.run_inserts),
            (_END_COMPONENT, self.ends),
            (_FINISH_RUN, self.run_updates),
        ]
        by_shape: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for component, fields in self.state.items():
            by_shape.setdefault(tuple(fields), []).append((component, *fields.values()))
        for cols, rows in by_shape.items():
            names = ", ".join(cols)
            marks = ", ".join("?" for _ in cols)
            updates = ", ".join(f"{c}=excluded.{c}" for c in cols)
            out.append(
                (
                    f"INSERT INTO component_state (component, {names}) VALUES (?, {marks}) "
                    f"ON CONFLICT(component) DO UPDATE SET {updates}",
                    rows,
                )
            )
        return [(sql, rows) for sql, rows in out if rows]
