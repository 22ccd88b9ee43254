"""GTFS-realtime feeds a hostile or broken publisher could send: too many bytes, too many
entities, entities that cannot be stored, an endpoint that raises. Each ends with that
endpoint (or entity), recorded; the rest of the poll is stored."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.dataset import PollWriter, connect
from interlock.components.gtfs_realtime.frame import scan_feed
from interlock.components.gtfs_realtime.rows import header_record
from interlock.components.standins import StandinServer
from interlock.components.standins.bodies import Delivery
from interlock.components.standins.gtfs_realtime import (
    STANDIN_API_KEY,
    TRIP_UPDATES,
    GtfsRealtimeSource,
    build_entities,
    build_feed,
    build_header,
)
from interlock.config.loader import parse_config
from interlock.config.model import Config
from interlock.errors import FeedRejectedError

pytestmark = pytest.mark.timeout(120)

FAST = {"rate_limit": {"calls": 1000, "per_seconds": 60}}
FEEDS = {"metro": ("trip-updates",), "tram": ("trip-updates",)}
U64_MAX = (1 << 64) - 1


def make(
    tmp_path: Path,
    server: StandinServer,
    *,
    endpoints: dict[str, str] | None = None,
    **settings: Any,
) -> Config:
    source = source_of(server)
    urls = {n: server.url(p) for n, p in source.endpoints().items()}
    doc = {
        "components": {
            "gtfs_realtime": {
                "frequency": "60s",
                "retries": 0,
                "skip_when_upstream_unchanged": False,
                "settings": {
                    "endpoints": urls | (endpoints or {}),
                    "api_key": STANDIN_API_KEY,
                    **settings,
                },
            }
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
        "quota_management": FAST,
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


def source_of(server: StandinServer) -> GtfsRealtimeSource:
    source = server.source("gtfs_realtime")
    assert isinstance(source, GtfsRealtimeSource)
    return source


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def poll(orch: Any) -> tuple[str, str | None, dict[str, Any]]:
    result = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_realtime"], force=True), 60)
    settled = result.outcomes["gtfs_realtime"]
    await orch.bus.flush()
    (hist,) = await orch.store.history(component="gtfs_realtime", limit=1)
    return settled.status.value, settled.reason, dict(hist)


def trip_updates_by_endpoint(tmp_path: Path) -> dict[str, int]:
    db = tmp_path / "data" / "gtfs_realtime.sqlite"
    return dict(rows(db, "SELECT endpoint, count(*) FROM trip_updates GROUP BY endpoint"))


def many_entities(count: int) -> bytes:
    """A valid feed of ``count`` small trip updates (about 31 bytes each), built fast."""
    one = rt.FeedMessage()
    entity = one.entity.add()
    entity.id = "entity-00001"
    entity.trip_update.trip.trip_id = "trip-001"
    # Repeated fields concatenate: the same entity bytes ``count`` times is a valid feed.
    return build_header(int(time.time())) + one.SerializePartialToString() * count


@pytest.mark.parametrize(("count", "stored"), [(200, True), (201, False)])
async def test_max_entities_is_the_most_a_feed_may_have(tmp_path, open_orch, count, stored):
    """A feed over max_entities is refused naming its count; one at the limit is stored."""
    async with StandinServer([GtfsRealtimeSource(feeds=FEEDS)]) as server:
        body = build_feed("metro", TRIP_UPDATES, 1, int(time.time()), entities=count)
        source_of(server).set_endpoint_bytes("metro", "trip-updates", body)
        orch = await open_orch(make(tmp_path, server, max_entities=200))
        status, reason, hist = await poll(orch)
    assert status == "succeeded"
    by = trip_updates_by_endpoint(tmp_path)
    assert by["tram_trip_updates"] == 190
    if stored:
        assert reason is None and by["metro_trip_updates"] == 200
    else:
        assert "metro_trip_updates" not in by
        failed = hist["quality"]["failed"]["metro_trip_updates"]
        assert "201 entities" in failed and "max_entities 200" in failed


async def test_the_default_limits_refuse_a_million_entity_feed(tmp_path, open_orch):
    """A 31 MB feed of a million entities is refused by default, before any is decoded."""
    hostile = many_entities(1_000_000)
    assert 28_000_000 < len(hostile) < 32 << 20
    async with StandinServer([GtfsRealtimeSource(feeds=FEEDS)]) as server:
        source_of(server).set_endpoint_bytes("metro", "trip-updates", hostile)
        orch = await open_orch(make(tmp_path, server))
        status, reason, hist = await poll(orch)
    assert status == "succeeded" and reason is not None
    assert reason.startswith("1 of 2 endpoints failed: metro_trip_updates (")
    assert "1,000,000 entities" in reason and "max_entities" in reason
    assert trip_updates_by_endpoint(tmp_path) == {"tram_trip_updates": 190}
    assert hist["metrics"]["endpoints"]["metro_trip_updates"]["status"] == "failed"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_byte_limit_is_refused_while_streaming(tmp_path, open_orch, chunked):
    """Over max_download_mb the download stops (Content-Length first, else by counting)."""
    delivery = Delivery(chunked=chunked, chunk_bytes=64 * 1024)
    async with StandinServer([GtfsRealtimeSource(feeds=FEEDS, delivery=delivery)]) as server:
        big = build_feed("metro", TRIP_UPDATES, 1, int(time.time()), entities=3000)
        assert len(big) > 1 << 20
        source_of(server).set_endpoint_bytes("metro", "trip-updates", big)
        orch = await open_orch(make(tmp_path, server, max_download_mb=1))
        status, reason, _ = await poll(orch)
    assert status == "succeeded" and reason is not None
    assert "metro_trip_updates" in reason and "max_download_mb" in reason
    assert ("sent more than" if chunked else "declares") in reason
    assert trip_updates_by_endpoint(tmp_path) == {"tram_trip_updates": 190}


async def test_the_default_byte_limit_refuses_a_40_mb_feed(tmp_path, open_orch):
    """By default a 40 MB feed (few, huge entities) is refused before it is read."""
    one = rt.FeedMessage()
    alert = one.entity.add()
    alert.id = "alert"
    alert.alert.header_text.translation.add().text = "x" * 4000
    big = build_header(int(time.time())) + one.SerializePartialToString() * 10_000
    assert len(big) > 40_000_000
    async with StandinServer([GtfsRealtimeSource(feeds=FEEDS)]) as server:
        source_of(server).set_endpoint_bytes("metro", "trip-updates", big)
        orch = await open_orch(make(tmp_path, server))
        status, reason, _ = await poll(orch)
    assert status == "succeeded" and reason is not None
    assert "metro_trip_updates" in reason and "max_download_mb" in reason
    assert trip_updates_by_endpoint(tmp_path) == {"tram_trip_updates": 190}


def feed_with_a_bad_entity(stamp: int) -> bytes:
    """Five good trip updates, one whose times are 2^64-1, and one that cannot be decoded."""
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.timestamp = stamp
    for i in range(5):
        good = msg.entity.add()
        good.id = f"good-{i}"
        good.trip_update.trip.trip_id = f"trip-{i}"
        good.trip_update.timestamp = stamp
        stu = good.trip_update.stop_time_update.add()
        stu.stop_sequence, stu.arrival.time = 1, stamp + 60
        if i == 2:
            bad = msg.entity.add()
            bad.id = "bad-1"
            bad.trip_update.trip.trip_id = "trip-bad"
            bad.trip_update.timestamp = U64_MAX
            bad.vehicle.vehicle.id = "veh-bad"
            bad.vehicle.timestamp = U64_MAX
    # An entity whose id claims 5 bytes where there are 2.
    return msg.SerializeToString() + b"\x12\x04\x0a\x05ab"


async def test_an_entity_that_cannot_be_stored_is_counted_and_the_rest_stored(tmp_path, open_orch):
    """Times of 2^64-1 refuse that entity alone: it is counted and sampled; the rest stored."""
    async with StandinServer([GtfsRealtimeSource(feeds=FEEDS)]) as server:
        body = feed_with_a_bad_entity(int(time.time()))
        source_of(server).set_endpoint_bytes("metro", "trip-updates", body)
        orch = await open_orch(make(tmp_path, server))
        status, reason, hist = await poll(orch)
    assert status == "succeeded"
    db = tmp_path / "data" / "gtfs_realtime.sqlite"
    assert rows(
        db, "SELECT entity_id FROM trip_updates WHERE endpoint='metro_trip_updates' ORDER BY 1"
    ) == [(f"good-{i}",) for i in range(5)]
    assert rows(db, "SELECT count(*) FROM vehicle_positions") == [(0,)]
    assert rows(db, "SELECT count(*) FROM stop_time_updates WHERE endpoint='metro_trip_updates'")
    assert trip_updates_by_endpoint(tmp_path)["tram_trip_updates"] == 190
    refused = hist["quality"]["refused_entities"]["metro_trip_updates"]
    assert refused["count"] == 2
    (timestamps, undecodable) = refused["samples"]
    assert (timestamps["entity_id"], timestamps["index"]) == ("bad-1", 3)
    assert "timestamp" in timestamps["reason"] and str(U64_MAX) in timestamps["reason"]
    assert undecodable["entity_id"] is None and undecodable["index"] == 6
    assert hist["quality"]["passed"] is False
    assert hist["metrics"]["endpoints"]["metro_trip_updates"]["refused_entities"] == 2
    assert reason is not None and "bad-1" in reason


async def test_a_header_stamped_past_any_real_time_fails_that_endpoint(tmp_path, open_orch):
    """A header timestamp of 2^64-1 (allowed by max_future_seconds) fails only its endpoint."""
    async with StandinServer([GtfsRealtimeSource(feeds=FEEDS)]) as server:
        body = build_header(U64_MAX) + build_entities("metro", TRIP_UPDATES, 1, 3)
        source_of(server).set_endpoint_bytes("metro", "trip-updates", body)
        orch = await open_orch(make(tmp_path, server, max_future_seconds=1e30))
        status, reason, _ = await poll(orch)
    assert status == "succeeded" and reason is not None
    assert reason.startswith("1 of 2 endpoints failed: metro_trip_updates (")
    assert str(U64_MAX) in reason
    assert trip_updates_by_endpoint(tmp_path) == {"tram_trip_updates": 190}


async def test_an_endpoint_that_raises_fails_alone(tmp_path, open_orch):
    """An endpoint whose URL the HTTP library rejects fails with a reason; others are stored."""
    async with StandinServer([GtfsRealtimeSource(feeds=FEEDS)]) as server:
        bad = {"broken": "http://127.0.0.1:99999/feed?key=s3cr3t"}
        orch = await open_orch(make(tmp_path, server, endpoints=bad))
        status, reason, hist = await poll(orch)
    assert status == "succeeded" and reason is not None
    assert reason.startswith("1 of 3 endpoints failed: broken (")
    assert "s3cr3t" not in reason and "s3cr3t" not in str(hist)
    assert hist["metrics"]["endpoints"]["broken"]["status"] == "failed"
    assert trip_updates_by_endpoint(tmp_path) == {
        "metro_trip_updates": 190,
        "tram_trip_updates": 190,
    }


def test_an_entity_sqlite_refuses_is_refused_alone(tmp_path):
    """Whatever SQLite refuses of one entity (here a trigger) refuses that entity only."""
    db = tmp_path / "rt.sqlite"
    conn = connect(db)
    conn.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON stop_time_updates WHEN NEW.stop_id = 'poison' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned stop'); END"
    )
    conn.close()
    stamp = int(time.time())
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version, msg.header.timestamp = "2.0", stamp
    for i in range(300):
        entity = msg.entity.add()
        entity.id = f"e{i}"
        entity.trip_update.trip.trip_id = f"t{i}"
        for seq in range(20):
            stu = entity.trip_update.stop_time_update.add()
            stu.stop_sequence = seq
            stu.stop_id = "poison" if (i, seq) == (123, 7) else f"s{seq}"
    data = msg.SerializeToString()
    frame = scan_feed(data, keep=1000)
    assert frame.header is not None
    record = header_record(
        frame.header, frame.count, "ep", fetched_at="now", age_s=0, sha256="x", size=1, run_id="r"
    )
    writer = PollWriter(db)
    tally = writer.add_feed(data, frame, record)
    writer.commit()
    assert tally is not None and tally.refused == 1
    assert (tally.samples[0].entity_id, tally.samples[0].index) == ("e123", 123)
    assert rows(db, "SELECT count(DISTINCT entity_id), count(*) FROM stop_time_updates") == [
        (299, 299 * 20)
    ]


def test_a_feed_with_no_storable_entity_leaves_no_rows_and_the_poll_goes_on(tmp_path):
    """Refusing every entity fails that feed alone: no feeds row, no rows; the next is stored."""
    db = tmp_path / "rt.sqlite"
    writer = PollWriter(db)
    stamp = int(time.time())
    for endpoint, times in (("bad", U64_MAX), ("good", stamp)):
        msg = rt.FeedMessage()
        msg.header.gtfs_realtime_version, msg.header.timestamp = "2.0", stamp
        for i in range(3):
            entity = msg.entity.add(id=f"{endpoint}-{i}")
            entity.trip_update.trip.trip_id = f"t{i}"
            entity.trip_update.stop_time_update.add(stop_sequence=1)
            entity.trip_update.timestamp = times
        data = msg.SerializeToString()
        frame = scan_feed(data, keep=10)
        assert frame.header is not None
        record = header_record(
            frame.header, 3, endpoint, fetched_at="now", age_s=0, sha256="x", size=1, run_id="r"
        )
        if endpoint == "bad":
            with pytest.raises(FeedRejectedError) as caught:
                writer.add_feed(data, frame, record)
            assert "none of the 3 entities" in str(caught.value)
        else:
            assert writer.add_feed(data, frame, record) is not None
    assert writer.commit()["feeds"] == 1
    assert rows(db, "SELECT endpoint, entities FROM feeds") == [("good", 3)]
    assert rows(db, "SELECT DISTINCT endpoint FROM stop_time_updates") == [("good",)]
