"""Small components for testing the orchestrator: each does one observable thing.

Tests reach them through :data:`PROBE`, which records starts, finishes and the
concurrency seen, and hands out gates that hold a component until a test opens it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from interlock.errors import TransientError, ValidationFailedError
from interlock.kit.context import ComponentContext
from interlock.outcome import Outcome


@dataclass
class Probe:
    """Shared observations of the test components in this process."""

    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    max_running: int = 0
    overlaps: set[frozenset[str]] = field(default_factory=set)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    started_events: dict[str, asyncio.Event] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    thread_stopped: dict[str, threading.Event] = field(default_factory=dict)
    thread_iterations: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    def started_event(self, name: str) -> asyncio.Event:
        return self.started_events.setdefault(name, asyncio.Event())

    def enter(self, name: str) -> None:
        self.started.append(name)
        for other in self.running:
            self.overlaps.add(frozenset((name, other)))
        self.running.add(name)
        self.max_running = max(self.max_running, len(self.running))
        self.attempts[name] = self.attempts.get(name, 0) + 1
        self.started_event(name).set()

    def leave(self, name: str) -> None:
        self.running.discard(name)
        self.finished.append(name)


PROBE = Probe()


class Base:
    settings_schema: ClassVar[dict[str, Any] | None] = None

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings

    async def run(self, ctx: ComponentContext) -> Outcome:
        PROBE.enter(self.name)
        try:
            return await self.work(ctx)
        finally:
            PROBE.leave(self.name)

    async def work(self, ctx: ComponentContext) -> Outcome:
        raise NotImplementedError


class Publishes(Base):
    """Publishes ``settings.fingerprint`` (default: a new one each run)."""

    async def work(self, ctx: ComponentContext) -> Outcome:
        fingerprint = self.settings.get("fingerprint") or f"{self.name}-{time.perf_counter_ns()}"
        if self.settings.get("unchanged_if_same") and ctx.previous.fingerprint == fingerprint:
            return Outcome.unchanged(fingerprint=fingerprint)
        return Outcome.published(
            records=int(self.settings.get("records", 1)), fingerprint=fingerprint
        )


class Gated(Base):
    """Waits until the test opens its gate, then publishes."""

    async def work(self, ctx: ComponentContext) -> Outcome:
        await PROBE.gate(self.name).wait()
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.perf_counter_ns()}")


class Sleeps(Base):
    """Sleeps ``settings.seconds`` (cancellable), then publishes."""

    async def work(self, ctx: ComponentContext) -> Outcome:
        await asyncio.sleep(float(self.settings.get("seconds", 60)))
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.perf_counter_ns()}")


class Fails(Base):
    """Raises: a plain error, or a validation failure with a report."""

    async def work(self, ctx: ComponentContext) -> Outcome:
        if self.settings.get("validation"):
            raise ValidationFailedError(
                "stops.txt is missing column 'stop_id'", report={"error_count": 1}
            )
        raise RuntimeError("source answered nonsense\nsecond line")


class Flaky(Base):
    """Fails transiently ``settings.failures`` times, then publishes."""

    async def work(self, ctx: ComponentContext) -> Outcome:
        if PROBE.attempts[self.name] <= int(self.settings.get("failures", 1)):
            raise TransientError(
                "HTTP 503 from source", retry_after=self.settings.get("retry_after")
            )
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.perf_counter_ns()}")


class ThreadWorker(Base):
    """Loops in a worker thread that checks the cancellation signal."""

    async def work(self, ctx: ComponentContext) -> Outcome:
        stopped = PROBE.thread_stopped.setdefault(self.name, threading.Event())

        def loop() -> int:
            n = 0
            try:
                while not ctx.cancel.is_set():
                    n += 1
                    PROBE.thread_iterations[self.name] = n
                    time.sleep(0.005)
                return n
            finally:
                stopped.set()

        n = await ctx.to_thread(loop)
        return Outcome.published(records=n, fingerprint=f"{self.name}-{n}")


# --- monitoring and notifications (tests/test_monitor*.py, test_notify*.py) -------------

#: Components named here fail with the given error until the test sets None.
FAILING: dict[str, str | None] = {}


class Allocates(Base):
    """Really allocates ``settings.mb`` MiB (every page touched), holds it, then publishes."""

    async def work(self, ctx: ComponentContext) -> Outcome:
        block = bytearray(b"\x01") * (int(self.settings.get("mb", 100)) << 20)
        await asyncio.sleep(float(self.settings.get("hold_s", 0.3)))
        records = len(block) >> 20
        del block
        fingerprint = f"{self.name}-{time.perf_counter_ns()}"
        return Outcome.published(records=records, fingerprint=fingerprint)


class CallsApi(Base):
    """GETs ``settings.url`` ``settings.calls`` times through the shared HTTP client.

    ``settings.endpoint`` names the calls in metrics (default: the component's name);
    ``settings.parallel`` makes them all at once.
    """

    async def work(self, ctx: ComponentContext) -> Outcome:
        http = ctx.services["http"]
        calls = int(self.settings.get("calls", 1))
        url, endpoint = self.settings["url"], self.settings.get("endpoint")
        if self.settings.get("parallel"):  # all in flight at once
            await asyncio.gather(*(http.get_json(url, endpoint=endpoint) for _ in range(calls)))
        for _ in range(0 if self.settings.get("parallel") else calls):
            await http.get_json(url, endpoint=endpoint)
        metrics = dict(self.settings.get("metrics", {}))
        return Outcome.published(
            records=int(self.settings.get("records", 10)),
            fingerprint=f"{self.name}-{time.perf_counter_ns()}",
            metrics=metrics,
        )


class Switchable(Base):
    """Fails with ``FAILING[name]`` while it is set, else publishes."""

    async def work(self, ctx: ComponentContext) -> Outcome:
        error = FAILING.get(self.name)
        if error:
            raise RuntimeError(error)
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.perf_counter_ns()}")
