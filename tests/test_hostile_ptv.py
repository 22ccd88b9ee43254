"""PTV replies as real servers send them: large, in slow pieces, chunked or with a length,
and replies over the configured limit refused with a reason that names the setting."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from interlock.components.ptv_timetable.client import PtvClient
from interlock.components.standins import StandinServer
from interlock.components.standins.bodies import Delivery
from interlock.components.standins.ptv import DEMO_API_KEY, DEMO_DEVID, PtvSource
from interlock.config.loader import parse_config
from interlock.errors import ConfigError, PayloadTooLargeError
from interlock.kit import HttpClient

pytestmark = pytest.mark.timeout(60)

MB = 1_000_000
ROUTES_ONLY = {"route_types": False, "routes": True, "disruptions": False, "departures": []}


def route(i: int) -> dict[str, Any]:
    """One route as /v3/routes lists it (without geopath, as the API sends by default)."""
    return {
        "route_service_status": {
            "description": "Good Service",
            "timestamp": "2025-02-01T06:30:00+00:00",
        },
        "route_type": i % 5,
        "route_id": 10_000 + i,
        "route_name": f"Ringwood - Chirnside Park via Maroondah Highway ({i})",
        "route_number": str(600 + i % 300),
        "route_gtfs_id": f"4-{600 + i % 300}-{i}",
        "geopath": [],
    }


def routes_reply(size: int) -> tuple[bytes, int]:
    """A valid /v3/routes answer of at least ``size`` bytes, and how many routes it lists."""
    per = len(json.dumps(route(0))) + 2
    count = max(1, size // per + 1)
    doc = {"routes": [route(i) for i in range(count)], "status": {"version": "3.0", "health": 1}}
    body = json.dumps(doc).encode()
    assert len(body) >= size
    return body, count


def source_serving(body: bytes, *, chunked: bool) -> PtvSource:
    source = PtvSource(delivery=Delivery(chunked=chunked, chunk_bytes=64 * 1024, pause_s=0.001))
    source.publish_bytes(body)
    return source


async def fetch_routes(server: StandinServer, **client: Any) -> dict[str, Any]:
    async with HttpClient() as http:
        ptv = PtvClient(
            http, base_url=server.url("/ptv"), devid=DEMO_DEVID, api_key=DEMO_API_KEY, **client
        )
        return await asyncio.wait_for(ptv.get("/v3/routes"), 30)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [MB // 10, MB, 10 * MB], ids=["0.1MB", "1MB", "10MB"])
async def test_the_client_reads_whole_replies(size: int, chunked: bool) -> None:
    """A /v3/routes reply of 0.1, 1 or 10 MB, sent in slow pieces, is read and parsed whole."""
    body, count = routes_reply(size)
    async with StandinServer([source_serving(body, chunked=chunked)]) as server:
        doc = await fetch_routes(server)
        (served,) = [r for r in server.requests if r.path == "/ptv/v3/routes"]
    assert served.status == 200
    assert len(doc["routes"]) == count and doc["routes"][-1]["route_id"] == 10_000 + count - 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_reply_over_the_limit_is_refused_naming_the_setting(chunked: bool) -> None:
    """Over max_response_bytes: an error naming the endpoint, the limit and the setting."""
    body, _ = routes_reply(2 * MB)
    async with StandinServer([source_serving(body, chunked=chunked)]) as server:
        with pytest.raises(PayloadTooLargeError) as caught:
            await fetch_routes(server, max_response_bytes=1_000_000)
    message = str(caught.value)
    assert "PTV /v3/routes" in message and "1000000" in message.replace(",", "")
    assert "max_response_bytes" in message
    assert DEMO_DEVID not in message and "signature" not in message and "devid" not in message


def make(tmp_path: Path, base_url: str, retries: int = 0, **settings: Any) -> Any:
    doc = {
        "components": {
            "ptv_timetable": {
                "frequency": "15m",
                "retries": retries,
                "settings": {
                    "base_url": base_url,
                    "devid": DEMO_DEVID,
                    "api_key": DEMO_API_KEY,
                    **ROUTES_ONLY,
                    **settings,
                },
            }
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
            "retry_backoff_seconds": 0.01,
            "retry_backoff_max_seconds": 0.05,
        },
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


async def run(orch: Any) -> tuple[str, str | None, dict[str, Any]]:
    result = await asyncio.wait_for(orch.scheduler.run_once(["ptv_timetable"]), 30)
    settled = result.outcomes["ptv_timetable"]
    await orch.bus.flush()
    (hist,) = await orch.store.history(component="ptv_timetable", limit=1)
    return settled.status.value, settled.reason, dict(hist)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_143_kb_routes_reply_is_stored(tmp_path, open_orch, chunked: bool) -> None:
    """The shipped component stores a valid 143 KB /v3/routes reply sent in slow pieces."""
    body, count = routes_reply(143_043)
    async with StandinServer([source_serving(body, chunked=chunked)]) as server:
        orch = await open_orch(make(tmp_path, server.url("/ptv")))
        status, reason, _ = await run(orch)
    assert (status, reason) == ("succeeded", None)
    db = tmp_path / "data" / "ptv_timetable.sqlite"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT count(*) FROM routes").fetchone() == (count,)
    finally:
        conn.close()


async def test_an_oversized_reply_fails_once_and_is_not_retried(tmp_path, open_orch) -> None:
    """Over the component's max_response_bytes the run fails once, naming the setting."""
    body, _ = routes_reply(300_000)
    async with StandinServer([source_serving(body, chunked=True)]) as server:
        cfg = make(tmp_path, server.url("/ptv"), retries=2, max_response_bytes=200_000)
        orch = await open_orch(cfg)
        status, reason, hist = await run(orch)
    assert status == "failed" and hist["attempts"] == 1
    assert reason is not None and "PTV /v3/routes" in reason and "max_response_bytes" in reason
    assert DEMO_DEVID not in reason and DEMO_API_KEY not in reason and "signature" not in reason


@pytest.mark.parametrize("bad", [0, -1, "16MB", 1.5])
def test_max_response_bytes_must_be_a_positive_whole_number(tmp_path, bad: Any) -> None:
    """The setting is checked with the config: a size in bytes, at least one."""
    with pytest.raises(ConfigError) as caught:
        make(tmp_path, "http://127.0.0.1:9/ptv", max_response_bytes=bad)
    assert "max_response_bytes" in str(caught.value)
