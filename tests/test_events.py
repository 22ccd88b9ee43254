"""The event bus: ordered fan-out, and subscribers that raise or stall cannot hurt the scheduler."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
import structlog

from interlock import events as ev
from interlock.events import EventBus
from tests.conftest import component
from tests.testcomponents import PROBE

pytestmark = pytest.mark.timeout(30)


def started(i: int) -> ev.RunStarted:
    """A distinguishable event."""
    return ev.RunStarted(run_id=f"run-{i}", trigger="test", components=("a",))


class Recorder:
    """A subscriber that keeps everything it is handed."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    async def __call__(self, batch: Sequence[ev.Event]) -> None:
        self.events.extend(batch)


class Stalls:
    """A subscriber that never returns from its first batch until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.events: list[ev.Event] = []

    async def __call__(self, batch: Sequence[ev.Event]) -> None:
        self.events.extend(batch)
        self.entered.set()
        await self.release.wait()


@pytest.fixture
async def bus():
    """An event bus closed after the test."""
    b = EventBus()
    yield b
    await asyncio.wait_for(b.close(limit_s=1), 5)


async def test_each_subscriber_gets_every_event_in_order(bus: EventBus) -> None:
    """Two subscribers each receive all published events, in publish order."""
    first, second = Recorder(), Recorder()
    bus.subscribe("first", first)
    bus.subscribe("second", second)
    published = [started(i) for i in range(200)]
    for i, event in enumerate(published):
        bus.publish(event)
        if i % 50 == 0:
            await asyncio.sleep(0)  # let the subscribers take partial batches
    assert await asyncio.wait_for(bus.flush(5), 10)
    assert first.events == published
    assert second.events == published


async def test_a_subscriber_that_raises_is_logged_and_keeps_receiving(bus: EventBus) -> None:
    """A failing handler is logged with its name and error, and still gets later events."""
    seen: list[ev.Event] = []

    async def explodes_once(batch: Sequence[ev.Event]) -> None:
        seen.extend(batch)
        if len(seen) == 1:
            raise RuntimeError("handler bug")

    other = Recorder()
    bus.subscribe("explodes", explodes_once)
    bus.subscribe("other", other)
    with structlog.testing.capture_logs() as logs:
        bus.publish(started(1))
        assert await asyncio.wait_for(bus.flush(5), 10)
        bus.publish(started(2))
        assert await asyncio.wait_for(bus.flush(5), 10)
    assert [e.run_id for e in seen] == ["run-1", "run-2"]  # type: ignore[attr-defined]
    assert [e.run_id for e in other.events] == ["run-1", "run-2"]  # type: ignore[attr-defined]
    failures = [entry for entry in logs if entry["event"] == "subscriber_failed"]
    assert len(failures) == 1
    assert failures[0]["subscriber"] == "explodes"
    assert failures[0]["error"] == "RuntimeError('handler bug')"
    assert failures[0]["log_level"] == "error"


async def test_a_stalled_subscriber_never_blocks_publish(bus: EventBus) -> None:
    """publish returns at once while a subscriber stalls; what does not fit is counted."""
    stalled, healthy = Stalls(), Recorder()
    bus.subscribe("stalled", stalled, maxsize=2)
    bus.subscribe("healthy", healthy)
    bus.publish(started(0))
    async with asyncio.timeout(5):
        await stalled.entered.wait()
    with structlog.testing.capture_logs() as logs:
        for i in range(1, 11):
            bus.publish(started(i))  # synchronous: would hang the test if it blocked
    overflow = [entry for entry in logs if entry["event"] == "subscriber_overflow"]
    assert overflow and overflow[0]["subscriber"] == "stalled"
    assert overflow[0]["dropped"] == 1
    assert bus._subs[0].dropped == 8  # ten published, two queued behind the stalled batch
    await asyncio.wait_for(bus._subs[1].idle.wait(), 5)
    assert len(healthy.events) == 11
    stalled.release.set()


async def test_flush_gives_up_after_its_limit_on_a_stalled_subscriber(bus: EventBus) -> None:
    """flush returns False after its time limit instead of waiting for a stalled subscriber."""
    stalled = Stalls()
    bus.subscribe("stalled", stalled)
    bus.publish(started(0))
    bus.publish(started(1))
    async with asyncio.timeout(5):
        await stalled.entered.wait()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await asyncio.wait_for(bus.flush(0.2), 5) is False
    assert 0.2 <= loop.time() - t0 < 2
    stalled.release.set()


async def test_flush_timeout_names_the_subscriber_that_stalled(bus: EventBus) -> None:
    """The flush-timeout warning names a subscriber stuck on its only batch."""
    stalled = Stalls()
    bus.subscribe("stalled", stalled)
    bus.publish(started(0))
    async with asyncio.timeout(5):
        await stalled.entered.wait()
    with structlog.testing.capture_logs() as logs:
        assert await asyncio.wait_for(bus.flush(0.05), 5) is False
    (warning,) = [e for e in logs if e["event"] == "subscriber_flush_timeout"]
    stalled.release.set()
    assert warning["subscribers"] == ["stalled"]


async def test_close_is_idempotent_and_stops_subscriber_tasks() -> None:
    """close delivers what was queued, stops every subscriber task, and may be called again."""
    b = EventBus()
    recorder = Recorder()
    b.subscribe("recorder", recorder)
    b.publish(started(1))
    await asyncio.wait_for(b.close(limit_s=1), 5)
    assert [e.run_id for e in recorder.events] == ["run-1"]  # type: ignore[attr-defined]
    task = b._subs[0].task
    assert task is not None and task.done()
    await asyncio.wait_for(b.close(limit_s=1), 1)


async def test_a_stalled_subscriber_does_not_block_the_scheduler(make_config, open_orch) -> None:
    """A run through the real orchestrator completes and is recorded while a subscriber stalls."""
    cfg = make_config({"a": component("Publishes"), "b": component("Publishes", deps=["a"])})
    orch = await open_orch(cfg)
    stalled = Stalls()
    orch.bus.subscribe("stalled", stalled, maxsize=1)
    try:
        with structlog.testing.capture_logs() as logs:
            result = await asyncio.wait_for(orch.scheduler.run_once(), 5)
            # history is flushed first; the stalled subscriber then makes flush give up
            assert await asyncio.wait_for(orch.bus.flush(0.2), 5) is False
        assert result.status == "succeeded"
        assert PROBE.finished == ["a", "b"]
        history = await asyncio.wait_for(orch.store.history(), 5)
        assert [row["component"] for row in history] == ["b", "a"]
        overflow = [e for e in logs if e["event"] == "subscriber_overflow"]
        assert overflow and overflow[0]["subscriber"] == "stalled"
        assert stalled.events and isinstance(stalled.events[0], ev.RunStarted)
    finally:
        stalled.release.set()


# --- the events themselves -------------------------------------------------------------


def test_events_are_keyword_only() -> None:
    """Positional construction is refused, so fields can never be passed in the wrong order."""
    with pytest.raises(TypeError):
        ev.ComponentStarted("run-1", "a", 1)  # type: ignore[misc]


def test_events_are_frozen() -> None:
    """An event cannot be changed after it is published."""
    event = ev.ComponentStarted(run_id="run-1", component="a", attempt=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.component = "b"  # type: ignore[misc]


def test_events_carry_an_aware_timestamp_and_a_stable_name() -> None:
    """Every event has a UTC timestamp by default and a snake_case name in its dict."""
    before = datetime.now(UTC)
    event = ev.ComponentSkipped(run_id="r", component="a", reason="not_due", detail="later")
    assert event.at.tzinfo is not None and event.at >= before
    assert event.name == "component_skipped"
    as_dict = event.to_dict()
    assert as_dict["event"] == "component_skipped"
    assert as_dict["at"] == event.at.isoformat()


class _NotAnException(BaseException):
    """What a handler might raise that is neither an Exception nor cancellation."""


async def test_a_subscriber_raising_a_base_exception_keeps_its_task() -> None:
    """A handler that raises a BaseException (structlog's DropEvent is one) is logged, not fatal."""
    bus = ev.EventBus()
    seen: list[str] = []

    async def handler(batch: list[ev.Event]) -> None:
        for e in batch:
            if getattr(e, "run_id", "") == "bad":
                raise _NotAnException("dropped")
            seen.append(e.run_id)  # type: ignore[attr-defined]

    bus.subscribe("picky", handler)
    bus.subscribe("history", handler, lossless=True, backoff=None)
    bus.publish(ev.RunStarted(run_id="bad", trigger="test", components=()))
    assert await bus.flush(5)
    bus.publish(ev.RunStarted(run_id="good", trigger="test", components=()))
    assert await bus.flush(5)
    assert seen.count("good") == 2
    await bus.close(5)
