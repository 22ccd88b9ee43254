"""The gtfs_realtime component end to end: the stand-in API, bad payloads per endpoint,
the quota guard, the KeyId secret and the real Melbourne trip updates."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from interlock import events as ev
from interlock.components.standins import StandinServer
from interlock.components.standins.gtfs_realtime import STANDIN_API_KEY, GtfsRealtimeSource
from interlock.config.loader import parse_config
from interlock.config.model import Config
from interlock.service.app import Orchestrator

pytestmark = pytest.mark.timeout(60)

FAST = {"rate_limit": {"calls": 1000, "per_seconds": 60}}
FEEDS = {
    "metro": ("trip-updates", "vehicle-positions", "service-alerts"),
    "tram": ("trip-updates",),
}


def make(
    tmp_path: Path,
    server: StandinServer,
    *,
    quota: dict[str, Any] | None = None,
    only: list[str] | None = None,
    entry: dict[str, Any] | None = None,
    **settings: Any,
) -> Config:
    source = server.source("gtfs_realtime")
    assert isinstance(source, GtfsRealtimeSource)
    endpoints = {n: server.url(p) for n, p in source.endpoints().items() if not only or n in only}
    doc = {
        "components": {
            "gtfs_realtime": {
                "frequency": "60s",
                "retries": 0,
                "skip_when_upstream_unchanged": False,
                **(entry or {}),
                "settings": {"endpoints": endpoints, "api_key": STANDIN_API_KEY, **settings},
            }
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
            "retry_backoff_seconds": 0.01,
            "retry_backoff_max_seconds": 0.05,
        },
        "quota_management": quota or FAST,
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


def server_with(**kw: Any) -> StandinServer:
    return StandinServer([GtfsRealtimeSource(feeds=kw.pop("feeds", FEEDS), **kw)])


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def count(db: Path, table: str) -> int:
    return int(rows(db, f"SELECT count(*) FROM {table}")[0][0])


async def poll(orch: Any) -> tuple[str, str | None]:
    result = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_realtime"], force=True), 30)
    settled = result.outcomes["gtfs_realtime"]
    return settled.status.value, settled.reason


async def last_run(orch: Any) -> dict[str, Any]:
    await orch.bus.flush()
    (row,) = await orch.store.history(component="gtfs_realtime", limit=1)
    return dict(row)


def source_of(server: StandinServer) -> GtfsRealtimeSource:
    source = server.source("gtfs_realtime")
    assert isinstance(source, GtfsRealtimeSource)
    return source


async def test_first_poll_stores_every_entity_type_with_endpoint_and_header(tmp_path, open_orch):
    """Trip updates, stop time updates, positions and alerts land keyed by endpoint and header."""
    async with server_with() as server:
        orch = await open_orch(make(tmp_path, server))
        assert await poll(orch) == ("succeeded", None)
        stamp = source_of(server).timestamp
    db = tmp_path / "data" / "gtfs_realtime.sqlite"
    assert sorted(rows(db, "SELECT DISTINCT endpoint, header_timestamp FROM trip_updates")) == [
        ("metro_trip_updates", stamp),
        ("tram_trip_updates", stamp),
    ]
    assert count(db, "stop_time_updates") == 10 * count(db, "trip_updates")
    assert count(db, "vehicle_positions") == 150 and count(db, "alerts") == 12
    assert count(db, "alert_informed_entities") == 18
    texts = rows(db, "SELECT DISTINCT field, language FROM alert_texts ORDER BY field")
    assert texts == [("description_text", "en"), ("header_text", "en"), ("url", "en")]
    ages = rows(db, "SELECT endpoint, age_s FROM feeds")
    assert len(ages) == 4 and all(abs(age) < 60 for _, age in ages)
    assert len(list((tmp_path / "data" / "raw" / "gtfs_realtime").glob("*.pb"))) == 4


async def test_an_unadvanced_header_is_unchanged_and_stores_nothing(tmp_path, open_orch):
    """The second poll of the same feeds stores nothing; an advanced header appends again."""
    async with server_with() as server:
        orch = await open_orch(make(tmp_path, server))
        await poll(orch)
        db = tmp_path / "data" / "gtfs_realtime.sqlite"
        before = count(db, "trip_updates")
        status, reason = await poll(orch)
        assert (status, count(db, "trip_updates")) == ("unchanged", before)
        assert (
            reason == "no feed header timestamp advanced since the last poll (decided by file_hash)"
        )
        source_of(server).advance(30)
        assert (await poll(orch))[0] == "succeeded"
    assert count(db, "trip_updates") == 2 * before
    assert len(rows(db, "SELECT DISTINCT header_timestamp FROM trip_updates")) == 2


async def test_real_melbourne_trip_updates_are_stored_row_for_row(tmp_path, open_orch, shared_data):
    """The real metro feed (192 trips, 1966 stop time updates) is stored completely."""
    real = (shared_data / "gtfs-rt" / "melbourne-metro-tripupdates.pb").read_bytes()
    midnight = (shared_data / "gtfs-rt" / "melbourne-metro-tripupdates-midnight.pb").read_bytes()
    async with server_with() as server:
        source_of(server).set_endpoint_bytes("metro", "trip-updates", real)
        source_of(server).set_endpoint_bytes("tram", "trip-updates", midnight)
        cfg = make(
            tmp_path,
            server,
            only=["metro_trip_updates", "tram_trip_updates"],
            max_feed_age_seconds=10 * 365 * 86400,
        )
        orch = await open_orch(cfg)
        assert await poll(orch) == ("succeeded", None)
    db = tmp_path / "data" / "gtfs_realtime.sqlite"
    by = dict(rows(db, "SELECT endpoint, count(*) FROM trip_updates GROUP BY endpoint"))
    assert by == {"metro_trip_updates": 192, "tram_trip_updates": 53}
    assert count(db, "stop_time_updates") == 1966 + 258
    trip = rows(
        db,
        "SELECT header_timestamp, start_date FROM trip_updates "
        "WHERE trip_id = '100.T2.2-CGB-vpt-28.10.R'",
    )
    assert trip == [(1738392840, "20250201")]


@pytest.mark.parametrize(
    ("breakage", "reason_part"),
    [
        ("empty", "empty body"),
        ("html", "not a protobuf feed"),
        ("garbage", "malformed"),
        ("future", "in the future"),
        ("stale", "stale"),
    ],
)
async def test_a_bad_endpoint_is_reported_and_the_others_are_stored(
    tmp_path, open_orch, breakage, reason_part
):
    """A bad payload on one endpoint stores nothing from it; the run succeeds with the rest."""
    async with server_with() as server:
        source = source_of(server)
        path = source.path("metro", "vehicle-positions")
        if breakage == "empty":
            source.set_endpoint_bytes("metro", "vehicle-positions", b"")
        elif breakage == "html":
            server.faults.set(path, "wrong_content_type", times=None)
        elif breakage == "garbage":
            server.faults.set(path, "corrupt_zip", times=None)
        else:
            shift = 3600 if breakage == "future" else -3 * 3600
            stale = source.body("metro", "vehicle-positions")
            source.set_timestamp(source.timestamp + shift)
            odd = source.body("metro", "vehicle-positions")
            source.set_timestamp(source.timestamp - shift)
            assert odd != stale
            source.set_endpoint_bytes("metro", "vehicle-positions", odd)
        orch = await open_orch(make(tmp_path, server))
        status, reason = await poll(orch)
        hist = await last_run(orch)
    assert status == "succeeded"
    assert reason.startswith("1 of 4 endpoints failed: metro_vehicle_positions (")
    assert reason_part in reason
    db = tmp_path / "data" / "gtfs_realtime.sqlite"
    assert count(db, "vehicle_positions") == 0 and count(db, "alerts") == 12
    assert rows(db, "SELECT count(*) FROM feeds WHERE endpoint='metro_vehicle_positions'") == [(0,)]
    assert hist["quality"]["passed"] is False
    assert reason_part in hist["quality"]["failed"]["metro_vehicle_positions"]
    assert hist["metrics"]["endpoints"]["metro_vehicle_positions"]["status"] == "failed"


async def test_the_component_fails_only_when_every_endpoint_fails(tmp_path, open_orch):
    """When all endpoints send HTML the run fails, naming each endpoint."""
    async with server_with() as server:
        server.faults.set("gtfs_realtime", "wrong_content_type", times=None)
        orch = await open_orch(make(tmp_path, server))
        status, reason = await poll(orch)
    assert status == "failed" and reason.startswith("all 4 endpoints failed: metro_trip_updates")
    assert not (tmp_path / "data" / "gtfs_realtime.sqlite").exists()


async def test_all_endpoints_down_is_transient_and_retried(tmp_path, open_orch):
    """A 500 on every endpoint is retried by the scheduler, and the retry succeeds."""
    async with server_with(feeds={"metro": ("trip-updates",)}) as server:
        server.faults.set("gtfs_realtime", "status_500", times=1)
        orch = await open_orch(make(tmp_path, server, entry={"retries": 1}))
        assert await poll(orch) == ("succeeded", None)
        assert (await last_run(orch))["attempts"] == 2


async def test_a_429_penalises_the_family_and_the_endpoint_is_retried(tmp_path, open_orch):
    """A 429 with Retry-After holds the family's tokens, then the call is made again."""
    async with server_with(feeds={"metro": ("trip-updates",)}) as server:
        server.faults.set("gtfs_realtime", "status_429", times=1, retry_after=1)
        orch = await open_orch(make(tmp_path, server))
        t0 = time.monotonic()
        assert await poll(orch) == ("succeeded", None)
        assert time.monotonic() - t0 >= 0.9
        hist = await last_run(orch)
    assert hist["metrics"]["endpoints"]["metro_trip_updates"]["quota_wait_s"] >= 0.9


async def test_a_wrong_key_is_401_and_the_key_is_never_logged(tmp_path, open_orch):
    """Without the right KeyId every endpoint is refused; neither key reaches a log line."""
    secret = "s3cr3t-wrong-key-value"
    async with server_with() as server:
        cfg = make(tmp_path, server, api_key=secret)
        with structlog.testing.capture_logs() as logs:
            orch = await open_orch(cfg)
            status, reason = await poll(orch)
            await orch.bus.flush()
    assert status == "failed" and "401" in reason
    assert secret not in repr(logs) and STANDIN_API_KEY not in repr(logs)
    assert any(e.get("event") == "realtime_endpoint_failed" for e in logs)


async def test_quota_exhausted_skips_non_priority_endpoints(tmp_path, open_orch):
    """With the day's calls used up only the priority endpoint is polled."""
    quota = {**FAST, "daily_limit": 4, "priority_endpoints": ["metro_trip_updates"]}
    async with server_with() as server:
        orch = await open_orch(make(tmp_path, server, quota=quota))
        warnings: list[ev.Event] = []

        async def keep(batch: Any) -> None:
            warnings.extend(e for e in batch if isinstance(e, ev.QuotaWarning))

        orch.bus.subscribe("test-quota", keep)
        assert (await poll(orch))[0] == "succeeded"
        source_of(server).advance(10)
        status, reason = await poll(orch)
        hist = await last_run(orch)
    assert status == "succeeded" and reason == "3 skipped (quota_exhausted)"
    assert hist["metrics"]["endpoints"]["metro_trip_updates"]["status"] == "stored"
    assert hist["quality"]["skipped"] == {
        "metro_vehicle_positions": "quota_exhausted",
        "metro_service_alerts": "quota_exhausted",
        "tram_trip_updates": "quota_exhausted",
    }
    assert [w.threshold_percent for w in warnings] == [80.0, 95.0]  # type: ignore[attr-defined]
    assert orch.quota.describe()["used"] == 5


async def test_without_priority_endpoints_the_component_is_skipped(tmp_path, open_orch):
    """When no endpoint may be called the run records a quota_exhausted skip, not a failure."""
    quota = {**FAST, "daily_limit": 4, "priority_endpoints": []}
    async with server_with() as server:
        orch = await open_orch(make(tmp_path, server, quota=quota))
        await poll(orch)
        status, reason = await poll(orch)
        hist = await last_run(orch)
    assert (status, reason) == ("skipped", "quota_exhausted")
    assert hist["status"] == "skipped" and "polling resumes at the reset" in hist["error"]


async def test_waiting_for_tokens_counts_against_the_timeout(tmp_path, open_orch):
    """At one call an hour the second endpoint's wait runs the component out of time."""
    quota = {"rate_limit": {"calls": 1, "per_seconds": 3600}}
    async with server_with(feeds={"metro": ("trip-updates", "vehicle-positions")}) as server:
        cfg = make(tmp_path, server, quota=quota, entry={"timeout_minutes": 0.01})
        orch = await open_orch(cfg)
        status, reason = await poll(orch)
        describe = orch.quota.describe()
    assert status == "timed_out" and "timed out after" in (reason or "")
    assert describe["used"] == 1  # the call that never happened was given back


async def test_status_shows_quota_per_endpoint_and_feed_ages(tmp_path, open_orch):
    """gather_status and the offline reader agree on the day's calls, per endpoint."""
    from datetime import UTC, datetime

    from interlock.service.status import gather_status, offline_quota
    from interlock.store.sqlite import STATE_DB

    async with server_with() as server:
        orch = await open_orch(make(tmp_path, server))
        await poll(orch)
        await orch.bus.flush()
        await orch.quota.flush()
        now = datetime.now(UTC)
        live = await gather_status(orch.config, orch.store, now, quota=orch.quota)
        saved = await gather_status(orch.config, orch.store, now)
        offline = offline_quota(orch.config, tmp_path / "state" / STATE_DB, now)
    (component,) = live["components"]
    assert component["last_status"] == "succeeded"
    assert set(component["feed_age_s"]) == {
        "metro_trip_updates",
        "metro_vehicle_positions",
        "metro_service_alerts",
        "tram_trip_updates",
    }
    for quota in (live["quota"], saved["quota"], offline):
        assert (quota["used"], quota["left"]) == (4, 996)
        assert quota["endpoints"]["tram_trip_updates"] == {
            "calls": 1,
            "refused": 0,
            "priority": False,
        }


async def test_feeds_older_than_the_retention_are_pruned_with_their_rows(tmp_path):
    """After retention_hours a stored feed and every row of it are deleted; newer feeds stay."""
    now = [datetime.now(UTC)]
    async with server_with() as server:
        config = make(tmp_path, server, retention_hours=1)
        async with Orchestrator(config, clock=lambda: now[0], log_events=False) as orch:
            assert await poll(orch) == ("succeeded", None)
            first = source_of(server).timestamp
            now[0] += timedelta(hours=2)  # two hours pass for the daemon and the publisher
            source_of(server).set_timestamp(first + 7200)
            assert await poll(orch) == ("succeeded", None)
            run = await last_run(orch)
    db = tmp_path / "data" / "gtfs_realtime.sqlite"
    for table in ("feeds", "trip_updates", "stop_time_updates", "vehicle_positions", "alerts"):
        stamps = rows(db, f"SELECT DISTINCT header_timestamp FROM {table}")
        assert stamps == [(first + 7200,)], table
    assert run["quality"]["pruned"]["trip_updates"] > 0
