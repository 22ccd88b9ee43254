"""Tests for the stand-in source servers and the sample GTFS feed they serve."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import signal
import sys
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.helpers import ETag

from interlock.components.standins import (
    GtfsScheduleSource,
    InvalidFaultError,
    ServerStateError,
    StandinServer,
    UnknownFaultError,
    UnknownModeError,
    build_flat_feed,
    build_zip_of_zips,
    feed_files,
)
from interlock.components.standins.fault_injection import truncated_length
from interlock.components.standins.faults import FaultTable
from interlock.components.standins.published import is_not_modified, next_publication_time

ROOT = Path(__file__).resolve().parents[1]
ZIP_PATH = "/gtfs/schedule/google_transit.zip"
PACKAGE_SHOW = "/ckan/api/3/action/package_show"
T0 = datetime(2026, 3, 2, 1, 0, 0, tzinfo=UTC)
BOM = b"\xef\xbb\xbf"
REQUIRED_FILES = {
    "agency.txt",
    "calendar.txt",
    "calendar_dates.txt",
    "routes.txt",
    "shapes.txt",
    "stop_times.txt",
    "stops.txt",
    "trips.txt",
}
# Headers as Transport Victoria publishes them (vic-gtfs-partial, December 2025).
VIC_HEADERS = {
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type,route_color,"
    "route_text_color",
    "trips.txt": "route_id,service_id,trip_id,shape_id,trip_headsign,direction_id,block_id,"
    "wheelchair_accessible,bikes_allowed",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
    "start_date,end_date",
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone,agency_lang,agency_fare_url",
}
METRO_STOPS_HEADER = (
    "stop_id,stop_name,stop_lat,stop_lon,stop_url,location_type,parent_station,"
    "wheelchair_boarding,level_id,platform_code"
)


# --- helpers and fixtures ----------------------------------------------------------


def fixed_clock() -> datetime:
    return T0


@pytest.fixture
async def server() -> AsyncIterator[StandinServer]:
    async with asyncio.timeout(5):
        standin = StandinServer([GtfsScheduleSource(clock=fixed_clock)])
        await standin.start()
    try:
        yield standin
    finally:
        async with asyncio.timeout(5):
            await standin.close()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def fetch(
    client: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[aiohttp.ClientResponse, bytes]:
    async with asyncio.timeout(5), client.get(url, headers=headers) as response:
        return response, await response.read()


async def package(client: aiohttp.ClientSession, server: StandinServer) -> dict[str, Any]:
    response, body = await fetch(client, server.url(PACKAGE_SHOW + "?id=gtfs-schedule"))
    assert response.status == 200
    result = json.loads(body)["result"]
    assert isinstance(result, dict)
    return result


def read_table(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def inner_feeds(outer: bytes) -> dict[str, zipfile.ZipFile]:
    archive = zipfile.ZipFile(io.BytesIO(outer))
    return {name: zipfile.ZipFile(io.BytesIO(archive.read(name))) for name in archive.namelist()}


# --- the sample feed ---------------------------------------------------------------


def test_zip_of_zips_holds_one_complete_feed_per_mode() -> None:
    """The zip holds 1/, 2/ and 3/google_transit.zip, each with every required GTFS file."""
    feeds = inner_feeds(build_zip_of_zips())
    assert sorted(feeds) == ["1/google_transit.zip", "2/google_transit.zip", "3/google_transit.zip"]
    for feed in feeds.values():
        assert set(feed.namelist()) >= REQUIRED_FILES


def test_feed_files_use_victorias_columns_and_encoding() -> None:
    """Files carry Victoria's headers, a UTF-8 BOM, CRLF line ends and quoted values."""
    feed = inner_feeds(build_zip_of_zips())["2/google_transit.zip"]
    for name, header in VIC_HEADERS.items():
        data = feed.read(name)
        assert data.decode("utf-8-sig").split("\r\n")[0] == header
    stops = feed.read("stops.txt")
    assert stops.startswith(BOM + METRO_STOPS_HEADER.encode() + b"\r\n")
    assert b'"vic:rail:FSS","Flinders Street Station"' in stops
    routes = read_table(feed.read("routes.txt"))
    assert {r["route_type"] for r in routes} == {"400"}
    assert all(r["route_id"].startswith("aus:vic:vic-02-") for r in routes)


@pytest.mark.parametrize("mode", ["1", "2", "3"])
def test_every_reference_in_the_feed_resolves(mode: str) -> None:
    """Trips, stop_times, stops and shapes reference only ids that exist in the feed."""
    files = {name: read_table(data) for name, data in feed_files(mode).items()}
    stop_ids = {s["stop_id"] for s in files["stops.txt"]}
    services = {c["service_id"] for c in files["calendar.txt"]}
    shapes = {s["shape_id"] for s in files["shapes.txt"]}
    routes = {r["route_id"] for r in files["routes.txt"]}
    trips = {t["trip_id"] for t in files["trips.txt"]}
    assert all(t["route_id"] in routes and t["service_id"] in services for t in files["trips.txt"])
    assert {t["shape_id"] for t in files["trips.txt"]} == shapes
    assert {s["trip_id"] for s in files["stop_times.txt"]} == trips
    assert {s["stop_id"] for s in files["stop_times.txt"]} <= stop_ids
    assert {d["service_id"] for d in files["calendar_dates.txt"]} <= services
    assert {s["parent_station"] for s in files["stops.txt"]} - {""} <= stop_ids
    assert all(len(r["route_color"]) == 6 for r in files["routes.txt"])


def gtfs_seconds(time: str) -> int:
    hours, minutes, seconds = (int(part) for part in time.split(":"))
    return hours * 3600 + minutes * 60 + seconds


@pytest.mark.parametrize("mode", ["1", "2", "3"])
def test_times_increase_along_every_trip(mode: str) -> None:
    """Within each trip, stop_sequence, time and shape distance strictly increase."""
    by_trip: dict[str, list[tuple[int, int, float]]] = {}
    for row in read_table(feed_files(mode)["stop_times.txt"]):
        assert row["arrival_time"] == row["departure_time"]
        key = (
            int(row["stop_sequence"]),
            gtfs_seconds(row["arrival_time"]),
            float(row["shape_dist_traveled"]),
        )
        by_trip.setdefault(row["trip_id"], []).append(key)
    for rows in by_trip.values():
        assert len(rows) >= 2
        for column in range(3):
            values = [row[column] for row in rows]
            assert values == sorted(set(values))


def test_same_version_builds_byte_identical_zips() -> None:
    """Building the same version twice gives the same bytes."""
    assert build_zip_of_zips(3) == build_zip_of_zips(3)
    assert build_flat_feed(2) == build_flat_feed(2)


def test_a_new_version_changes_every_inner_feed() -> None:
    """Version 2 differs from version 1 in each mode's feed, so every hash changes."""
    v1, v2 = inner_feeds(build_zip_of_zips(1)), inner_feeds(build_zip_of_zips(2))
    for name in v1:
        assert v1[name].read("trips.txt") != v2[name].read("trips.txt")
    assert (
        hashlib.sha256(build_zip_of_zips(1)).digest()
        != hashlib.sha256(build_zip_of_zips(2)).digest()
    )


def test_flat_feed_is_a_plain_gtfs_zip() -> None:
    """The flat feed has the GTFS files at the root of the zip, and no inner zips."""
    names = set(zipfile.ZipFile(io.BytesIO(build_flat_feed())).namelist())
    assert names >= REQUIRED_FILES
    assert not any(name.endswith(".zip") for name in names)


def test_unknown_mode_names_the_known_ones() -> None:
    """Asking for a mode with no sample network says which modes exist."""
    with pytest.raises(
        UnknownModeError, match=r"no sample network for mode '4'; known modes: 1, 2, 3"
    ):
        build_zip_of_zips(modes=("4",))


# --- pure decisions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("if_none_match", "if_modified_since", "expected"),
    [
        (None, None, False),
        ((ETag("abc"),), None, True),
        ((ETag("abc", is_weak=True),), None, True),
        ((ETag("old"), ETag("abc")), None, True),
        ((ETag("*"),), None, True),
        ((ETag("old"),), T0 + timedelta(days=1), False),  # If-None-Match wins
        (None, T0, True),
        (None, T0 + timedelta(seconds=5), True),
        (None, T0 - timedelta(seconds=1), False),
    ],
)
def test_conditional_get_decision(
    if_none_match: tuple[ETag, ...] | None, if_modified_since: datetime | None, expected: bool
) -> None:
    """A 304 is due exactly when the validators say the client's copy is current."""
    result = is_not_modified(
        etag="abc",
        last_modified=T0 + timedelta(microseconds=500),
        if_none_match=if_none_match,
        if_modified_since=if_modified_since,
    )
    assert result is expected


@pytest.mark.parametrize(
    ("now", "previous", "expected"),
    [
        (T0 + timedelta(microseconds=900), None, T0),
        (T0 + timedelta(seconds=9), T0, T0 + timedelta(seconds=9)),
        (T0, T0, T0 + timedelta(seconds=1)),
        (T0 - timedelta(hours=1), T0, T0 + timedelta(seconds=1)),
    ],
)
def test_publication_time_always_advances(
    now: datetime, previous: datetime | None, expected: datetime
) -> None:
    """Each publication's Last-Modified is a whole second strictly after the previous one."""
    assert next_publication_time(now, previous) == expected


@pytest.mark.parametrize(
    ("length", "fraction", "keep_bytes", "expected"),
    [
        (100, 0.5, -1, 50),
        (100, 1.0, -1, 99),
        (100, 0.5, 10, 10),
        (100, 0.5, 500, 99),
        (1, 0.5, -1, 0),
    ],
)
def test_truncation_always_sends_less_than_the_body(
    length: int, fraction: float, keep_bytes: float, expected: int
) -> None:
    """A truncated body keeps `keep_bytes` or `fraction` of it, never all of it."""
    assert truncated_length(length, fraction=fraction, keep_bytes=keep_bytes) == expected


def test_fault_rules_wear_out_and_the_latest_match_wins() -> None:
    """A rule applies `times` times; of two matching rules the later one is taken."""
    table = FaultTable()
    table.set("gtfs_schedule", "status_500", times=2)
    table.set("/gtfs/", "status_429", times=1)
    taken = [table.take("/gtfs/schedule/x", {"gtfs_schedule"}) for _ in range(4)]
    assert [f.kind.value if f else None for f in taken] == [
        "status_429",
        "status_500",
        "status_500",
        None,
    ]
    assert table.take("/ckan/x", set()) is None


def test_bad_fault_settings_are_refused_with_the_reason() -> None:
    """Unknown faults, unknown parameters and zero times are rejected, naming the problem."""
    table = FaultTable()
    with pytest.raises(
        UnknownFaultError, match=r"unknown fault 'explode'; known faults: status_500"
    ):
        table.set("/x", "explode")
    with pytest.raises(InvalidFaultError, match=r"fault 'slow' has no parameter 'dealy'"):
        table.set("/x", "slow", dealy=1)
    with pytest.raises(InvalidFaultError, match=r"times must be 1 or more"):
        table.set("/x", "status_500", times=0)


# --- serving the zip ---------------------------------------------------------------


async def test_server_lifecycle_is_guarded() -> None:
    """The URL exists only while running, a server starts once, and close is idempotent."""
    standin = StandinServer()
    with pytest.raises(ServerStateError, match=r"the stand-in server is new; it has a URL only"):
        _ = standin.base_url
    async with asyncio.timeout(5):
        async with standin:
            assert standin.base_url.startswith("http://127.0.0.1:")
            with pytest.raises(ServerStateError, match=r"is running; only a new server can be"):
                await standin.start()
        await standin.close()


async def test_zip_downloads_with_validators(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """The zip of zips is served as application/zip with a SHA-256 ETag and Last-Modified."""
    response, body = await fetch(client, server.url(ZIP_PATH))
    assert response.status == 200
    assert response.content_type == "application/zip"
    assert body == build_zip_of_zips()
    assert response.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert response.headers["Last-Modified"] == "Mon, 02 Mar 2026 01:00:00 GMT"
    assert len(inner_feeds(body)) == 3


async def test_if_none_match_gets_304(server: StandinServer, client: aiohttp.ClientSession) -> None:
    """A request carrying the current ETag gets 304 with no body."""
    first, _ = await fetch(client, server.url(ZIP_PATH))
    again, body = await fetch(
        client, server.url(ZIP_PATH), {"If-None-Match": first.headers["ETag"]}
    )
    assert (again.status, body) == (304, b"")
    assert again.headers["ETag"] == first.headers["ETag"]
    assert server.requests[-1].if_none_match == first.headers["ETag"]


async def test_if_modified_since_gets_304(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """A request with If-Modified-Since at or after Last-Modified gets 304, earlier gets 200."""
    first, _ = await fetch(client, server.url(ZIP_PATH))
    current, _ = await fetch(
        client, server.url(ZIP_PATH), {"If-Modified-Since": first.headers["Last-Modified"]}
    )
    older, _ = await fetch(
        client, server.url(ZIP_PATH), {"If-Modified-Since": "Sun, 01 Mar 2026 00:00:00 GMT"}
    )
    assert (current.status, older.status) == (304, 200)
    assert server.requests[-2].if_modified_since == first.headers["Last-Modified"]


async def test_ckan_package_show_points_at_the_zip(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """package_show answers in CKAN's envelope with a ZIP resource whose URL downloads the zip."""
    response, raw = await fetch(client, server.url(PACKAGE_SHOW + "?id=gtfs-schedule"))
    body = json.loads(raw)
    assert response.status == 200 and body["success"] is True
    assert body["help"].endswith("/ckan/api/3/action/help_show?name=package_show")
    result = body["result"]
    assert result["name"] == "gtfs-schedule"
    assert result["metadata_modified"] == "2026-03-02T01:00:00.000000"
    (resource,) = result["resources"]
    assert resource["format"] == "ZIP"
    assert resource["url"] == server.url("/gtfs/schedule/v1/google_transit.zip")
    download, data = await fetch(client, resource["url"])
    assert download.status == 200
    assert (resource["size"], resource["hash"]) == (len(data), hashlib.sha256(data).hexdigest())


async def test_ckan_unknown_dataset_is_a_ckan_404(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """An unknown dataset id gets 404 with CKAN's Not Found Error body."""
    response, raw = await fetch(client, server.url(PACKAGE_SHOW + "?id=no-such-dataset"))
    body = json.loads(raw)
    assert response.status == 404
    assert body["success"] is False
    assert body["error"] == {"__type": "Not Found Error", "message": "Not found"}


async def test_publish_moves_etag_url_and_metadata(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """Publishing version 2 changes the ETag, advances the dates and moves the resource URL."""
    before, _ = await fetch(client, server.url(ZIP_PATH))
    old_url = (await package(client, server))["resources"][0]["url"]
    publication = server.publish("gtfs_schedule", 2)
    after, body = await fetch(client, server.url(ZIP_PATH))
    result = await package(client, server)
    resource = result["resources"][0]
    assert body == build_zip_of_zips(2)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["Last-Modified"] == "Mon, 02 Mar 2026 01:00:01 GMT"
    assert result["metadata_modified"] == resource["last_modified"] == "2026-03-02T01:00:01.000000"
    assert (
        resource["url"]
        == server.url(publication.path)
        == server.url("/gtfs/schedule/v2/google_transit.zip")
    )
    gone, _ = await fetch(client, old_url)
    assert gone.status == 404


async def test_publish_bytes_serves_them_as_is(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """Arbitrary published bytes are served unchanged, e.g. a zip that is not one."""
    server.source("gtfs_schedule").publish_bytes(b"not a zip")
    response, body = await fetch(client, server.url(ZIP_PATH))
    assert (response.status, body) == (200, b"not a zip")


# --- faults ------------------------------------------------------------------------


async def test_status_500_fault(server: StandinServer, client: aiohttp.ClientSession) -> None:
    """A status_500 fault answers 500 instead of the file."""
    server.faults.set("gtfs_schedule", "status_500")
    response, _ = await fetch(client, server.url(ZIP_PATH))
    assert response.status == 500
    assert (server.requests[-1].status, server.requests[-1].fault) == (500, "status_500")


async def test_status_429_fault_sends_retry_after(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """A status_429 fault answers 429 with the requested Retry-After in seconds."""
    server.faults.set("gtfs_schedule", "status_429", retry_after=7)
    response, _ = await fetch(client, server.url(ZIP_PATH))
    assert (response.status, response.headers["Retry-After"]) == (429, "7")


async def test_slow_fault_outlasts_a_client_timeout(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """A slow fault delays the answer past a short client timeout."""
    server.faults.set("gtfs_schedule", "slow", delay=0.5)
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(5):
            await client.get(server.url(ZIP_PATH), timeout=aiohttp.ClientTimeout(total=0.1))


async def test_slow_fault_can_trickle_the_body(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """A trickling slow fault still delivers the whole body, just in small timed chunks."""
    server.faults.set("gtfs_schedule", "slow", delay=0, chunk_size=8192, chunk_delay=0.01)
    response, body = await fetch(client, server.url(ZIP_PATH))
    assert (response.status, body) == (200, build_zip_of_zips())


async def test_truncate_fault_gives_a_payload_error(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """A truncate fault announces the full length, sends part of it, and drops the connection."""
    server.faults.set("gtfs_schedule", "truncate", fraction=0.25)
    with pytest.raises(aiohttp.ClientPayloadError):
        await fetch(client, server.url(ZIP_PATH))


async def test_wrong_content_type_fault_sends_html(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """A wrong_content_type fault answers 200 with an HTML page instead of the zip."""
    server.faults.set("gtfs_schedule", "wrong_content_type")
    response, body = await fetch(client, server.url(ZIP_PATH))
    assert (response.status, response.content_type) == (200, "text/html")
    assert body.startswith(b"<!DOCTYPE html>")


async def test_corrupt_zip_fault_sends_garbage(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """A corrupt_zip fault answers 200 application/zip with bytes zipfile cannot open."""
    server.faults.set("gtfs_schedule", "corrupt_zip", size=512)
    response, body = await fetch(client, server.url(ZIP_PATH))
    assert (response.status, response.content_type, len(body)) == (200, "application/zip", 512)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(body))


async def test_fault_clears_itself_after_times(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """A fault set for two requests hits exactly two, then the file is served again."""
    server.faults.set("gtfs_schedule", "status_500", times=2)
    statuses = [(await fetch(client, server.url(ZIP_PATH)))[0].status for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert server.faults.rules == []


async def test_fault_until_cleared_and_by_path(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """A path-prefix fault with times=None lasts until cleared and spares other paths."""
    server.faults.set("/ckan/", "status_500", times=None)
    for _ in range(2):
        assert (await fetch(client, server.url(PACKAGE_SHOW + "?id=gtfs-schedule")))[
            0
        ].status == 500
    assert (await fetch(client, server.url(ZIP_PATH)))[0].status == 200
    assert server.faults.clear() == 1
    assert (await fetch(client, server.url(PACKAGE_SHOW + "?id=gtfs-schedule")))[0].status == 200


async def test_source_fault_covers_its_ckan_dataset(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """A fault aimed at a source also hits package_show for that source's dataset."""
    server.faults.set("gtfs_schedule", "status_500")
    response, _ = await fetch(client, server.url(PACKAGE_SHOW + "?id=gtfs-schedule"))
    assert response.status == 500
    assert server.requests[-1].sources == ("gtfs_schedule",)


# --- remote control ----------------------------------------------------------------


async def post(client: aiohttp.ClientSession, url: str, body: object) -> tuple[int, Any]:
    async with asyncio.timeout(5), client.post(url, json=body) as response:
        return response.status, await response.json()


async def test_control_publish(server: StandinServer, client: aiohttp.ClientSession) -> None:
    """POST /_control/publish publishes a version and answers with its path and ETag."""
    status, body = await post(
        client, server.url("/_control/publish"), {"source": "gtfs_schedule", "version": 2}
    )
    assert status == 200
    assert body["path"] == "/gtfs/schedule/v2/google_transit.zip"
    assert (body["version"], body["revision"]) == (2, 2)
    assert body["etag"] == hashlib.sha256(build_zip_of_zips(2)).hexdigest()
    assert body["last_modified"] == "2026-03-02T01:00:01+00:00"


async def test_control_publish_unknown_source(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """Publishing to an unknown source answers 404 naming the known sources."""
    status, body = await post(
        client, server.url("/_control/publish"), {"source": "gtfs_schedul", "version": 2}
    )
    assert (status, body) == (
        404,
        {"error": "no source named 'gtfs_schedul'; known sources: gtfs_schedule"},
    )


async def test_control_fault_clear_and_requests(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """Faults set and cleared over HTTP apply, and /requests lists traffic but not control calls."""
    fault = {
        "target": "gtfs_schedule",
        "fault": "status_429",
        "times": None,
        "params": {"retry_after": 2},
    }
    assert (await post(client, server.url("/_control/fault"), fault))[0] == 200
    assert (await fetch(client, server.url(ZIP_PATH)))[0].status == 429
    assert await post(client, server.url("/_control/clear"), {}) == (200, {"cleared": 1})
    assert (await fetch(client, server.url(ZIP_PATH)))[0].status == 200
    _, raw = await fetch(client, server.url("/_control/requests"))
    records = json.loads(raw)["requests"]
    assert [(r["path"], r["status"], r["fault"]) for r in records] == [
        (ZIP_PATH, 429, "status_429"),
        (ZIP_PATH, 200, None),
    ]


async def test_control_rejects_a_bad_fault(
    server: StandinServer, client: aiohttp.ClientSession
) -> None:
    """An unknown fault over HTTP answers 400 with the reason."""
    status, body = await post(
        client, server.url("/_control/fault"), {"target": "/", "fault": "explode"}
    )
    assert status == 400
    assert "unknown fault 'explode'" in body["error"]


async def test_standalone_server_prints_its_url_and_stops_on_sigterm(
    client: aiohttp.ClientSession,
) -> None:
    """`python -m components.standins` prints its base URL first and exits 0 on SIGTERM."""
    async with asyncio.timeout(5):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "interlock.components.standins",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(10):
            base_url = (await process.stdout.readline()).decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        response, _ = await fetch(client, base_url + ZIP_PATH)
        assert response.status == 200
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            async with asyncio.timeout(5):
                await process.wait()


async def test_sources_side_by_side_keep_their_own_faults(client: aiohttp.ClientSession) -> None:
    """A second, flat GTFS source mounts beside the first; a fault aimed at it spares the first."""
    flat = GtfsScheduleSource(name="flat_gtfs", dataset_id="flat-gtfs", prefix="/flat", flat=True)
    async with asyncio.timeout(5), StandinServer([GtfsScheduleSource(), flat]) as standin:
        standin.faults.set("flat_gtfs", "status_500", times=None)
        assert (await fetch(client, standin.url("/flat/google_transit.zip")))[0].status == 500
        assert (await fetch(client, standin.url(ZIP_PATH)))[0].status == 200
        standin.faults.clear()
        _, flat_body = await fetch(client, standin.url("/flat/google_transit.zip"))
        assert flat_body == build_flat_feed()
