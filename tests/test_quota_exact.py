"""retry_after_quota: the call that spends the budget starts the pause, daily_limit is a
hard cap per local day, and a refusal from the server pauses for the duration only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from interlock.errors import FetchError, QuotaExhaustedError, TransientError
from interlock.kit.quota import QuotaGuard
from interlock.kit.quota.daily import next_reset

pytestmark = pytest.mark.timeout(30)

MEL = ZoneInfo("Australia/Melbourne")
MIDNIGHT = datetime(2026, 3, 11, 0, 0, tzinfo=MEL)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def guard(clock: Clock, *, limit: int = 2, retry: Any = "30m") -> QuotaGuard:
    """A guard of ``limit`` calls a day, priority endpoint 'p', no rate wait."""
    section = {
        "daily_limit": limit,
        "retry_after_quota": retry,
        "priority_endpoints": ["p"],
        "rate_limit": {"calls": 100, "per_seconds": 60},
    }
    return QuotaGuard(section, MEL, clock=clock)


def at(hour: int, minute: int = 0) -> Clock:
    return Clock(datetime(2026, 3, 10, hour, minute, tzinfo=MEL).astimezone(UTC))


async def spend(g: QuotaGuard, calls: int, endpoint: str = "a") -> None:
    for _ in range(calls):
        await asyncio.wait_for(g.acquire(endpoint), 5)


async def test_the_call_that_spends_the_budget_starts_the_pause() -> None:
    """No refused call is needed: reaching daily_limit exactly shows resume_at in status."""
    clock = at(9)
    g = guard(clock)
    await spend(g, 1)
    assert g.describe()["resume_at"] is None
    await spend(g, 1)
    shown = g.describe()
    assert shown["exhausted"] and shown["left"] == 0
    assert shown["resume_at"] == MIDNIGHT.isoformat()


async def test_our_own_count_holds_non_priority_calls_until_midnight() -> None:
    """A short retry_after_quota does not open a second budget the same day: the
    endpoints stay refused until local midnight, and then a fresh day admits them."""
    clock = at(9)
    g = guard(clock)
    await spend(g, 2)
    clock.now += timedelta(minutes=31)  # past the 30m of retry_after_quota
    with pytest.raises(QuotaExhaustedError) as refused:
        await asyncio.wait_for(g.acquire("a"), 5)
    assert refused.value.reset_at == MIDNIGHT
    assert g.describe()["resume_at"] == MIDNIGHT.isoformat()
    await spend(g, 1, "p")  # priority endpoints go on
    clock.now = MIDNIGHT.astimezone(UTC)
    await spend(g, 1)
    assert g.describe()["used"] == 1 and g.describe()["resume_at"] is None


async def test_non_priority_calls_never_exceed_daily_limit_in_a_day() -> None:
    """Over a whole local day of attempts every few minutes, at most daily_limit go out."""
    clock = at(0, 1)
    g = guard(clock, limit=5, retry="10m")
    admitted = 0
    while clock.now < MIDNIGHT.astimezone(UTC) - timedelta(minutes=5):
        try:
            await asyncio.wait_for(g.acquire("a"), 5)
            admitted += 1
        except QuotaExhaustedError:
            pass
        clock.now += timedelta(minutes=7)
    assert admitted == 5


async def test_a_refusal_from_the_server_pauses_for_retry_after_quota_then_retries() -> None:
    """The API says the quota is spent while our count has room: 30m pause, then the
    endpoints are tried again, and the day's count goes on from where it was."""
    clock = at(9)
    g = guard(clock, limit=10)
    await spend(g, 3)
    resume_at = g.refused_by_server("a")
    assert resume_at == clock.now + timedelta(minutes=30)
    assert g.describe()["resume_at"] == resume_at.astimezone(MEL).isoformat()
    clock.now += timedelta(minutes=29)
    with pytest.raises(QuotaExhaustedError) as refused:
        await asyncio.wait_for(g.acquire("b"), 5)
    assert refused.value.reset_at == resume_at
    await spend(g, 1, "p")
    clock.now += timedelta(minutes=1)
    await spend(g, 1)
    assert g.describe()["resume_at"] is None and g.describe()["used"] == 5


async def test_a_refusal_from_the_server_late_in_the_day_pauses_to_midnight() -> None:
    """min(retry_after_quota, next local midnight): 24h at 23:50 ends at 00:00."""
    clock = at(23, 50)
    g = guard(clock, limit=10, retry="24h")
    assert g.refused_by_server("a") == MIDNIGHT


async def test_a_cancelled_last_call_lifts_the_pause_it_started() -> None:
    """The reservation that reached the limit, given back, leaves the budget open."""
    clock = at(9)
    blocker = asyncio.Event()

    async def never(seconds: float) -> None:
        await blocker.wait()

    section = {"daily_limit": 2, "retry_after_quota": "30m", "rate_limit": {"calls": 1}}
    g = QuotaGuard(section, MEL, clock=clock, sleep=never)
    await spend(g, 1)
    waiter = asyncio.create_task(g.acquire("a"))  # waits for a rate token
    await asyncio.sleep(0)
    assert g.describe()["resume_at"] == MIDNIGHT.isoformat()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 5)
    assert g.describe()["resume_at"] is None and not g.exhausted()


def test_a_quota_reply_is_told_from_a_rate_limit() -> None:
    """A 429/403 whose body speaks of the quota is the server's quota; a bare 429 is rate."""
    from interlock.kit.quota import quota_reply

    quota = FetchError(
        "GET https://x/feed answered 403 Forbidden: Out of call volume quota. "
        "Quota will be replenished in 23:59:59."
    )
    rate = TransientError("GET https://x/feed answered 429 Too Many Requests", retry_after=1)
    assert quota_reply(quota) and not quota_reply(rate)


async def test_a_realtime_poll_refused_for_the_apis_quota_pauses_its_endpoints(tmp_path, open_orch):
    """Through the daemon: the API answers 403 "Out of call volume quota" while our count
    has room; the endpoints are skipped quota_exhausted, status shows the 30m pause, and
    the next poll sends nothing."""
    from aiohttp import web

    from interlock.config.loader import parse_config

    hits: list[str] = []

    async def refuse(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(
            status=403, text="Out of call volume quota. Quota will be replenished in 23:59:59."
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        doc = {
            "components": {
                "gtfs_realtime": {
                    "frequency": "60s",
                    "retries": 0,
                    "settings": {
                        "endpoints": {
                            "metro_trip_updates": f"http://127.0.0.1:{port}/metro/trip-updates",
                            "tram_trip_updates": f"http://127.0.0.1:{port}/tram/trip-updates",
                        },
                        "api_key": "test-key",
                    },
                }
            },
            "runtime_settings": {
                "state_dir": str(tmp_path / "state"),
                "data_dir": str(tmp_path / "data"),
            },
            "quota_management": {
                "daily_limit": 100,
                "retry_after_quota": "30m",
                "priority_endpoints": [],
                "rate_limit": {"calls": 1000, "per_seconds": 60},
            },
        }
        orch = await open_orch(parse_config(doc, str(tmp_path / "orchestration.json")))
        before = datetime.now(UTC)
        first = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_realtime"], force=True), 30)
        shown = orch.quota.describe()
        second = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_realtime"], force=True), 30)
    finally:
        await runner.cleanup()
    assert first.outcomes["gtfs_realtime"].reason == "quota_exhausted"
    assert second.outcomes["gtfs_realtime"].reason == "quota_exhausted"
    assert len(hits) == 2  # one call per endpoint, then nothing during the pause
    resume_at = datetime.fromisoformat(shown["resume_at"])
    # 30 minutes, or to the local midnight reset if that comes first (the real clock).
    pause = min(timedelta(minutes=30), next_reset(before, MEL) - before)
    assert pause - timedelta(minutes=1) < resume_at - before <= pause + timedelta(minutes=1)
    assert shown["used"] == 2 and not shown["exhausted"]


async def test_status_shows_resume_at_once_the_budget_is_spent_exactly(tmp_path) -> None:
    """After exactly daily_limit calls (none refused), `interlock status --json` of the
    stopped daemon's state gives quota.resume_at: the next local midnight."""
    import json

    from interlock.config.loader import parse_config
    from interlock.service.app import Orchestrator
    from tests.test_cli import interlock
    from tests.test_plan_quota import doc, spend

    path = tmp_path / "o.json"
    path.write_text(json.dumps(doc(tmp_path)))
    async with Orchestrator(parse_config(doc(tmp_path), str(path)), log_events=False) as orch:
        await spend(orch, 2)
        assert orch.quota is not None
        reset_at = orch.quota.describe()["reset_at"]
    proc = await asyncio.to_thread(interlock, "status", "--json", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    quota = json.loads(proc.stdout)["quota"]
    assert (quota["used"], quota["exhausted"]) == (2, True)
    assert quota["resume_at"] == reset_at
