"""What ``interlock status`` shows about the API quota and realtime feeds, from any state.

The same shapes come from a live :class:`~interlock.kit.quota.QuotaGuard` (``describe()``)
and from the state database of a stopped daemon (:func:`offline_quota`), so the
admin socket and the offline CLI print one format (``interlock.cli.statustext``).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from interlock.config.model import Config
from interlock.kit.quota import META_KEY, QuotaGuard, QuotaSettings, describe, usage_from_json
from interlock.store.abc import StateReader
from interlock.store.factory import shared, state_reader
from interlock.store.sqlite import SqliteStateReader


def quota_from_meta(config: Config, stored: Any, now: datetime) -> dict[str, Any]:
    """The quota as ``status`` shows it, from the stored guard state (None: nothing yet)."""
    doc = stored if isinstance(stored, dict) else {}
    spent = doc.get("spent") if isinstance(doc.get("spent"), dict) else {}
    return describe(
        QuotaSettings.from_config(config.quota),
        usage_from_json(doc.get("day")),
        {str(k): tuple(float(t) for t in v) for k, v in (spent or {}).items()},
        now,
        config.runtime.timezone,
    )


def offline_quota(config: Config, db: Path, now: datetime, *, live: bool = True) -> dict[str, Any]:
    """The quota from a state database file opened read-only (writes nothing).

    Synchronous, for the CLI without a daemon. The read runs on an event loop of its
    own in a worker thread, so a caller whose thread runs a loop may use it too.
    """

    async def read() -> Any:
        if shared(config.runtime):  # PostgreSQL: the shared database, not a file
            async with state_reader(config.runtime) as pg:
                return await pg.get_meta(META_KEY)
        async with SqliteStateReader(db, live=live) as reader:
            return await reader.get_meta(META_KEY)

    with ThreadPoolExecutor(1, thread_name_prefix="offline-quota") as pool:
        stored = pool.submit(lambda: asyncio.run(read())).result()
    return quota_from_meta(config, stored, now)


async def gather_status(
    config: Config, store: StateReader, now: datetime, *, quota: QuotaGuard | None = None
) -> dict[str, Any]:
    """Per component the last outcome and next due time, plus the quota.

    With a live ``quota`` guard its in-memory counters are shown; otherwise the
    ones last saved in ``store``.
    """
    from interlock.core.scheduler import Scheduler
    from interlock.events import EventBus

    tz = config.runtime.timezone
    states = await store.component_states()
    decisions = Scheduler(config, EventBus(), states).plan(now)
    last = await store.last_runs(d.component for d in decisions)
    components = []
    for d in decisions:
        spec = config.components[d.component]
        row = last.get(d.component, {})
        metrics = row.get("metrics") or {}
        components.append(
            {
                "component": d.component,
                "enabled": spec.enabled,
                "disabled_reason": spec.disabled_reason,
                "last_status": row.get("status"),
                "last_reason": row.get("reason"),
                "last_started_at": _local(row.get("started_at"), tz),
                "last_finished_at": _local(row.get("finished_at"), tz),
                "records": row.get("records"),
                "next_due": d.next_due.astimezone(tz).isoformat() if d.next_due else None,
                "would_run_now": d.run,
                "feed_age_s": metrics.get("feed_age_s"),
                "joins": metrics.get("joins") or None,
            }
        )
    quota_doc = (
        quota.describe()
        if quota is not None
        else quota_from_meta(config, await store.get_meta(META_KEY), now)
    )
    return {"now": now.astimezone(tz).isoformat(), "components": components, "quota": quota_doc}


def _local(value: str | None, tz: Any) -> str | None:
    return datetime.fromisoformat(value).astimezone(tz).isoformat() if value else None
