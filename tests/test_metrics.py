"""The Prometheus endpoint: scraped over HTTP and parsed with prometheus-client's parser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from interlock.config.model import Config
from interlock.errors import ConfigError
from interlock.observe.metrics import parse_listen
from tests.conftest import component
from tests.test_monitor import api_server

__all__ = ["api_server"]  # fixture


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_the_metrics_endpoint_serves_runs_durations_api_feed_age_and_process(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], api_server: str
) -> None:
    """After a run the scrape shows runs by outcome, a duration histogram, API and feed age."""
    config = make_config(
        {
            "rt": component(
                "CallsApi",
                url=api_server,
                calls=2,
                metrics={"feed_age_s": {"metro/trip_updates": 42}},
            ),
            "bad": component("Fails"),
        },
        performance_monitoring={"metrics": {"enabled": True, "listen": "127.0.0.1:0"}},
    )
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert await orch.bus.flush(5)
    port = orch.observers.metrics_server.port
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(5)) as resp,
    ):
        assert resp.status == 200
        text = await resp.text()
    got = samples(text)
    assert (
        got[("interlock_component_runs_total", (("component", "rt"), ("outcome", "succeeded")))]
        == 1
    )
    assert (
        got[("interlock_component_runs_total", (("component", "bad"), ("outcome", "failed")))] == 1
    )
    assert got[("interlock_component_duration_seconds_count", (("component", "rt"),))] == 1
    assert got[("interlock_component_last_success_timestamp_seconds", (("component", "rt"),))] > 1e9
    endpoint = api_server.split("//")[1].split("?")[0]
    assert got[("interlock_api_calls_total", (("component", "rt"), ("endpoint", endpoint)))] == 2
    assert (
        got[
            (
                "interlock_feed_age_seconds",
                (("component", "rt"), ("endpoint", "metro/trip_updates")),
            )
        ]
        == 42
    )
    assert got[("process_resident_memory_bytes", ())] > 1e6
    assert ("process_cpu_seconds_total", ()) in got
    assert got[("interlock_quota_left_calls", ())] >= 0  # from the quota guard at scrape time


def test_metrics_are_served_on_loopback_only() -> None:
    """A non-loopback listen address is refused with the reason and what to do."""
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ConfigError, match="is not a loopback address; metrics are served"):
        parse_listen("0.0.0.0:9464")
    with pytest.raises(ConfigError, match="is not host:port"):
        parse_listen("9464")


async def test_no_server_when_metrics_are_disabled(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """With metrics off (the default) nothing listens."""
    orch = await open_orch(make_config({"ok": component("Publishes")}))
    assert orch.observers.metrics_server is None


async def test_a_foreign_host_header_cannot_read_the_metrics(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """A DNS-rebinding page (Host: evil.example) gets 421; the machine's own address reads."""
    config = make_config(
        {"ok": component("Publishes")},
        performance_monitoring={"metrics": {"enabled": True, "listen": "127.0.0.1:0"}},
    )
    orch = await open_orch(config)
    port = orch.observers.metrics_server.port
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(5)) as session:
        async with session.get(url, headers={"Host": "evil.example:9464"}) as resp:
            assert resp.status == 421
            assert "interlock_" not in await resp.text()
        async with session.get(url, headers={"Host": f"127.0.0.1:{port}"}) as resp:
            assert resp.status == 200
            assert "interlock_quota_left_calls" in await resp.text()
