"""The quota shared by several daemons: each call reserved atomically in the state store.

With a store that implements :class:`~interlock.store.abc.SharedQuota` (PostgreSQL),
the guard counts every call and takes every rate token there, not in its own memory:
one atomic update per call, so daemons sharing an API key never exceed its limits
together. The decisions are still :mod:`.bucket`'s and :mod:`.daily`'s.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

import structlog

from interlock.kit.quota.bucket import RateLimit, give_back, reserve
from interlock.kit.quota.daily import DailyUsage
from interlock.store.abc import SharedQuota

log = structlog.get_logger("interlock.quota")


@dataclass(frozen=True)
class Taken:
    """One call reserved in the shared store: the day's and the endpoint's counts after
    it, and when its rate token lets it go."""

    day: str
    endpoint: str
    family: str
    used: int
    calls: int
    at: float


def before(usage: DailyUsage, taken: Taken) -> DailyUsage:
    """``usage`` as the shared store counted it just before ``taken`` (the guard adds it)."""
    by_endpoint = {**usage.by_endpoint, taken.endpoint: taken.calls - 1}
    return replace(usage, used=taken.used - 1, by_endpoint=by_endpoint)


async def take(
    shared: SharedQuota,
    day: str,
    endpoint: str,
    family: str,
    *,
    limit: int | None,
    stamp: float,
    rate: RateLimit,
    blocked_until: float,
) -> Taken | None:
    """Count the call, then take its token (None: the daily limit refused it).

    A rate of its own is only taken for a counted call, so a refusal spends nothing.
    """
    counted = await shared.take_call(day, endpoint, limit=limit)
    if counted is None:
        return None
    try:
        at = await shared.update_tokens(
            family, lambda spent: reserve(spent, stamp, rate, blocked_until)
        )
    except BaseException:
        await asyncio.shield(shared.return_call(day, endpoint))
        raise
    return Taken(day, endpoint, family, counted[0], counted[1], at)


async def give(shared: SharedQuota, taken: Taken) -> None:
    """Return a reserved call and its token (its caller stopped waiting)."""
    try:
        await shared.return_call(taken.day, taken.endpoint)
        await shared.update_tokens(taken.family, lambda spent: (give_back(spent, taken.at), None))
    except Exception as exc:  # the store is gone: the call stays counted, which is safe
        log.error("quota_give_back_failed", endpoint=taken.endpoint, error=repr(exc))


async def take_shielded(
    shared: SharedQuota,
    day: str,
    endpoint: str,
    family: str,
    limit: int | None,
    stamp: float,
    rate: RateLimit,
    blocked_until: float,
) -> Taken | None:
    """:func:`take`, finished even if the caller is cancelled meanwhile, then given back."""
    task = asyncio.ensure_future(
        take(
            shared,
            day,
            endpoint,
            family,
            limit=limit,
            stamp=stamp,
            rate=rate,
            blocked_until=blocked_until,
        )
    )
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        def back(done: asyncio.Future[Taken | None]) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            taken = done.result()
            if taken is not None:
                future = asyncio.ensure_future(give(shared, taken))
                _pending.add(future)
                future.add_done_callback(_pending.discard)

        task.add_done_callback(back)
        raise


#: Give-backs still running (held so the loop does not collect them half-way).
_pending: set[asyncio.Future[None]] = set()
