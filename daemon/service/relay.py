"""A standby's view of the leader's events: the shared store's ``events`` table, polled.

The leader writes every event it publishes to ``events`` (JSON, as ``watch`` sends it,
in the history transaction; its ``seq`` grows with every row); a standby reads the rows
after the last it saw every fifth of ``failover_seconds`` and publishes them on its own
bus as the leader's events, so ``watch`` and the dashboard on a standby stream what the
leader's do: runs' starts, retries, outcomes, pauses. The table keeps the newest
``EVENTS_KEPT`` rows; a relay that finds the rows after its last pruned away says so in
the log and goes on from the oldest kept. Nothing is notified from here: only the
leader's observers notify, so a notification goes out once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog

from interlock import events as ev

log = structlog.get_logger("interlock.service")

_AFTER = "SELECT seq, payload FROM events WHERE seq > $1 ORDER BY seq LIMIT 500"
_KINDS: dict[str, type[ev.Event]] = {name: kind for kind, name in ev._NAMES.items()}


def as_event(payload: dict[str, Any]) -> ev.Event | None:
    """The event an ``events`` row holds (None: a name or fields this daemon does not know)."""
    kind = _KINDS.get(str(payload.get("event")))
    if kind is None:
        return None
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(kind):
        if field.name not in payload:
            continue  # 'memory' is not stored: the field's default, or None
        value = payload[field.name]
        if isinstance(value, str) and "datetime" in str(field.type):
            value = datetime.fromisoformat(value)
        fields[field.name] = value
    for field in dataclasses.fields(kind):
        no_default = field.default is dataclasses.MISSING
        if field.name not in fields and no_default and field.default_factory is dataclasses.MISSING:
            fields[field.name] = None
    try:
        return kind(**fields)
    except (TypeError, ValueError):
        return None


async def relay(
    pool: Any,
    publish: Callable[[ev.Event], None],
    every_s: float,
    refresh: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Publish the leader's events as they are written, until cancelled; ``refresh()`` is
    awaited after a poll that found some."""
    seq: int | None = None
    while True:
        try:
            if seq is None:  # start from now: what happened before is in history
                seq = int(await pool.fetchval("SELECT coalesce(max(seq), 0) FROM events"))
            rows = await pool.fetch(_AFTER, seq)
            if rows and int(rows[0]["seq"]) > seq + 1 and seq > 0:
                oldest = int(await pool.fetchval("SELECT coalesce(min(seq), 0) FROM events"))
                if oldest > seq + 1:
                    log.warning("standby_relay_behind", skipped_to=oldest, last_seen=seq)
            for row in rows:
                seq = int(row["seq"])
                event = as_event(json.loads(row["payload"]))
                if event is not None:
                    publish(event)
            if rows and refresh is not None:
                await refresh()
            if len(rows) == 500:
                continue  # more are waiting: read them now
        except Exception as exc:  # a lost connection, no tables yet: the next poll tries again
            log.warning("standby_relay_failed", error=repr(exc))
        await asyncio.sleep(every_s)
