"""The ptv_timetable component and its stand-in: signing, the real recorded answers,
refusals, retries, change detection and what is stored."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from interlock.components.ptv_timetable.signing import sign, signature, signed_path
from interlock.components.standins import StandinServer
from interlock.components.standins.ptv import DEMO_API_KEY, DEMO_DEVID, PtvSource
from interlock.config.loader import parse_config

pytestmark = pytest.mark.timeout(60)

DEVID, KEY = "3000165", "9c132d31-6a30-4cac-8d8b-8a1970834799"


def independent_signature(message: str, key: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha1).hexdigest().upper()


@pytest.mark.parametrize(
    ("path", "devid", "key", "expected"),
    [
        # Computed with `openssl dgst -sha1 -hmac KEY`, outside Python.
        (
            "/v3/departures/route_type/0/stop/1071?max_results=5",
            "3000165",
            "9c132d31-6a30-4cac-8d8b-8a1970834799",
            "/v3/departures/route_type/0/stop/1071?max_results=5&devid=3000165"
            "&signature=29FBCCEC8369F396F9B6F7985E3E9C4F3D01A557",
        ),
        (
            "/v3/route_types",
            "1000001",
            "secret-key",
            "/v3/route_types?devid=1000001&signature=7068BB618F7FDF22ABF6F5E77AE30E8AD4240294",
        ),
    ],
)
def test_signature_matches_worked_examples(path: str, devid: str, key: str, expected: str) -> None:
    """The signed path equals one computed by openssl: devid appended, uppercase HMAC-SHA1 last."""
    assert sign(path, devid, key) == expected


def test_signature_covers_exactly_the_encoded_query() -> None:
    """Repeated and escaped parameters are signed exactly as they are sent."""
    params: list[tuple[str, str | int]] = [("expand", "Run"), ("expand", "Route"), ("q", "a b/c")]
    sent = signed_path("/v3/search/x", params, DEVID, KEY)
    message, _, sig = sent.rpartition("&signature=")
    assert message == "/v3/search/x?expand=Run&expand=Route&q=a%20b%2Fc&devid=3000165"
    assert sig == independent_signature(message, KEY) == signature(message, KEY)


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_stand_in_rejects_a_wrong_key_and_serves_a_right_one() -> None:
    """A request signed with the wrong key gets PTV's 403 body; the right key gets data."""
    async with StandinServer([PtvSource()]) as server, aiohttp.ClientSession() as session:
        base = server.url("/ptv")
        bad = base + sign("/v3/route_types", DEMO_DEVID, "not-the-key")
        good = base + sign("/v3/route_types", DEMO_DEVID, DEMO_API_KEY)
        lower = good[:-40] + good[-40:].lower()
        (s1, body1), (s2, body2), (s3, _) = await asyncio.wait_for(
            asyncio.gather(_get(session, bad), _get(session, good), _get(session, lower)), 10
        )
    assert s1 == 403 and body1["status"] == {"version": "3.0", "health": 1}
    assert "Invalid signature" in body1["message"]
    assert s2 == 200 and {"route_type": 0, "route_type_name": "Train"} in body2["route_types"]
    assert s3 == 403  # the signature is compared exactly: uppercase hex


def make(tmp_path: Path, base_url: str, **settings: Any) -> Any:
    retries = settings.pop("retries", 0)
    entry = {
        "frequency": "15m",
        "retries": retries,
        "settings": {"base_url": base_url, "devid": DEMO_DEVID, "api_key": DEMO_API_KEY} | settings,
    }
    doc = {
        "components": {"ptv_timetable": entry},
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
            "retry_backoff_seconds": 0.01,
            "retry_backoff_max_seconds": 0.05,
        },
        "data_quality": {
            "quarantine_failed_data": True,
            "default_rules": {"record_count_min": 1, "schema_validation": True},
        },
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


RECORDED = [
    {"route_type": 0, "stop_id": 1099, "max_results": 50},
    {"route_type": 2, "stop_id": 18778, "max_results": 50},
]


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def run(orch: Any) -> tuple[str, str | None]:
    result = await asyncio.wait_for(orch.scheduler.run_once(["ptv_timetable"]), 30)
    settled = result.outcomes["ptv_timetable"]
    return settled.status.value, settled.reason


async def test_real_recorded_answers_are_stored(tmp_path, open_orch, shared_data):
    """Real PTV departures (metro, bus) are stored with UTC times, runs, stops, disruptions."""
    source = PtvSource(recordings=shared_data / "ptv")
    assert source.recorded_stops == [(0, 1099), (2, 18778)]
    async with StandinServer([source]) as server:
        orch = await open_orch(make(tmp_path, server.url("/ptv"), departures=RECORDED))
        assert await run(orch) == ("succeeded", None)
        signed = [r for r in server.requests if r.path.startswith("/ptv/v3/")]
    db = tmp_path / "data" / "ptv_timetable.sqlite"
    assert all(r.status == 200 for r in signed) and len(signed) == 6
    assert rows(db, "SELECT count(*) FROM departures")[0][0] == 3 + 22
    assert rows(
        db,
        "SELECT route_id, scheduled_departure_utc, estimated_departure_utc, platform_number "
        "FROM departures WHERE stop_id = 1099 ORDER BY scheduled_departure_utc",
    ) == [
        (4, "2024-04-25T01:27:00Z", "2024-04-25T01:28:00Z", "2"),
        (11, "2024-04-25T01:31:00Z", "2024-04-25T01:32:00Z", "1"),
        (4, "2024-04-26T14:11:00Z", None, None),
    ]
    # Bus runs have run_id -1: run_ref is the key.
    assert rows(db, "SELECT count(*) FROM runs")[0][0] == 3 + 22
    (bus_run,) = rows(
        db,
        "SELECT run_id, destination_name, vehicle_position_at FROM runs "
        "WHERE run_ref = '29-679--1-MF15-22'",
    )
    assert bus_run == (-1, "Ringwood Station/Maroondah Hwy", "2024-06-28T00:02:19Z")
    assert rows(db, "SELECT route_type, stop_id, stop_name FROM stops ORDER BY stop_id") == [
        (0, 1099, "Huntingdale"),
        (2, 18778, "Chirnside Park SC/Maroondah Hwy"),
    ]
    dis = dict(rows(db, "SELECT disruption_id, category FROM disruptions"))
    assert dis[313077] == "metro_bus" and 307065 in dis
    assert rows(db, "SELECT route_gtfs_id FROM routes WHERE route_id = 4") == [("2-CRB",)]
    assert rows(db, "SELECT route_type_name FROM route_types WHERE route_type = 3") == [("Vline",)]


async def test_second_poll_unchanged_then_new_version_upserts(tmp_path, open_orch):
    """Identical answers are unchanged; a new version replaces departures, upserts disruptions."""
    async with StandinServer([PtvSource()]) as server:
        dep = [{"route_type": 0, "stop_id": 1001, "max_results": 6}]
        orch = await open_orch(make(tmp_path, server.url("/ptv"), departures=dep))
        assert await run(orch) == ("succeeded", None)
        db = tmp_path / "data" / "ptv_timetable.sqlite"
        first = rows(db, "SELECT disruption_id, first_seen_at FROM disruptions ORDER BY 1")
        status, reason = await run(orch)
        assert status == "unchanged" and "same as at the last poll" in (reason or "")
        server.publish("ptv_timetable", 2)
        assert await run(orch) == ("succeeded", None)
    assert rows(db, "SELECT count(*), count(DISTINCT poll_id) FROM departures") == [(6, 1)]
    assert rows(db, "SELECT max(poll_id) FROM polls") == [(3,)]
    assert rows(db, "SELECT min(poll_id) FROM departures") == [(3,)]
    after = dict(rows(db, "SELECT disruption_id, first_seen_at FROM disruptions"))
    assert all(after[d] == seen for d, seen in first) and len(after) == len(first) + 1
    assert rows(db, "SELECT count(*) FROM departures WHERE run_ref LIKE '%-2%'")[0][0] == 6


async def test_disabled_devid_fails_once_quoting_the_api_and_keeps_data(tmp_path, open_orch):
    """A 403 is a failed outcome quoting PTV's message, never retried; stored data is untouched."""
    source = PtvSource()
    async with StandinServer([source]) as server:
        orch = await open_orch(make(tmp_path, server.url("/ptv"), retries=2))
        await run(orch)
        db = tmp_path / "data" / "ptv_timetable.sqlite"
        before = digest(db)
        source.disable(DEMO_DEVID)
        status, reason = await run(orch)
        await orch.bus.flush()
        hist = await orch.store.history(component="ptv_timetable")
    assert status == "failed"
    assert "the API says 'Forbidden (403): This developer id has been disabled.'" in reason
    assert hist[0]["attempts"] == 1
    assert digest(db) == before
    for text in (reason, json.dumps(hist, default=str)):
        assert DEMO_DEVID not in text and DEMO_API_KEY not in text and "signature=" not in text


async def test_wrong_key_is_a_403_failure(tmp_path, open_orch):
    """Settings with the wrong api_key fail on the first request with the signature message."""
    async with StandinServer([PtvSource()]) as server:
        cfg = make(tmp_path, server.url("/ptv"), retries=2)
        spec = cfg.components["ptv_timetable"]
        settings = dict(spec.settings) | {"api_key": "0000-wrong"}
        orch = await open_orch(
            parse_config(
                {
                    "components": {
                        "ptv_timetable": {"frequency": "15m", "retries": 2, "settings": settings}
                    },
                    "runtime_settings": {
                        "state_dir": str(tmp_path / "state"),
                        "data_dir": str(tmp_path / "data"),
                    },
                },
                str(tmp_path / "o.json"),
            )
        )
        status, reason = await run(orch)
    assert status == "failed" and "answered 403" in reason and "Invalid signature" in reason
    assert not (tmp_path / "data" / "ptv_timetable.sqlite").exists()


@pytest.mark.parametrize(
    ("fault", "params"), [("status_500", {}), ("slow", {"delay": 2.0}), ("truncate", {})]
)
async def test_server_errors_and_timeouts_are_retried(tmp_path, open_orch, fault, params):
    """A 500, a request past request_timeout_s or a cut-off answer is retried, then succeeds."""
    async with StandinServer([PtvSource()], shutdown_timeout=0.1) as server:
        orch = await open_orch(make(tmp_path, server.url("/ptv"), retries=2, request_timeout_s=0.5))
        server.faults.set("/ptv/v3/route_types", fault, times=1, **params)
        status, _ = await run(orch)
        await orch.bus.flush()
        (hist,) = await orch.store.history(component="ptv_timetable")
    assert status == "succeeded" and hist["attempts"] == 2


@pytest.mark.parametrize(
    ("make_bad", "reason_part"),
    [
        ("html", "did not return JSON"),
        ("tramtracker", "not a PTV v3 response"),
        ("junk_entries", "schema_validation"),
    ],
)
async def test_malformed_answers_fail_and_keep_the_last_poll(
    tmp_path, open_orch, shared_data, make_bad, reason_part
):
    """An HTML page, another API's JSON or entries without fields fail clearly; data is intact."""
    source = PtvSource()
    async with StandinServer([source]) as server:
        only_departures = {"route_types": False, "routes": False, "disruptions": False}
        extra = only_departures if make_bad == "junk_entries" else {}
        orch = await open_orch(
            make(
                tmp_path,
                server.url("/ptv"),
                departures=[{"route_type": 0, "stop_id": 1001}],
                **extra,
            )
        )
        await run(orch)
        db = tmp_path / "data" / "ptv_timetable.sqlite"
        before = digest(db)
        if make_bad == "html":
            server.faults.set("ptv_timetable", "wrong_content_type", times=None)
        elif make_bad == "tramtracker":
            source.publish_bytes((shared_data / "ptv" / "elsternwick-departures.json").read_bytes())
        else:
            bad = {"departures": [{"stop_id": 1099}, {"route_id": 4}], "status": {}}
            source.publish_bytes(json.dumps(bad).encode())
        status, reason = await run(orch)
    assert status == "failed" and reason_part in (reason or ""), reason
    assert digest(db) == before
    quarantined = tmp_path / "data" / "quarantine" / "ptv_timetable"
    if make_bad != "html":
        (folder,) = quarantined.iterdir()
        assert "signature" not in (folder / "report.json").read_text()
