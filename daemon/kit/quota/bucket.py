"""The rate limit: a token bucket whose tokens come back ``per_seconds`` after being spent.

Pure functions of the spend times and ``now``: how many calls may start, when the
next one may go, and giving back a reservation whose caller stopped waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """At most ``calls`` calls in any window of ``per_seconds`` seconds."""

    calls: int = 24
    per_seconds: float = 60.0


def unreturned(spent: Sequence[float], now: float, rate: RateLimit) -> tuple[float, ...]:
    """The spend times whose tokens are not back at ``now`` (reservations included)."""
    # A token spent at t is back at t + per_seconds; reservations (t > now) stay.
    return tuple(t for t in spent if t > now - rate.per_seconds)


def tokens_available(
    spent: Sequence[float], now: float, rate: RateLimit, blocked_until: float = 0.0
) -> int:
    """How many calls may start at ``now`` without waiting."""
    if now < blocked_until:
        return 0
    recent = unreturned(spent, now, rate)
    if recent and recent[-1] > now:
        return 0  # callers are already queued for later tokens
    return max(0, rate.calls - len(recent))


def reserve(
    spent: Sequence[float], now: float, rate: RateLimit, blocked_until: float = 0.0
) -> tuple[tuple[float, ...], float]:
    """Take the next token: the new spend times and when the caller may call.

    Callers are served in order. Because a token returns exactly ``per_seconds``
    after it was spent, no window of ``per_seconds`` ever holds more than
    ``calls`` calls, bursts included.
    """
    recent = unreturned(spent, now, rate)
    at = max(now, blocked_until)
    if recent:
        at = max(at, recent[-1])
    if len(recent) >= rate.calls:
        at = max(at, recent[-rate.calls] + rate.per_seconds)
    return (*recent, at), at


def give_back(spent: Sequence[float], at: float) -> tuple[float, ...]:
    """The spend times without the reservation at ``at`` (its caller gave up waiting)."""
    out = list(spent)
    if at in out:
        out.remove(at)
    return tuple(out)
