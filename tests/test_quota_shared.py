"""The quota shared through the PostgreSQL store: two daemons never exceed it together.

Two guards, each on its own store (its own connections), stand for two daemons on one
API key. Every reservation is one atomic update in the database.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from interlock.errors import QuotaExhaustedError
from interlock.kit.quota import QuotaGuard
from interlock.store.postgresql import PgStateStore

pytestmark = pytest.mark.timeout(60)

MEL = ZoneInfo("Australia/Melbourne")
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
FAST = {"calls": 100_000, "per_seconds": 1}


def clock() -> datetime:
    return NOW


async def no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def stores(pg_dsn: str) -> AsyncIterator[tuple[PgStateStore, PgStateStore]]:
    """Two open stores on one fresh database: two daemons' connections."""
    one, two = PgStateStore(pg_dsn), PgStateStore(pg_dsn)
    await asyncio.wait_for(one.open(), 10)
    await asyncio.wait_for(two.open(), 10)
    yield one, two
    await asyncio.wait_for(one.close(), 10)
    await asyncio.wait_for(two.close(), 10)


async def _guard(store: PgStateStore, **section: object) -> QuotaGuard:
    guard = QuotaGuard(section, MEL, store, clock=clock, sleep=no_sleep)
    await asyncio.wait_for(guard.open(), 10)
    return guard


async def _hammer(guard: QuotaGuard, calls: int, endpoint: str = "departures") -> int:
    """Start ``calls`` acquisitions at once; how many were admitted."""
    done = await asyncio.gather(
        *(guard.acquire(endpoint) for _ in range(calls)), return_exceptions=True
    )
    for outcome in done:
        if isinstance(outcome, BaseException) and not isinstance(outcome, QuotaExhaustedError):
            raise outcome
    return sum(not isinstance(o, BaseException) for o in done)


async def test_two_guards_hammering_one_counter_admit_exactly_the_limit(
    stores: tuple[PgStateStore, PgStateStore],
) -> None:
    """Two daemons' guards, 60 calls each against a limit of 50: exactly 50 are admitted."""
    one = await _guard(stores[0], daily_limit=50, rate_limit=FAST)
    two = await _guard(stores[1], daily_limit=50, rate_limit=FAST)
    admitted = await asyncio.wait_for(asyncio.gather(_hammer(one, 60), _hammer(two, 60)), 30)
    assert sum(admitted) == 50
    calls = await stores[0].day_calls(one.today().day)
    assert calls == {"departures": 50}
    with pytest.raises(QuotaExhaustedError, match="50"):
        await one.acquire("departures")


async def test_priority_endpoints_bypass_the_shared_limit(
    stores: tuple[PgStateStore, PgStateStore],
) -> None:
    """Once the daemons spend the budget, a priority endpoint is still admitted and counted."""
    section = {"daily_limit": 3, "rate_limit": FAST, "priority_endpoints": ["alerts"]}
    one, two = await _guard(stores[0], **section), await _guard(stores[1], **section)
    assert await _hammer(one, 2) + await _hammer(two, 2) == 3
    await asyncio.wait_for(two.acquire("alerts"), 5)
    assert await stores[1].day_calls(two.today().day) == {"departures": 3, "alerts": 1}


async def test_the_rate_bucket_is_shared_between_daemons(
    stores: tuple[PgStateStore, PgStateStore],
) -> None:
    """Three calls a minute: the second daemon's first call waits for the first daemon's."""
    rate = {"calls": 3, "per_seconds": 60}
    one = await _guard(stores[0], rate_limit=rate)
    two = await _guard(stores[1], rate_limit=rate)
    waits = [await one.acquire("a") for _ in range(3)] + [await two.acquire("a")]
    assert waits == [0.0, 0.0, 0.0, 60.0]


async def test_a_restarted_guard_reads_the_shared_count(
    stores: tuple[PgStateStore, PgStateStore],
) -> None:
    """A guard opened after the other daemon's calls starts from the shared day's count."""
    one = await _guard(stores[0], daily_limit=10, rate_limit=FAST)
    assert await _hammer(one, 4) == 4
    late = await _guard(stores[1], daily_limit=10, rate_limit=FAST)
    assert late.describe()["used"] == 4


async def test_a_cancelled_waiter_gives_its_shared_call_back(
    stores: tuple[PgStateStore, PgStateStore],
) -> None:
    """A caller cancelled while it waits for a token uncounts its call in the shared store."""
    blocked = asyncio.Event()

    async def wait_forever(seconds: float) -> None:
        blocked.set()
        await asyncio.Event().wait()

    guard = QuotaGuard({"rate_limit": {"calls": 1, "per_seconds": 60}}, MEL, stores[0])
    guard.clock, guard.sleep = clock, wait_forever
    await guard.open()
    await guard.acquire("a")
    waiter = asyncio.create_task(guard.acquire("a"))
    await asyncio.wait_for(blocked.wait(), 5)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 5)
    assert await stores[1].day_calls(guard.today().day) == {"a": 1}


_PROCESS = """
import asyncio, sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo
from interlock.errors import QuotaExhaustedError
from interlock.kit.quota import QuotaGuard
from interlock.store.postgresql import PgStateStore

async def main():
    store = PgStateStore(sys.argv[1])
    await store.open()
    guard = QuotaGuard({"daily_limit": 40, "rate_limit": {"calls": 100000, "per_seconds": 1}},
                       ZoneInfo("Australia/Melbourne"), store,
                       clock=lambda: datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    await guard.open()
    print("ready", file=sys.stderr, flush=True)
    sys.stdin.readline()  # both processes start hammering together
    admitted = 0
    for _ in range(50):
        try:
            await guard.acquire("departures")
            admitted += 1
        except QuotaExhaustedError:
            pass
    await guard.aclose()
    await store.close()
    print(admitted)

asyncio.run(main())
"""


def test_two_processes_never_exceed_the_limit_together(pg_dsn: str, tmp_path: Path) -> None:
    """Two real processes, 50 calls each against a limit of 40: 40 admitted in all."""
    script = tmp_path / "hammer.py"
    script.write_text(_PROCESS)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), pg_dsn],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for p in procs:  # each has opened its store and guard (bounded by the test timeout)
            assert p.stderr is not None and p.stderr.readline().strip() == "ready"
        outputs = [p.communicate("go\n", timeout=40)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(int(out.strip().splitlines()[-1]) for out in outputs) == 40
