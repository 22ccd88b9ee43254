"""Liveness and readiness, as a load balancer or systemd-side prober asks for them.

``/healthz`` answers when the event loop does. ``/readyz`` also asks whether the
daemon can do its job: the state store takes a write, no run is wedged past its
timeout (cancellation did not end it), and no component is overdue beyond its
timeout while nothing runs it. The decisions are pure; :class:`Readiness` feeds them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from interlock.config.model import Config
from interlock.core.decisions import Decision
from interlock.store.abc import ComponentState

#: How long a run may outlive its timeout and worker grace before it counts as wedged.
WEDGE_MARGIN_S = 30.0
#: The state store must take the probe write within this.
STORE_WRITE_LIMIT_S = 2.0
#: The meta key the probe writes (the time of the last readiness check).
PROBE_KEY = "readyz_checked_at"


def wedged_runs(
    config: Config, states: Mapping[str, ComponentState], running: Iterable[str], now: datetime
) -> list[str]:
    """Components still running well past their timeout: what cancellation did not stop."""
    out = []
    grace = config.runtime.worker_stop_grace_s + WEDGE_MARGIN_S
    for name in sorted(running):
        spec, state = config.components.get(name), states.get(name)
        if spec is None or state is None or state.last_started_at is None:
            continue
        ran = (now - state.last_started_at).total_seconds()
        if ran > spec.timeout_s + grace:
            out.append(
                f"component {name!r} has run {ran:.0f} s, past its timeout of "
                f"{spec.timeout_s:g} s; cancel it or restart the daemon"
            )
    return out


def overdue_components(config: Config, decisions: Iterable[Decision], now: datetime) -> list[str]:
    """Components due longer ago than their timeout that no run has taken up."""
    out = []
    for d in decisions:
        spec = config.components.get(d.component)
        if not d.run or d.next_due is None or spec is None:
            continue
        late = (now - d.next_due).total_seconds()
        if late > spec.timeout_s:
            out.append(
                f"component {d.component!r} is {late:.0f} s overdue, over its limit of "
                f"{spec.timeout_s:g} s; is the scheduler running?"
            )
    return out


class Readiness:
    """Answers ``/readyz`` from the scheduler and the state store."""

    def __init__(self, scheduler: Any, store: Any, clock: Callable[[], datetime]) -> None:
        self.scheduler = scheduler
        self.store = store
        self.clock = clock

    async def check(self) -> dict[str, Any]:
        """``{"ready": bool, "checks": {name: "ok" | [problems]}}``."""
        now = self.clock()
        checks: dict[str, Any] = {"state_store": await self._store_writable(now)}
        scheduler = self.scheduler
        state = getattr(getattr(scheduler, "state", None), "value", "idle")
        checks["scheduler"] = (
            "ok" if state in ("idle", "serving") else [f"the scheduler is {state}"]
        )
        config = scheduler.config
        checks["runs"] = wedged_runs(config, scheduler.states, scheduler.running, now) or "ok"
        checks["schedule"] = overdue_components(config, scheduler.plan(now), now) or "ok"
        return {"ready": all(v == "ok" for v in checks.values()), "checks": checks}

    async def _store_writable(self, now: datetime) -> str | list[str]:
        try:
            async with asyncio.timeout(STORE_WRITE_LIMIT_S):
                await self.store.set_meta(PROBE_KEY, now.isoformat())
        except TimeoutError:
            return [f"the state store took no write within {STORE_WRITE_LIMIT_S:g} s"]
        except Exception as exc:  # any failure to write is the answer, not a crash
            return [f"the state store refused a write: {type(exc).__name__}: {exc}"]
        return "ok"
