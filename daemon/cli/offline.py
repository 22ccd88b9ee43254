"""``status`` without a daemon: the state database read here, and the plan computed here.

The full path of ``status`` (cli/admin.py): it loads the engine and the async store, which
the socket path never needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interlock.config.model import Config


def state_dir_status(state_dir: Path) -> dict[str, Any]:
    """``status --state-dir``: what the state database alone says."""
    import asyncio

    from interlock.store.abc import PAUSED_KEY
    from interlock.store.lock import StateLock
    from interlock.store.sqlite import STATE_DB, SqliteStateReader

    db = state_dir / STATE_DB
    try:
        live = StateLock(state_dir).held_elsewhere()
    except OSError:
        live = True

    async def read() -> tuple[Any, Any, Any]:
        async with SqliteStateReader(db, live=live) as reader:
            states = await reader.component_states()
            return states, await reader.last_runs(states), await reader.get_meta(PAUSED_KEY)

    states, last, paused = asyncio.run(read())
    paused = set(paused or [])

    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    components = [
        {
            "component": name,
            "state": "paused" if name in paused else "unknown",
            "paused": name in paused,
            "last_status": last.get(name, {}).get("status") or st.last_status,
            "last_reason": last.get(name, {}).get("reason"),
            "last_error": st.last_error,
            "last_started_at": iso(st.last_started_at),
            "last_finished_at": iso(st.last_finished_at),
            "last_success_at": iso(st.last_success_at),
            "records": st.records,
            "next_due": None,
            "disabled_reason": "no config given: --state-dir shows stored state only",
        }
        for name, st in sorted(states.items())
    ]
    return {"daemon": None, "components": components, "quota": None}


def offline_status(config: Config) -> dict[str, Any]:
    """``status`` without a daemon: the state database read-only, the plan computed here."""
    import asyncio

    from interlock.core.scheduler import Scheduler
    from interlock.events import EventBus
    from interlock.store.abc import PAUSED_KEY
    from interlock.store.factory import state_reader
    from interlock.store.lock import StateLock

    try:
        live = StateLock(config.runtime.state_dir).held_elsewhere()
    except OSError:
        live = True

    async def plan() -> tuple[Any, Any, list[str], dict[str, tuple[str, str | None]]]:
        async with state_reader(config.runtime, live=live) as reader:
            paused: list[str] = await reader.get_meta(PAUSED_KEY) or []
            last = await reader.last_runs(config.components)
            states = await reader.component_states()
        scheduler = Scheduler(config, EventBus(), states)
        scheduler.paused.update(n for n in paused if n in config.components)
        reasons = {name: (row["status"], row["reason"]) for name, row in last.items()}
        for name, row in last.items():
            joins[name] = (row.get("metrics") or {}).get("joins") or None
        return scheduler.plan(), scheduler.states, paused, reasons

    joins: dict[str, Any] = {}
    decisions, states, paused, reasons = asyncio.run(plan())
    tz = config.runtime.timezone

    def iso(v: Any) -> str | None:
        return v.astimezone(tz).isoformat() if v is not None else None

    components = []
    for d in decisions:
        spec, st = config.components[d.component], states[d.component]
        last_status, last_reason = reasons.get(d.component, (st.last_status, None))
        state = "disabled" if not spec.enabled else "paused" if d.component in paused else "idle"
        components.append(
            {
                "component": d.component,
                "state": state,
                "run_id": None,
                "enabled": spec.enabled,
                "disabled_reason": spec.disabled_reason,
                "paused": d.component in paused,
                "frequency": spec.frequency.text,
                "last_status": last_status,
                "last_reason": last_reason,
                "last_error": st.last_error,
                "last_started_at": iso(st.last_started_at),
                "last_finished_at": iso(st.last_finished_at),
                "last_success_at": iso(st.last_success_at),
                "records": st.records,
                "next_due": iso(d.next_due) if spec.enabled else None,
                "decision": d.detail,
                "joins": joins.get(d.component),
            }
        )
    from datetime import UTC, datetime

    from interlock.service.status import offline_quota
    from interlock.store.sqlite import STATE_DB

    db = config.runtime.state_dir / STATE_DB
    quota = offline_quota(config, db, datetime.now(UTC), live=live)
    return {"daemon": None, "components": components, "quota": quota}
