"""A standby's view of the leader's events: component outcomes polled from the shared store.

The leader writes each component outcome to ``component_runs`` (its ``seq`` grows with
every write); a standby reads the rows after the last it saw every fifth of
``failover_seconds`` and publishes them on its own bus as the leader's events, so
``watch`` on a standby streams the outcomes the leader records. Only outcomes travel
(runs' starts and retries are the leader's alone). Nothing is notified from here: only
the leader's observers notify, so a notification goes out once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from interlock import events as ev
from interlock.store.sqlite.schema import from_iso, from_json

log = structlog.get_logger("interlock.service")

_FINISHED: dict[str, type[ev.ComponentFinished]] = {
    "succeeded": ev.ComponentSucceeded,
    "unchanged": ev.ComponentUnchanged,
    "failed": ev.ComponentFailed,
    "timed_out": ev.ComponentTimedOut,
    "cancelled": ev.ComponentCancelled,
    "not_started": ev.ComponentNotStarted,
}
_AFTER = (
    "SELECT seq, run_id, component, status, reason, started_at, finished_at, duration_s, "
    "records, attempts, error, fingerprint, quality, metrics FROM component_runs "
    "WHERE seq > $1 ORDER BY seq LIMIT 500"
)


def as_event(row: dict[str, Any]) -> ev.Event | None:
    """The event a ``component_runs`` row records (None: a status no event carries)."""
    at = from_iso(row["finished_at"]) or from_iso(row["started_at"])
    assert at is not None
    if row["status"] == "skipped":
        return ev.ComponentSkipped(
            at=at,
            run_id=row["run_id"],
            component=row["component"],
            reason=row["reason"] or "",
            detail=row["error"] or row["reason"] or "",
        )
    kind = _FINISHED.get(row["status"])
    if kind is None:
        return None  # 'interrupted' is written by the recovery, never published
    started = from_iso(row["started_at"])
    assert started is not None
    return kind(
        at=at,
        run_id=row["run_id"],
        component=row["component"],
        status=row["status"],
        reason=row["reason"],
        started_at=started,
        duration_s=float(row["duration_s"] or 0.0),
        records=int(row["records"] or 0),
        attempts=int(row["attempts"] or 1),
        error=row["error"],
        fingerprint=row["fingerprint"],
        quality=from_json(row["quality"]),
        metrics=from_json(row["metrics"]),
    )


async def relay(
    pool: Any,
    publish: Callable[[ev.Event], None],
    every_s: float,
    refresh: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Publish the leader's component outcomes as they are written, until cancelled;
    ``refresh()`` is awaited after a poll that found some."""
    seq: int | None = None
    while True:
        try:
            if seq is None:  # start from now: what happened before is in history
                seq = int(await pool.fetchval("SELECT coalesce(max(seq), 0) FROM component_runs"))
            rows = await pool.fetch(_AFTER, seq)
            for row in rows:
                seq = int(row["seq"])
                event = as_event(dict(row))
                if event is not None:
                    publish(event)
            if rows and refresh is not None:
                await refresh()
        except Exception as exc:  # a lost connection, no tables yet: the next poll tries again
            log.warning("standby_relay_failed", error=repr(exc))
        await asyncio.sleep(every_s)
