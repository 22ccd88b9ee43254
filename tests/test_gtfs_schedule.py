"""The gtfs_schedule component end to end: stand-in sources, change detection, quality,
quarantine and the atomic publish, through the real orchestrator."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from interlock.components.standins import StandinServer
from interlock.config.loader import parse_config
from tests.conftest import component

pytestmark = pytest.mark.timeout(60)


def gtfs(source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "frequency": "daily",
        "retries": extra.pop("retries", 0),
        # The stand-in CKAN's resource URLs are on 127.0.0.1.
        "settings": {"source": source, "allow_private_addresses": True, **extra},
    }
    return entry


def make(tmp_path: Path, components: dict[str, Any], **sections: Any):
    doc = {
        "components": components,
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
            "retry_backoff_seconds": 0.01,
            "retry_backoff_max_seconds": 0.05,
        },
        "data_quality": sections.pop(
            "data_quality",
            {
                "quarantine_failed_data": True,
                "default_rules": {
                    "record_count_min": 10,
                    "null_percentage_max": 5,
                    "duplicate_percentage_max": 1,
                    "schema_validation": True,
                },
            },
        ),
        **sections,
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


def ckan(server: StandinServer) -> dict[str, Any]:
    return {"ckan": {"base_url": server.url("/ckan/api/3/action/"), "dataset": "gtfs-schedule"}}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def outcome(result: Any, name: str = "gtfs_schedule") -> tuple[str, str | None]:
    settled = result.outcomes[name]
    return settled.status.value, settled.reason


async def test_first_run_publishes_a_typed_dataset_with_provenance(tmp_path, open_orch):
    """A zip of per-mode zips found through CKAN becomes one SQLite file with a mode column."""
    async with StandinServer() as server:
        base_url = server.base_url
        orch = await open_orch(make(tmp_path, {"gtfs_schedule": gtfs(ckan(server))}))
        result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
    assert outcome(result) == ("succeeded", None)
    live = tmp_path / "data" / "gtfs_schedule.sqlite"
    assert rows(live, "SELECT DISTINCT mode FROM routes ORDER BY mode") == [("1",), ("2",), ("3",)]
    assert rows(live, "SELECT count(*) FROM routes WHERE route_type = 400")[0][0] > 0
    (prov,) = rows(live, "SELECT source_url, sha256, record_counts FROM provenance")
    assert prov[0].startswith(base_url) and len(prov[1]) == 64
    assert json.loads(prov[2])["stop_times"] > 1000
    await orch.bus.flush()
    (hist,) = await orch.store.history(component="gtfs_schedule")
    assert hist["quality"]["passed"] is True and hist["quality"]["error_count"] == 0


async def test_unchanged_source_is_not_downloaded_again(tmp_path, open_orch):
    """The second run sends If-None-Match, gets 304 and re-publishes nothing."""
    async with StandinServer() as server:
        orch = await open_orch(make(tmp_path, {"gtfs_schedule": gtfs(ckan(server))}))
        await asyncio.wait_for(orch.scheduler.run_once(), 30)
        live = tmp_path / "data" / "gtfs_schedule.sqlite"
        before = live.stat().st_ino
        second = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
        zips = [r for r in server.requests if r.path.endswith(".zip")]
    assert outcome(second) == (
        "unchanged",
        "source answered 304 Not Modified (decided by api_etag)",
    )
    assert zips[-1].if_none_match and zips[-1].status == 304
    assert live.stat().st_ino == before


async def test_skip_change_detection_forces_the_full_path(tmp_path, open_orch):
    """With --skip-change-detection an unchanged feed is fetched, loaded and published again."""
    async with StandinServer() as server:
        cfg = make(tmp_path, {"gtfs_schedule": gtfs(ckan(server))})
        orch = await open_orch(cfg)
        await asyncio.wait_for(orch.scheduler.run_once(), 30)
        orch.scheduler.config = orch.scheduler.runner.config = cfg.with_overrides(
            {"skip_change_detection": True}
        )
        again = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
    assert outcome(again) == ("succeeded", None)
    assert (tmp_path / "data" / "gtfs_schedule.previous.sqlite").exists()


async def test_new_publication_is_swapped_in_and_previous_kept(tmp_path, open_orch):
    """A republished feed (new CKAN URL) is published; the old version stays for rollback."""
    async with StandinServer() as server:
        orch = await open_orch(make(tmp_path, {"gtfs_schedule": gtfs(ckan(server))}))
        await asyncio.wait_for(orch.scheduler.run_once(), 30)
        live = tmp_path / "data" / "gtfs_schedule.sqlite"
        v1_trips = rows(live, "SELECT count(*) FROM trips")[0][0]
        server.publish("gtfs_schedule", 2)
        result = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
    assert outcome(result) == ("succeeded", None)
    assert rows(live, "SELECT count(*) FROM trips")[0][0] > v1_trips
    previous = tmp_path / "data" / "gtfs_schedule.previous.sqlite"
    assert rows(previous, "SELECT count(*) FROM trips")[0][0] == v1_trips


@pytest.mark.parametrize(
    ("fault", "params", "reason_part"),
    [
        ("corrupt_zip", {}, "not a zip"),
        ("wrong_content_type", {}, "not a zip"),
    ],
)
async def test_bad_payload_fails_and_keeps_the_last_good_data(
    tmp_path, open_orch, fault, params, reason_part
):
    """A corrupt zip or an HTML page fails clearly; the live dataset is byte-for-byte intact."""
    async with StandinServer() as server:
        orch = await open_orch(make(tmp_path, {"gtfs_schedule": gtfs(ckan(server))}))
        await asyncio.wait_for(orch.scheduler.run_once(), 30)
        live = tmp_path / "data" / "gtfs_schedule.sqlite"
        before = digest(live)
        server.publish("gtfs_schedule", 2)
        server.faults.set("/gtfs/schedule", fault, times=None, **params)
        result = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
    status, reason = outcome(result)
    assert status == "failed" and reason_part in (reason or "")
    assert digest(live) == before


async def test_corrupt_zip_with_zip_magic_is_quarantined(tmp_path, open_orch):
    """Garbage that starts like a zip is refused as unsafe and quarantined with its report."""
    async with StandinServer() as server:
        orch = await open_orch(make(tmp_path, {"gtfs_schedule": gtfs(ckan(server))}))
        server.source("gtfs_schedule").publish_bytes(b"PK\x03\x04" + bytes(range(256)) * 40)
        result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
    assert outcome(result)[0] == "failed"
    (folder,) = (tmp_path / "data" / "quarantine" / "gtfs_schedule").iterdir()
    report = json.loads((folder / "report.json").read_text())
    assert report["component"] == "gtfs_schedule" and "zip" in report["reason"]
    assert any(p.suffix == ".zip" for p in folder.iterdir())
    assert not (tmp_path / "data" / "gtfs_schedule.sqlite").exists()


@pytest.mark.parametrize("fault", ["status_500", "status_429", "truncate"])
async def test_transient_faults_are_retried(tmp_path, open_orch, fault):
    """A 500, a 429 with Retry-After or a cut-off body is retried and then succeeds."""
    async with StandinServer() as server:
        orch = await open_orch(make(tmp_path, {"gtfs_schedule": gtfs(ckan(server), retries=2)}))
        params = {"retry_after": 0} if fault == "status_429" else {}
        server.faults.set("/gtfs/schedule", fault, times=1, **params)
        result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
        await orch.bus.flush()
        (hist,) = await orch.store.history(component="gtfs_schedule")
    assert outcome(result) == ("succeeded", None)
    assert hist["attempts"] == 2


async def test_download_over_the_size_limit_is_abandoned(tmp_path, open_orch):
    """A payload larger than max_download_mb fails without being kept."""
    async with StandinServer() as server:
        orch = await open_orch(
            make(tmp_path, {"gtfs_schedule": gtfs(ckan(server), max_download_mb=0.01)})
        )
        result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
    status, reason = outcome(result)
    assert status == "failed" and "over the limit" in (reason or "")
    assert list((tmp_path / "data" / ".staging").glob("*.download*")) == []


async def test_quality_rule_failure_quarantines_and_keeps_live_data(tmp_path, open_orch):
    """A feed below record_count_min is quarantined with its report; nothing is published."""
    async with StandinServer() as server:
        cfg = make(
            tmp_path,
            {"gtfs_schedule": gtfs(ckan(server))},
            data_quality={
                "quarantine_failed_data": True,
                "default_rules": {"record_count_min": 10_000_000},
            },
        )
        orch = await open_orch(cfg)
        result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
        await orch.bus.flush()
        (hist,) = await orch.store.history(component="gtfs_schedule")
    status, reason = outcome(result)
    assert status == "failed" and reason.startswith("data quality failed: record_count_min")
    assert hist["quality"]["passed"] is False
    assert len(list((tmp_path / "data" / "quarantine" / "gtfs_schedule").iterdir())) == 1
    assert not (tmp_path / "data" / "gtfs_schedule.sqlite").exists()


async def test_real_agency_feed_from_a_local_path(tmp_path, open_orch, shared_data):
    """Caltrain's real flat feed loads from a local path and passes the rules."""
    src = {"path": str(shared_data / "gtfs" / "caltrain-20160406.zip")}
    orch = await open_orch(make(tmp_path, {"gtfs_schedule": gtfs(src)}))
    result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
    assert outcome(result) == ("succeeded", None)
    live = tmp_path / "data" / "gtfs_schedule.sqlite"
    assert rows(live, "SELECT count(*) FROM stop_times")[0][0] > 1000


async def test_broken_feed_fails_schema_validation(tmp_path, open_orch, shared_data):
    """The broken feed (no required files) fails schema_validation and is quarantined."""
    src = {"path": str(shared_data / "gtfs" / "bad-gtfs.zip")}
    orch = await open_orch(
        make(
            tmp_path,
            {"gtfs_schedule": gtfs(src)},
            data_quality={
                "quarantine_failed_data": True,
                "default_rules": {"schema_validation": True},
            },
        )
    )
    result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
    status, reason = outcome(result)
    assert status == "failed" and "schema_validation" in reason
    await orch.bus.flush()
    (hist,) = await orch.store.history(component="gtfs_schedule")
    assert hist["quality"]["counts"]["missing_required_file"]["count"] == 5


async def test_downstream_skips_when_the_schedule_is_unchanged(tmp_path, open_orch):
    """A component fed by gtfs_schedule is skipped as unchanged when the feed did not change."""
    async with StandinServer() as server:
        orch = await open_orch(
            make(
                tmp_path,
                {
                    "gtfs_schedule": gtfs(ckan(server)),
                    "stops_report": component("Publishes", deps=["gtfs_schedule"]),
                },
            )
        )
        first = await asyncio.wait_for(orch.scheduler.run_once(), 30)
        second = await asyncio.wait_for(
            orch.scheduler.run_once(["gtfs_schedule", "stops_report"]), 30
        )
    assert outcome(first, "stops_report") == ("succeeded", None)
    assert outcome(second) == (
        "unchanged",
        "source answered 304 Not Modified (decided by api_etag)",
    )
    assert outcome(second, "stops_report") == ("skipped", "unchanged")


async def test_a_large_drop_in_records_fails_quality_and_keeps_live_data(tmp_path, open_orch):
    """A republished feed with far fewer records than the last publish is refused."""
    from interlock.components.standins import build_flat_feed

    async with StandinServer() as server:
        orch = await open_orch(make(tmp_path, {"gtfs_schedule": gtfs(ckan(server))}))
        await asyncio.wait_for(orch.scheduler.run_once(), 30)
        live = tmp_path / "data" / "gtfs_schedule.sqlite"
        before = digest(live)
        # One mode's flat feed instead of the three-mode zip: most records vanish.
        server.source("gtfs_schedule").publish_bytes(build_flat_feed(1, mode="1"))
        result = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
    status, reason = outcome(result)
    assert status == "failed"
    assert "record count dropped" in reason and "max_record_drop_percentage 50" in reason
    assert digest(live) == before


async def test_readers_see_the_old_dataset_or_the_new_one_never_a_mix(tmp_path, open_orch):
    """A reader inside a transaction keeps the old version through a publish; new readers
    get the new one whole."""
    async with StandinServer() as server:
        orch = await open_orch(make(tmp_path, {"gtfs_schedule": gtfs(ckan(server))}))
        await asyncio.wait_for(orch.scheduler.run_once(), 30)
        live = tmp_path / "data" / "gtfs_schedule.sqlite"
        reader = sqlite3.connect(f"file:{live}?mode=ro", uri=True, isolation_level=None)
        try:
            reader.execute("BEGIN")
            old_trips = reader.execute("SELECT count(*) FROM trips").fetchone()[0]
            old_sha = reader.execute("SELECT sha256 FROM provenance").fetchone()[0]
            server.publish("gtfs_schedule", 2)
            result = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
            assert outcome(result) == ("succeeded", None)
            # Same transaction, after the swap: still the old version, all of it.
            assert reader.execute("SELECT count(*) FROM trips").fetchone()[0] == old_trips
            assert reader.execute("SELECT sha256 FROM provenance").fetchone()[0] == old_sha
        finally:
            reader.close()
    (new_sha,) = rows(live, "SELECT sha256 FROM provenance")[0]
    assert new_sha != old_sha
    assert rows(live, "SELECT count(*) FROM trips")[0][0] > old_trips
