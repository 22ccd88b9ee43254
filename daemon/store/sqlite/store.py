"""The SQLite state store (aiosqlite, WAL): the daemon's read-write view of its state.

One connection, one worker thread. Events arrive in batches from the history
subscriber and are written in one transaction per batch (:mod:`.batch`); the reads
are the reader's (:mod:`.reader`), on this same connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from interlock import events as ev
from interlock.store.abc import ComponentState
from interlock.store.sqlite.batch import EventBatch
from interlock.store.sqlite.reader import SqliteStateReader
from interlock.store.sqlite.schema import connect_writer, iso


class SqliteStateStore(SqliteStateReader):
    """:class:`~interlock.store.abc.StateStore` on a local SQLite file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        # One connection is shared by several writers (history, notifications, quota):
        # a write transaction must not commit another writer's half-done batch.
        self._write = asyncio.Lock()

    @classmethod
    async def read_states(cls, path: Path, *, live: bool = True) -> dict[str, ComponentState]:
        """Component states from an existing database, opened read-only (``plan``).

        With no live writer (``live`` false) the file is opened immutable, so SQLite
        creates no -wal/-shm files beside it: a read really writes nothing. A missing
        database has no states and is not created.
        """
        async with SqliteStateReader(path, live=live) as reader:
            return await reader.component_states()

    async def open(self) -> None:
        """Create or migrate the schema; safe to call once per instance."""
        self._check_not_open()
        self._db = await connect_writer(self.path)

    def reader(self, *, timeout_s: float = 5.0) -> SqliteStateReader:
        """A read-only view of this database on a connection of its own (not yet open)."""
        return SqliteStateReader(self.path, live=True, timeout_s=timeout_s)

    async def recover_interrupted(self, now: datetime) -> list[tuple[str, str]]:
        """Mark runs and component runs left ``running`` by a crash as interrupted."""
        # A run still 'running' was cut short by a crash or a kill. Its components
        # without a recorded outcome are recorded as interrupted; components are not
        # written when they start, which halves the writes per scheduling decision.
        async with self.db.execute(
            "SELECT run_id, started_at, components FROM runs WHERE status = 'running'"
        ) as cur:
            runs = await cur.fetchall()
        when = iso(now)
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
                    (run_id, name, reason, iso(began) if ran else when, when, int(ran)),
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

    async def record_events(self, events: Sequence[ev.Event]) -> None:
        """Persist a batch of events in one transaction."""
        batch = EventBatch()
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

    async def prune_history(self, before: datetime) -> int:
        """Delete runs and component runs that started before ``before``; rows deleted.

        Component state (fingerprints, remembered validators) is never pruned.
        """
        when = iso(before)
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

    async def set_meta(self, key: str, value: Any) -> None:
        """Store a small JSON value under ``key``."""
        async with self._write:
            await self.db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value=excluded.value",
                (key, json.dumps(value)),
            )
            await self.db.commit()
