"""What a component is handed for one run: settings, state, logger, threads, cleanup.

The context owns the run's cancellation signal: worker threads started through
:meth:`ComponentContext.to_thread` see it set when the component times out or is
cancelled, and the context waits (bounded) for them to stop before cleanup runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import structlog

from interlock.events import Event, SignificantVolumeChange, utcnow
from interlock.kit import quality
from interlock.kit.change import ChangePolicy, volume_change
from interlock.kit.threads import WorkerThreads
from interlock.store.abc import ComponentState

if TYPE_CHECKING:
    from interlock.config.model import ComponentSpec, Config
    from interlock.kit.replay import Replay

P = ParamSpec("P")
T = TypeVar("T")

log = structlog.get_logger("interlock.context")

#: How long cleanup waits for a worker thread to notice its cancellation signal.
THREAD_STOP_GRACE_S = 10.0


@dataclass(kw_only=True)
class ComponentContext:
    """Everything a component needs and must not reimplement."""

    run_id: str
    spec: ComponentSpec
    config: Config
    previous: ComponentState
    upstream: Mapping[str, ComponentState]
    emit: Callable[[Event], None]
    clock: Callable[[], datetime] = utcnow
    services: Mapping[str, Any] = field(default_factory=dict)
    _cancel: threading.Event | None = None
    remembered: dict[str, Any] | None = None
    _log: Any = None
    threads: WorkerThreads | None = None
    _threads: set[asyncio.Future[Any]] = field(default_factory=set)
    _cleanups: list[Callable[[], Any]] = field(default_factory=list)

    @property
    def cancel(self) -> threading.Event:
        """Set when this run is cancelled or times out: worker threads must stop."""
        if self._cancel is None:
            self._cancel = threading.Event()
        return self._cancel

    @property
    def log(self) -> Any:
        """A logger bound to this run and component (bound on first use: it is not free)."""
        if self._log is None:
            self._log = structlog.get_logger("interlock.component").bind(
                run_id=self.run_id, component=self.spec.name
            )
        return self._log

    @property
    def idle(self) -> bool:
        """Whether closing has nothing to do (no threads started, no cleanups)."""
        return not self._threads and not self._cleanups

    @property
    def pending_threads(self) -> set[asyncio.Future[Any]]:
        """Futures of this run's worker threads that have not ended yet."""
        return {f for f in self._threads if not f.done()}

    @property
    def name(self) -> str:
        """The component's configured name."""
        return self.spec.name

    @property
    def settings(self) -> Mapping[str, Any]:
        """The component's own settings, secrets resolved."""
        return self.spec.settings

    @property
    def data_dir(self) -> Path:
        """Where published datasets live."""
        return self.config.runtime.data_dir

    @property
    def replay(self) -> Replay | None:
        """Set when this run rebuilds from the raw archive (``interlock replay``): no network."""
        return self.services.get("replay")

    @property
    def skip_change_detection(self) -> bool:
        """Whether change detection is switched off for this run (always, in a replay)."""
        if self.replay is not None:  # it re-publishes what it re-parses, unchanged or not
            return True
        return self.config.overrides.skip_change_detection or not self.config.change_detection.get(
            "enabled", True
        )

    @property
    def skip_data_quality(self) -> bool:
        """Whether data-quality rules are switched off for this run."""
        return self.config.overrides.skip_data_quality or not self.config.data_quality.get(
            "enabled", True
        )

    def judge_quality(
        self,
        stats: Mapping[str, int],
        report: dict[str, Any],
        *,
        records: int | None = None,
        errors_block: bool = False,
    ) -> list[str]:
        """This payload's data-quality verdict: the problems found (empty: it passes).

        Applies the configured rules (``data_quality``) to ``stats`` and, given
        ``records``, compares the count with the last publish: a change beyond
        ``threshold_percentage`` emits ``significant_volume_change``, a drop beyond
        ``max_record_drop_percentage`` is a problem. Fills ``report`` with
        ``volume``, ``rules`` and ``passed``. ``errors_block`` makes
        schema_validation the default (a validator whose ERRORs must never publish
        unless the configuration says otherwise).
        """
        policy = ChangePolicy.from_config(self.config.change_detection)
        drop: str | None = None
        if records is not None:
            volume = volume_change(self.previous.memory.get("records"), records, policy)
            report["volume"] = {
                "previous": volume.previous,
                "current": volume.current,
                "change_percent": volume.change_percent,
                "significant": volume.significant,
            }
            if volume.significant:
                self.emit(
                    SignificantVolumeChange(
                        run_id=self.run_id,
                        component=self.name,
                        previous=volume.previous or 0,
                        current=volume.current,
                        change_percent=volume.change_percent or 0.0,
                    )
                )
            if volume.drop_too_large:
                drop = (
                    f"record count dropped {-(volume.change_percent or 0):.1f}% (from "
                    f"{volume.previous} to {volume.current}), over max_record_drop_percentage "
                    f"{policy.max_record_drop_percentage:g}"
                )
        problems: list[str] = []
        if not self.skip_data_quality:
            rules = quality.rules_for(self.config.data_quality, self.name)
            if errors_block:
                rules.setdefault("schema_validation", True)
            checks = quality.evaluate(stats, rules, report)
            report["rules"] = checks
            problems = quality.failures(checks, report)
            if drop:
                problems.append(drop)
        report["passed"] = not problems
        return problems

    def remember(self, value: dict[str, Any]) -> None:
        """Keep ``value`` for the next run, saved only if this run succeeds."""
        self.remembered = value

    def on_cleanup(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` (sync or async) when the component ends, however it ends."""
        self._cleanups.append(fn)

    async def to_thread(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking ``fn`` in one of this component's worker threads.

        ``fn`` must check :attr:`cancel` regularly. On cancellation the signal is set
        and the thread is awaited (bounded) so cleanup never races a live writer; a
        thread that ignores it keeps the component ``stopping`` until it ends.
        """
        ctxvars = contextvars.copy_context()
        if self.threads is None:
            self.threads = WorkerThreads(self.spec.name)
        future = await self.threads.start(lambda: ctxvars.run(fn, *args, **kwargs))
        self._threads.add(future)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self.cancel.set()
            raise
        finally:
            if future.done():
                self._threads.discard(future)

    def next_attempt(self) -> None:
        """A fresh cancellation signal for a retry; the old one stays set for old threads."""
        if self._cancel is not None and self._cancel.is_set():
            self._cancel = threading.Event()

    async def close(self, grace_s: float = THREAD_STOP_GRACE_S) -> set[asyncio.Future[Any]]:
        """Stop worker threads, then run cleanups in reverse order. Never raises.

        Returns the futures of threads still running after ``grace_s`` (they ignored
        their signal): the caller keeps the component's slot until they end.
        """
        still: set[asyncio.Future[Any]] = set()
        if self._threads:
            self.cancel.set()
            pending = [f for f in self._threads if not f.done()]
            if pending:
                _, still = await asyncio.wait(pending, timeout=max(0.0, grace_s))
                if still:
                    self.log.error(
                        "worker_thread_did_not_stop",
                        threads=len(still),
                        grace_s=round(grace_s, 3),
                    )
            for f in self._threads:
                if f.done() and not f.cancelled():
                    f.exception()  # retrieved so asyncio does not warn; the outcome says why
            self._threads = set(still)
        for fn in reversed(self._cleanups):
            try:
                result = fn()
                if isinstance(result, Awaitable):
                    await result
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # a cleanup's SystemExit must not end the daemon
                self.log.error("cleanup_failed", error=repr(exc))
        self._cleanups.clear()
        return still


def bind_component(run_id: str, component: str) -> None:
    """Bind ``run_id`` and ``component`` to every log event of the calling task.

    Each component runs in its own task, whose context is a copy: nothing needs
    unbinding afterwards, and nothing leaks into other tasks.
    """
    structlog.contextvars.bind_contextvars(run_id=run_id, component=component)
