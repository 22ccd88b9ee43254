"""Run execution: a run's components released into shared slots as their upstreams settle.

One run is a set of components chosen at one instant. Each is released the moment
its upstreams in the run have settled (no layer barriers, no polling); slots are
shared by all runs, so ``max_concurrent_components`` and the parallel-group rule
hold across overlapping runs, and a component never runs beside itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from interlock import events as ev
from interlock import graph
from interlock.config.model import Config
from interlock.core import loglevel
from interlock.core.decisions import Decision, Settled, release_decision
from interlock.core.runner import ComponentRunner
from interlock.core.runs import RunResult, new_run_id
from interlock.events import EventBus, utcnow
from interlock.outcome import SkipReason, Status
from interlock.store.abc import ComponentState

log = structlog.get_logger("interlock.scheduler")

_BAD = frozenset({Status.FAILED, Status.TIMED_OUT, Status.CANCELLED, Status.INTERRUPTED})

#: How long a run waits for its start to be written before it starts anyway.
RUN_START_DURABLE_S = 0.25


@dataclass(frozen=True, slots=True)
class Stopping:
    """A component held in its slot because a worker thread outlived its run."""

    run_id: str
    since: datetime
    t0: float  # time.monotonic() when it started stopping


class RunExecutor:
    """Runs chosen components as runs, all runs sharing one pool of slots."""

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
        self._member_of = graph.groups_by_component(config.parallel_groups)
        self._running: dict[str, str] = {}  # component -> run_id, across all runs
        self._claimed: set[str] = set()  # in an active run, started or not
        # Ended, but a worker thread outlived it: its slot stays taken until the thread ends.
        self._stopping: dict[str, Stopping] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        # Why a whole run was cancelled (who asked, or the shutdown), by run id.
        self._run_cancelled_because: dict[str, str] = {}
        self._run_wakes: set[asyncio.Event] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}  # component -> its task
        # Set whenever a component or a run ends, so the serve loop looks again.
        self._wake = asyncio.Event()
        self._debug = loglevel.debug_enabled()

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
        self._claimed.update(in_run)  # already claimed when spawned; run_once claims here
        try:
            self.bus.publish(
                ev.RunStarted(at=now, run_id=run_id, trigger=trigger, components=tuple(in_run))
            )
            # The run is in history before any component starts, so a kill at any
            # instant after this leaves each of them recorded interrupted. A store that
            # is busy delays the run at most this long; its rows still land, later.
            if not await self.bus.landed(RUN_START_DURABLE_S):
                log.warning(
                    "run_start_not_yet_durable", run_id=run_id, waited_s=RUN_START_DURABLE_S
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
            to_release = in_run
            if self.config.overrides.dry_run:
                for name in in_run:
                    self._skip(run_id, name, SkipReason.DRY_RUN, "dry run: nothing run", result)
                    # The due time passes in memory only, so `serve --dry-run` shows each
                    # due time once; nothing of it is stored.
                    self.states[name].last_started_at = now
                to_release = []
            cm = asyncio.timeout(self.config.runtime.global_timeout_s)
            try:
                async with cm:
                    await self._release_loop(run_id, to_release, result, force, cm.expired)
            except TimeoutError:
                if not cm.expired():
                    raise
                result.status = "timed_out"
        except asyncio.CancelledError:
            result.status = "cancelled"
            raise
        except BaseException as exc:
            # A fault of ours, never a component's (the runner contains those): the run
            # still ends, recorded, with its slots released.
            log.error("run_failed", run_id=run_id, error=repr(exc), exc_info=True)
            result.status = "failed"
        finally:
            self._finish_run(run_id, now, in_run, result)
        return result

    def _finish_run(
        self, run_id: str, started: datetime, in_run: list[str], result: RunResult
    ) -> None:
        why = {
            "timed_out": "the run's global timeout expired before its turn",
            "cancelled": "the run was cancelled before its turn",
        }.get(result.status, "the run ended before its turn")
        for name in in_run:
            if name not in result.outcomes:
                # Never released: the run ended (timeout, cancel) before its turn came.
                self.runner.never_started(run_id, name, why, result)
            if name not in self._stopping and self._running.get(name) != run_id:
                self._claimed.discard(name)
        if result.status == "succeeded" and result.failed:
            bad = {s.status for s in result.outcomes.values() if s.status in _BAD}
            # An operator's cancel is one outcome, cancelled, for the run as for the component.
            result.status = "cancelled" if bad == {Status.CANCELLED} else "failed"
        self._run_cancelled_because.pop(run_id, None)
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

        def settle(name: str, *, release: bool = True) -> None:
            # Settled components leave the run's claim at once: a fast component that
            # shared a run with a slow one must not wait for the whole run to end.
            if release:
                self._claimed.discard(name)
            for child in dependents[name]:
                waiting[child].discard(name)
                if not waiting[child]:
                    ready.append(child)

        def done(name: str, settled: Settled, lingering: set[asyncio.Future[Any]]) -> None:
            result.outcomes[name] = settled
            self._tasks.pop(name, None)
            if lingering:
                self._hold_until_stopped(name, run_id, lingering)
            else:
                self._running.pop(name, None)
            settle(name, release=not lingering)
            self._wake_all()

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
                            self.runner.run(
                                run_id,
                                name,
                                done,
                                run_expired,
                                lambda: self._run_cancelled_because.get(run_id),
                            ),
                            name=f"component {name!r}",
                        )
                    ready.extend(blocked)
                    if len(result.outcomes) >= len(in_run):
                        break
                    wake.clear()
                    await wake.wait()
        finally:
            self._run_wakes.discard(wake)

    def _wake_all(self) -> None:
        for w in self._run_wakes:
            w.set()
        self._wake.set()

    def _hold_until_stopped(
        self, name: str, run_id: str, lingering: set[asyncio.Future[Any]]
    ) -> None:
        """Keep ``name``'s slot and claim until its leftover worker threads end."""
        self._running[name] = run_id
        self._claimed.add(name)
        self._stopping[name] = Stopping(run_id=run_id, since=self.clock(), t0=time.monotonic())
        log.warning("component_stopping", component=name, run_id=run_id, threads=len(lingering))

        async def watch() -> None:
            try:
                await asyncio.wait(lingering)
            finally:
                stopping = self._stopping.pop(name, None)
                if self._running.get(name) == run_id:
                    del self._running[name]
                if name not in self._tasks:
                    self._claimed.discard(name)
                log.warning(
                    "component_stopped",
                    component=name,
                    run_id=run_id,
                    stopping_s=round(time.monotonic() - stopping.t0, 3) if stopping else None,
                )
                self._wake_all()

        task = asyncio.get_running_loop().create_task(watch(), name=f"stopping {name!r}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    @property
    def stopping(self) -> dict[str, dict[str, Any]]:
        """Components whose run has ended but whose worker threads still run."""
        now = time.monotonic()
        return {
            name: {
                "run_id": s.run_id,
                "since": s.since,
                "stopping_s": round(now - s.t0, 3),
            }
            for name, s in self._stopping.items()
        }

    def cancel_component(self, name: str, *, actor: str = "an operator") -> bool:
        """Cancel a running component; it is recorded ``cancelled`` by ``actor``.

        False if it is not running.
        """
        task = self._tasks.get(name)
        if task is None or task.done():
            return False
        task.cancel(f"cancelled by {actor}")
        return True

    @property
    def running(self) -> dict[str, str]:
        """Components running now, with their run ids."""
        return dict(self._running)
