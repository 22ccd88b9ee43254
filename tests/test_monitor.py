"""Per-run measurements stored with each run, and thresholds that emit threshold_breached."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import psutil
import pytest
from aiohttp import web

from interlock import events as ev
from interlock.config.model import Config
from interlock.observe.monitor import Thresholds, api_summary, breaches, percentile, thresholds_for
from tests.conftest import component


class Collector:
    """Collects events from the bus; ``wait`` returns once one of ``kind`` arrived."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.arrived = asyncio.Event()

    async def handle(self, batch: Sequence[ev.Event]) -> None:
        self.events.extend(batch)
        self.arrived.set()

    def of(self, kind: type[ev.Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait(self, kind: type[ev.Event], count: int = 1, limit_s: float = 5) -> list[Any]:
        async with asyncio.timeout(limit_s):
            while len(self.of(kind)) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.of(kind)


@pytest.fixture
async def api_server() -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "pad": "x" * 500})

    app = web.Application()
    app.router.add_get("/v1/departures", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/v1/departures?devid=1"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, 0.0), ([3.0], 95, 3.0), ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 95, 4), ([5, 1], 0, 1)],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    """Percentiles use the nearest-rank method, and an empty list gives 0."""
    assert percentile(values, q) == expected


def test_api_summary_reports_milliseconds_per_endpoint() -> None:
    """Calls, p50, p95, max and total are given in milliseconds per endpoint."""
    out = api_summary({"h/a": [0.1, 0.2, 0.3], "h/b": []})
    assert out == {
        "h/a": {"calls": 3, "p50_ms": 200.0, "p95_ms": 300.0, "max_ms": 300.0, "total_ms": 600.0}
    }


@pytest.mark.parametrize(
    ("limits", "status", "duration", "metrics", "recent", "expected"),
    [
        (
            Thresholds(max_execution_time_minutes=1),
            "succeeded",
            61,
            {},
            [],
            ["max_execution_time_minutes"],
        ),
        (Thresholds(max_execution_time_minutes=1), "succeeded", 59, {}, [], []),
        (
            Thresholds(max_memory_mb=100),
            "succeeded",
            1,
            {"peak_rss_mb": 150.0},
            [],
            ["max_memory_mb"],
        ),
        (Thresholds(max_memory_mb=100), "failed", 1, {"peak_rss_mb": 99.0}, [], []),
        (
            Thresholds(max_api_response_ms=500),
            "succeeded",
            1,
            {"api": {"h/a": {"max_ms": 700.0}, "h/b": {"max_ms": 10.0}}},
            [],
            ["max_api_response_ms"],
        ),
        (
            Thresholds(min_success_rate_percentage=90, success_rate_window=10),
            "failed",
            1,
            {},
            [True] * 8 + [False, False],
            ["min_success_rate_percentage"],
        ),
        # Too few runs to judge a rate yet.
        (Thresholds(min_success_rate_percentage=90), "failed", 1, {}, [False, False], []),
        # A success never reports a low rate (the failure before it already did).
        (Thresholds(min_success_rate_percentage=90), "succeeded", 1, {}, [False] * 5 + [True], []),
    ],
)
def test_breaches_table(
    limits: Thresholds,
    status: str,
    duration: float,
    metrics: dict[str, Any],
    recent: list[bool],
    expected: list[str],
) -> None:
    """Each threshold is breached only when its measured figure passes its limit."""
    assert [b.metric for b in breaches(limits, status, duration, metrics, recent)] == expected


def test_component_thresholds_override_global_ones() -> None:
    """Per-component thresholds win over the global ones, key by key."""
    monitoring = {
        "thresholds": {"max_memory_mb": 100, "max_execution_time_minutes": 5},
        "component_thresholds": {"big": {"max_memory_mb": 2000}},
    }
    big = thresholds_for(monitoring, "big")
    assert (big.max_memory_mb, big.max_execution_time_minutes) == (2000, 5)
    assert thresholds_for(monitoring, "small").max_memory_mb == 100


async def test_run_metrics_are_stored_with_api_calls_per_endpoint(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], api_server: str
) -> None:
    """A run's wall/CPU time, peak RSS, bytes and API calls per endpoint land in history."""
    config = make_config({"api": component("CallsApi", url=api_server, calls=3, records=30)})
    orch = await open_orch(config)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert not result.failed
    assert await orch.bus.flush(5)
    (row,) = await orch.store.history(component="api")
    m = row["metrics"]
    assert m["wall_s"] > 0 and m["cpu_s"] >= 0 and m["peak_rss_mb"] > 10
    assert m["retries"] == 0 and m["records_per_s"] > 0 and m["net_bytes"] > 1500
    endpoint = "api"  # no endpoint name given: the component's, never the URL
    assert set(m["api"]) == {endpoint} and m["api"][endpoint]["calls"] == 3
    assert 0 < m["api"][endpoint]["p50_ms"] <= m["api"][endpoint]["max_ms"]


async def test_a_component_that_sleeps_past_its_limit_breaches_execution_time(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """A component that really sleeps 0.3 s breaches a 0.1 s limit, with both figures."""
    config = make_config(
        {"slow": component("Sleeps", seconds=0.3)},
        performance_monitoring={
            "component_thresholds": {"slow": {"max_execution_time_minutes": 0.1 / 60}}
        },
    )
    orch = await open_orch(config)
    seen = Collector()
    orch.bus.subscribe("test", seen.handle)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    (breach,) = await seen.wait(ev.ThresholdBreached)
    assert breach.component == "slow" and breach.metric == "max_execution_time_minutes"
    assert breach.measured >= 0.3 / 60 - 1e-3 and breach.limit == pytest.approx(0.1 / 60)


async def test_a_component_that_allocates_memory_breaches_max_memory(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """Allocating 200 MiB pushes the sampled peak RSS over a limit set 100 MiB above now."""
    limit = psutil.Process().memory_info().rss / (1 << 20) + 100
    config = make_config(
        {"hog": component("Allocates", mb=200, hold_s=0.3)},
        performance_monitoring={"thresholds": {"max_memory_mb": limit}},
    )
    orch = await open_orch(config)
    seen = Collector()
    orch.bus.subscribe("test", seen.handle)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    (breach,) = await seen.wait(ev.ThresholdBreached)
    assert breach.metric == "max_memory_mb" and breach.unit == "MB"
    assert breach.measured > limit == breach.limit


async def test_a_low_success_rate_is_reported_over_the_window(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """Five failures in a window of five put the success rate at 0%, under the 90% minimum."""
    config = make_config(
        {"bad": component("Fails")},
        performance_monitoring={
            "thresholds": {"min_success_rate_percentage": 90, "success_rate_window": 5}
        },
    )
    orch = await open_orch(config)
    seen = Collector()
    orch.bus.subscribe("test", seen.handle)
    for _ in range(5):
        await asyncio.wait_for(orch.scheduler.run_once(force=True), 10)
    (breach,) = await seen.wait(ev.ThresholdBreached)
    assert breach.metric == "min_success_rate_percentage" and breach.measured == 0.0
    assert "0 of the last 5 runs" in breach.detail


async def test_the_sampler_stops_when_nothing_runs(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """After the run no sampling task is left: an idle daemon does not wake up for it."""
    orch = await open_orch(make_config({"slow": component("Sleeps", seconds=0.15)}))
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    task = orch.sampler._task
    if task is not None:
        await asyncio.wait_for(asyncio.shield(task), 2)  # ends on its own
    assert orch.sampler._task is None and orch.sampler.last_rss > 0
