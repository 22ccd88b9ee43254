"""Runs one component once: timeout, retries with backoff, cleanup, and its outcome event.

Whatever the component does (returns anything, raises anything, hangs, blocks the
loop, leaks a thread, is cancelled during its own cleanup) exactly one terminal
event is published and ``done`` is called exactly once. Only cancellation leaves
this module; every other exception ends here as the component's failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from interlock import events as ev
from interlock.config.model import Config
from interlock.config.registry import load_component_class
from interlock.core.abc import ResourceSampler, RunProbe
from interlock.core.cleanup import CleanupBudget, close_within
from interlock.core.decisions import Settled
from interlock.core.retry import GiveUp, attempt_until_done, first_line
from interlock.core.runs import RunResult
from interlock.core.steps import StepTimer, timed_steps
from interlock.errors import InterlockError, ValidationFailedError
from interlock.events import EventBus, utcnow
from interlock.kit import quality, qualityshape
from interlock.kit.context import ComponentContext, bind_component
from interlock.kit.export import export_published
from interlock.kit.http import current_call_stats
from interlock.kit.threads import WorkerThreads
from interlock.outcome import Outcome, Status
from interlock.store.abc import ComponentState
from interlock.store.changes import component_state_changes

log = structlog.get_logger("interlock.runner")

_EVENT_FOR: dict[Status, type[ev.ComponentFinished]] = {
    Status.SUCCEEDED: ev.ComponentSucceeded,
    Status.UNCHANGED: ev.ComponentUnchanged,
    Status.FAILED: ev.ComponentFailed,
    Status.TIMED_OUT: ev.ComponentTimedOut,
    Status.CANCELLED: ev.ComponentCancelled,
    Status.NOT_STARTED: ev.ComponentNotStarted,
}

#: ``done(name, settled, lingering)``: how a component ended, and the futures of worker
#: threads that outlived it (its slot stays taken until they end).
Done = Callable[[str, Settled, set[asyncio.Future[Any]]], None]


class ComponentRunner:
    """Builds each component once and runs it per release."""

    def __init__(
        self,
        config: Config,
        bus: EventBus,
        states: dict[str, ComponentState],
        *,
        clock: Callable[[], datetime] = utcnow,
        services: Mapping[str, Any],
    ) -> None:
        self.config = config
        self.bus = bus
        self.states = states
        self.clock = clock
        self.services = services
        self.budget = CleanupBudget(thread_grace_s=config.runtime.worker_stop_grace_s)
        self._instances: dict[str, Any] = {}
        self._threads: dict[str, WorkerThreads] = {}

    def publish(self, event: ev.Event) -> None:
        """Apply the event to in-memory state, then hand it to the bus."""
        change = component_state_changes(event)
        if change is not None:
            state = self.states[change[0]]
            for key, value in change[1].items():
                setattr(state, key, value)
        self.bus.publish(event)

    def instance(self, name: str) -> Any:
        """The component object for ``name`` (built on first use)."""
        inst = self._instances.get(name)
        if inst is None:
            spec = self.config.components[name]
            assert spec.class_path is not None  # the config loader guarantees it
            cls = load_component_class(spec.class_path)
            inst = self._instances[name] = cls(name, spec.settings)
        return inst

    def threads_for(self, name: str) -> WorkerThreads:
        """The worker threads of ``name`` (its own, kept across runs)."""
        threads = self._threads.get(name)
        if threads is None:
            threads = self._threads[name] = WorkerThreads(name)
        return threads

    def forget(self, name: str) -> None:
        """Drop the component object for ``name``; its next run builds a new one."""
        self._instances.pop(name, None)

    def never_started(self, run_id: str, name: str, why: str, result: RunResult) -> None:
        """Record a component whose run ended before it could be released."""
        now = self.clock()
        result.outcomes[name] = Settled(Status.NOT_STARTED, why)
        self.publish(
            ev.ComponentNotStarted(
                at=now,
                run_id=run_id,
                component=name,
                status=Status.NOT_STARTED.value,
                reason=why,
                started_at=now,
                duration_s=0.0,
                attempts=0,
            )
        )

    async def run(
        self,
        run_id: str,
        name: str,
        done: Done,
        run_expired: Callable[[], bool] = lambda: False,
        cancel_reason: Callable[[], str | None] = lambda: None,
    ) -> None:
        """Run ``name`` with its timeout and retries; call ``done`` once with how it ended."""
        reported = False

        def report(settled: Settled, lingering: set[asyncio.Future[Any]]) -> None:
            nonlocal reported
            if not reported:
                reported = True
                done(name, settled, lingering)

        try:
            await self._run(run_id, name, report, run_expired, cancel_reason)
        except asyncio.CancelledError:
            if not reported:  # cancelled before anything could be recorded
                self._record_bare(run_id, name, Status.CANCELLED, "cancelled", report)
            raise
        except BaseException as exc:  # a fault of ours: the component still ends, recorded
            log.error("runner_failed", component=name, error=repr(exc), exc_info=True)
            if not reported:
                self._record_bare(run_id, name, Status.FAILED, f"internal error: {exc!r}", report)

    def _record_bare(
        self,
        run_id: str,
        name: str,
        status: Status,
        error: str,
        report: Callable[[Settled, set[asyncio.Future[Any]]], None],
    ) -> None:
        """Record ``name`` as ended with ``status`` before anything else was recorded."""
        now = self.clock()
        self.publish(
            _EVENT_FOR[status](
                at=now,
                run_id=run_id,
                component=name,
                status=status.value,
                reason=error,
                started_at=now,
                duration_s=0.0,
                error=error,
            )
        )
        report(Settled(status, error), set())

    async def _run(
        self,
        run_id: str,
        name: str,
        report: Callable[[Settled, set[asyncio.Future[Any]]], None],
        run_expired: Callable[[], bool],
        cancel_reason: Callable[[], str | None],
    ) -> None:
        spec = self.config.components[name]
        started = self.clock()
        t0 = time.perf_counter()
        inputs = {dep: self.states[dep].fingerprint for dep in spec.dependencies}
        bind_component(run_id, name)
        # Monitoring: one shared sampler; API calls land in this task's call stats.
        sampler: ResourceSampler[RunProbe] | None = self.services.get("monitor")
        probe = sampler.start(name) if sampler is not None else None
        if probe is not None:
            current_call_stats.set(probe.calls)
        ctx = ComponentContext(
            run_id=run_id,
            spec=spec,
            config=self.config,
            previous=self.states[name],
            upstream={d: self.states[d] for d in spec.dependencies},
            emit=self.publish,
            clock=self.clock,
            services=self.services,
            threads=self.threads_for(name),
        )
        attempts = [1]
        steps = StepTimer(
            lambda s: ctx.log.warning(
                "event_loop_blocked", blocked_s=round(s, 3), limit_s=spec.timeout_s
            )
        )
        status, outcome, error = Status.FAILED, None, None
        cancelled: asyncio.CancelledError | None = None
        self.publish(ev.ComponentStarted(at=started, run_id=run_id, component=name, attempt=1))
        cm = asyncio.timeout(spec.timeout_s)
        try:
            async with cm:
                outcome = await attempt_until_done(
                    lambda: timed_steps(self.instance(name).run(ctx), steps),
                    ctx,
                    self.config.runtime,
                    self.publish,
                    attempts,
                    clock=self.clock,
                )
            status, error = _judge(outcome)
            if spec.export is not None and status is Status.SUCCEEDED:
                # A copy of what was just published; it never fails the run.
                decl = getattr(self.instance(name), "dataset_schema", None)
                outcome.metrics["export"] = await export_published(
                    name, spec.export, self.config.runtime.data_dir, decl
                )
        except asyncio.CancelledError as exc:
            # The whole run timed out, an operator cancelled, or the daemon stops.
            cancelled = exc
            status, error = self._cancelled_status(run_expired, exc, cancel_reason)
        except TimeoutError as exc:
            if cm.expired():
                status = Status.TIMED_OUT
                error = f"timed out after {spec.timeout_s:g} s (timeout_minutes)"
            else:  # the component's own timeout (an HTTP read, say), after its retries
                error = first_line(exc)
        except GiveUp as exc:
            error = str(exc)
        except ValidationFailedError as exc:
            error = first_line(exc)
            outcome = Outcome(status=Status.FAILED, quality=exc.report or None)
        except InterlockError as exc:
            # An expected failure (a 4xx, a bad payload): the outcome says why; a
            # traceback would only bury it.
            error = first_line(exc)
        except Exception as exc:
            error = first_line(exc)
            ctx.log.error("component_error", error=repr(exc), exc_info=True)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit... from a component
            error = f"{type(exc).__name__} raised by the component: {first_line(exc)}"
            ctx.log.error("component_error", error=repr(exc))
        elapsed = time.perf_counter() - t0
        if cancelled is None and status is not Status.TIMED_OUT and elapsed > spec.timeout_s:
            # The timeout could not fire: the component held the event loop past its limit.
            status = Status.TIMED_OUT
            error = (
                f"ran {elapsed:.1f} s, past its {spec.timeout_s:g} s limit (timeout_minutes); "
                f"it blocked the event loop for {steps.total_blocked_s:.1f} s"
            )
            outcome = None
        lingering: set[asyncio.Future[Any]] = set()
        interrupted: asyncio.CancelledError | None = None
        if not ctx.idle:  # most runs start no thread and register no cleanup
            lingering, interrupted = await close_within(ctx, self.budget)
        if interrupted is not None and cancelled is None:
            # An operator's cancel (or the shutdown) arrived during cleanup: it wins.
            cancelled = interrupted
            status, error = self._cancelled_status(run_expired, interrupted, cancel_reason)
            outcome = None
        self._finish(
            run_id, name, status, started, t0, attempts[0], outcome, error, inputs, ctx, probe
        )
        report(_settled(status, outcome, error), lingering)
        if cancelled is not None:
            raise cancelled

    def _cancelled_status(
        self,
        run_expired: Callable[[], bool],
        exc: asyncio.CancelledError,
        cancel_reason: Callable[[], str | None],
    ) -> tuple[Status, str]:
        if run_expired():
            limit = self.config.runtime.global_timeout_s
            return Status.TIMED_OUT, f"the run's global timeout ({limit:g} s) expired while it ran"
        # Who cancelled: the component's own cancel carries it, a whole run's the executor.
        said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else None
        return Status.CANCELLED, said or cancel_reason() or "cancelled before it finished"

    def _finish(
        self,
        run_id: str,
        name: str,
        status: Status,
        started: datetime,
        t0: float,
        attempts: int,
        outcome: Outcome | None,
        error: str | None,
        inputs: dict[str, str | None],
        ctx: ComponentContext,
        probe: RunProbe | None = None,
    ) -> None:
        metrics = outcome.metrics if outcome and outcome.metrics else None
        if probe is not None:
            try:
                metrics = self.services["monitor"].finish(
                    probe,
                    records=outcome.records if outcome else 0,
                    attempts=attempts,
                    extra=metrics,
                )
            except Exception as exc:  # measuring must never cost the outcome
                log.error("monitor_finish_failed", component=name, error=repr(exc))
        if status is Status.SKIPPED and outcome is not None:
            # The component chose not to run (e.g. quota_exhausted): a skip, not a finish.
            self.publish(
                ev.ComponentSkipped(
                    at=self.clock(),
                    run_id=run_id,
                    component=name,
                    reason=outcome.reason or "skipped",
                    detail=outcome.detail or "",
                )
            )
            return
        fingerprint = outcome.fingerprint if outcome else None
        if status is Status.SUCCEEDED and fingerprint is None:
            # Downstream change checks need something that differs per publish.
            fingerprint = f"run:{run_id}"
        reason = (outcome.reason if outcome else None) or error
        report = qualityshape.shape(outcome.quality) if outcome and outcome.quality else None
        if report and self.config.data_quality.get("quality_reports"):
            try:
                quality.write_report(
                    self.config.runtime.data_dir, name, run_id, started, status.value, report
                )
            except Exception as exc:  # the report file must never cost the outcome
                log.error("quality_report_write_failed", component=name, error=repr(exc))
        self.publish(
            _EVENT_FOR[status](
                at=self.clock(),
                run_id=run_id,
                component=name,
                status=status.value,
                reason=reason,
                started_at=started,
                duration_s=round(time.perf_counter() - t0, 6),
                records=outcome.records if outcome else 0,
                attempts=attempts,
                error=error,
                fingerprint=fingerprint,
                inputs=inputs,
                quality=report,
                metrics=metrics,
                memory=ctx.remembered if status.ok else None,
            )
        )


def _judge(outcome: Outcome) -> tuple[Status, str | None]:
    status = outcome.status
    if status not in (Status.SUCCEEDED, Status.UNCHANGED, Status.FAILED, Status.SKIPPED):
        return Status.FAILED, f"component returned an unexpected status {outcome.status!r}"
    if status is Status.FAILED:
        return status, outcome.reason or "the component reported a failure"
    return status, None


def _settled(status: Status, outcome: Outcome | None, error: str | None) -> Settled:
    if status is Status.SKIPPED and outcome is not None:
        return Settled(status, outcome.reason or "skipped")
    return Settled(status, (outcome.reason if outcome else None) or error)
