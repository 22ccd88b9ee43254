"""Every read of the PostgreSQL state store: the SQLite reader's queries in PostgreSQL's words.

:class:`PgStateReader` is what the dashboard, a standby and the CLI open on a pool of
their own; :class:`~interlock.store.postgresql.store.PgStateStore` answers the same
reads on the daemon's pool. Readers never wait for writers (MVCC).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, Self

import asyncpg

from interlock.errors import StateError
from interlock.store.abc import ComponentState, ErrorTally, HourlyTotals
from interlock.store.postgresql.schema import SETTING, connect_pool, translated
from interlock.store.sqlite.schema import from_iso, from_json, utc_iso

_RUN_COLUMNS = (
    "run_id, component, status, reason, started_at, finished_at, duration_s, records, "
    "attempts, error, fingerprint, inputs, quality, metrics"
)

_HOURLY_TOTALS = """
SELECT component, substr(started_at, 1, 13) AS hour,
       count(*) FILTER (WHERE status <> 'skipped') AS runs,
       count(*) FILTER (WHERE status = ANY($1::text[])) AS failures,
       sum(duration_s) FILTER (WHERE status <> 'skipped') AS dur_sum,
       max(duration_s) FILTER (WHERE status <> 'skipped') AS dur_max,
       (sum(records) FILTER (WHERE status = 'succeeded'))::float8 AS rec_sum,
       count(*) FILTER (WHERE status = 'succeeded') AS published
FROM component_runs
WHERE started_at >= $2
GROUP BY component, hour
"""

_ERROR_TALLIES = """
SELECT component, status, COALESCE(error, reason, status) AS message, count(*) AS n,
       max(COALESCE(finished_at, started_at)) AS last_seen, min(started_at) AS first_seen
FROM component_runs
WHERE started_at >= $1 AND status = ANY($2::text[])
GROUP BY component, status, message
"""

_LAST_QUALITY = """
SELECT run_id, status, finished_at, quality FROM component_runs
WHERE component = $1 AND quality IS NOT NULL ORDER BY started_at DESC, seq DESC LIMIT 1
"""

_RECENT_OUTCOMES = """
SELECT component, status FROM (
    SELECT component, status, started_at,
           row_number() OVER (PARTITION BY component ORDER BY started_at DESC) AS n
    FROM component_runs WHERE status IN ('succeeded', 'unchanged', 'failed', 'timed_out')
) AS recent WHERE n <= $1 ORDER BY component, started_at
"""

_RUNS_BETWEEN = (
    "SELECT component, status, reason, started_at, finished_at, duration_s, records, "
    "attempts, error, metrics FROM component_runs WHERE started_at >= $1 AND started_at < $2"
)


class PgStateReader:
    """:class:`~interlock.store.abc.StateReader` on a PostgreSQL state store.

    Opened on its own (``async with PgStateReader(dsn)``) it holds a small pool and
    only reads; a reader made by the store (``pool`` given) shares the store's.
    """

    def __init__(self, dsn: str, *, timeout_s: float = 5.0, max_size: int = 2) -> None:
        self.dsn = dsn
        self.timeout_s = timeout_s
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        #: Once the tables are seen (or made) they stay: no more lookups.
        self._schema_seen = False

    def __repr__(self) -> str:  # never the DSN: it may hold a password
        return f"<{type(self).__name__} {SETTING}>"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool (only while open)."""
        if self._pool is None:
            raise StateError(f"the PostgreSQL state store ({SETTING}) is not open; call open()")
        return self._pool

    def _check_not_open(self) -> None:
        if self._pool is not None:
            raise StateError(f"the PostgreSQL state store ({SETTING}) is already open")

    async def open(self) -> None:
        """Connect."""
        self._check_not_open()
        self._pool = await connect_pool(self.dsn, max_size=self.max_size, timeout_s=self.timeout_s)

    async def close(self) -> None:
        """Release the pool. Idempotent."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with translated("reading"):
            return [dict(r) for r in await self.pool.fetch(sql, *args)]

    async def _has_schema(self) -> bool:
        """Whether the tables exist (a reader opened before any daemon reads nothing)."""
        if not self._schema_seen:
            async with translated("reading"):
                found = await self.pool.fetchval("SELECT to_regclass('meta') IS NOT NULL")
            self._schema_seen = bool(found)
        return self._schema_seen

    async def component_states(self) -> dict[str, ComponentState]:
        """The remembered state of every component seen so far."""
        if not await self._has_schema():
            return {}
        out: dict[str, ComponentState] = {}
        for r in await self._rows("SELECT * FROM component_state"):
            out[r["component"]] = ComponentState(
                name=r["component"],
                last_started_at=from_iso(r["last_started_at"]),
                last_status=r["last_status"],
                last_finished_at=from_iso(r["last_finished_at"]),
                last_success_at=from_iso(r["last_success_at"]),
                fingerprint=r["fingerprint"],
                published_at=from_iso(r["published_at"]),
                records=r["records"],
                inputs=json.loads(r["inputs"]) if r["inputs"] else {},
                last_error=r["last_error"],
                memory=json.loads(r["memory"]) if r["memory"] else {},
            )
        return out

    async def history(
        self, *, component: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Component runs, newest first, JSON columns (inputs, quality, metrics) parsed."""
        if not await self._has_schema():
            return []
        if component:
            sql = f"SELECT {_RUN_COLUMNS} FROM component_runs WHERE component = $1 "
            args: tuple[Any, ...] = (component, limit)
            sql += "ORDER BY started_at DESC, seq DESC LIMIT $2"
        else:
            sql = f"SELECT {_RUN_COLUMNS} FROM component_runs ORDER BY started_at DESC, "
            sql += "seq DESC LIMIT $1"
            args = (limit,)
        rows = await self._rows(sql, *args)
        for row in rows:
            for key in ("inputs", "quality", "metrics"):
                row[key] = from_json(row[key])
        return rows

    async def last_runs(self, components: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Each named component's newest run, as :meth:`history` gives it (absent: none yet)."""
        out = {}
        for name in components:
            rows = await self.history(component=name, limit=1)
            if rows:
                out[name] = rows[0]
        return out

    async def last_quality(self, components: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Each named component's newest run with a quality report (one that reads as a dict)."""
        out: dict[str, dict[str, Any]] = {}
        if not await self._has_schema():
            return out
        for name in components:
            async with translated("reading"):
                row = await self.pool.fetchrow(_LAST_QUALITY, name)
            if row is None:
                continue
            try:
                report = json.loads(row["quality"])
            except ValueError:
                continue
            if isinstance(report, dict):
                out[name] = {
                    "run_id": row["run_id"],
                    "status": row["status"],
                    "finished_at": row["finished_at"],
                    "quality": report,
                }
        return out

    async def recent_outcomes(self, window: int) -> dict[str, list[bool]]:
        """Per component, whether each of its last ``window`` finished runs succeeded."""
        out: dict[str, list[bool]] = {}
        if not await self._has_schema():
            return out
        for r in await self._rows(_RECENT_OUTCOMES, window):
            out.setdefault(r["component"], []).append(r["status"] in ("succeeded", "unchanged"))
        return out

    async def runs_between(
        self, since: datetime, until: datetime, *, component: str | None = None
    ) -> list[dict[str, Any]]:
        """Component runs started in ``[since, until)``, oldest first, metrics parsed."""
        if not await self._has_schema():
            return []
        sql = _RUNS_BETWEEN
        args: list[Any] = [utc_iso(since), utc_iso(until)]
        if component:
            sql += " AND component = $3"
            args.append(component)
        rows = await self._rows(sql + " ORDER BY started_at, seq", *args)
        for row in rows:
            row["metrics"] = from_json(row["metrics"])
        return rows

    async def hourly_totals(
        self, since: datetime, *, failed: Collection[str]
    ) -> list[HourlyTotals]:
        """Per component and UTC hour since ``since``: runs, failures, durations, records."""
        if not await self._has_schema():
            return []
        async with translated("reading"):
            rows = await self.pool.fetch(_HOURLY_TOTALS, list(failed), utc_iso(since))
        return [HourlyTotals(*tuple(r)) for r in rows]

    async def error_tallies(
        self, since: datetime, *, statuses: Collection[str]
    ) -> list[ErrorTally]:
        """Runs started since ``since`` with one of ``statuses``, counted per message."""
        if not await self._has_schema():
            return []
        async with translated("reading"):
            rows = await self.pool.fetch(_ERROR_TALLIES, utc_iso(since), list(statuses))
        return [ErrorTally(*tuple(r)) for r in rows]

    async def get_meta(self, key: str) -> Any:
        """A small JSON value stored under ``key`` (None if absent)."""
        if not await self._has_schema():
            return None
        async with translated("reading"):
            value = await self.pool.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return json.loads(value) if value is not None else None
