"""The Prometheus endpoint: scraped over HTTP and parsed with prometheus-client's parser."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
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


def interlock_version() -> str:
    return version("interlock")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


METRICS_ON = {"metrics": {"enabled": True, "listen": "127.0.0.1:0"}}


async def scrape(orch: Any, headers: dict[str, str] | None = None) -> tuple[str, str]:
    """The body and content type of one GET /metrics of ``orch``'s metrics server."""
    assert await orch.bus.flush(5)
    port = orch.observers.metrics_server.port
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(5)) as session,
        session.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as resp,
    ):
        assert resp.status == 200
        return await resp.text(), resp.headers.get("Content-Type", "")


async def test_the_metrics_endpoint_serves_runs_durations_api_feeds_and_process(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], api_server: str
) -> None:
    """After a run the scrape shows runs by outcome, a duration histogram, API and feeds."""
    config = make_config(
        {
            "rt": component(
                "CallsApi",
                url=api_server,
                calls=2,
                endpoint="departures",
                metrics={"endpoints": {"metro_trip_updates": {"header_timestamp": 1_700_000_000}}},
            ),
            "bad": component("Fails"),
        },
        performance_monitoring=METRICS_ON,
    )
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    got = samples((await scrape(orch))[0])
    assert (
        got[("interlock_component_runs_total", (("component", "rt"), ("outcome", "succeeded")))]
        == 1
    )
    assert (
        got[("interlock_component_runs_total", (("component", "bad"), ("outcome", "failed")))] == 1
    )
    assert got[("interlock_component_duration_seconds_count", (("component", "rt"),))] == 1
    assert got[("interlock_component_last_success_timestamp_seconds", (("component", "rt"),))] > 1e9
    rt_departures = (("component", "rt"), ("endpoint", "departures"))
    assert got[("interlock_api_calls_total", rt_departures)] == 2
    feed = (("component", "rt"), ("endpoint", "metro_trip_updates"))
    assert got[("interlock_feed_header_timestamp_seconds", feed)] == 1_700_000_000
    assert got[("process_resident_memory_bytes", ())] > 1e6
    assert ("process_cpu_seconds_total", ()) in got
    assert got[("interlock_quota_left_calls", ())] >= 0  # from the quota guard at scrape time


async def test_api_response_times_are_one_histogram_per_component_and_endpoint(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], api_server: str
) -> None:
    """Response times are a real histogram; no counter named like its sum, no fake quantiles."""
    config = make_config(
        {"rt": component("CallsApi", url=api_server, calls=3, endpoint="departures")},
        performance_monitoring=METRICS_ON,
    )
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    text = (await scrape(orch))[0]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    histogram = families["interlock_api_response_seconds"]
    assert histogram.type == "histogram"
    got = samples(text)
    labels = (("component", "rt"), ("endpoint", "departures"))
    assert got[("interlock_api_response_seconds_count", labels)] == 3
    assert got[("interlock_api_response_seconds_bucket", (*labels, ("le", "+Inf")))] == 3
    assert 0 < got[("interlock_api_response_seconds_sum", labels)] < 5
    assert "interlock_api_response_seconds_sum_total" not in text
    assert "quantile=" not in text


async def test_api_calls_without_an_endpoint_name_are_labelled_by_component(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], api_server: str
) -> None:
    """A call whose component names no endpoint is labelled with the component: never a URL."""
    config = make_config(
        {"ckan": component("CallsApi", url=api_server, calls=1)},
        performance_monitoring=METRICS_ON,
    )
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    got = samples((await scrape(orch))[0])
    assert got[("interlock_api_calls_total", (("component", "ckan"), ("endpoint", "ckan")))] == 1
    assert all("127.0.0.1" not in value for _, labels in got for _, value in labels)


async def test_no_created_series_and_the_build_is_described(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """No ``_created`` series; ``interlock_build_info`` carries the version and Python."""
    config = make_config({"ok": component("Publishes")}, performance_monitoring=METRICS_ON)
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    text = (await scrape(orch))[0]
    assert "_created" not in text
    (build,) = [dict(labels) for name, labels in samples(text) if name == "interlock_build_info"]
    assert build["version"] == interlock_version() and build["python"].startswith("3.")


async def test_last_success_counts_publishes_only_and_datasets_carry_their_publish_time(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """An unchanged run moves last_checked, not last_success; each dataset has its time."""
    entry = component("Publishes", fingerprint="same", unchanged_if_same=True)
    entry["provides"] = ["stops", "routes"]
    config = make_config({"gtfs": entry}, performance_monitoring=METRICS_ON)
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    first = samples((await scrape(orch))[0])
    result = await asyncio.wait_for(orch.scheduler.run_once(["gtfs"], force=True), 10)
    assert result.outcomes["gtfs"].status.value == "unchanged"
    second = samples((await scrape(orch))[0])
    gtfs = (("component", "gtfs"),)
    success = "interlock_component_last_success_timestamp_seconds"
    checked = "interlock_component_last_checked_timestamp_seconds"
    assert second[(success, gtfs)] == first[(success, gtfs)]
    assert second[(checked, gtfs)] > first[(checked, gtfs)]
    for dataset in ("stops", "routes"):
        key = (
            "interlock_dataset_published_timestamp_seconds",
            (("component", "gtfs"), ("dataset", dataset)),
        )
        assert second[key] == first[(success, gtfs)]


async def test_a_restarted_daemon_reports_the_stored_publish_times(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """Last success, last check and dataset times survive a restart (read from the store)."""
    config = make_config(
        {"ok": component("Publishes", fingerprint="f", unchanged_if_same=True)},
        performance_monitoring=METRICS_ON,
    )
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    await asyncio.wait_for(orch.scheduler.run_once(["ok"], force=True), 10)
    before = samples((await scrape(orch))[0])
    await asyncio.wait_for(orch.aclose(), 10)
    after = samples((await scrape(await open_orch(config)))[0])
    for name in (
        "interlock_component_last_success_timestamp_seconds",
        "interlock_component_last_checked_timestamp_seconds",
    ):
        assert after[(name, (("component", "ok"),))] == before[(name, (("component", "ok"),))]
    dataset = (("component", "ok"), ("dataset", "ok"))
    assert after[("interlock_dataset_published_timestamp_seconds", dataset)] > 1e9


async def test_the_scrape_negotiates_openmetrics_and_compression(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """prometheus-client's handler serves OpenMetrics to a scraper that asks for it."""
    config = make_config({"ok": component("Publishes")}, performance_monitoring=METRICS_ON)
    orch = await open_orch(config)
    text, ctype = await scrape(orch, {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert ctype.startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")
    port = orch.observers.metrics_server.port
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(5), auto_decompress=False) as s,
        s.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"}) as resp,
    ):
        assert resp.headers.get("Content-Encoding") == "gzip"


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package 'prometheus'; .ci/run installs it as root)",
)
async def test_promtool_finds_nothing_to_complain_about_in_a_scrape(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], api_server: str
) -> None:
    """``promtool check metrics`` passes a scrape taken after real runs, silently."""
    config = make_config(
        {
            "rt": component("CallsApi", url=api_server, calls=2, endpoint="departures"),
            "bad": component("Fails"),
            "ok": component("Publishes"),
        },
        performance_monitoring=METRICS_ON,
    )
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    text = (await scrape(orch))[0]
    assert PROMTOOL is not None
    proc = await asyncio.create_subprocess_exec(
        PROMTOOL,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(text.encode()), 30)
    assert (proc.returncode, out.decode()) == (0, "")


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


async def test_realtime_and_ptv_calls_are_labelled_by_endpoint_name_not_url(
    tmp_path: Path, open_orch: Callable[..., Any]
) -> None:
    """GTFS-realtime calls carry the configured endpoint names, PTV calls the API's kinds."""
    from interlock.components.standins import StandinServer
    from interlock.components.standins.ptv import PtvSource
    from tests import test_gtfs_realtime as realtime
    from tests import test_ptv as ptv

    async with realtime.server_with() as server:
        orch = await open_orch(realtime.make(tmp_path / "rt", server))
        assert (await realtime.poll(orch))[0] == "succeeded"
        api = (await realtime.last_run(orch))["metrics"]["api"]
    assert set(api) == {
        "metro_trip_updates",
        "metro_vehicle_positions",
        "metro_service_alerts",
        "tram_trip_updates",
    }
    async with StandinServer([PtvSource()]) as server:
        dep = [{"route_type": 0, "stop_id": 1001, "max_results": 6}]
        orch = await open_orch(ptv.make(tmp_path / "ptv", server.url("/ptv"), departures=dep))
        assert (await ptv.run(orch))[0] == "succeeded"
        assert await orch.bus.flush(5)
        (row,) = await orch.store.history(component="ptv_timetable", limit=1)
    assert set(row["metrics"]["api"]) <= {"route_types", "routes", "departures", "disruptions"}
    assert "departures" in row["metrics"]["api"]
