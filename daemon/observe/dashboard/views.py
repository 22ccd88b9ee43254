"""The JSON documents the page fetches, built from the orchestrator's live state.

The same sources the admin socket's ``status`` reads: the scheduler's component
states, its plan, what runs now, the quota guard, and the state database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interlock.observe.dashboard.host import DashboardHost


def _iso(value: datetime | None, tz: Any) -> str | None:
    return value.astimezone(tz).isoformat() if value is not None else None


def _local(value: str | None, tz: Any) -> str | None:
    return datetime.fromisoformat(value).astimezone(tz).isoformat() if value else None


def component_state(name: str, *, running: bool, enabled: bool, paused: bool) -> str:
    """The one-word state a card shows."""
    if running:
        return "running"
    if not enabled:
        return "disabled"
    return "paused" if paused else "idle"


def overview(
    orch: DashboardHost,
    last: Mapping[str, Mapping[str, Any]],
    now: datetime,
    *,
    actions_enabled: bool,
) -> dict[str, Any]:
    """Every component with its state, last outcome and reason, next due; runs; quota."""
    config = orch.config
    tz = config.runtime.timezone
    scheduler = orch.scheduler
    running = scheduler.running
    components = []
    for d in scheduler.plan(now):
        name = d.component
        spec = config.components[name]
        st = scheduler.states[name]
        row = last.get(name)
        outcome = None
        if row is not None:
            outcome = {
                **row,
                "started_at": _local(row.get("started_at"), tz),
                "finished_at": _local(row.get("finished_at"), tz),
            }
        components.append(
            {
                "component": name,
                "state": component_state(
                    name,
                    running=name in running,
                    enabled=spec.enabled,
                    paused=name in scheduler.paused,
                ),
                "run_id": running.get(name),
                "enabled": spec.enabled,
                "disabled_reason": spec.disabled_reason,
                "paused": name in scheduler.paused,
                "frequency": spec.frequency.text,
                "dependencies": list(spec.dependencies),
                "last": outcome,
                "last_started_at": _iso(st.last_started_at, tz),
                "last_success_at": _iso(st.last_success_at, tz),
                "published_at": _iso(st.published_at, tz),
                "records": st.records,
                "next_due": _iso(d.next_due, tz) if spec.enabled else None,
                "decision": d.detail,
            }
        )
    by_run: dict[str, list[str]] = {}
    for name, run_id in running.items():
        by_run.setdefault(run_id, []).append(name)
    quota = orch.services.get("quota")
    describe = getattr(quota, "describe", None)
    return {
        "now": _iso(now, tz),
        "timezone": str(tz),
        "daemon": {
            "pid": os.getpid(),
            "scheduler": scheduler.state.value,
            "config": config.source,
            "actions_enabled": actions_enabled,
        },
        "runs": [
            {"run_id": run_id, "running": sorted(by_run.get(run_id, []))}
            for run_id in scheduler.active_runs
        ],
        "components": components,
        "quota": describe() if callable(describe) else None,
    }
