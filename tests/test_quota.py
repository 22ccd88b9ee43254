"""The quota decisions as tables, and the guard over a simulated day with an injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from interlock import events as ev
from interlock.errors import QuotaExhaustedError
from interlock.kit.quota import (
    DailyUsage,
    QuotaGuard,
    QuotaSettings,
    RateLimit,
    admits,
    count,
    crossed,
    next_reset,
    reserve,
    roll,
    tokens_available,
)
from interlock.store.sqlite import SqliteStateStore

pytestmark = pytest.mark.timeout(30)

MEL = ZoneInfo("Australia/Melbourne")
HAVANA = ZoneInfo("America/Havana")
R3 = RateLimit(calls=3, per_seconds=60)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- pure decisions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "now", "expected"),
    [
        (MEL, "2025-02-01T12:00:00+11:00", "2025-02-02T00:00:00+11:00"),
        (MEL, "2025-02-01T23:59:59+11:00", "2025-02-02T00:00:00+11:00"),
        (MEL, "2025-02-02T00:00:00+11:00", "2025-02-03T00:00:00+11:00"),
        # The day DST starts (02:00 -> 03:00) is 23 hours long.
        (MEL, "2024-10-06T00:30:00+10:00", "2024-10-07T00:00:00+11:00"),
        # The day DST ends (03:00 -> 02:00) is 25 hours long.
        (MEL, "2024-04-07T00:30:00+11:00", "2024-04-08T00:00:00+10:00"),
        (MEL, "2024-04-07T02:30:00+10:00", "2024-04-08T00:00:00+10:00"),
        # Havana skips midnight in March: the day starts at 01:00.
        (HAVANA, "2024-03-09T12:00:00-05:00", "2024-03-10T01:00:00-04:00"),
        # ... and has midnight twice in November: the first one ends the day.
        (HAVANA, "2024-11-02T12:00:00-04:00", "2024-11-03T00:00:00-04:00"),
    ],
)
def test_next_reset_is_the_next_local_midnight(tz: ZoneInfo, now: str, expected: str) -> None:
    """The reset is the next local midnight (or the day's first instant), DST included."""
    assert next_reset(utc(now), tz) == utc(expected)


@pytest.mark.parametrize(
    ("spent", "now", "blocked", "available", "at"),
    [
        ((), 100.0, 0.0, 3, 100.0),
        ((90.0,), 100.0, 0.0, 2, 100.0),
        ((50.0, 60.0, 70.0), 100.0, 0.0, 0, 110.0),  # the oldest token returns at 50 + 60
        ((30.0, 60.0, 70.0), 100.0, 0.0, 1, 100.0),  # 30 + 60 <= 100: that one is back
        ((95.0, 96.0, 160.0), 100.0, 0.0, 0, 160.0),  # a caller queued at 160 goes first
        ((), 100.0, 130.0, 0, 130.0),  # penalised by a 429 until 130
        ((10.0, 20.0, 30.0), 1000.0, 0.0, 3, 1000.0),  # long idle: the bucket is full
    ],
)
def test_tokens_and_reservations(
    spent: tuple[float, ...], now: float, blocked: float, available: int, at: float
) -> None:
    """A token comes back per_seconds after it was spent; queued callers keep their order."""
    assert tokens_available(spent, now, R3, blocked) == available
    assert reserve(spent, now, R3, blocked)[1] == at


def test_no_window_ever_holds_more_than_the_rate() -> None:
    """A hundred callers arriving at once are spread so no 60 s window has over 3 calls."""
    spent: tuple[float, ...] = ()
    times = []
    for _ in range(100):
        spent, at = reserve(spent, 0.0, R3)
        times.append(at)
    assert times[:6] == [0.0, 0.0, 0.0, 60.0, 60.0, 60.0]
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 60) <= 3


@pytest.mark.parametrize(
    ("used", "warned", "expected"),
    [
        (799, (), ()),
        (800, (), (80.0,)),
        (800, (80.0,), ()),
        (950, (), (80.0, 95.0)),
        (960, (80.0,), (95.0,)),
        (1200, (80.0, 95.0), ()),
    ],
)
def test_warning_thresholds_crossed(
    used: int, warned: tuple[float, ...], expected: tuple[float, ...]
) -> None:
    """Each threshold is announced once per day, as soon as usage reaches it."""
    assert crossed(used, 1000, (80, 95), warned) == expected


@pytest.mark.parametrize(
    ("used", "priority", "ok"),
    [(0, False, True), (999, False, True), (1000, False, False), (1000, True, True)],
)
def test_daily_budget_admits(used: int, priority: bool, ok: bool) -> None:
    """Non-priority calls stop at the limit; priority endpoints bypass it."""
    usage = DailyUsage(day="2025-02-01", reset_at=utc("2025-02-02T00:00:00+11:00"), used=used)
    assert admits(usage, 1000, priority=priority) is ok


def test_roll_starts_a_new_day_only_at_the_reset() -> None:
    """Counters carry on until the reset instant, then start again from zero."""
    day = roll(None, utc("2025-02-01T23:00:00+11:00"), MEL)
    day = count(day, "metro", 5)
    assert roll(day, utc("2025-02-01T23:59:59+11:00"), MEL) is day
    fresh = roll(day, utc("2025-02-02T00:00:00+11:00"), MEL)
    assert (fresh.day, fresh.used, dict(fresh.by_endpoint)) == ("2025-02-02", 0, {})


def test_settings_defaults_and_family_overrides() -> None:
    """Missing keys get the documented defaults; a family can have its own rate."""
    s = QuotaSettings.from_config({"family_rate_limits": {"ptv": {"calls": 5}}})
    assert (s.daily_limit, s.rate, s.thresholds) == (1000, RateLimit(24, 60.0), (80.0, 95.0))
    assert s.rate_for("ptv") == RateLimit(5, 60.0) and s.rate_for("other") == RateLimit(24, 60.0)


# --- the guard with an injected clock ------------------------------------------------


class FakeClock:
    """Wall time that only moves when a sleeper sleeps or the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


def guard(
    clock: FakeClock, store: SqliteStateStore | None = None, **section: object
) -> tuple[QuotaGuard, list[ev.Event]]:
    seen: list[ev.Event] = []
    g = QuotaGuard(section, MEL, store, emit=seen.append, clock=clock, sleep=clock.sleep)
    return g, seen


async def test_callers_wait_for_tokens_at_the_configured_rate() -> None:
    """Seven calls at 3 per minute: three at once, then each group a minute later."""
    clock = FakeClock(utc("2025-02-01T10:00:00+11:00"))
    g, _ = guard(clock, rate_limit={"calls": 3, "per_seconds": 60})
    waits = [await asyncio.wait_for(g.acquire("metro"), 5) for _ in range(7)]
    assert waits == [0.0, 0.0, 0.0, 60.0, 0.0, 0.0, 60.0]
    assert clock.now == utc("2025-02-01T10:02:00+11:00")


async def test_a_cancelled_waiter_gives_its_token_and_call_back() -> None:
    """A caller cancelled while it waits is not counted and frees its place."""
    clock = FakeClock(utc("2025-02-01T10:00:00+11:00"))
    blocker = asyncio.Event()

    async def never(seconds: float) -> None:
        await blocker.wait()

    g = QuotaGuard({"rate_limit": {"calls": 1, "per_seconds": 60}}, MEL, clock=clock, sleep=never)
    await g.acquire("a")
    waiter = asyncio.create_task(g.acquire("b"))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 5)
    assert g.today().used == 1 and dict(g.today().by_endpoint) == {"a": 1, "b": 0}
    assert g.spent["default"] == (clock.now.timestamp(),)


async def test_a_penalty_holds_the_family_until_retry_after() -> None:
    """After a 429 the family's next call waits for the Retry-After delay."""
    clock = FakeClock(utc("2025-02-01T10:00:00+11:00"))
    g, _ = guard(clock)
    g.penalise("opendata", 30)
    assert await asyncio.wait_for(g.acquire("x", family="opendata"), 5) == 30.0
    assert await asyncio.wait_for(g.acquire("y", family="other"), 5) == 0.0


async def test_a_caller_already_waiting_is_held_by_a_later_retry_after() -> None:
    """A 429 that arrives while a caller waits for its token holds that caller's call too."""
    clock = FakeClock(utc("2025-02-01T10:00:00+11:00"))
    opened = asyncio.Event()
    calls: list[float] = []
    waiting = asyncio.Event()

    async def sleep(seconds: float) -> None:
        calls.append(seconds)
        waiting.set()
        if len(calls) == 1:
            await opened.wait()  # the 429 lands while this caller sleeps for its token
        clock.now += timedelta(seconds=seconds)

    g = QuotaGuard({"rate_limit": {"calls": 1, "per_seconds": 60}}, MEL, clock=clock, sleep=sleep)
    await g.acquire("a", family="opendata")
    waiter = asyncio.create_task(g.acquire("b", family="opendata"))
    await asyncio.wait_for(waiting.wait(), 5)
    g.penalise("opendata", 300)  # Retry-After: 300, from the call "a" made
    opened.set()
    waited = await asyncio.wait_for(waiter, 5)
    assert calls == [60.0, 240.0]
    assert waited == 300.0 and clock.now == utc("2025-02-01T10:05:00+11:00")


async def test_a_simulated_day_with_restart_and_dst_change(tmp_path: Path) -> None:
    """Across DST's 23-hour day: warnings, exhaustion, priority, a restart, then the reset."""
    section = {
        "daily_limit": 10,
        "priority_endpoints": ["metro_trip_updates"],
        "rate_limit": {"calls": 100, "per_seconds": 60},
    }
    clock = FakeClock(utc("2024-10-06T00:30:00+10:00"))  # DST starts at 02:00 today
    async with SqliteStateStore(tmp_path / "state.sqlite") as store:
        g, seen = guard(clock, store, **section)
        await g.open()
        for _ in range(8):
            await asyncio.wait_for(g.acquire("bus_trip_updates"), 5)
            clock.now += timedelta(minutes=30)
        assert [e.threshold_percent for e in seen if isinstance(e, ev.QuotaWarning)] == [80.0]
        await g.aclose()

        clock.now = utc("2024-10-06T12:00:00+11:00")  # after the DST change; a new process
        g, seen = guard(clock, store, **section)
        await g.open()
        assert g.today().used == 8 and g.today().warned == (80.0,)
        await g.acquire("tram_trip_updates")
        await g.acquire("tram_trip_updates")
        assert [e.threshold_percent for e in seen if isinstance(e, ev.QuotaWarning)] == [95.0]
        assert g.exhausted()
        with pytest.raises(QuotaExhaustedError, match="until the reset at 2024-10-07 00:00:00"):
            await g.acquire("bus_trip_updates")
        await g.acquire("metro_trip_updates")  # priority bypasses the daily limit
        assert g.describe()["used"] == 11 and g.describe()["left"] == 0
        assert g.describe()["endpoints"]["bus_trip_updates"] == {
            "calls": 8,
            "refused": 1,
            "priority": False,
        }
        await g.aclose()

        clock.now = utc("2024-10-06T23:59:59+11:00")
        g, _ = guard(clock, store, **section)
        await g.open()
        assert g.exhausted()
        clock.now = utc("2024-10-07T00:00:00+11:00")  # 23 hours after the day began
        assert not g.exhausted() and g.today().day == "2024-10-07"
        await g.acquire("bus_trip_updates")
        await g.aclose()
        stored = await store.get_meta("quota")
    assert stored["day"]["used"] == 1 and stored["day"]["reset_at"].startswith("2024-10-07T13:00")


async def test_disabled_quota_counts_but_never_waits_or_refuses() -> None:
    """With quota_management.enabled false calls are counted for status and never held."""
    clock = FakeClock(utc("2025-02-01T10:00:00+11:00"))
    g, _ = guard(clock, enabled=False, daily_limit=1, rate_limit={"calls": 1, "per_seconds": 60})
    waits = [await asyncio.wait_for(g.acquire("a"), 5) for _ in range(3)]
    assert waits == [0.0, 0.0, 0.0] and g.today().used == 3 and not g.exhausted()
