"""Every read of the SQLite state database, on a read-only connection of its own.

:class:`SqliteStateReader` is what the dashboard and the offline CLI (``plan``,
``status`` without a daemon) open; :class:`~interlock.store.sqlite.store.SqliteStateStore`
is the daemon's read-write store and answers the same reads on its own connection.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import aiosqlite

from interlock.errors import StateError
from interlock.store.abc import ComponentState, ErrorTally, HourlyTotals
from interlock.store.sqlite.schema import connect_reader, from_iso, from_json, utc_iso

# Times are stored as UTC ISO strings, so the first 13 characters name the UTC hour.
_HOURLY_TOTALS = """
SELECT component, substr(started_at, 1, 13) AS hour,
       SUM(status != 'skipped') AS runs,
       SUM(status IN ({failed})) AS failures,
       SUM(CASE WHEN status != 'skipped' THEN duration_s END) AS dur_sum,
       MAX(CASE WHEN status != 'skipped' THEN duration_s END) AS dur_max,
       SUM(CASE WHEN status = 'succeeded' THEN records END) AS rec_sum,
       SUM(status = 'succeeded') AS published
FROM component_runs
WHERE started_at >= ?
GROUP BY component, hour
"""

_ERROR_TALLIES = """
SELECT component, status, COALESCE(error, reason, status) AS message, COUNT(*) AS n,
       MAX(COALESCE(finished_at, started_at)) AS last_seen, MIN(started_at) AS first_seen
FROM component_runs
WHERE started_at >= ? AND status IN ({statuses})
GROUP BY component, status, message
"""

_LAST_QUALITY = """
SELECT run_id, status, finished_at, quality FROM component_runs
WHERE component = ? AND quality IS NOT NULL ORDER BY started_at DESC, rowid DESC LIMIT 1
"""

_RECENT_OUTCOMES = """
SELECT component, status FROM (
    SELECT component, status, started_at,
           ROW_NUMBER() OVER (PARTITION BY component ORDER BY started_at DESC) AS n
    FROM component_runs WHERE status IN ('succeeded', 'unchanged', 'failed', 'timed_out')
) WHERE n <= ? ORDER BY component, started_at
"""

_RUNS_BETWEEN = (
    "SELECT component, status, reason, started_at, finished_at, duration_s, records, "
    "attempts, error, metrics FROM component_runs WHERE started_at >= ? AND started_at < ?"
)


def _marks(values: Collection[Any]) -> str:
    return ", ".join("?" for _ in values)


class SqliteStateReader:
    """:class:`~interlock.store.abc.StateReader` on a SQLite state database.

    Opened on its own (``async with SqliteStateReader(path, live=...)``) it reads
    read-only and writes nothing (see :func:`~interlock.store.sqlite.schema.connect_reader`);
    ``live`` says whether a daemon may be writing the file meanwhile.
    """

    def __init__(self, path: Path, *, live: bool = True, timeout_s: float = 5.0) -> None:
        self.path = path
        self.live = live
        self.timeout_s = timeout_s
        self._db: aiosqlite.Connection | None = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        """The connection (only while open)."""
        if self._db is None:
            raise StateError(f"state store {str(self.path)!r} is not open; call open() first")
        return self._db

    def _check_not_open(self) -> None:
        if self._db is not None:
            raise StateError(f"state store {str(self.path)!r} is already open")

    async def open(self) -> None:
        """Connect read-only."""
        self._check_not_open()
        self._db = await connect_reader(self.path, live=self.live, timeout_s=self.timeout_s)

    async def close(self) -> None:
        """Release the connection. Idempotent."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        async with self.db.execute(sql, tuple(args)) as cur:
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in await cur.fetchall()]

    async def component_states(self) -> dict[str, ComponentState]:
        """The remembered state of every component seen so far."""
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
        sql = "SELECT * FROM component_runs"
        args: list[Any] = []
        if component:
            sql += " WHERE component = ?"
            args.append(component)
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
        rows = await self._rows(sql, args)
        for row in rows:
            for key in ("inputs", "quality", "metrics"):
                row[key] = from_json(row[key])
        return rows

    async def last_runs(self, components: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Each named component's newest run, as :meth:`history` gives it (absent: none yet)."""
        out = {}
        for name in components:  # one indexed lookup each
            rows = await self.history(component=name, limit=1)
            if rows:
                out[name] = rows[0]
        return out

    async def last_quality(self, components: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Each named component's newest run with a quality report (one that reads as a dict)."""
        out = {}
        for name in components:
            async with self.db.execute(_LAST_QUALITY, (name,)) as cur:
                row = await cur.fetchone()
            if row is None:
                continue
            run_id, status, finished_at, quality = row
            try:
                report = json.loads(quality)
            except ValueError:
                continue
            if isinstance(report, dict):
                out[name] = {
                    "run_id": run_id,
                    "status": status,
                    "finished_at": finished_at,
                    "quality": report,
                }
        return out

    async def recent_outcomes(self, window: int) -> dict[str, list[bool]]:
        """Per component, whether each of its last ``window`` finished runs succeeded."""
        out: dict[str, list[bool]] = {}
        async with self.db.execute(_RECENT_OUTCOMES, (window,)) as cur:
            for component, status in await cur.fetchall():
                out.setdefault(component, []).append(status in ("succeeded", "unchanged"))
        return out

    async def runs_between(
        self, since: datetime, until: datetime, *, component: str | None = None
    ) -> list[dict[str, Any]]:
        """Component runs started in ``[since, until)``, oldest first, metrics parsed."""
        sql = _RUNS_BETWEEN
        args: list[Any] = [utc_iso(since), utc_iso(until)]
        if component:
            sql += " AND component = ?"
            args.append(component)
        sql += " ORDER BY started_at"
        rows = await self._rows(sql, args)
        for row in rows:
            row["metrics"] = from_json(row["metrics"])
        return rows

    async def hourly_totals(
        self, since: datetime, *, failed: Collection[str]
    ) -> list[HourlyTotals]:
        """Per component and UTC hour since ``since``: runs, failures, durations, records."""
        sql = _HOURLY_TOTALS.format(failed=_marks(failed))
        async with self.db.execute(sql, (*failed, utc_iso(since))) as cur:
            return [HourlyTotals(*row) for row in await cur.fetchall()]

    async def error_tallies(
        self, since: datetime, *, statuses: Collection[str]
    ) -> list[ErrorTally]:
        """Runs started since ``since`` with one of ``statuses``, counted per message."""
        sql = _ERROR_TALLIES.format(statuses=_marks(statuses))
        async with self.db.execute(sql, (utc_iso(since), *statuses)) as cur:
            return [ErrorTally(*row) for row in await cur.fetchall()]

    async def get_meta(self, key: str) -> Any:
        """A small JSON value stored under ``key`` (None if absent)."""
        async with self.db.execute("SELECT value FROM meta WHERE key=?", (key,)) as cur:
            row = await cur.fetchone()
        return json.loads(row[0]) if row else None
