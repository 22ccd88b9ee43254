"""Events and the bus that carries them to history, logs, metrics and notifications.

Events are frozen keyword-only dataclasses with a timestamp. Each subscriber has
its own queue drained by its own task (:mod:`interlock.delivery`): a subscriber that
raises is logged and keeps its place; one that stalls loses events (counted and
logged) rather than ever blocking the scheduler, except a lossless one (history),
which keeps every event and retries a failed batch until it lands.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from interlock.delivery import (
    Backoff,
    LosslessSubscriber,
    Subscriber,
    SubscriberStats,
    written_or_failing,
)

log = structlog.get_logger("interlock.events")


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event."""

    at: datetime = dataclasses.field(default_factory=utcnow)

    @property
    def name(self) -> str:
        """Stable snake_case name used in logs and the watch stream."""
        return _NAMES[type(self)]

    def to_dict(
        self, *, skip: frozenset[str] = frozenset(), drop_none: bool = False
    ) -> dict[str, Any]:
        """A JSON-friendly mapping of the event, with its name (minus ``skip``)."""
        out: dict[str, Any] = {"event": _NAMES[type(self)]}
        for name in _field_names(type(self)):
            if name in skip:
                continue
            value = getattr(self, name)
            if value is None and drop_none:
                continue
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    run_id: str
    trigger: str
    components: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    run_id: str
    status: str
    started_at: datetime
    duration_s: float
    counts: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class ComponentStarted(Event):
    run_id: str
    component: str
    attempt: int


@dataclass(frozen=True, kw_only=True)
class ComponentRetrying(Event):
    run_id: str
    component: str
    attempt: int
    delay_s: float
    error: str


_T = TypeVar("_T", bound=type)


def _frozen_setattr(self: object, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _same_fields(cls: _T) -> _T:
    """A subclass that adds no field to its dataclass base.

    It inherits the base's generated ``__init__``, ``__repr__``, ``__eq__`` and
    ``__hash__`` (each names and compares ``type(self)``) rather than having
    ``@dataclass`` compile its own: every dataclass execs its methods' source at import,
    which bytecode caching cannot save, and the event classes were the largest part of
    what importing this module cost. Assigning or deleting any attribute still raises.
    """
    cls.__setattr__ = _frozen_setattr  # type: ignore[assignment,method-assign]
    cls.__delattr__ = _frozen_delattr  # type: ignore[assignment,method-assign]
    return cls


@dataclass(frozen=True, kw_only=True)
class ComponentFinished(Event):
    """Base of the terminal events of a component that was started."""

    run_id: str
    component: str
    status: str
    reason: str | None
    started_at: datetime
    duration_s: float
    records: int = 0
    attempts: int = 1
    error: str | None = None
    fingerprint: str | None = None
    inputs: dict[str, str | None] | None = None
    quality: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None


@_same_fields
class ComponentSucceeded(ComponentFinished):
    pass


@_same_fields
class ComponentUnchanged(ComponentFinished):
    pass


@_same_fields
class ComponentFailed(ComponentFinished):
    pass


@_same_fields
class ComponentTimedOut(ComponentFinished):
    pass


@_same_fields
class ComponentCancelled(ComponentFinished):
    pass


@_same_fields
class ComponentNotStarted(ComponentFinished):
    """Chosen for a run that ended before its turn: no attempt, no failure of its own."""


@dataclass(frozen=True, kw_only=True)
class ComponentSkipped(Event):
    run_id: str
    component: str
    reason: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class SignificantVolumeChange(Event):
    run_id: str
    component: str
    previous: int
    current: int
    change_percent: float


@dataclass(frozen=True, kw_only=True)
class ComponentQuarantined(Event):
    run_id: str
    component: str
    path: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class QuotaWarning(Event):
    """The day's API calls reached a warning threshold of the daily limit."""

    threshold_percent: float
    used: int
    limit: int
    reset_at: datetime


@dataclass(frozen=True, kw_only=True)
class ConfigReloaded(Event):
    source: str
    applied: bool
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class ComponentPaused(Event):
    """An operator paused a component (``actor``: who, through what; ``uid``: the admin peer's)."""

    component: str
    uid: int | None = None
    actor: str | None = None


@dataclass(frozen=True, kw_only=True)
class ComponentResumed(Event):
    """An operator resumed a paused component."""

    component: str
    uid: int | None = None
    actor: str | None = None


@dataclass(frozen=True, kw_only=True)
class ThresholdBreached(Event):
    """A finished run exceeded a performance threshold: what was measured and the limit."""

    run_id: str
    component: str
    metric: str
    measured: float
    limit: float
    unit: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class ThresholdRecovered(Event):
    """A breached threshold is met again (announced once, after its breach)."""

    run_id: str
    component: str
    metric: str
    measured: float
    limit: float
    unit: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class NotificationSent(Event):
    """A notification reached its channel (email, slack)."""

    channel: str
    kind: str
    component: str | None = None


@dataclass(frozen=True, kw_only=True)
class NotificationFailed(Event):
    """A channel refused or could not be reached; the message is retried after ``retry_in_s``."""

    channel: str
    kind: str
    component: str | None
    error: str
    attempt: int
    retry_in_s: float


_NAMES: dict[type[Event], str] = {
    RunStarted: "run_started",
    RunFinished: "run_finished",
    ComponentStarted: "component_started",
    ComponentRetrying: "component_retrying",
    ComponentSucceeded: "component_succeeded",
    ComponentUnchanged: "component_unchanged",
    ComponentFailed: "component_failed",
    ComponentTimedOut: "component_timed_out",
    ComponentCancelled: "component_cancelled",
    ComponentNotStarted: "component_not_started",
    ComponentSkipped: "component_skipped",
    SignificantVolumeChange: "significant_volume_change",
    ComponentQuarantined: "component_quarantined",
    ConfigReloaded: "config_reloaded",
    ComponentPaused: "component_paused",
    ComponentResumed: "component_resumed",
    QuotaWarning: "quota_warning",
    ThresholdBreached: "threshold_breached",
    ThresholdRecovered: "threshold_recovered",
    NotificationSent: "notification_sent",
    NotificationFailed: "notification_failed",
}


Handler = Callable[[Sequence[Event]], Awaitable[None]]


class EventBus:
    """Fan-out of events to independent subscribers, each with its own queue and task.

    Handlers receive batches (everything queued when they wake) so a writer can
    commit many events in one transaction. How a batch reaches its handler, and what
    a lossless subscriber does when it fails, is :mod:`interlock.delivery`.
    """

    def __init__(self) -> None:
        self._subs: list[Subscriber[Event]] = []
        self._closed = False

    def subscribe(
        self,
        name: str,
        handler: Handler,
        *,
        maxsize: int = 10_000,
        lossless: bool = False,
        backoff: Backoff | None = None,
    ) -> None:
        """Add a subscriber; its task starts at once (a loop must be running).

        A ``lossless`` subscriber (history) never drops an event: its queue has no
        bound (``maxsize`` does not apply) and a batch its handler fails is handed
        over again after ``backoff`` until it lands.
        """
        sub: Subscriber[Event] = (
            LosslessSubscriber(name, handler, backoff=backoff)
            if lossless
            else Subscriber(name, handler, maxsize)
        )
        self._subs.append(sub)
        sub.task = asyncio.get_running_loop().create_task(sub.drain(), name=f"subscriber {name!r}")

    def publish(self, event: Event) -> None:
        """Queue ``event`` for every subscriber; never blocks, never raises."""
        for sub in self._subs:
            sub.offer(event)

    def stats(self) -> dict[str, SubscriberStats]:
        """Each subscriber's queued, dropped, retried and lost events, by name."""
        return {sub.name: sub.stats() for sub in self._subs}

    async def flush(self, limit_s: float = 10.0) -> bool:
        """Wait until every subscriber has handled what was queued; False on timeout."""
        try:
            async with asyncio.timeout(limit_s):
                for sub in self._subs:
                    await sub.idle.wait()
        except TimeoutError:
            stalled = [s for s in self._subs if not s.idle.is_set()]
            log.warning(
                "subscriber_flush_timeout",
                subscribers=[s.name for s in stalled],
                unwritten={s.name: s.unwritten for s in stalled},
                timeout_s=limit_s,
            )
            return False
        return True

    async def landed(self, limit_s: float) -> bool:
        """Wait (at most ``limit_s``) for healthy lossless subscribers to write what they hold."""
        lossless = [s for s in self._subs if isinstance(s, LosslessSubscriber)]
        waits = [written_or_failing(s) for s in lossless]  # a busy store: its rows land later
        try:
            await asyncio.wait_for(asyncio.gather(*waits), limit_s)
        except TimeoutError:
            return False
        return True

    async def close(self, limit_s: float = 10.0) -> None:
        """Flush (at most ``limit_s``), then stop every subscriber task. Idempotent.

        What a lossless subscriber could not write by then is counted in an error.
        """
        if self._closed:
            return
        self._closed = True
        if not await self.flush(limit_s):
            for sub in self._subs:
                sub.give_up(limit_s)
        for sub in self._subs:
            if sub.task is not None:
                sub.task.cancel()
        await asyncio.gather(*(s.task for s in self._subs if s.task), return_exceptions=True)
