"""The API quota: a daily call budget and a rate limit per endpoint family.

``bucket`` is the rate (a token bucket), ``daily`` the day's counters, both pure
functions of time and state; ``guard`` holds :class:`QuotaGuard`, which applies them
to callers that ``await guard.acquire(endpoint)``. Same imports as the rest of ``kit``.
"""

from __future__ import annotations

from interlock.kit.quota.bucket import RateLimit, give_back, reserve, tokens_available, unreturned
from interlock.kit.quota.daily import (
    DailyUsage,
    admits,
    count,
    crossed,
    held_until,
    hold_to_reset,
    next_reset,
    pause,
    refuse,
    resume,
    roll,
    usage_from_json,
    usage_to_json,
)
from interlock.kit.quota.guard import (
    DEFAULT_DAILY_LIMIT,
    DEFAULT_THRESHOLDS,
    META_KEY,
    QuotaGuard,
    QuotaSettings,
    describe,
    quota_reply,
)

__all__ = [
    "DEFAULT_DAILY_LIMIT",
    "DEFAULT_THRESHOLDS",
    "META_KEY",
    "DailyUsage",
    "QuotaGuard",
    "QuotaSettings",
    "RateLimit",
    "admits",
    "count",
    "crossed",
    "describe",
    "give_back",
    "held_until",
    "hold_to_reset",
    "next_reset",
    "pause",
    "quota_reply",
    "refuse",
    "reserve",
    "resume",
    "roll",
    "tokens_available",
    "unreturned",
    "usage_from_json",
    "usage_to_json",
]
