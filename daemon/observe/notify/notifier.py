"""The notifier: an event-bus subscriber that turns events into messages on channels.

The bus handler only decides and queues; each channel has its own task that
sends, retrying a channel that is down with exponential backoff (logged, never
raised), so no channel can block or crash the scheduler. Dedup state lives in the
state store's meta table and survives restarts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from interlock import events as ev
from interlock.cadence import next_due
from interlock.observe.notify import compose
from interlock.observe.notify.channels import Channel, EmailChannel, SlackChannel
from interlock.observe.notify.message import Message
from interlock.observe.notify.policy import AlertBook, RateLimiter

log = structlog.get_logger("interlock.notify")

META_KEY = "notify"
DEFAULT_TYPES = ("component_failure", "threshold_breach", "quota_warning", "recovery")
FAILED_STATUSES = frozenset({"failed", "timed_out"})
OK_STATUSES = frozenset({"succeeded", "unchanged"})


class ChannelWorker:
    """One channel's queue, rate limit and delivery task."""

    def __init__(
        self,
        channel: Channel,
        *,
        publish: Callable[[ev.Event], None],
        backoff_s: float,
        backoff_max_s: float,
        max_queue: int = 100,
    ) -> None:
        self.channel = channel
        self.publish = publish
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.limiter = RateLimiter(channel.rate_limit_per_hour)
        self.queue: deque[Message] = deque()
        self.max_queue = max_queue
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.task = asyncio.get_running_loop().create_task(
            self._deliver(), name=f"notify channel {channel.name!r}"
        )

    def submit(self, msg: Message, now: datetime) -> None:
        """Queue ``msg`` unless the channel's rate limit holds it back."""
        if not msg.urgent and not self.limiter.allow(now):
            log.warning(
                "notification_rate_limited",
                channel=self.channel.name,
                kind=msg.kind,
                component=msg.component,
                per_hour=self.limiter.per_hour,
            )
            return
        held = self.limiter.take_held_back()
        if held:
            msg = msg.with_note(
                f"{held} earlier notification(s) held back by the rate limit of "
                f"{self.limiter.per_hour} per hour; see interlock history"
            )
        if len(self.queue) >= self.max_queue:
            dropped = self.queue.popleft()
            log.error("notification_dropped", channel=self.channel.name, kind=dropped.kind)
        self.queue.append(msg)
        self._idle.clear()
        self._ready.set()

    async def _deliver(self) -> None:
        attempt = 0
        while True:
            if not self.queue:
                self._idle.set()
                self._ready.clear()
                await self._ready.wait()
                continue
            msg = self.queue[0]
            try:
                await self.channel.send(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                delay = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
                log.warning(
                    "notification_failed",
                    channel=self.channel.name,
                    kind=msg.kind,
                    attempt=attempt,
                    retry_in_s=delay,
                    error=str(exc),
                )
                self.publish(
                    ev.NotificationFailed(
                        channel=self.channel.name,
                        kind=msg.kind,
                        component=msg.component,
                        error=str(exc),
                        attempt=attempt,
                        retry_in_s=delay,
                    )
                )
                await asyncio.sleep(delay)
                continue
            if self.queue and self.queue[0] is msg:
                self.queue.popleft()
            if attempt:
                log.info("notification_channel_back", channel=self.channel.name, after=attempt)
            attempt = 0
            log.info("notification_sent", channel=self.channel.name, kind=msg.kind)
            self.publish(
                ev.NotificationSent(
                    channel=self.channel.name, kind=msg.kind, component=msg.component
                )
            )

    async def drain(self, limit_s: float) -> bool:
        """Wait until everything queued was delivered; False on timeout."""
        try:
            async with asyncio.timeout(limit_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def build_channels(alerting: Mapping[str, Any], session: Callable[[], Any]) -> list[Channel]:
    """The configured, enabled channels (config.py disabled those missing a secret)."""
    out: list[Channel] = []
    email = alerting.get("email")
    if isinstance(email, Mapping) and email.get("enabled", True):
        out.append(EmailChannel(email))
    slack = alerting.get("slack")
    if isinstance(slack, Mapping) and slack.get("enabled", True):
        out.append(SlackChannel(slack, session))
    return out


class Notifier:
    """Decides what to announce and hands it to every channel."""

    def __init__(
        self,
        config_of: Callable[[], Any],
        channels: Sequence[Channel],
        *,
        store: Any,
        publish: Callable[[ev.Event], None],
        clock: Callable[[], datetime],
    ) -> None:
        self.config_of = config_of
        self.store = store
        self.clock = clock
        alerting = config_of().monitoring.get("alerting", {})
        self.window = timedelta(minutes=float(alerting.get("dedup_window_minutes", 60)))
        self.types = frozenset(alerting.get("notify_on", DEFAULT_TYPES))
        self.run_summary = alerting.get("run_summary", "on_failure")
        self.workers = [
            ChannelWorker(
                ch,
                publish=publish,
                backoff_s=float(alerting.get("retry_backoff_seconds", 10)),
                backoff_max_s=float(alerting.get("retry_backoff_max_seconds", 600)),
            )
            for ch in channels
        ]
        self.book = AlertBook()
        self._runs: dict[str, list[ev.ComponentFinished]] = {}
        self._news: set[str] = set()  # runs with a failure announced (not a repeat)

    async def open(self) -> None:
        """Load the dedup state."""
        self.book = AlertBook.from_json(await self.store.get_meta(META_KEY))

    async def handle(self, batch: Sequence[ev.Event]) -> None:
        """The bus handler: decide, queue, and persist the book if it changed."""
        dirty = False
        for event in batch:
            dirty |= self._on(event)
        if dirty:
            self.book.prune(self.clock(), self.window)
            await self.store.set_meta(META_KEY, self.book.to_json())

    def _send(self, msg: Message) -> None:
        now = self.clock()
        for worker in self.workers:
            worker.submit(msg, now)

    def _on(self, e: ev.Event) -> bool:
        tz = self.config_of().runtime.timezone
        if isinstance(e, ev.ComponentFinished):
            if e.run_id in self._runs:
                self._runs[e.run_id].append(e)
            if e.status in FAILED_STATUSES:
                verdict = self.book.on_failure(
                    e.component, e.error or e.reason or e.status, e.at, self.window
                )
                state = self.book.failing[e.component]
                if verdict == "failure":
                    self._news.add(e.run_id)
                if verdict is not None and "component_failure" in self.types:
                    make = compose.failure if verdict == "failure" else compose.still_failing
                    self._send(make(e, state, self._next_at(e), tz))
                return True
            if e.status in OK_STATUSES:
                ended = self.book.on_success(e.component)
                if ended is not None and "recovery" in self.types:
                    self._send(compose.recovery(e, ended, tz))
                return ended is not None
        elif isinstance(e, ev.ThresholdBreached):
            if self.book.on_breach(f"{e.component}|{e.metric}", e.at, self.window):
                if "threshold_breach" in self.types:
                    self._send(compose.threshold(e, tz))
                return True
        elif isinstance(e, ev.ThresholdRecovered):
            # Only a breach that was announced gets its recovery announced.
            if self.book.breaches.pop(f"{e.component}|{e.metric}", None) is not None:
                if "recovery" in self.types:
                    self._send(compose.threshold_recovered(e, tz))
                return True
        elif isinstance(e, ev.RunStarted):
            if self.run_summary != "never":
                self._runs[e.run_id] = []
        elif isinstance(e, ev.RunFinished):
            finished = self._runs.pop(e.run_id, [])
            news = e.run_id in self._news
            self._news.discard(e.run_id)
            # on_failure: only runs with a new failure, so a failing component that runs
            # every minute does not send a summary every minute.
            if self.run_summary == "always" or (self.run_summary == "on_failure" and news):
                self._send(compose.run_summary(e, finished, tz))
        elif e.name == "quota_warning" and "quota_warning" in self.types:
            self._send(compose.quota(e, tz))
        return False

    def _next_at(self, e: ev.ComponentFinished) -> datetime | None:
        config = self.config_of()
        spec = config.components.get(e.component)
        if spec is None or not spec.enabled:
            return None
        return next_due(spec.frequency, e.started_at, e.at, config.runtime.timezone)

    async def aclose(self, limit_s: float = 5.0) -> None:
        """Give queued messages ``limit_s`` to go out, then stop. Idempotent."""
        workers, self.workers = self.workers, []
        for worker in workers:
            if not await worker.drain(limit_s):
                log.warning(
                    "notifications_undelivered",
                    channel=worker.channel.name,
                    pending=len(worker.queue),
                )
        for worker in workers:
            await worker.aclose()
