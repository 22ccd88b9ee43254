"""The async guard over the quota: :class:`QuotaGuard` paces calls and keeps the day's count.

Callers ``await guard.acquire(endpoint)`` and wait for a token; the decisions come from
:mod:`.bucket` (the rate) and :mod:`.daily` (the budget), and the day's counters live
in the state store across restarts. :func:`describe` is what ``status`` shows.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from interlock import events as ev
from interlock.cadence import human_time
from interlock.config.durations import duration_seconds
from interlock.errors import FetchError, QuotaExhaustedError, TransientError
from interlock.kit.quota.bucket import RateLimit, give_back, reserve, tokens_available, unreturned
from interlock.kit.quota.daily import (
    DailyUsage,
    admits,
    count,
    crossed,
    held_until,
    hold_to_reset,
    pause,
    refuse,
    resume,
    roll,
    usage_from_json,
    usage_to_json,
)
from interlock.kit.quota.shared import Taken, before, give, take_shielded
from interlock.store.abc import SharedQuota, StateStore

log = structlog.get_logger("interlock.quota")

META_KEY = "quota"
DEFAULT_DAILY_LIMIT = 1000
DEFAULT_THRESHOLDS = (80.0, 95.0)


@dataclass(frozen=True)
class QuotaSettings:
    """``quota_management`` from the config, with its defaults filled in."""

    enabled: bool = True
    daily_limit: int = DEFAULT_DAILY_LIMIT
    priority: frozenset[str] = frozenset()
    rate: RateLimit = RateLimit()  # noqa: RUF009 - immutable frozen dataclass
    family_rates: Mapping[str, RateLimit] = field(default_factory=dict)
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    retry_after_quota: bool = True
    #: ``retry_after_quota`` as a duration: how long non-priority endpoints wait once the
    #: server says its quota is spent (capped at the reset). Our own count spent holds
    #: them until the reset: ``daily_limit`` is a hard cap per local day.
    quota_pause_s: float | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> QuotaSettings:
        def rate_of(doc: Mapping[str, Any], base: RateLimit) -> RateLimit:
            return RateLimit(
                int(doc.get("calls", base.calls)), float(doc.get("per_seconds", base.per_seconds))
            )

        rate = rate_of(section.get("rate_limit", {}), RateLimit())
        retry = section.get("retry_after_quota", True)
        return cls(
            enabled=bool(section.get("enabled", True)),
            daily_limit=int(section.get("daily_limit", DEFAULT_DAILY_LIMIT)),
            priority=frozenset(section.get("priority_endpoints", ())),
            rate=rate,
            family_rates={
                k: rate_of(v, rate) for k, v in dict(section.get("family_rate_limits", {})).items()
            },
            thresholds=tuple(
                float(t) for t in section.get("warning_thresholds_percent", DEFAULT_THRESHOLDS)
            ),
            retry_after_quota=bool(retry),
            quota_pause_s=None if isinstance(retry, bool) else duration_seconds(retry),
        )

    def rate_for(self, family: str) -> RateLimit:
        return self.family_rates.get(family, self.rate)


def describe(
    settings: QuotaSettings,
    usage: DailyUsage | None,
    spent: Mapping[str, Sequence[float]],
    now: datetime,
    tz: ZoneInfo,
) -> dict[str, Any]:
    """What ``status`` shows about the quota at ``now`` (JSON-friendly)."""
    day = resume(roll(usage, now, tz), now)
    if settings.quota_pause_s is not None and day.used >= settings.daily_limit:
        day = hold_to_reset(day)
    endpoints = sorted(set(day.by_endpoint) | set(day.refused) | set(settings.priority))
    stamp = now.timestamp()
    return {
        "enabled": settings.enabled,
        "day": day.day,
        "reset_at": day.reset_at.astimezone(tz).isoformat(),
        "daily_limit": settings.daily_limit,
        "used": day.used,
        "left": max(0, settings.daily_limit - day.used),
        "used_percent": round(100.0 * day.used / settings.daily_limit, 1),
        "exhausted": day.used >= settings.daily_limit,
        "warned_at_percent": list(day.warned),
        "resume_at": day.resume_at.astimezone(tz).isoformat() if day.resume_at else None,
        "endpoints": {
            name: {
                "calls": day.by_endpoint.get(name, 0),
                "refused": day.refused.get(name, 0),
                "priority": name in settings.priority,
            }
            for name in endpoints
        },
        "rate": {
            family: {
                "calls": settings.rate_for(family).calls,
                "per_seconds": settings.rate_for(family).per_seconds,
                "available": tokens_available(times, stamp, settings.rate_for(family)),
            }
            for family, times in sorted(spent.items())
        },
    }


_QUOTA_REPLY = re.compile(r"answered (?:403|429)\b.*\bquota\b", re.IGNORECASE | re.DOTALL)


def quota_reply(exc: BaseException) -> bool:
    """Whether a refused call is the server saying its quota is spent: a 403 or 429
    whose body speaks of the quota, not a bare rate-limit 429."""
    return isinstance(exc, (TransientError, FetchError)) and bool(_QUOTA_REPLY.search(str(exc)))


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class QuotaGuard:
    """Paces API calls: ``await guard.acquire(endpoint, family=...)`` before each call.

    Waiting for a token happens inside the caller's task, so it counts against the
    caller's timeout; a caller cancelled while waiting gives its token and its call
    back. ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        section: Mapping[str, Any],
        tz: ZoneInfo,
        store: StateStore | None = None,
        *,
        emit: Callable[[ev.Event], None] | None = None,
        clock: Callable[[], datetime] = ev.utcnow,
        sleep: Callable[[float], Awaitable[None]] = _sleep,
    ) -> None:
        self.settings = QuotaSettings.from_config(section)
        self.tz = tz
        self.store = store
        self.shared = store if isinstance(store, SharedQuota) else None  # counts atomically
        self.emit = emit
        self.clock = clock
        self.sleep = sleep
        self.usage: DailyUsage | None = None
        self.spent: dict[str, tuple[float, ...]] = {}
        self.blocked: dict[str, float] = {}
        self._dirty = False
        self._saver: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Load the day's counters and recent rate tokens from the store."""
        if self.store is None:
            return
        doc = await self.store.get_meta(META_KEY)
        if isinstance(doc, dict):
            self.usage = usage_from_json(doc.get("day"))
            spent = doc.get("spent", {})
            if isinstance(spent, dict):
                self.spent = {str(k): tuple(float(t) for t in v) for k, v in spent.items()}
        self.usage = roll(self.usage, self.clock(), self.tz)
        if self.shared is not None:  # the shared count is the truth; the doc only mirrors it
            calls = await self.shared.day_calls(self.usage.day)
            self.usage = replace(self.usage, used=sum(calls.values()), by_endpoint=calls)

    def today(self) -> DailyUsage:
        """The current day's usage (rolled over if midnight has passed)."""
        now = self.clock()
        self.usage = resume(roll(self.usage, now, self.tz), now)
        return self.usage

    def exhausted(self) -> bool:
        """Whether non-priority calls are refused until the next reset."""
        return self.settings.enabled and not admits(
            self.today(), self.settings.daily_limit, priority=False
        )

    def held_until(self, now: datetime | None = None) -> datetime | None:
        """When non-priority calls are tried again, if they are refused now (None: they
        are not). Reads the counters without changing them, for ``plan``."""
        if not self.settings.enabled:
            return None
        now = now or self.clock()
        return held_until(self.usage, self.settings.daily_limit, now, self.tz)

    def is_priority(self, endpoint: str) -> bool:
        return endpoint in self.settings.priority

    async def acquire(self, endpoint: str, *, family: str = "default") -> float:
        """Wait for a token for one call to ``endpoint``; return the seconds waited.

        Raises :class:`QuotaExhaustedError` at once when the daily budget is spent (or
        the API's own quota refusal paused calls) and ``endpoint`` is not a priority one.
        """
        now = self.clock()
        usage = self.today()
        limit = self.settings.daily_limit
        if self.settings.enabled and not admits(usage, limit, priority=self.is_priority(endpoint)):
            raise self._refused(usage, endpoint)
        rate = self.settings.rate_for(family)
        stamp = now.timestamp()
        at = stamp
        taken: Taken | None = None
        if (shared := self.shared) is not None and self.settings.enabled:
            cap = None if self.is_priority(endpoint) else limit
            held = self.blocked.get(family, 0.0)
            taken = await take_shielded(shared, usage.day, endpoint, family, cap, stamp, rate, held)
            if taken is None:  # the daemons sharing the store spent the day's budget
                raise self._refused(replace(usage, used=max(usage.used, limit)), endpoint)
            at = taken.at
            self.spent[family] = (*unreturned(self.spent.get(family, ()), stamp, rate), at)
            usage = before(usage, taken)
        elif self.settings.enabled:
            spent, at = reserve(
                self.spent.get(family, ()), stamp, rate, self.blocked.get(family, 0.0)
            )
            self.spent[family] = spent
        self.usage = count(usage, endpoint)
        held = self.usage.resume_at
        if self.settings.quota_pause_s is not None and self.usage.used >= limit:
            # The call that spends the budget exactly starts the pause, not a later refusal.
            self.usage = hold_to_reset(self.usage)
        started = self.usage.resume_at if held is None else None
        self._changed()
        self._warn_if_crossed()
        wait = max(0.0, at - stamp)
        waited = 0.0
        try:
            while wait > 0:
                await self.sleep(wait)
                waited += wait
                # A 429 that arrived while this caller waited (penalise) holds it too: no
                # call goes out inside a Retry-After window, however early it queued.
                wait = self.blocked.get(family, 0.0) - self.clock().timestamp()
        except BaseException:
            self.spent[family] = give_back(self.spent.get(family, ()), at)
            if taken is not None and self.shared is not None:
                await asyncio.shield(give(self.shared, taken))
            if self.usage is not None and self.usage.day == usage.day:
                self.usage = count(self.usage, endpoint, -1)
                if started is not None and self.usage.resume_at == started:
                    self.usage = replace(self.usage, resume_at=None)  # its pause goes too
            self._changed()
            raise
        return waited

    def refused_by_server(self, endpoint: str) -> datetime:
        """The API answered that its quota is spent while our count had room: hold
        non-priority calls for ``retry_after_quota`` (to the reset at most; without a
        duration, to the reset), then try them again. Returns when they resume."""
        now = self.clock()
        usage = self.today()
        seconds = self.settings.quota_pause_s
        if seconds is None:
            seconds = (usage.reset_at - now).total_seconds()
        usage = pause(usage, now, seconds)
        self.usage = refuse(usage, endpoint)
        self._changed()
        assert usage.resume_at is not None
        log.warning(
            "quota_refused_by_server",
            endpoint=endpoint,
            used=usage.used,
            limit=self.settings.daily_limit,
            resume_at=usage.resume_at.astimezone(self.tz).isoformat(),
        )
        return usage.resume_at

    def _refused(self, usage: DailyUsage, endpoint: str) -> QuotaExhaustedError:
        """Count a refusal of ``endpoint``; the error to raise."""
        if self.settings.quota_pause_s is not None and usage.used >= self.settings.daily_limit:
            usage = hold_to_reset(usage)
        self.usage = refuse(usage, endpoint)
        self._changed()
        return self._refusal(usage, endpoint)

    def _refusal(self, usage: DailyUsage, endpoint: str) -> QuotaExhaustedError:
        until = usage.resume_at or usage.reset_at
        at = human_time(until, self.tz)
        limit = self.settings.daily_limit
        if usage.used < limit:
            return QuotaExhaustedError(
                f"the API answered that its quota is spent ({usage.used} of {limit} calls "
                f"counted today); endpoint {endpoint!r} is skipped until the "
                f"retry_after_quota pause ends at {at} (list it in "
                "quota_management.priority_endpoints to keep calling it)",
                reset_at=until,
            )
        return QuotaExhaustedError(
            f"daily API quota of {limit} calls is used up ({usage.used} calls); endpoint "
            f"{endpoint!r} is skipped until the reset at {at} (raise "
            "quota_management.daily_limit or list it in priority_endpoints)",
            reset_at=until,
        )

    def penalise(self, family: str, seconds: float) -> None:
        """Hold every token of ``family`` for ``seconds`` (the source answered 429)."""
        until = self.clock().timestamp() + max(0.0, seconds)
        self.blocked[family] = max(self.blocked.get(family, 0.0), until)
        log.warning("quota_rate_penalised", family=family, seconds=round(seconds, 3))

    def describe(self) -> dict[str, Any]:
        """The quota as ``status`` shows it."""
        return describe(self.settings, self.usage, self.spent, self.clock(), self.tz)

    def _warn_if_crossed(self) -> None:
        usage = self.usage
        assert usage is not None
        limit = self.settings.daily_limit
        new = crossed(usage.used, limit, self.settings.thresholds, usage.warned)
        if not new:
            return
        self.usage = replace(usage, warned=(*usage.warned, *new))
        for threshold in new:
            if self.emit is None:  # with a bus, its log subscriber logs quota_warning
                log.warning(
                    "quota_warning", threshold_percent=threshold, used=usage.used, limit=limit
                )
            else:
                self.emit(
                    ev.QuotaWarning(
                        at=self.clock(),
                        threshold_percent=threshold,
                        used=usage.used,
                        limit=limit,
                        reset_at=usage.reset_at,
                    )
                )

    # Saving is coalesced: one write in flight at a time, and another only if
    # something changed meanwhile, so a burst of calls costs a few writes.
    def _changed(self) -> None:
        self._dirty = True
        if self.store is None or (self._saver is not None and not self._saver.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._saver = loop.create_task(self._save_loop(), name="quota saver")

    async def _save_loop(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self._write()
            except Exception as exc:
                log.error("quota_save_failed", error=repr(exc))
                return

    async def _write(self) -> None:
        assert self.store is not None
        stamp = self.clock().timestamp()
        spent = {
            fam: list(unreturned(times, stamp, self.settings.rate_for(fam)))
            for fam, times in self.spent.items()
        }
        doc = {"day": usage_to_json(self.today()), "spent": spent}
        await self.store.set_meta(META_KEY, doc)

    async def flush(self) -> None:
        """Write what is pending now (before the store closes)."""
        if self._saver is not None:
            await asyncio.shield(self._saver)
        if self._dirty and self.store is not None:
            self._dirty = False
            await self._write()

    async def aclose(self) -> None:
        """Persist the counters. Idempotent."""
        await self.flush()
