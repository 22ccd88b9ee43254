"""Decode and store Melbourne-sized GTFS-realtime trip-update feeds, against a floor.

Ours: the component's path per feed (checks, ``ParseFromString``, the realtime rules
and the join rates against the published sample schedule the stand-in feeds name,
delays derived from its stop times where a feed gives only times, rows for every table,
one transaction per poll). Floor, measured in the same run on the same
feeds: bare ``ParseFromString`` plus ``executemany`` of the same rows, prebuilt.
Prints entities/s for both and the ratio (target >= 0.5); the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.dataset import SCHEMA, append_polls
from interlock.components.gtfs_realtime.decode import FeedLimits, decode_feed
from interlock.components.gtfs_realtime.delays import DelayDeriver
from interlock.components.gtfs_realtime.joins import join_rates
from interlock.components.gtfs_realtime.rows import INSERT, feed_record, feed_rows
from interlock.components.gtfs_realtime.rt_rules import run_on_feed
from interlock.components.gtfs_realtime.schedule_index import ScheduleIndex, ScheduleSource
from interlock.components.gtfs_schedule.loader import load_feed
from interlock.components.gtfs_schedule.parallel import Tuning
from interlock.components.standins.gtfs_realtime import TRIP_UPDATES, build_feed
from interlock.components.standins.sample_feed import build_zip_of_zips
from interlock.kit.publish import PublishStamp, write_stamp

ENDPOINT = "metro_train_trip_updates"


def feeds(n: int, entities: int) -> list[bytes]:
    base = int(time.time()) - n * 30
    return [build_feed("metro", TRIP_UPDATES, 1 + i % 5, base + i * 30, entities) for i in range(n)]


def published_schedule(tmp: Path) -> ScheduleIndex:
    """The sample schedule the stand-in's feeds name, loaded and opened as a poll does."""
    zip_path = tmp / "schedule.zip"
    zip_path.write_bytes(build_zip_of_zips(1))
    db = tmp / "gtfs_schedule.sqlite"
    if not db.exists():
        load_feed(zip_path, db, tuning=Tuning(workers=0))
        write_stamp(
            db,
            PublishStamp(
                component="gtfs_schedule",
                run_id="bench",
                fingerprint="bench",
                records=0,
                published_at=datetime.now(UTC),
                memory={},
                inputs={},
            ),
        )
    index = ScheduleSource(db).current()
    assert index is not None
    return index


def ours(payloads: list[bytes], db: Path, schedule: ScheduleIndex) -> float:
    t0 = time.perf_counter()
    limits = FeedLimits(max_age_s=10 * 86400)
    for i, data in enumerate(payloads):
        now = time.time()
        msg = decode_feed(data, now=now, limits=limits)
        record = feed_record(
            msg,
            ENDPOINT,
            fetched_at="2025-02-01T00:00:00+00:00",
            age_s=now - msg.header.timestamp,
            sha256=f"{i:064x}",
            size=len(data),
            run_id="bench",
        )
        polled = feed_rows(msg, ENDPOINT, record, delays=DelayDeriver(schedule))
        # The rules read the rows just built, as the component's writer hands them over.
        run_on_feed(msg, now=now, schedule=schedule, stop_rows=polled.tables["stop_time_updates"])
        join_rates(schedule, *polled.ids)
        append_polls(db, [polled])
    return time.perf_counter() - t0


def floor(payloads: list[bytes], db: Path) -> float:
    # The same rows, built before the clock starts: only parsing and inserting count.
    prebuilt = []
    for i, data in enumerate(payloads):
        msg = rt.FeedMessage()
        msg.ParseFromString(data)
        record = feed_record(
            msg, ENDPOINT, fetched_at="-", age_s=0.0, sha256=f"{i:064x}", size=0, run_id="b"
        )
        prebuilt.append(feed_rows(msg, ENDPOINT, record))
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    t0 = time.perf_counter()
    for data, rows in zip(payloads, prebuilt, strict=True):
        rt.FeedMessage().ParseFromString(data)
        with conn:
            conn.execute(INSERT["feeds"], rows.feed)
            conn.executemany(INSERT["trip_updates"], rows.tables["trip_updates"])
            conn.executemany(INSERT["stop_time_updates"], rows.tables["stop_time_updates"])
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=200, help="feeds per measurement")
    parser.add_argument("--entities", type=int, default=192, help="trips per feed (real: 192)")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians reported")
    args = parser.parse_args()
    payloads = feeds(args.feeds, args.entities)
    total = args.feeds * args.entities
    ours_s, floor_s = [], []
    with tempfile.TemporaryDirectory(prefix="rt-bench-") as tmp:
        schedule = published_schedule(Path(tmp))
        for run in range(args.runs):
            ours_s.append(ours(payloads, Path(tmp) / f"ours{run}.sqlite", schedule))
            floor_s.append(floor(payloads, Path(tmp) / f"floor{run}.sqlite"))
    eps, floor_eps = total / statistics.median(ours_s), total / statistics.median(floor_s)
    ratio = eps / floor_eps
    print(f"feeds {args.feeds} x {args.entities} trip updates ({len(payloads[0]):,} bytes each)")
    print(f"ours : {eps:12,.0f} entities/s (decode, check, rules, rows, one transaction per poll)")
    print(f"floor: {floor_eps:12,.0f} entities/s (ParseFromString + executemany, rows prebuilt)")
    print(f"ratio: {ratio:.2f} (target >= 0.5)")
    print(
        json.dumps(
            {
                "feeds": args.feeds,
                "entities_per_feed": args.entities,
                "entities_per_s": round(eps),
                "floor_entities_per_s": round(floor_eps),
                "ratio": round(ratio, 3),
                "target": 0.5,
            }
        )
    )


if __name__ == "__main__":
    main()
