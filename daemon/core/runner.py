"""Runs one component once: timeout, retries with backoff, cleanup, and its outcome event.

Whatever happens (success, failure, timeout, cancellation) exactly one terminal
event is published and the component's context is closed, so worker threads have
stopped and staged data is gone before the slot is released.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog

from interlock import events as ev
from interlock.config.model import Config
from interlock.config.registry import load_component_class
from interlock.core.decisions import Settled, backoff_delay
from interlock.errors import InterlockError, TransientError, ValidationFailedError
from interlock.events import EventBus, utcnow
from interlock.kit.context import ComponentContext, bind_component
from interlock.kit.http import current_call_stats
from interlock.outcome import Outcome, Status
from interlock.store.abc import ComponentState

if TYPE_CHECKING:
    from interlock.core.abc import ResourceSampler, RunProbe
    from interlock.core.runs import RunResult

log = structlog.get_logger("interlock.runner")

#: How long a cancelled component may spend in cleanup before it is abandoned.
CLEANUP_LIMIT_S = 30.0

_EVENT_FOR: dict[Status, type[ev.ComponentFinished]] = {
    Status.SUCCEEDED: ev.ComponentSucceeded,
    Status.UNCHANGED: ev.ComponentUnchanged,
    Status.FAILED: ev.ComponentFailed,
    Status.TIMED_OUT: ev.ComponentTimedOut,
    Status.CANCELLED: ev.ComponentCancelled,
}

# Network-level failures that are worth another attempt.
_TRANSIENT = (
    TransientError,
    aiohttp.ClientConnectionError,
    aiohttp.ServerTimeoutError,
    ConnectionError,
    TimeoutError,
)


def first_line(exc: BaseException) -> str:
    """An exception as one line: its type when the message says nothing."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__


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
        self._instances: dict[str, Any] = {}

    def publish(self, event: ev.Event) -> None:
        """Apply the event to in-memory state, then hand it to the bus."""
        change = ev.component_state_changes(event)
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

    def forget(self, name: str) -> None:
        """Drop the component object for ``name``; its next run builds a new one."""
        self._instances.pop(name, None)

    def never_started(self, run_id: str, name: str, status: str, result: RunResult) -> None:
        """Record a component whose run ended before it could be released."""
        now = self.clock()
        result.outcomes[name] = Settled(Status(status))
        event_type = _EVENT_FOR[Status(status)]
        self.publish(
            event_type(
                at=now,
                run_id=run_id,
                component=name,
                status=status,
                reason="the run ended before this component was released",
                started_at=now,
                duration_s=0.0,
                attempts=0,
            )
        )

    async def run(
        self,
        run_id: str,
        name: str,
        done: Callable[[str, Settled], None],
        run_expired: Callable[[], bool] = lambda: False,
    ) -> None:
        """Run ``name`` with its timeout and retries; call ``done`` with how it ended."""
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
        )
        status, outcome, error, attempt = Status.FAILED, None, None, 1
        self.publish(ev.ComponentStarted(at=started, run_id=run_id, component=name, attempt=1))
        cm = asyncio.timeout(spec.timeout_s)
        try:
            async with cm:
                outcome, attempt = await self._attempts(ctx, run_id, name)
            status = outcome.status
            if status not in (Status.SUCCEEDED, Status.UNCHANGED, Status.FAILED, Status.SKIPPED):
                status = Status.FAILED
                error = f"component returned an unexpected status {outcome.status!r}"
            elif status is Status.FAILED:
                error = outcome.reason or "the component reported a failure"
        except TimeoutError:
            if not cm.expired():
                raise
            status = Status.TIMED_OUT
            error = f"timed out after {spec.timeout_s:g} s (timeout_minutes)"
        except asyncio.CancelledError:
            # The whole run timed out, an operator cancelled, or the daemon stops.
            await self._close_shielded(ctx)
            if run_expired():
                status = Status.TIMED_OUT
                error = (
                    f"the run's global timeout ({self.config.runtime.global_timeout_s:g}"
                    " s) expired while it ran"
                )
            else:
                status, error = Status.CANCELLED, "cancelled before it finished"
            self._finish(
                run_id, name, status, started, t0, attempt, None, error, inputs, ctx, done, probe
            )
            raise
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
        await self._close_shielded(ctx)
        self._finish(
            run_id, name, status, started, t0, attempt, outcome, error, inputs, ctx, done, probe
        )

    async def _attempts(self, ctx: ComponentContext, run_id: str, name: str) -> tuple[Outcome, int]:
        spec = ctx.spec
        rt = self.config.runtime
        attempt = 1
        while True:
            try:
                outcome = await self.instance(name).run(ctx)
                if not isinstance(outcome, Outcome):
                    raise TypeError(f"component {name!r} returned {outcome!r}, not an Outcome")
                return outcome, attempt
            except _TRANSIENT as exc:
                if attempt > spec.retries:
                    raise
                retry_after = exc.retry_after if isinstance(exc, TransientError) else None
                delay = backoff_delay(
                    attempt, rt.retry_backoff_s, rt.retry_backoff_max_s, retry_after
                )
                self.publish(
                    ev.ComponentRetrying(
                        at=self.clock(),
                        run_id=run_id,
                        component=name,
                        attempt=attempt,
                        delay_s=round(delay, 3),
                        error=first_line(exc),
                    )
                )
                await ctx.close()
                ctx.cancel.clear()
                await asyncio.sleep(delay)
                attempt += 1
                self.publish(
                    ev.ComponentStarted(
                        at=self.clock(), run_id=run_id, component=name, attempt=attempt
                    )
                )

    async def _close_shielded(self, ctx: ComponentContext) -> None:
        # Cleanup must finish even while this task is being cancelled, within a limit.
        if ctx.idle:
            return
        task = asyncio.ensure_future(ctx.close())
        try:
            async with asyncio.timeout(CLEANUP_LIMIT_S):
                await asyncio.shield(task)
        except (TimeoutError, asyncio.CancelledError):
            await asyncio.wait({task}, timeout=CLEANUP_LIMIT_S)

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
        done: Callable[[str, Settled], None],
        probe: RunProbe | None = None,
    ) -> None:
        metrics = outcome.metrics if outcome and outcome.metrics else None
        if probe is not None:
            metrics = self.services["monitor"].finish(
                probe,
                records=outcome.records if outcome else 0,
                attempts=attempts,
                extra=metrics,
            )
        if status is Status.SKIPPED and outcome is not None:
            # The component chose not to run (e.g. quota_exhausted): a skip, not a finish.
            skip = outcome.reason or "skipped"
            self.publish(
                ev.ComponentSkipped(
                    at=self.clock(),
                    run_id=run_id,
                    component=name,
                    reason=skip,
                    detail=outcome.detail or "",
                )
            )
            done(name, Settled(status, skip))
            return
        fingerprint = outcome.fingerprint if outcome else None
        if status is Status.SUCCEEDED and fingerprint is None:
            # Downstream change checks need something that differs per publish.
            fingerprint = f"run:{run_id}"
        event_type = _EVENT_FOR[status]
        reason = (outcome.reason if outcome else None) or error
        self.publish(
            event_type(
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
                quality=outcome.quality if outcome else None,
                metrics=metrics,
                memory=ctx.remembered if status.ok else None,
            )
        )
        done(name, Settled(status, reason))
