"""Join rates of realtime feeds against the schedule in force, their alert, and delays."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from google.transit import gtfs_realtime_pb2 as rt

from interlock import events as ev
from interlock.components.standins import StandinServer
from interlock.components.standins.gtfs_realtime import STANDIN_API_KEY, GtfsRealtimeSource
from interlock.components.standins.sample_feed import build_zip_of_zips
from interlock.config.loader import parse_config
from interlock.config.model import Config
from tests.notify_servers import SlackStandin, slack
from tests.rt_schedule import publish_bytes, publish_zip, vic_partial_zip

pytestmark = pytest.mark.timeout(60)
__all__ = ["slack"]  # fixture

FEEDS = {
    "metro": ("trip-updates", "vehicle-positions", "service-alerts"),
    "tram": ("trip-updates",),
}


def config(tmp_path: Path, server: StandinServer, slack: SlackStandin | None = None) -> Config:
    source = server.source("gtfs_realtime")
    assert isinstance(source, GtfsRealtimeSource)
    endpoints = {n: server.url(p) for n, p in source.endpoints().items()}
    monitoring: dict[str, Any] = {}
    if slack is not None:
        monitoring["alerting"] = {
            "enabled": True,
            "run_summary": "never",
            "slack": {"webhook_url": "${TEST_SLACK_WEBHOOK}"},
        }
    doc = {
        "components": {
            "gtfs_realtime": {
                "frequency": "60s",
                "retries": 0,
                "skip_when_upstream_unchanged": False,
                "settings": {
                    "endpoints": endpoints,
                    "api_key": STANDIN_API_KEY,
                    # The real feeds are from 2025: accept them, this test is about ids.
                    "max_feed_age_seconds": 10 * 365 * 86400,
                },
            }
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
            "retry_backoff_seconds": 0.01,
            "retry_backoff_max_seconds": 0.05,
        },
        "quota_management": {"rate_limit": {"calls": 1000, "per_seconds": 60}},
        "performance_monitoring": monitoring,
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def poll(orch: Any) -> dict[str, Any]:
    """One forced run; the run's quality report."""
    await asyncio.wait_for(orch.scheduler.run_once(["gtfs_realtime"], force=True), 30)
    await orch.bus.flush()
    (row,) = await orch.store.history(component="gtfs_realtime", limit=1)
    return dict(row)["quality"]


class Seen:
    """Events of the bus, for bounded waits."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    async def handle(self, batch: Any) -> None:
        self.events.extend(batch)

    def of(self, kind: type[ev.Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def real_feed(shared: Path, stamp_shift: int = 0) -> bytes:
    msg = rt.FeedMessage.FromString(
        (shared / "gtfs-rt" / "melbourne-metro-tripupdates.pb").read_bytes()
    )
    msg.header.timestamp += stamp_shift
    return msg.SerializeToString()


async def test_stand_in_feeds_mostly_join_the_sample_schedule(tmp_path, open_orch):
    """The stand-in names the sample schedule's ids, but for a few; each poll records them."""
    fp = publish_bytes(tmp_path / "data", build_zip_of_zips(1), tmp_path)
    async with StandinServer([GtfsRealtimeSource(feeds=FEEDS)]) as server:
        orch = await open_orch(config(tmp_path, server))
        report = await poll(orch)
    joins = report["joins"]["metro_trip_updates"]
    assert 85 <= joins["trip"]["percent"] < 100
    assert joins["route"]["percent"] == 100
    assert 80 <= joins["stop"]["percent"] <= 100
    assert joins["trip"]["missing_samples"]
    assert report["schedule"]["version"] == fp
    db = tmp_path / "data" / "gtfs_realtime.sqlite"
    assert rows(db, "SELECT DISTINCT schedule_version FROM feeds") == [(fp,)]
    stored = rows(db, "SELECT kind, ids, joined FROM feed_joins WHERE endpoint='tram_trip_updates'")
    assert {k for k, _, _ in stored} == {"trip", "route", "stop"}
    assert all(0 < joined <= ids for _, ids, joined in stored)


async def test_delays_given_only_as_times_are_derived_from_the_schedule(tmp_path, open_orch):
    """Time-only updates get delay_s from the scheduled time; the view names route and stop."""
    publish_bytes(tmp_path / "data", build_zip_of_zips(1), tmp_path)
    async with StandinServer([GtfsRealtimeSource(feeds=FEEDS)]) as server:
        orch = await open_orch(config(tmp_path, server))
        await poll(orch)
    db = tmp_path / "data" / "gtfs_realtime.sqlite"
    by_source = dict(
        rows(db, "SELECT coalesce(delay_source, '-'), count(*) FROM stop_time_updates GROUP BY 1")
    )
    assert by_source["feed"] > 0 and by_source["derived"] > 0
    # The stand-in's delays lie in -60..600 s; derived ones must come out the same way.
    lo, hi = rows(
        db, "SELECT min(delay_s), max(delay_s) FROM stop_time_updates WHERE delay_source='derived'"
    )[0]
    assert -60 <= lo <= hi <= 600
    ((named,),) = rows(
        db,
        "SELECT count(*) FROM stop_time_update_delays WHERE delay_source = 'derived' "
        "AND route_name IS NOT NULL AND stop_name IS NOT NULL",
    )
    assert named > 0


async def test_real_melbourne_feed_against_real_victorian_schedule_alerts_once(
    tmp_path, open_orch, shared_data, slack, monkeypatch
):
    """Real trip ids that join nothing raise one join alert over two polls, then recover once."""
    monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack.url)
    publish_zip(tmp_path / "data", vic_partial_zip(shared_data, tmp_path))
    async with StandinServer([GtfsRealtimeSource(feeds={"metro": ("trip-updates",)})]) as server:
        source = server.source("gtfs_realtime")
        assert isinstance(source, GtfsRealtimeSource)
        orch = await open_orch(config(tmp_path, server, slack))
        seen = Seen()
        orch.bus.subscribe("test", seen.handle)
        source.set_endpoint_bytes("metro", "trip-updates", real_feed(shared_data))
        first = await poll(orch)
        source.set_endpoint_bytes("metro", "trip-updates", real_feed(shared_data, 30))
        await poll(orch)
        await slack.wait(1)
        breaches = [
            b for b in seen.of(ev.ThresholdBreached) if b.metric.endswith("join_percentage")
        ]
        assert len(breaches) == 1
        assert breaches[0].measured == 0.0 and breaches[0].limit == 90
        assert "trip ids are in the schedule" in breaches[0].detail
        # The schedule republishes with the stand-in's ids and the feed is the stand-in's own.
        publish_bytes(tmp_path / "data", build_zip_of_zips(1), tmp_path)
        source.clear_endpoint("metro", "trip-updates")
        source.advance(60)
        await poll(orch)
        await slack.wait(2)
        recovered = seen.of(ev.ThresholdRecovered)
    assert first["joins"]["metro_trip_updates"]["trip"] == {
        "ids": 192,
        "joined": 0,
        "percent": 0.0,
        "missing_samples": first["joins"]["metro_trip_updates"]["trip"]["missing_samples"],
    }
    assert len(recovered) == 1
    assert len(slack.payloads) == 2
    assert "join_percentage" in slack.payloads[0]["text"]
    assert "back within" in slack.payloads[1]["text"]


def test_the_join_ratio_is_a_prometheus_gauge_per_endpoint_and_kind() -> None:
    """A run's joins become interlock_realtime_join_ratio{component,endpoint,kind}."""
    from datetime import UTC, datetime

    from prometheus_client import generate_latest

    from interlock.observe.metrics import Metrics

    metrics = Metrics()
    joins = {
        "metro_trip_updates": {"trip": {"ids": 200, "joined": 150}, "stop": {"ids": 0, "joined": 0}}
    }
    now = datetime.now(UTC)
    finished = ev.ComponentSucceeded(
        at=now,
        run_id="r",
        component="gtfs_realtime",
        status="succeeded",
        reason=None,
        started_at=now,
        duration_s=1.0,
        metrics={"joins": joins},
    )
    asyncio.run(metrics.handle([finished]))
    text = generate_latest(metrics.registry).decode()
    assert (
        'interlock_realtime_join_ratio{component="gtfs_realtime",endpoint="metro_trip_updates",'
        'kind="trip"} 0.75' in text
    )
    assert 'kind="stop"' not in text


async def test_status_and_report_show_the_join_rates(tmp_path, open_orch, capsys):
    """`interlock status` prints each endpoint's join rates; the report aggregates them."""
    from interlock.cli.admin import print_status
    from interlock.cli.common import print_table
    from interlock.cli.offline import offline_status
    from interlock.observe.report import component_stats, insights

    publish_bytes(tmp_path / "data", build_zip_of_zips(1), tmp_path)
    async with StandinServer([GtfsRealtimeSource(feeds=FEEDS)]) as server:
        cfg = config(tmp_path, server)
        orch = await open_orch(cfg)
        await poll(orch)
        rows_ = await orch.store.history(component="gtfs_realtime", limit=5)
        status = await asyncio.to_thread(offline_status, cfg)
    print_status(status, print_table)
    out = capsys.readouterr().out
    assert "realtime ids found in the schedule in force" in out
    line = next(x for x in out.splitlines() if "tram_trip_updates" in x)
    assert "% of" in line
    stats = component_stats(list(reversed(rows_)))
    trips = stats["joins"]["metro_trip_updates"]["trip"]
    assert trips["polls"] == 1 and 85 <= trips["percent"] < 100
    notes = insights("gtfs_realtime", stats, None)
    assert any("ids found in the schedule in force" in i for i in notes)
