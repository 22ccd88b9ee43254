"""How the event bus hands one subscriber its events: in batches, from a queue of its own.

A lossy subscriber (logs, metrics, notifications, the watch stream) has a bounded
queue and drops what does not fit. A lossless one (history: outcomes and component
state) never drops: a failed batch is handed over again, in order, until it lands.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import structlog

from interlock.errors import StoreUnavailableError

log = structlog.get_logger("interlock.events")

#: A non-busy error repeating this often on a batch splits it; on one event, drops it.
POISON_ATTEMPTS = 3
#: A subscriber that keeps failing warns at its first failure, then at most this often.
WARN_EVERY_S = 10.0


class Named(Protocol):
    """What delivery needs of an event: its stable name, for the logs."""

    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=Named)
Handler = Callable[[Sequence[E]], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Waits between attempts at one batch: ``first_s``, doubling, at most ``max_s``."""

    first_s: float = 0.05
    max_s: float = 2.0

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (counted from 1)."""
        return min(self.max_s, self.first_s * 2.0 ** min(attempt - 1, 64))


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is worth waiting for, always: another connection holds the database,
    or the disk is full (space comes back; history must not be dropped meanwhile); a
    database server that refused or lost the connection is waited for the same way."""
    if isinstance(exc, StoreUnavailableError):
        return True
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorname", None) or ""
    text = str(exc).lower()
    return (
        code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL"))
        or "locked" in text
        or "busy" in text
        or "disk is full" in text
    )


@dataclass(frozen=True)
class SubscriberStats:
    """What one subscriber holds and has lost, for metrics and status."""

    name: str
    lossless: bool
    #: Events queued or being handed over.
    pending: int
    #: Events refused because the queue was full (lossy subscribers only).
    dropped: int
    #: Failed hand-overs that were tried again (lossless subscribers only).
    retries: int
    #: Events given up on after a non-busy error kept failing (each one logged).
    lost: int
    #: How long the batch being handed over has been failing (None: it is not).
    waiting_s: float | None


class Subscriber(Generic[E]):
    """One subscriber's pending events and the task that hands them over in batches.

    A plain deque plus two events rather than an ``asyncio.Queue``: publishing is
    on the scheduler's hot path, and this costs an append per event and one wake-up
    per batch instead of a future per event.
    """

    lossless = False

    def __init__(self, name: str, handler: Handler[E], maxsize: int) -> None:
        self.name = name
        self.handler = handler
        self.maxsize = maxsize
        self.pending: deque[E] = deque()
        self.ready = asyncio.Event()  # set while events wait to be handled
        self.idle = asyncio.Event()  # set when nothing is pending or being handled
        self.idle.set()
        self.dropped = 0
        self.task: asyncio.Task[None] | None = None
        self.current: Sequence[E] = ()  # the batch being handed over ...
        self.done = 0  # ... and how much of it has landed

    def offer(self, event: E) -> None:
        """Queue ``event``, or count it as dropped when the subscriber is full."""
        if len(self.pending) >= self.maxsize:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "subscriber_overflow",
                    subscriber=self.name,
                    dropped=self.dropped,
                    event_name=event.name,
                )
            return
        self.pending.append(event)
        if not self.ready.is_set():
            self.ready.set()
            self.idle.clear()

    @property
    def unwritten(self) -> int:
        """Events queued or being handed over."""
        return len(self.pending) + len(self.current) - self.done

    def unwritten_by_name(self) -> dict[str, int]:
        """The unwritten events counted by event name."""
        waiting = itertools.chain(itertools.islice(self.current, self.done, None), self.pending)
        return dict(Counter(e.name for e in waiting))

    def stats(self) -> SubscriberStats:
        """What this subscriber holds and has lost."""
        return SubscriberStats(self.name, False, self.unwritten, self.dropped, 0, 0, None)

    def give_up(self, limit_s: float) -> None:
        """The bus is closing without waiting longer: a lossy queue is simply let go."""

    async def drain(self) -> None:
        """The subscriber's task: hand over everything queued, batch after batch."""
        while True:
            await self.ready.wait()
            # Step aside once: whatever the publisher woke meanwhile (the scheduler
            # releasing the next components) runs first, and the batch grows.
            await asyncio.sleep(0)
            self.ready.clear()
            batch = list(self.pending)
            self.pending.clear()
            self.current, self.done = batch, 0
            try:
                await self.deliver(batch)
            finally:
                self.current, self.done = (), 0
                if not self.pending:
                    self.idle.set()

    async def deliver(self, batch: list[E]) -> None:
        """Hand ``batch`` over once; a failure is logged and the batch let go."""
        try:
            await self.handler(batch)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # whatever a handler raises, its task lives on
            log.error("subscriber_failed", subscriber=self.name, error=repr(exc), events=len(batch))


class LosslessSubscriber(Subscriber[E]):
    """A subscriber that never drops an event for want of room or a busy database.

    Its queue has no bound, so publishing never has to choose. A batch whose handler
    raises is handed over again, in order, after a capped backoff, while newer events
    wait behind it; a busy or locked database is waited for however long it stays so.
    Any other error that repeats is a poison event or a bug: the batch is then handed
    over one event at a time, so only an event that keeps failing is dropped, and
    named in an error.
    """

    lossless = True

    def __init__(
        self,
        name: str,
        handler: Handler[E],
        *,
        backoff: Backoff | None = None,
        transient: Callable[[BaseException], bool] = is_busy,
    ) -> None:
        super().__init__(name, handler, maxsize=0)
        self.backoff = backoff or Backoff()
        self.transient = transient
        self.retries = 0
        self.lost = 0
        self.failing_since: float | None = None  # time.monotonic() of the first failure
        self.failing = asyncio.Event()  # set while a batch is being retried
        self._warned_at = -math.inf

    def offer(self, event: E) -> None:
        """Queue ``event``; there is always room."""
        self.pending.append(event)
        if not self.ready.is_set():
            self.ready.set()
            self.idle.clear()

    def give_up(self, limit_s: float) -> None:
        """Count what could not be written before the bus closed, by event name."""
        if self.unwritten:
            log.error(
                "subscriber_unwritten",
                subscriber=self.name,
                events=self.unwritten,
                by_event=self.unwritten_by_name(),
                timeout_s=limit_s,
            )

    def stats(self) -> SubscriberStats:
        """What this subscriber holds, has retried and has lost."""
        since = self.failing_since
        waiting = None if since is None else round(time.monotonic() - since, 3)
        return SubscriberStats(self.name, True, self.unwritten, 0, self.retries, self.lost, waiting)

    async def deliver(self, batch: list[E]) -> None:
        """Hand ``batch`` over until it lands; a poison event is dropped alone."""
        error = await self._until_landed(batch)
        if error is None:
            return
        if len(batch) == 1:
            self._drop(batch[0], error)
            return
        log.warning(
            "subscriber_batch_split", subscriber=self.name, events=len(batch), error=repr(error)
        )
        for event in batch:
            if (error := await self._until_landed([event])) is not None:
                self._drop(event, error)
            self.done += 1

    async def _until_landed(self, batch: list[E]) -> BaseException | None:
        """None once ``batch`` is handled; the error once a non-busy one repeated too often."""
        attempt = poisoned = 0
        while True:
            try:
                await self.handler(batch)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # a BaseException too: history's task must live on
                attempt += 1
                self.retries += 1
                if not self.transient(exc):
                    poisoned += 1
                    if poisoned >= POISON_ATTEMPTS:
                        return exc
                self._failed(attempt, exc)
                await asyncio.sleep(self.backoff.delay(attempt))
            else:
                if attempt and self.failing_since is not None:
                    log.info(
                        "subscriber_recovered",
                        subscriber=self.name,
                        attempts=attempt + 1,
                        waited_s=round(time.monotonic() - self.failing_since, 3),
                        pending=self.unwritten - len(batch),
                    )
                    self.failing_since, self._warned_at = None, -math.inf
                    self.failing.clear()
                return None

    def _failed(self, attempt: int, exc: BaseException) -> None:
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
            self.failing.set()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "subscriber_retrying",
                subscriber=self.name,
                attempt=attempt,
                error=repr(exc),
                pending=self.unwritten,
                waiting_s=round(now - self.failing_since, 3),
            )

    def _drop(self, event: E, error: BaseException) -> None:
        self.lost += 1
        log.error(
            "subscriber_event_dropped",
            subscriber=self.name,
            event_name=event.name,
            run_id=getattr(event, "run_id", None),
            component=getattr(event, "component", None),
            error=repr(error),
            attempts=POISON_ATTEMPTS,
        )


async def written_or_failing(sub: LosslessSubscriber[E]) -> None:
    """Return once ``sub`` holds nothing unwritten, or once it is waiting out a failure."""
    if sub.failing.is_set():
        return
    idle = asyncio.ensure_future(sub.idle.wait())
    failing = asyncio.ensure_future(sub.failing.wait())
    try:
        await asyncio.wait({idle, failing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        idle.cancel()
        failing.cancel()
