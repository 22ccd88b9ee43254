"""The join alert across a daemon restart: the breach is not announced again, and its
recovery is announced, because the state lives in the notification dedup store."""

from __future__ import annotations

import asyncio
import time

import pytest
from google.transit import gtfs_realtime_pb2 as rt

from interlock import events as ev
from interlock.components.standins import StandinServer
from interlock.components.standins.gtfs_realtime import GtfsRealtimeSource
from interlock.components.standins.sample_feed import build_zip_of_zips
from tests.notify_servers import slack
from tests.rt_schedule import publish_bytes
from tests.test_rt_schedule_joins import Seen, config, poll

pytestmark = pytest.mark.timeout(60)
__all__ = ["slack"]  # fixture


def strangers(stamp: int) -> bytes:
    """Trip updates whose trip ids the sample schedule does not have."""
    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = stamp
    for n in range(5):
        e = m.entity.add()
        e.id = f"e{n}"
        e.trip_update.trip.trip_id = f"no-such-trip-{n}"
        e.trip_update.stop_time_update.add().stop_sequence = 1
    return m.SerializeToString()


async def test_a_restart_during_a_breach_neither_repeats_it_nor_forgets_the_recovery(
    tmp_path, open_orch, slack, monkeypatch
):
    monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack.url)
    publish_bytes(tmp_path / "data", build_zip_of_zips(1), tmp_path / "zips")
    async with StandinServer([GtfsRealtimeSource(feeds={"metro": ("trip-updates",)})]) as server:
        source = server.source("gtfs_realtime")
        assert isinstance(source, GtfsRealtimeSource)
        cfg = config(tmp_path, server, slack)
        # A window far shorter than the breach: only the stored state can keep it quiet.
        cfg.monitoring["alerting"]["dedup_window_minutes"] = 1e-6
        now = int(time.time())
        source.set_endpoint_bytes("metro", "trip-updates", strangers(now - 60))
        first = await open_orch(cfg)
        await poll(first)
        assert "join_percentage" in (await slack.wait(1))[0]["text"]
        await asyncio.wait_for(first.aclose(), 10)

        second = await open_orch(cfg)  # the same state dir: a restart
        seen = Seen()
        second.bus.subscribe("test", seen.handle)
        source.set_endpoint_bytes("metro", "trip-updates", strangers(now - 30))
        await poll(second)
        assert not [b for b in seen.of(ev.ThresholdBreached) if "join" in b.metric]
        source.clear_endpoint("metro", "trip-updates")  # the stand-in's own ids: they join
        source.advance(60)
        await poll(second)
        payloads = await slack.wait(2)
    assert len(seen.of(ev.ThresholdRecovered)) == 1
    assert "back within" in payloads[1]["text"]
    assert len(payloads) == 2
