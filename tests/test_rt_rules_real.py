"""The realtime rules on the real Melbourne trip updates, counted against an independent
decode, against the real Victorian schedule ids, and through a poll into its report."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime import rt_rules_stops
from interlock.components.gtfs_realtime.rows import feed_rows
from interlock.components.gtfs_realtime.rt_rules import counts, run_on_feed
from tests.rt_rules_cases import IdsOnly
from tests.rt_schedule import publish_zip, vic_partial_zip
from tests.test_gtfs_realtime import last_run, make, poll, server_with, source_of

FEEDS = ("melbourne-metro-tripupdates.pb", "melbourne-metro-tripupdates-midnight.pb")


def decoded(shared_data: Path, name: str) -> rt.FeedMessage:
    msg = rt.FeedMessage()
    msg.ParseFromString((shared_data / "gtfs-rt" / name).read_bytes())
    return msg


def times(s: Any) -> tuple[int | None, int | None]:
    arr = s.arrival.time if s.HasField("arrival") and s.arrival.HasField("time") else None
    dep = s.departure.time if s.HasField("departure") and s.departure.HasField("time") else None
    return arr, dep


def independent(msg: rt.FeedMessage) -> dict[str, int]:
    """E022, E025, W001, W002 and W009 counted plainly, as RULES.md words them."""
    out = dict.fromkeys(("E022", "E025", "W001", "W002", "W009"), 0)
    for e in msg.entity:
        tu = e.trip_update
        out["W001"] += tu.timestamp == 0
        out["W002"] += not tu.vehicle.id
        out["W009"] += not tu.trip.HasField("schedule_relationship")
        out["W009"] += any(not s.HasField("schedule_relationship") for s in tu.stop_time_update)
        prev: dict[str, int | None] = {"arr": None, "dep": None}  # the last ones seen
        for s in tu.stop_time_update:
            arr, dep = times(s)
            for t in (arr, dep):
                if t is not None:
                    out["E022"] += sum(p is not None and t <= p for p in prev.values())
            out["E025"] += arr is not None and dep is not None and dep < arr
            prev["arr"] = prev["arr"] if arr is None else arr
            prev["dep"] = prev["dep"] if dep is None else dep
    return out


def test_real_feeds_count_as_an_independent_decode(shared_data):
    """On both real feeds E022, E025, W001, W002 and W009 equal a plain recount."""
    for name in FEEDS:
        msg = decoded(shared_data, name)
        got = counts(run_on_feed(msg, now=msg.header.timestamp + 10))
        expected = {code: n for code, n in independent(msg).items() if n}
        assert got == expected, name
    assert got["E022"] == 25 and "E025" not in got


def test_departures_before_arrivals_in_a_real_feed_are_each_e025(shared_data):
    """Every 7th real stop time update made to depart before it arrives: E025 counts each."""
    msg = decoded(shared_data, FEEDS[0])
    n = 0
    for e in msg.entity:
        for s in e.trip_update.stop_time_update:
            n += 1
            if n % 7 == 0 and s.arrival.HasField("time"):
                s.departure.time = s.arrival.time - 30
    assert counts(run_on_feed(msg, now=msg.header.timestamp))["E025"] == independent(msg)["E025"]
    assert independent(msg)["E025"] > 200


def trip_ids(folder: Path) -> frozenset[str]:
    with (folder / "trips.txt").open(encoding="utf-8-sig", newline="") as f:
        return frozenset(row["trip_id"] for row in csv.DictReader(f))


def test_real_trip_ids_match_none_of_the_real_victorian_schedule(shared_data):
    """The 2025 metro trip ids join none of vic-gtfs-partial's trips: E003 on every trip."""
    msg = decoded(shared_data, FEEDS[0])
    schedule = IdsOnly(trip_ids=trip_ids(shared_data / "vic-gtfs-partial" / "1"))
    assert len(schedule.trip_ids) > 100
    report = run_on_feed(msg, now=msg.header.timestamp, schedule=schedule)
    assert counts(report)["E003"] == len(msg.entity) == 192
    own = IdsOnly(trip_ids=frozenset(e.trip_update.trip.trip_id for e in msg.entity))
    assert "E003" not in counts(run_on_feed(msg, now=msg.header.timestamp, schedule=own))


async def test_a_poll_reports_rule_counts_and_samples_per_endpoint(
    tmp_path, open_orch, shared_data
):
    """A poll of the real feed stores it all and reports E022 with five samples."""
    real = (shared_data / "gtfs-rt" / FEEDS[0]).read_bytes()
    async with server_with() as server:
        source_of(server).set_endpoint_bytes("metro", "trip-updates", real)
        cfg = make(
            tmp_path,
            server,
            only=["metro_trip_updates", "tram_trip_updates"],
            max_feed_age_seconds=10 * 365 * 86400,
        )
        orch = await open_orch(cfg)
        assert (await poll(orch))[0] == "succeeded"
        run = await last_run(orch)
    rules = run["quality"]["rt_rules"]["metro_trip_updates"]
    by_code = {n["code"]: n for n in rules["notices"]}
    assert by_code["E022"]["count"] == 54 and len(by_code["E022"]["samples"]) == 5
    assert by_code["E022"]["samples"][0]["entity_id"] == "2025-02-01-5872"
    assert by_code["W008"]["severity"] == "WARNING"  # a 2025 feed, polled now
    assert "E003" in rules["skipped"]  # no schedule published in this test
    endpoint = run["quality"]["endpoints"]["metro_trip_updates"]
    assert endpoint["records"] == 192 + 1966 and endpoint["rt_rules"]["E022"] == 54
    assert run["quality"]["rt_rules"]["tram_trip_updates"]["notices"] != []


def test_real_feeds_count_the_same_from_the_writers_rows(shared_data, monkeypatch):
    """The rows the writer builds for the real feeds give the counts the message gives."""
    for name in FEEDS:
        msg = decoded(shared_data, name)
        written = feed_rows(msg, "endpoint", ()).tables["stop_time_updates"]
        now = msg.header.timestamp + 10
        expected = counts(run_on_feed(msg, now=now))
        with monkeypatch.context() as m:
            m.setattr(rt_rules_stops, "stop_rows", None)  # the rows given are used
            assert counts(run_on_feed(msg, now=now, stop_rows=written)) == expected


async def test_a_poll_checks_against_the_published_real_victorian_schedule(
    tmp_path, open_orch, shared_data
):
    """With vic-gtfs-partial published, every real trip update is E003, and no rule
    that needs the schedule is skipped."""
    (tmp_path / "zips").mkdir()
    publish_zip(tmp_path / "data", vic_partial_zip(shared_data, tmp_path / "zips"))
    real = (shared_data / "gtfs-rt" / FEEDS[0]).read_bytes()
    async with server_with() as server:
        source_of(server).set_endpoint_bytes("metro", "trip-updates", real)
        cfg = make(
            tmp_path,
            server,
            only=["metro_trip_updates", "tram_trip_updates"],
            max_feed_age_seconds=10 * 365 * 86400,
        )
        orch = await open_orch(cfg)
        assert (await poll(orch))[0] == "succeeded"
        run = await last_run(orch)
    rules = run["quality"]["rt_rules"]["metro_trip_updates"]
    assert {n["code"]: n["count"] for n in rules["notices"]}["E003"] == 192
    assert rules["skipped"] == {}  # the index holds every part the rules read
