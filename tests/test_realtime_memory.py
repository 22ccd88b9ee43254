"""The daemon's peak memory on the largest GTFS-realtime feed its default limits accept.

A real ``interlock run`` subprocess polls a stand-in serving a feed at both default
limits (32 MiB, 50,000 entities) beside a hostile one (a million entities); the
kernel's own peak RSS for the process must stay under 300 MB (the unit's MemoryMax
is 512M)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.component import MAX_DOWNLOAD_MB, MB
from interlock.components.gtfs_realtime.decode import MAX_ENTITIES
from interlock.components.standins import StandinServer
from interlock.components.standins.bodies import Delivery
from interlock.components.standins.gtfs_realtime import STANDIN_API_KEY, GtfsRealtimeSource

PEAK_LIMIT_MB = 300
# Runs the daemon as its only child and writes the child's peak RSS (KiB on Linux).
WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "open(sys.argv[1], 'w').write(str(peak))\n"
    "sys.exit(rc)\n"
)


def largest_accepted_feed(stamp: int) -> bytes:
    """Trip updates at both default limits: MAX_ENTITIES entities, just under the byte cap."""
    limit = MAX_DOWNLOAD_MB * MB
    per_entity = limit // MAX_ENTITIES
    template = rt.TripUpdate()
    template.trip.trip_id = "1-ABC-mjp-1.1.H"
    template.trip.start_date = "20250201"
    template.timestamp = stamp
    one = rt.FeedEntity(id="x")
    one.trip_update.CopyFrom(template)
    while one.ByteSize() < per_entity - 60:
        stu = one.trip_update.stop_time_update.add()
        stu.stop_sequence = len(one.trip_update.stop_time_update)
        stu.stop_id = f"{10_000 + stu.stop_sequence}"
        stu.arrival.time, stu.arrival.delay = stamp + 120 * stu.stop_sequence, 60
        stu.departure.time, stu.departure.delay = stamp + 120 * stu.stop_sequence + 30, 60
    template.CopyFrom(one.trip_update)
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.timestamp = stamp
    for i in range(MAX_ENTITIES):
        entity = msg.entity.add(id=f"entity-{i:06d}")
        entity.trip_update.CopyFrom(template)
        entity.trip_update.trip.trip_id = f"1-ABC-mjp-1.{i}.H"
    data = msg.SerializeToString()
    assert limit * 0.95 < len(data) <= limit, len(data)
    return data


def million_entities(stamp: int) -> bytes:
    one = rt.FeedMessage()
    entity = one.entity.add(id="entity-00001")
    entity.trip_update.trip.trip_id = "trip-001"
    head = rt.FeedMessage()
    head.header.gtfs_realtime_version, head.header.timestamp = "2.0", stamp
    return head.SerializeToString() + one.SerializePartialToString() * 1_000_000


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_peak_rss_stays_under_300_mb_on_the_largest_accepted_feed(tmp_path: Path) -> None:
    """`interlock run` on a 32 MiB, 50,000-entity feed plus a hostile one peaks under 300 MB."""
    stamp = int(time.time())
    delivery = Delivery(chunked=True, chunk_bytes=256 * 1024, pause_s=0)
    feeds = {"metro": ("trip-updates",), "bus": ("trip-updates",)}
    source = GtfsRealtimeSource(feeds=feeds, delivery=delivery)
    source.set_endpoint_bytes("metro", "trip-updates", largest_accepted_feed(stamp))
    source.set_endpoint_bytes("bus", "trip-updates", million_entities(stamp))
    async with StandinServer([source]) as server:
        endpoints = {n: server.url(p) for n, p in source.endpoints().items()}
        config = tmp_path / "orchestration.json"
        config.write_text(
            json.dumps(
                {
                    "components": {
                        "gtfs_realtime": {
                            "frequency": "60s",
                            "retries": 0,
                            "timeout_minutes": 4,
                            "settings": {"endpoints": endpoints, "api_key": STANDIN_API_KEY},
                        }
                    },
                    "runtime_settings": {
                        "state_dir": str(tmp_path / "state"),
                        "data_dir": str(tmp_path / "data"),
                    },
                    "quota_management": {"rate_limit": {"calls": 100, "per_seconds": 60}},
                }
            )
        )
        peak_file = tmp_path / "peak_kib"
        command = [sys.executable, "-m", "interlock.cli", "run", "--once", "--config", str(config)]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRAPPER,
            str(peak_file),
            *command,
            "gtfs_realtime",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            rc = await asyncio.wait_for(proc.wait(), 240)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    peak_mb = int(peak_file.read_text()) * 1024 / 1e6
    print(f"\ninterlock run peak RSS: {peak_mb:.0f} MB (limit {PEAK_LIMIT_MB} MB)")
    assert rc == 0
    db = sqlite3.connect(f"file:{tmp_path / 'data' / 'gtfs_realtime.sqlite'}?mode=ro", uri=True)
    try:
        by = dict(db.execute("SELECT endpoint, entities FROM feeds").fetchall())
    finally:
        db.close()
    assert by == {"metro_trip_updates": MAX_ENTITIES}  # the hostile bus feed was refused
    assert peak_mb < PEAK_LIMIT_MB
