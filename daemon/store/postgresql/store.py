"""The PostgreSQL state store: the daemon's read-write view of a state several daemons share.

Events arrive in batches from the history subscriber and are written in one
transaction per batch (the SQLite store's :class:`~interlock.store.sqlite.batch.EventBatch`,
its statements in PostgreSQL's words). The quota counters are atomic here
(:class:`~interlock.store.abc.SharedQuota`): one ``INSERT ... ON CONFLICT DO UPDATE
... RETURNING`` per call, and a row lock around each change to a token bucket.
Each batch also goes to the ``events`` table, whole, in the same transaction (the
standbys' relay reads it), pruned to the newest ``EVENTS_KEPT`` rows.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from interlock import events as ev
from interlock.store.postgresql.reader import PgStateReader
from interlock.store.postgresql.schema import migrate, translated
from interlock.store.postgresql.tables import EVENTS_KEPT
from interlock.store.sqlite.batch import END_COMPONENT, FINISH_RUN, INSERT_RUN, EventBatch
from interlock.store.sqlite.schema import iso

T = TypeVar("T")

_RUN_FIELDS = ("trigger", "started_at", "components")
_END_FIELDS = (
    *("status", "reason", "started_at", "finished_at", "duration_s", "records"),
    *("attempts", "error", "fingerprint", "inputs", "quality", "metrics"),
)
#: The batch's statements as PostgreSQL says them (a replace is an upsert of every column).
_STATEMENTS = {
    INSERT_RUN: (
        "INSERT INTO runs (run_id, trigger, status, started_at, components) "
        "VALUES ($1, $2, 'running', $3, $4) ON CONFLICT (run_id) DO UPDATE SET "
        + ", ".join(f"{c}=excluded.{c}" for c in _RUN_FIELDS)
        + ", status='running', finished_at=NULL, duration_s=NULL, counts=NULL"
    ),
    END_COMPONENT: (
        "INSERT INTO component_runs (run_id, component, "
        + ", ".join(_END_FIELDS)
        + ") VALUES ("
        + ", ".join(f"${i}" for i in range(1, 15))
        + ") ON CONFLICT (run_id, component) DO UPDATE SET "
        + ", ".join(f"{c}=excluded.{c}" for c in _END_FIELDS)
        # A replaced row is the newest, as SQLite's REPLACE gives it a new rowid.
        + ", seq=nextval(pg_get_serial_sequence('component_runs', 'seq'))"
    ),
    FINISH_RUN: (
        "UPDATE runs SET status=$1, finished_at=$2, duration_s=$3, counts=$4 WHERE run_id=$5"
    ),
}
_MARK = re.compile(r"\?")
#: A batch's events in one statement (one round trip, however many).
_INSERT_EVENTS = (
    "INSERT INTO events (name, at, payload) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[])"
)
#: Prune ``events`` about once per this many rows written.
_PRUNE_EVERY = 500

_TAKE_CALL = """
WITH d AS (
    INSERT INTO quota_days AS q (day, used) VALUES ($1, 1)
    ON CONFLICT (day) DO UPDATE SET used = q.used + 1
    WHERE $3::bigint IS NULL OR q.used < $3::bigint
    RETURNING used
), e AS (
    INSERT INTO quota_calls AS c (day, endpoint, calls) SELECT $1, $2, 1 FROM d
    ON CONFLICT (day, endpoint) DO UPDATE SET calls = c.calls + 1
    RETURNING calls
)
SELECT d.used, e.calls FROM d, e
"""
_RETURN_CALL = """
WITH d AS (UPDATE quota_days SET used = used - 1 WHERE day = $1 AND used > 0 RETURNING used)
UPDATE quota_calls SET calls = calls - 1
WHERE day = $1 AND endpoint = $2 AND calls > 0 AND EXISTS (SELECT 1 FROM d)
"""


def postgres_sql(sql: str) -> str:
    """A batch statement in PostgreSQL's words (``?`` marks numbered)."""
    known = _STATEMENTS.get(sql)
    if known is not None:
        return known
    counter = iter(range(1, 10_000))
    return _MARK.sub(lambda _: f"${next(counter)}", sql)


def event_row(event: ev.Event) -> tuple[str, str, str]:
    """``(name, at, payload)`` of an ``events`` row: the event as ``watch`` sends it."""
    payload = json.dumps(event.to_dict(skip=frozenset({"memory"})), default=str)
    return (event.name, iso(event.at) or "", payload)


class PgStateStore(PgStateReader):
    """:class:`~interlock.store.abc.StateStore` and :class:`~interlock.store.abc.SharedQuota`
    on a PostgreSQL database that several daemons may share."""

    def __init__(self, dsn: str, *, max_size: int = 4) -> None:
        super().__init__(dsn, timeout_s=10.0, max_size=max_size)
        self._events_since_prune = _PRUNE_EVERY  # prune once soon after start

    async def open(self) -> None:
        """Connect, then create or migrate the schema (one transaction, one daemon at a time)."""
        await super().open()
        try:
            async with self.pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await self.close()
            raise
        self._schema_seen = True

    def reader(self, *, timeout_s: float = 5.0) -> PgStateReader:
        """A read-only view on a pool of its own (not yet open); it never waits for writers."""
        return PgStateReader(self.dsn, timeout_s=timeout_s)

    async def recover_interrupted(self, now: datetime) -> list[tuple[str, str]]:
        """Mark runs and component runs left ``running`` by a crash as interrupted."""
        when = iso(now)
        out: list[tuple[str, str]] = []
        states = await self.component_states()
        async with (
            translated("recovering interrupted runs"),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            runs = await conn.fetch(
                "SELECT run_id, started_at, components FROM runs WHERE status = 'running' "
                "FOR UPDATE"
            )
            for run in runs:
                recorded = {
                    r["component"]
                    for r in await conn.fetch(
                        "SELECT component FROM component_runs WHERE run_id = $1",
                        run["run_id"],
                    )
                }
                for name in json.loads(run["components"] or "[]"):
                    if name in recorded:
                        continue
                    state = states.get(name)
                    began = state.last_started_at if state else None
                    ran = began is not None and began >= datetime.fromisoformat(run["started_at"])
                    reason = (
                        "the daemon stopped while it ran (crash or kill)"
                        if ran
                        else "the daemon stopped before this component finished (crash or kill)"
                    )
                    await conn.execute(
                        _STATEMENTS[END_COMPONENT],
                        run["run_id"],
                        name,
                        "interrupted",
                        reason,
                        iso(began) if ran else when,
                        when,
                        None,
                        0,
                        int(ran),
                        None,
                        None,
                        None,
                        None,
                        None,
                    )
                    if ran:
                        await conn.execute(
                            "UPDATE component_state SET last_status='interrupted', "
                            "last_finished_at=$1 WHERE component=$2",
                            when,
                            name,
                        )
                        out.append((run["run_id"], name))
            await conn.execute(
                "UPDATE runs SET status='interrupted', finished_at=$1 WHERE status='running'",
                when,
            )
        return out

    async def record_events(self, events: Sequence[ev.Event]) -> None:
        """Persist a batch of events in one transaction."""
        batch = EventBatch()
        for i, event in enumerate(events):
            if i and i % 16 == 0:
                await asyncio.sleep(0)  # a large batch must not hold up the scheduler
            batch.add(event)
        statements = [(postgres_sql(sql), rows) for sql, rows in batch.statements()]
        published = [event_row(e) for e in events]
        if not statements and not published:
            return
        self._events_since_prune += len(published)
        prune = self._events_since_prune >= _PRUNE_EVERY
        if prune:
            self._events_since_prune = 0
        async with translated("writing history"), self.pool.acquire() as conn, conn.transaction():
            for sql, rows in statements:
                await conn.executemany(sql, rows)
            if published:
                await conn.execute(_INSERT_EVENTS, *(list(c) for c in zip(*published, strict=True)))
            if prune:
                await conn.execute(
                    "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - $1",
                    EVENTS_KEPT,
                )

    async def prune_history(self, before: datetime) -> int:
        """Delete runs and component runs that started before ``before``; rows deleted.

        Component state (fingerprints, remembered validators) is never pruned.
        """
        when = iso(before)
        async with translated("pruning history"), self.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "DELETE FROM component_runs WHERE started_at < $1 AND status <> 'running'",
                when,
            )
            await conn.execute(
                "DELETE FROM runs WHERE started_at < $1 AND status <> 'running'", when
            )
        return int(done.rsplit(" ", 1)[-1])

    async def set_meta(self, key: str, value: Any) -> None:
        """Store a small JSON value under ``key``."""
        async with translated("writing a setting"):
            await self.pool.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET "
                "value=excluded.value",
                key,
                json.dumps(value),
            )

    # --- the shared quota (SharedQuota) ----------------------------------------------

    async def take_call(
        self, day: str, endpoint: str, *, limit: int | None
    ) -> tuple[int, int] | None:
        """Count one call atomically unless the day's count has reached ``limit``."""
        if limit is not None and limit <= 0:
            return None
        async with translated("counting an API call"):
            row = await self.pool.fetchrow(_TAKE_CALL, day, endpoint, limit)
        return None if row is None else (int(row[0]), int(row[1]))

    async def return_call(self, day: str, endpoint: str) -> None:
        """Uncount one call taken with :meth:`take_call`."""
        async with translated("returning an API call"):
            await self.pool.execute(_RETURN_CALL, day, endpoint)

    async def day_calls(self, day: str) -> dict[str, int]:
        """The calls counted on ``day``, per endpoint."""
        async with translated("reading the quota"):
            rows = await self.pool.fetch(
                "SELECT endpoint, calls FROM quota_calls WHERE day = $1 AND calls > 0", day
            )
        return {r["endpoint"]: int(r["calls"]) for r in rows}

    async def update_tokens(
        self, family: str, change: Callable[[tuple[float, ...]], tuple[tuple[float, ...], T]]
    ) -> T:
        """Apply ``change`` to ``family``'s spend times under a row lock; return its result."""
        async with (
            translated("reserving a rate token"),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            await conn.execute(
                "INSERT INTO quota_rate (family, spent) VALUES ($1, '{}') "
                "ON CONFLICT (family) DO NOTHING",
                family,
            )
            spent = await conn.fetchval(
                "SELECT spent FROM quota_rate WHERE family = $1 FOR UPDATE", family
            )
            new, result = change(tuple(spent or ()))
            await conn.execute(
                "UPDATE quota_rate SET spent = $2 WHERE family = $1", family, list(new)
            )
        return result
