"""Attempts of one component run: transient failures retried with backoff, within limits.

A transient failure (a network error, HTTP 5xx or 429, the component's own timeout)
is tried again after a backoff with jitter, honouring the source's Retry-After, up
to ``retries`` times. A Retry-After beyond ``retry_backoff_max_seconds`` is not
waited for in the component's slot, and no attempt starts beside a worker thread
that the previous attempt left running.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import datetime

from interlock import events as ev
from interlock.config.model import Runtime
from interlock.core.decisions import backoff_delay
from interlock.errors import TransientError
from interlock.kit.context import ComponentContext
from interlock.outcome import Outcome
from interlock.secrets import mask


@functools.cache
def transient() -> tuple[type[BaseException], ...]:
    """Network-level failures that are worth another attempt.

    aiohttp is imported when a failure is first judged, not with the scheduler:
    ``plan`` and ``check-config`` never load the HTTP stack.
    """
    import aiohttp

    return (
        TransientError,
        aiohttp.ClientConnectionError,
        aiohttp.ServerTimeoutError,
        ConnectionError,
        TimeoutError,
    )


class GiveUp(Exception):
    """Stop retrying: the message is the component's error and why it is not retried."""


def first_line(exc: BaseException) -> str:
    """An exception as one line (its type when the message says nothing), secrets masked."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return mask(text) or type(exc).__name__


async def attempt_until_done(
    attempt: Callable[[], Awaitable[object]],
    ctx: ComponentContext,
    rt: Runtime,
    publish: Callable[[ev.Event], None],
    attempts: list[int],
    *,
    clock: Callable[[], datetime],
) -> Outcome:
    """Run ``attempt`` until it returns an Outcome or fails for good; ``attempts[0]`` counts.

    Raises what the last attempt raised, :class:`GiveUp` when retrying would not be
    safe or sensible, or TypeError when the component returned something else.
    """
    spec = ctx.spec
    name = spec.name
    while True:
        try:
            outcome = await attempt()
            if not isinstance(outcome, Outcome):
                raise TypeError(
                    f"component {name!r} returned {type(outcome).__name__}, not an Outcome"
                )
            return outcome
        except transient() as exc:
            if attempts[0] > spec.retries:
                raise
            retry_after = exc.retry_after if isinstance(exc, TransientError) else None
            if retry_after is not None and retry_after > rt.retry_backoff_max_s:
                # Waiting would park the component in its slot; the next due run tries.
                raise GiveUp(
                    f"{first_line(exc)}; the source asked to retry after "
                    f"{retry_after:g} s, beyond retry_backoff_max_seconds "
                    f"({rt.retry_backoff_max_s:g} s): not retried in this run"
                ) from None
            delay = backoff_delay(
                attempts[0], rt.retry_backoff_s, rt.retry_backoff_max_s, retry_after
            )
            publish(
                ev.ComponentRetrying(
                    at=clock(),
                    run_id=ctx.run_id,
                    component=name,
                    attempt=attempts[0],
                    delay_s=round(delay, 3),
                    error=first_line(exc),
                )
            )
            if await ctx.close():
                # A thread of the failed attempt is still running: a new attempt
                # beside it could race it on the same files.
                raise GiveUp(
                    f"{first_line(exc)}; not retried: a worker thread of the failed "
                    "attempt is still running"
                ) from None
            ctx.next_attempt()
            await asyncio.sleep(delay)
            attempts[0] += 1
            publish(
                ev.ComponentStarted(
                    at=clock(), run_id=ctx.run_id, component=name, attempt=attempts[0]
                )
            )
