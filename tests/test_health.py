"""``/healthz`` and ``/readyz`` on the metrics listener of a real orchestrator on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from interlock.config.model import Config
from interlock.service.app import Orchestrator
from tests.conftest import component
from tests.testcomponents import PROBE

METRICS_ON = {"metrics": {"enabled": True, "listen": "127.0.0.1:0"}}


class Clock:
    """A clock the test moves: the orchestrator's idea of now."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
async def opened() -> AsyncIterator[Callable[..., Any]]:
    orchs: list[Orchestrator] = []

    async def open_with(config: Config, clock: Clock) -> Orchestrator:
        orch = Orchestrator(config, clock=clock, log_events=False)
        await orch.__aenter__()
        orchs.append(orch)
        return orch

    yield open_with
    for orch in orchs:
        await asyncio.wait_for(orch.aclose(), 10)


async def probe(orch: Orchestrator, path: str) -> tuple[int, dict[str, Any]]:
    assert orch.observers is not None and orch.observers.metrics_server is not None
    port = orch.observers.metrics_server.port
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(5)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as resp,
    ):
        return resp.status, await resp.json()


async def test_healthz_answers_while_the_loop_turns(
    make_config: Callable[..., Config], opened: Callable[..., Any]
) -> None:
    """Liveness is a 200 from the event loop itself."""
    orch = await opened(
        make_config({"ok": component("Publishes")}, performance_monitoring=METRICS_ON), Clock()
    )
    assert await probe(orch, "/healthz") == (200, {"ok": True})


async def test_a_fresh_daemon_is_ready_and_says_what_it_checked(
    make_config: Callable[..., Config], opened: Callable[..., Any]
) -> None:
    """With a writable store, nothing wedged and nothing overdue, /readyz is 200."""
    orch = await opened(
        make_config({"ok": component("Publishes")}, performance_monitoring=METRICS_ON), Clock()
    )
    status, doc = await probe(orch, "/readyz")
    assert status == 200 and doc["ready"] is True
    assert doc["checks"] == {"state_store": "ok", "scheduler": "ok", "runs": "ok", "schedule": "ok"}


async def test_a_component_overdue_past_its_limit_makes_the_daemon_unready(
    make_config: Callable[..., Config], opened: Callable[..., Any]
) -> None:
    """Due an hour ago with a 1-minute limit and nothing running it: 503 names it."""
    config = make_config(
        {"ok": component("Publishes", frequency="1h", timeout_minutes=1)},
        performance_monitoring=METRICS_ON,
    )
    clock = Clock()
    orch = await opened(config, clock)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    clock.offset = timedelta(hours=2)
    status, doc = await probe(orch, "/readyz")
    assert status == 503 and doc["ready"] is False
    (problem,) = doc["checks"]["schedule"]
    assert "'ok'" in problem and "overdue" in problem and "60 s" in problem
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert (await probe(orch, "/readyz"))[0] == 200


async def test_a_run_wedged_past_its_timeout_makes_the_daemon_unready(
    make_config: Callable[..., Config], opened: Callable[..., Any]
) -> None:
    """A run still going long after its timeout (cancellation did not end it) is named."""
    config = make_config(
        {"stuck": component("Gated", timeout_minutes=1)}, performance_monitoring=METRICS_ON
    )
    clock = Clock()
    orch = await opened(config, clock)
    run = asyncio.create_task(orch.scheduler.run_once())
    try:
        await asyncio.wait_for(PROBE.started_event("stuck").wait(), 5)
        assert (await probe(orch, "/readyz"))[0] == 200  # running within its limit
        clock.offset = timedelta(minutes=10)
        status, doc = await probe(orch, "/readyz")
        assert status == 503
        (problem,) = doc["checks"]["runs"]
        assert "'stuck'" in problem and "past its timeout of 60 s" in problem
        assert doc["checks"]["schedule"] == "ok"  # running: not also overdue
    finally:
        PROBE.gate("stuck").set()
        await asyncio.wait_for(run, 10)


async def test_a_state_store_that_takes_no_write_makes_the_daemon_unready(
    make_config: Callable[..., Config], opened: Callable[..., Any]
) -> None:
    """When the store cannot be written, /readyz is 503 and says so; /healthz stays 200."""
    orch = await opened(
        make_config({"ok": component("Publishes")}, performance_monitoring=METRICS_ON), Clock()
    )
    await orch.store.close()
    status, doc = await probe(orch, "/readyz")
    assert status == 503
    (problem,) = doc["checks"]["state_store"]
    assert "refused a write" in problem
    assert (await probe(orch, "/healthz"))[0] == 200


async def test_health_endpoints_refuse_a_foreign_host(
    make_config: Callable[..., Config], opened: Callable[..., Any]
) -> None:
    """The Host check covers the health endpoints too (421 for a rebinding page)."""
    orch = await opened(
        make_config({"ok": component("Publishes")}, performance_monitoring=METRICS_ON), Clock()
    )
    assert orch.observers is not None and orch.observers.metrics_server is not None
    port = orch.observers.metrics_server.port
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(5)) as session,
        session.get(f"http://127.0.0.1:{port}/readyz", headers={"Host": "evil.example"}) as resp,
    ):
        assert resp.status == 421
