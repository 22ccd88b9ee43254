"""The scheduler: decides what runs when, starts runs as components fall due, and steers them.

Planning (``planning``) says what is due; execution (``execution``) runs it; this
module holds the serve loop and the operator's controls: start, cancel, pause,
resume, a new config, and shutdown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import structlog

from interlock import graph
from interlock.config.model import Config
from interlock.core.decisions import Decision
from interlock.core.execution import RunExecutor
from interlock.core.planning import earliest_wake, plan_components, requested_components
from interlock.core.runs import RunResult, new_run_id
from interlock.errors import StateError
from interlock.events import EventBus, utcnow
from interlock.store.abc import ComponentState

__all__ = ["RunResult", "RunState", "Scheduler", "new_run_id"]

log = structlog.get_logger("interlock.scheduler")


#: After the grace period, how long cancelled components get to record and clean up.
STOP_MARGIN_S = 3.0


class RunState(enum.Enum):
    """Lifecycle of the scheduler."""

    IDLE = "idle"
    SERVING = "serving"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Scheduler(RunExecutor):
    """Decides what runs when, and runs it."""

    def __init__(
        self,
        config: Config,
        bus: EventBus,
        states: dict[str, ComponentState],
        *,
        clock: Callable[[], datetime] = utcnow,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(config, bus, states, clock=clock, services=services)
        self.paused: set[str] = set()
        self.state = RunState.IDLE
        self._runs: dict[str, asyncio.Task[RunResult]] = {}
        self._grace_over = asyncio.Event()

    # --- decisions -------------------------------------------------------------

    def plan(
        self,
        now: datetime | None = None,
        *,
        names: Iterable[str] | None = None,
        with_deps: bool = False,
        force: bool = False,
    ) -> list[Decision]:
        """Per component, in dependency order: would it run now, and why (not)."""
        now = now or self.clock()
        return plan_components(
            self.config,
            self.states,
            now,
            requested=requested_components(self.config, names, with_deps),
            paused=self.paused,
            claimed=self._claimed,
            force=force,
            quota_hold=_quota_hold(self.runner.services.get("quota"), now),
        )

    def next_wake(self, now: datetime) -> datetime | None:
        """The earliest due time among components that could run (None: nothing ever)."""
        return earliest_wake(self.plan(now))

    # --- runs ------------------------------------------------------------------

    async def run_once(
        self,
        names: Iterable[str] | None = None,
        *,
        with_deps: bool = False,
        force: bool = False,
        trigger: str = "manual",
    ) -> RunResult:
        """Run what is due now (or exactly ``names``) and wait for it to finish."""
        decisions = self.plan(names=names, with_deps=with_deps, force=force)
        chosen = [d.component for d in decisions if d.run]
        return await self.execute(chosen, trigger=trigger, decisions=decisions, force=force)

    # --- serving ---------------------------------------------------------------

    def wake(self) -> None:
        """Re-evaluate what is due now (after a command or a config change)."""
        self._wake.set()

    async def serve(
        self, stop: asyncio.Event, on_idle: Callable[[datetime | None], None] | None = None
    ) -> None:
        """Start runs as components fall due, until ``stop`` is set; then let runs end."""
        if self.state is not RunState.IDLE:
            raise StateError(f"the scheduler is {self.state.value}; it can serve only once")
        self.state = RunState.SERVING
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                now = self.clock()
                decisions = self.plan(now)
                due = [d.component for d in decisions if d.run]
                if due:
                    self._spawn(due, trigger="schedule", decisions=decisions, force=False)
                wake_at = self.next_wake(self.clock())
                if on_idle is not None:
                    on_idle(wake_at)
                timeout = None
                if wake_at is not None:
                    timeout = max(0.0, (wake_at - self.clock()).total_seconds())
                self._wake.clear()
                waker = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait(
                    {waker, stop_wait}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                waker.cancel()
        finally:
            stop_wait.cancel()
            self.state = RunState.STOPPING

    def _spawn(
        self, chosen: list[str], *, trigger: str, decisions: list[Decision], force: bool
    ) -> str:
        """Start a run in the background (it ends on its own or at shutdown); its run id.

        Its components are claimed here, before the run's task first runs, so a second
        trigger a moment later is refused as ``already_running``.
        """
        run_id = new_run_id(self.clock())
        self._claimed.update(chosen)
        task = asyncio.create_task(
            self.execute(chosen, trigger=trigger, decisions=decisions, force=force, run_id=run_id),
            name=f"run {run_id} of {len(chosen)} components",
        )
        self._runs[run_id] = task
        task.add_done_callback(self._run_done)
        return run_id

    def start_run(
        self,
        names: Iterable[str],
        *,
        with_deps: bool = False,
        force: bool = False,
        trigger: str = "admin",
    ) -> tuple[str | None, list[Decision]]:
        """Start a run of ``names`` now without waiting for it (``trigger``).

        Returns the run id (None when nothing may run, e.g. paused or already
        running) and the decisions that say why. Unknown names raise KeyError.
        """
        if self.state is not RunState.SERVING:
            raise StateError(f"the scheduler is {self.state.value}; it starts no new runs")
        decisions = self.plan(names=names, with_deps=with_deps, force=force)
        chosen = [d.component for d in decisions if d.run]
        if not chosen:
            return None, decisions
        return self._spawn(chosen, trigger=trigger, decisions=decisions, force=force), decisions

    def cancel_run(self, run_id: str, *, actor: str = "an operator") -> bool:
        """Cancel a whole run: its components are recorded ``cancelled`` by ``actor``.

        False if the run is not active.
        """
        task = self._runs.get(run_id)
        if task is None or task.done():
            return False
        self._run_cancelled_because[run_id] = f"cancelled by {actor} (run {run_id})"
        task.cancel(f"cancelled by {actor}")
        return True

    @property
    def active_runs(self) -> list[str]:
        """Run ids of the runs in progress."""
        return [run_id for run_id, task in self._runs.items() if not task.done()]

    def pause(self, name: str) -> None:
        """Keep ``name`` out of scheduled runs until resumed (a running one finishes)."""
        requested_components(self.config, [name], False)  # KeyError for an unknown name
        self.paused.add(name)
        self._wake.set()

    def resume(self, name: str) -> None:
        """Schedule ``name`` again; if it fell due while paused it runs now."""
        requested_components(self.config, [name], False)
        self.paused.discard(name)
        self._wake.set()

    def apply_config(self, config: Config) -> None:
        """Use ``config`` from now on; running components finish with the settings they had.

        New components start with empty state; removed ones stop being scheduled.
        A component whose spec changed gets a new instance at its next start.
        """
        old = self.config
        self.config = config
        for name in config.components:
            self.states.setdefault(name, ComponentState(name=name))
        # Components still claimed by a run keep their old spec until that run ends.
        kept = {n: old.components[n] for n in self._claimed if n not in config.components}
        self.runner.config = (
            dataclasses.replace(config, components={**config.components, **kept})
            if kept
            else config
        )
        self.runner.budget.thread_grace_s = config.runtime.worker_stop_grace_s
        for name, spec in old.components.items():
            if config.components.get(name) != spec:
                self.runner.forget(name)
        self.paused &= set(config.components)
        self._member_of = graph.groups_by_component(config.parallel_groups)
        self._wake.set()

    def _run_done(self, task: asyncio.Task[RunResult]) -> None:
        for key, t in list(self._runs.items()):
            if t is task:
                del self._runs[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("run_crashed", error=repr(task.exception()))

    def end_grace(self) -> None:
        """Cut :meth:`shutdown`'s grace period short (now, or as soon as it begins)."""
        self._grace_over.set()

    async def shutdown(self, grace_s: float) -> None:
        """Give running components ``grace_s`` to finish, then cancel them with cleanup.

        :meth:`end_grace` ends the grace period early (a second stop signal).

        Cancelled components get :data:`STOP_MARGIN_S` more to record their outcome and
        clean up; whatever is still running then (a worker thread that ignores its
        signal, a cleanup that hangs) is left behind, logged, so the daemon exits within
        the grace period plus the margin.
        """
        self.state = RunState.STOPPING
        runs = list(self._runs.values())
        if runs:
            all_done = asyncio.ensure_future(asyncio.wait(runs))
            cut = asyncio.ensure_future(self._grace_over.wait())
            await asyncio.wait(
                {all_done, cut}, timeout=max(0.0, grace_s), return_when=asyncio.FIRST_COMPLETED
            )
            all_done.cancel()  # the runs go on: cancelling a wait leaves what it waits for
            cut.cancel()
            pending = {task for task in runs if not task.done()}
            if pending:
                self.runner.budget.stop_by(STOP_MARGIN_S)
                for run_id, task in self._runs.items():
                    if task in pending:
                        self._run_cancelled_because[run_id] = "cancelled: the daemon is stopping"
                for task in pending:
                    task.cancel("the daemon is stopping")
                _, left = await asyncio.wait(pending, timeout=STOP_MARGIN_S + 1.0)
                if left:
                    log.error(
                        "runs_abandoned_at_exit",
                        runs=len(left),
                        components=sorted(self._running),
                        margin_s=STOP_MARGIN_S,
                    )
        if self._stopping:
            log.error("worker_threads_left_at_exit", components=self.stopping)
        self.state = RunState.STOPPED


def _quota_hold(guard: Any, now: datetime) -> datetime | None:
    """When the quota guard (a service) admits non-priority calls again, if not now."""
    held_until = getattr(guard, "held_until", None)
    return held_until(now) if callable(held_until) else None
