"""The scheduler: releases components into a bounded TaskGroup as their upstreams settle.

One run is a set of components chosen at one instant. Each is released the moment
its upstreams in the run have settled (no layer barriers, no polling); slots are
shared by all runs, so ``max_concurrent_components`` and the parallel-group rule
hold across overlapping runs, and a component never runs beside itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from interlock import events as ev
from interlock import graph
from interlock.config.model import Config
from interlock.core.decisions import Decision, Settled, due_decision, release_decision
from interlock.core.runner import ComponentRunner
from interlock.errors import StateError
from interlock.events import EventBus, utcnow
from interlock.observe import logs
from interlock.outcome import SkipReason, Status
from interlock.store.abc import ComponentState

log = structlog.get_logger("interlock.scheduler")


class RunState(enum.Enum):
    """Lifecycle of the scheduler."""

    IDLE = "idle"
    SERVING = "serving"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class RunResult:
    """What one run did."""

    run_id: str
    status: str
    outcomes: dict[str, Settled] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Whether anything in the run failed, timed out or was cancelled."""
        bad = (Status.FAILED, Status.TIMED_OUT, Status.CANCELLED, Status.INTERRUPTED)
        return self.status != "succeeded" or any(s.status in bad for s in self.outcomes.values())


def new_run_id(now: datetime) -> str:
    """Sortable and unique: UTC time plus a little randomness."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class Scheduler:
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
        self.config = config
        self.bus = bus
        self.clock = clock
        self.states = states
        for name in config.components:
            states.setdefault(name, ComponentState(name=name))
        self.runner = ComponentRunner(config, bus, states, clock=clock, services=services or {})
        self.paused: set[str] = set()
        self.state = RunState.IDLE
        self._member_of = graph.groups_by_component(config.parallel_groups)
        self._running: dict[str, str] = {}  # component -> run_id, across all runs
        self._claimed: set[str] = set()  # in an active run, started or not
        self._run_wakes: set[asyncio.Event] = set()
        self._runs: dict[str, asyncio.Task[RunResult]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}  # component -> its task
        self._wake = asyncio.Event()
        self._debug = logs.current_level <= logging.DEBUG

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
        requested = self._requested(names, with_deps)
        tz = self.config.runtime.timezone
        out = []
        for name, spec in self.config.components.items():
            if requested is not None and name not in requested:
                out.append(
                    Decision(
                        component=name, run=False, reason=SkipReason.NOT_DUE, detail="not requested"
                    )
                )
                continue
            out.append(
                due_decision(
                    spec,
                    self.states[name],
                    now,
                    tz,
                    self.config.overrides,
                    paused=name in self.paused,
                    claimed=name in self._claimed,
                    requested=requested is not None,
                    force=force,
                )
            )
        return out

    def _requested(self, names: Iterable[str] | None, with_deps: bool) -> set[str] | None:
        if names is None:
            return None
        wanted = list(names)
        unknown = [n for n in wanted if n not in self.config.components]
        if unknown:
            known = ", ".join(self.config.components)
            raise KeyError(f"unknown component {unknown[0]!r}; known: {known}")
        if with_deps:
            deps = {n: s.dependencies for n, s in self.config.components.items()}
            return graph.upstream_closure(deps, wanted)
        return set(wanted)

    def next_wake(self, now: datetime) -> datetime | None:
        """The earliest due time among components that could run (None: nothing ever)."""
        times = [
            d.next_due
            for d in self.plan(now)
            if d.next_due is not None
            and d.reason not in (SkipReason.PAUSED, SkipReason.ALREADY_RUNNING)
        ]
        return min(times, default=None)

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

    async def execute(
        self,
        chosen: list[str],
        *,
        trigger: str,
        decisions: list[Decision] | None = None,
        force: bool = False,
        run_id: str | None = None,
    ) -> RunResult:
        """Run ``chosen`` (in dependency order) as one run, under the global timeout."""
        now = self.clock()
        run_id = run_id or new_run_id(now)
        result = RunResult(run_id=run_id, status="succeeded")
        wanted = set(chosen)
        in_run = [n for n in self.config.components if n in wanted]
        self._claimed.update(in_run)
        self.bus.publish(
            ev.RunStarted(at=now, run_id=run_id, trigger=trigger, components=tuple(in_run))
        )
        if decisions and self._debug:
            for d in decisions:
                log.debug(
                    "decision",
                    run_id=run_id,
                    component=d.component,
                    run=d.run,
                    reason=d.reason,
                    detail=d.detail,
                )
        if self.config.overrides.dry_run:
            for name in in_run:
                self._skip(run_id, name, SkipReason.DRY_RUN, "dry run: nothing executed", result)
            in_run = []
        cm = asyncio.timeout(self.config.runtime.global_timeout_s)
        try:
            async with cm:
                await self._release_loop(run_id, in_run, result, force, cm.expired)
        except TimeoutError:
            if not cm.expired():
                raise
            result.status = "timed_out"
        except asyncio.CancelledError:
            result.status = "cancelled"
            self._finish_run(run_id, now, in_run, result)
            raise
        self._finish_run(run_id, now, in_run, result)
        return result

    def _finish_run(
        self, run_id: str, started: datetime, in_run: list[str], result: RunResult
    ) -> None:
        for name in in_run:
            if name not in result.outcomes:
                # Never released: the run ended (timeout, cancel) before its turn came.
                status = "timed_out" if result.status == "timed_out" else "cancelled"
                self.runner.never_started(run_id, name, status, result)
            self._claimed.discard(name)
        if result.status == "succeeded" and result.failed:
            result.status = "failed"
        counts: dict[str, int] = {}
        for s in result.outcomes.values():
            key = s.status.value if s.status is not Status.SKIPPED else f"skipped:{s.reason}"
            counts[key] = counts.get(key, 0) + 1
        end = self.clock()
        self.bus.publish(
            ev.RunFinished(
                at=end,
                run_id=run_id,
                status=result.status,
                started_at=started,
                duration_s=(end - started).total_seconds(),
                counts=counts,
            )
        )
        self._wake.set()

    def _skip(
        self, run_id: str, name: str, reason: SkipReason, detail: str, result: RunResult
    ) -> None:
        result.outcomes[name] = Settled(Status.SKIPPED, reason.value)
        self.runner.publish(
            ev.ComponentSkipped(
                at=self.clock(), run_id=run_id, component=name, reason=reason.value, detail=detail
            )
        )

    async def _release_loop(
        self,
        run_id: str,
        in_run: list[str],
        result: RunResult,
        force: bool,
        run_expired: Callable[[], bool],
    ) -> None:
        comps = self.config.components
        members = set(in_run)
        waiting = {n: {d for d in comps[n].dependencies if d in members} for n in in_run}
        dependents: dict[str, list[str]] = {n: [] for n in in_run}
        for n, ds in waiting.items():
            for d in ds:
                dependents[d].append(n)
        ready = deque(n for n in in_run if not waiting[n])
        wake = asyncio.Event()
        self._run_wakes.add(wake)
        max_concurrent = self.config.runtime.max_concurrent
        grouping = self.config.grouping

        def settle(name: str) -> None:
            # Settled components leave the run's claim at once: a fast component that
            # shared a run with a slow one must not wait for the whole run to end.
            self._claimed.discard(name)
            for child in dependents[name]:
                waiting[child].discard(name)
                if not waiting[child]:
                    ready.append(child)

        def done(name: str, settled: Settled) -> None:
            result.outcomes[name] = settled
            self._running.pop(name, None)
            self._tasks.pop(name, None)
            settle(name)
            for w in self._run_wakes:
                w.set()
            self._wake.set()

        try:
            async with asyncio.TaskGroup() as tg:
                while len(result.outcomes) < len(in_run):
                    blocked: list[str] = []
                    while ready:
                        name = ready.popleft()
                        verdict = release_decision(
                            comps[name],
                            self.states[name],
                            self.states,
                            result.outcomes,
                            self.config.overrides,
                            force=force,
                        )
                        if verdict is not None:
                            self._skip(run_id, name, verdict[0], verdict[1], result)
                            settle(name)
                            continue
                        if (
                            len(self._running) >= max_concurrent
                            or name in self._running
                            or not graph.may_overlap(name, self._running, self._member_of, grouping)
                        ):
                            blocked.append(name)
                            continue
                        self._running[name] = run_id
                        self._tasks[name] = tg.create_task(
                            self.runner.run(run_id, name, done, run_expired),
                            name=f"component {name!r}",
                        )
                    ready.extend(blocked)
                    if len(result.outcomes) >= len(in_run):
                        break
                    wake.clear()
                    await wake.wait()
        finally:
            self._run_wakes.discard(wake)

    def cancel_component(self, name: str) -> bool:
        """Cancel a running component; it is recorded ``cancelled``. False if not running."""
        task = self._tasks.get(name)
        if task is None or task.done():
            return False
        task.cancel(f"cancelled by an operator: {name!r}")
        return True

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
        """Start a run in the background (it ends on its own or at shutdown); its run id."""
        run_id = new_run_id(self.clock())
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

    def cancel_run(self, run_id: str) -> bool:
        """Cancel a whole run: its components are recorded ``cancelled``. False if not active."""
        task = self._runs.get(run_id)
        if task is None or task.done():
            return False
        task.cancel(f"cancelled by an operator: run {run_id!r}")
        return True

    @property
    def active_runs(self) -> list[str]:
        """Run ids of the runs in progress."""
        return [run_id for run_id, task in self._runs.items() if not task.done()]

    def pause(self, name: str) -> None:
        """Keep ``name`` out of scheduled runs until resumed (a running one finishes)."""
        self._requested([name], False)  # KeyError for an unknown name
        self.paused.add(name)
        self._wake.set()

    def resume(self, name: str) -> None:
        """Schedule ``name`` again; if it fell due while paused it runs now."""
        self._requested([name], False)
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

    async def shutdown(self, grace_s: float) -> None:
        """Give running components ``grace_s`` to finish, then cancel them with cleanup."""
        self.state = RunState.STOPPING
        runs = list(self._runs.values())
        if runs:
            _, pending = await asyncio.wait(runs, timeout=grace_s)
            for task in pending:
                task.cancel("the daemon is stopping")
            if pending:
                await asyncio.wait(pending)
        self.state = RunState.STOPPED

    @property
    def running(self) -> dict[str, str]:
        """Components running now, with their run ids."""
        return dict(self._running)
