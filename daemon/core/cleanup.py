"""A component's cleanup, bounded once, finished even while its task is being cancelled.

Cleanup (stopping worker threads, removing staged files, the component's own
``on_cleanup`` callbacks) runs shielded: a cancellation that arrives meanwhile is
remembered and handed back, not swallowed, so the caller records ``cancelled`` and
re-raises it. The limit is one limit: past it the cleanup is cancelled and logged.
At shutdown the budget shrinks so the daemon exits within its grace period.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from interlock.kit.context import THREAD_STOP_GRACE_S, ComponentContext

log = structlog.get_logger("interlock.runner")

#: How long one component's cleanup may take, worker threads included.
CLEANUP_LIMIT_S = 30.0


class CleanupBudget:
    """How long cleanups may take now: the usual limits, or less once the daemon stops."""

    def __init__(
        self, limit_s: float = CLEANUP_LIMIT_S, thread_grace_s: float = THREAD_STOP_GRACE_S
    ) -> None:
        self.limit_s = limit_s
        self.thread_grace_s = thread_grace_s
        self.deadline: float | None = None  # time.monotonic() by which everything must end

    def stop_by(self, seconds: float) -> None:
        """From now on, every cleanup ends within ``seconds`` (the shutdown's margin)."""
        deadline = time.monotonic() + max(0.0, seconds)
        self.deadline = deadline if self.deadline is None else min(self.deadline, deadline)

    def now_limits(self) -> tuple[float, float]:
        """(cleanup limit, thread grace) in seconds from now."""
        if self.deadline is None:
            return self.limit_s, self.thread_grace_s
        left = max(0.0, self.deadline - time.monotonic())
        return min(self.limit_s, left), min(self.thread_grace_s, left)


async def close_within(
    ctx: ComponentContext, budget: CleanupBudget
) -> tuple[set[asyncio.Future[Any]], asyncio.CancelledError | None]:
    """Close ``ctx`` within the budget; (threads still running, a cancellation received)."""
    if ctx.idle:
        return set(), None
    limit_s, grace_s = budget.now_limits()
    task = asyncio.ensure_future(ctx.close(grace_s))
    end = time.monotonic() + limit_s
    interrupted: asyncio.CancelledError | None = None
    while not task.done():
        left = end - time.monotonic()
        if left <= 0:
            break
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=left)
        except TimeoutError:
            break
        except asyncio.CancelledError as exc:
            interrupted = interrupted or exc  # finish cleaning up first; the caller re-raises
    if not task.done():
        ctx.log.error("cleanup_abandoned", limit_s=round(limit_s, 3))
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        return ctx.pending_threads, interrupted
    if task.cancelled():
        return set(), interrupted
    failure = task.exception()
    if failure is not None:  # close() never raises; if it does, say so and carry on
        ctx.log.error("cleanup_failed", error=repr(failure))
        return set(), interrupted
    return task.result(), interrupted
