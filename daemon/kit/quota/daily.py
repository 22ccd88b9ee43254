"""The daily call budget: one quota day's counters, pure functions over them, and their JSON.

A day ends at local midnight in the configured time zone (:func:`next_reset`, DST-aware);
:func:`roll` starts a fresh day once it has passed. The counters persist in the state
store as the JSON of :func:`usage_to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo


def next_reset(now: datetime, tz: ZoneInfo) -> datetime:
    """The next local midnight after ``now`` in ``tz``, in UTC (DST-aware).

    Where midnight does not exist (a DST gap at 00:00) the day starts at the first
    instant that does; where it happens twice, at the first of them.
    """
    day = now.astimezone(tz).date()
    for ahead in (1, 2):
        local = datetime.combine(day + timedelta(days=ahead), time(0), tzinfo=tz)
        # Normalising through UTC resolves a non-existent wall time to the real instant.
        candidate = local.astimezone(UTC)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: two days ahead is always after now")


@dataclass(frozen=True)
class DailyUsage:
    """The calls made in the current quota day, which ends at ``reset_at``."""

    day: str
    reset_at: datetime
    used: int = 0
    by_endpoint: Mapping[str, int] = field(default_factory=dict)
    refused: Mapping[str, int] = field(default_factory=dict)
    warned: tuple[float, ...] = ()
    #: With a ``retry_after_quota`` duration: when non-priority calls are tried again.
    resume_at: datetime | None = None


def roll(usage: DailyUsage | None, now: datetime, tz: ZoneInfo) -> DailyUsage:
    """``usage``, or a fresh day when there is none or its reset time has passed."""
    if usage is not None and now < usage.reset_at:
        return usage
    return DailyUsage(day=now.astimezone(tz).date().isoformat(), reset_at=next_reset(now, tz))


def pause(usage: DailyUsage, now: datetime, seconds: float) -> DailyUsage:
    """``usage`` with non-priority calls held ``seconds`` from ``now`` (or to the reset).

    An existing pause is kept: refusals during it do not push it further out.
    """
    if usage.resume_at is not None:
        return usage
    return replace(usage, resume_at=min(now + timedelta(seconds=seconds), usage.reset_at))


def resume(usage: DailyUsage, now: datetime) -> DailyUsage:
    """``usage`` with its pause lifted once it has ended (else unchanged).

    The day's count stands: ``daily_limit`` is a hard cap per local day, so a pause
    that ends before midnight never opens a second budget.
    """
    if usage.resume_at is None or now < usage.resume_at:
        return usage
    return replace(usage, resume_at=None)


def hold_to_reset(usage: DailyUsage) -> DailyUsage:
    """``usage`` with non-priority calls held until the reset (our own count is spent)."""
    if usage.resume_at == usage.reset_at:
        return usage
    return replace(usage, resume_at=usage.reset_at)


def admits(usage: DailyUsage, limit: int, *, priority: bool) -> bool:
    """Whether one more call fits the daily budget and no pause holds it (priority
    endpoints always do). Lift an ended pause with :func:`resume` first."""
    return priority or (usage.used < limit and usage.resume_at is None)


def held_until(
    usage: DailyUsage | None, limit: int, now: datetime, tz: ZoneInfo
) -> datetime | None:
    """When non-priority calls are admitted again, if the quota refuses them at ``now``
    (None: it admits them now)."""
    day = resume(roll(usage, now, tz), now)
    if admits(day, limit, priority=False):
        return None
    return day.resume_at or day.reset_at


def count(usage: DailyUsage, endpoint: str, calls: int = 1) -> DailyUsage:
    """``usage`` with ``calls`` more calls to ``endpoint``."""
    by = dict(usage.by_endpoint)
    by[endpoint] = by.get(endpoint, 0) + calls
    return replace(usage, used=usage.used + calls, by_endpoint=by)


def refuse(usage: DailyUsage, endpoint: str) -> DailyUsage:
    """``usage`` with one more call to ``endpoint`` refused for the budget."""
    refused = dict(usage.refused)
    refused[endpoint] = refused.get(endpoint, 0) + 1
    return replace(usage, refused=refused)


def crossed(
    used: int, limit: int, thresholds: Sequence[float], warned: Sequence[float]
) -> tuple[float, ...]:
    """The warning thresholds (percent) reached at ``used`` and not yet announced."""
    percent = 100.0 * used / limit
    return tuple(t for t in sorted(thresholds) if percent >= t and t not in warned)


def usage_to_json(usage: DailyUsage) -> dict[str, Any]:
    """``usage`` as the JSON object stored in the state store."""
    return {
        "day": usage.day,
        "reset_at": usage.reset_at.isoformat(),
        "used": usage.used,
        "by_endpoint": dict(usage.by_endpoint),
        "refused": dict(usage.refused),
        "warned": list(usage.warned),
        "resume_at": usage.resume_at.isoformat() if usage.resume_at else None,
    }


def usage_from_json(doc: Any) -> DailyUsage | None:
    """A stored day, or None when the stored value is missing or unreadable."""
    if not isinstance(doc, dict):
        return None
    try:
        return DailyUsage(
            day=str(doc["day"]),
            reset_at=datetime.fromisoformat(doc["reset_at"]),
            used=int(doc.get("used", 0)),
            by_endpoint={str(k): int(v) for k, v in dict(doc.get("by_endpoint", {})).items()},
            refused={str(k): int(v) for k, v in dict(doc.get("refused", {})).items()},
            warned=tuple(float(t) for t in doc.get("warned", [])),
            resume_at=datetime.fromisoformat(doc["resume_at"]) if doc.get("resume_at") else None,
        )
    except (KeyError, TypeError, ValueError):
        return None
