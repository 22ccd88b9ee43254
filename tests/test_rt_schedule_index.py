"""The schedule index realtime polls check against: read from the published file."""

from __future__ import annotations

import os
from pathlib import Path

from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.schedule_index import ScheduleSource
from interlock.components.standins.sample_feed import build_zip_of_zips
from tests.rt_schedule import publish_bytes, publish_zip, vic_partial_zip


def test_no_schedule_published_yet_gives_no_index_and_says_why(tmp_path: Path) -> None:
    """Without a published schedule there is no index, and the reason names the file."""
    source = ScheduleSource(tmp_path / "gtfs_schedule.sqlite")
    assert source.current() is None
    assert source.reason is not None
    assert "no schedule published yet" in source.reason
    assert "gtfs_schedule.sqlite" in source.reason


def test_index_holds_the_ids_of_the_published_version(tmp_path: Path) -> None:
    """Trip, route and stop ids, trip -> route and stop times come from the published file."""
    fp = publish_bytes(tmp_path / "data", build_zip_of_zips(1), tmp_path)
    source = ScheduleSource(tmp_path / "data" / "gtfs_schedule.sqlite")
    index = source.current()
    assert index is not None
    assert index.version == fp
    assert index.moded
    trip = next(iter(index.trip_ids))
    route = index.route_of(trip)
    assert route is not None and index.has_route(route)
    assert index.has_trip(trip) and not index.has_trip("no-such-trip")
    assert index.route_of("no-such-trip") is None
    times = index.stop_times(trip)
    assert len(times) >= 2
    assert [t.stop_sequence for t in times] == sorted(t.stop_sequence for t in times)
    assert all(t.stop_id is not None and index.has_stop(t.stop_id) for t in times)
    assert times[0].departure_secs is not None
    assert index.timezone_of(trip) == "Australia/Melbourne"
    assert index.stop_times("no-such-trip") == []


def test_the_index_is_rebuilt_only_when_the_schedule_publishes(tmp_path: Path) -> None:
    """The same file gives the same index; a publish gives a new one of the new version."""
    data = tmp_path / "data"
    publish_bytes(data, build_zip_of_zips(1), tmp_path)
    source = ScheduleSource(data / "gtfs_schedule.sqlite")
    first = source.current()
    assert first is not None
    assert source.current() is first
    fp2 = publish_bytes(data, build_zip_of_zips(2), tmp_path)
    second = source.current()
    assert second is not None and second is not first
    assert second.version == fp2 != first.version
    # A poll that began on the old version still reads it (a republish mid-poll).
    trip = next(iter(first.trip_ids))
    assert first.stop_times(trip)


def test_the_file_is_opened_read_only(tmp_path: Path) -> None:
    """Reading the index leaves the published file byte for byte and mtime as it was."""
    data = tmp_path / "data"
    publish_bytes(data, build_zip_of_zips(1), tmp_path)
    live = data / "gtfs_schedule.sqlite"
    before = (live.read_bytes(), os.stat(live).st_mtime_ns)
    index = ScheduleSource(live).current()
    assert index is not None
    index.stop_times(next(iter(index.trip_ids)))
    assert (live.read_bytes(), os.stat(live).st_mtime_ns) == before
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("gtfs_schedule")) == [
        "gtfs_schedule.sqlite"
    ]


def test_a_corrupt_schedule_file_gives_no_index_until_republished(tmp_path: Path) -> None:
    """A file that is not a database is reported, not raised; the next publish is picked up."""
    data = tmp_path / "data"
    data.mkdir()
    live = data / "gtfs_schedule.sqlite"
    live.write_bytes(b"this is not a database" * 100)
    source = ScheduleSource(live)
    assert source.current() is None
    assert source.reason is not None and "cannot read the schedule dataset" in source.reason
    assert source.current() is None
    live.unlink()
    publish_bytes(data, build_zip_of_zips(1), tmp_path)
    assert source.current() is not None
    assert source.reason is None


def test_real_melbourne_trip_ids_do_not_join_the_real_victorian_schedule(
    tmp_path: Path, shared_data: Path
) -> None:
    """The real trip updates' ids are absent from vic-gtfs-partial; its own ids are there."""
    data = tmp_path / "data"
    publish_zip(data, vic_partial_zip(shared_data, tmp_path))
    index = ScheduleSource(data / "gtfs_schedule.sqlite").current()
    assert index is not None
    assert len(index.trip_ids) > 100 and len(index.stop_ids) > 100
    feed = rt.FeedMessage.FromString(
        (shared_data / "gtfs-rt" / "melbourne-metro-tripupdates.pb").read_bytes()
    )
    trips = {e.trip_update.trip.trip_id for e in feed.entity if e.HasField("trip_update")}
    assert trips and not any(index.has_trip(t) for t in trips)
