"""change_detection.methods in the platform's documented form: file_hash with an
algorithm, api_etag with cache_duration_hours, record_count with a threshold."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from interlock.components.standins import StandinServer
from interlock.errors import ConfigError
from interlock.kit.change import ChangePolicy, conditional_headers, file_digest
from tests.test_gtfs_schedule import ckan, gtfs, make, outcome

DOCUMENTED = {
    "methods": {
        "file_hash": {"enabled": True, "algorithm": "sha256"},
        "api_etag": {"enabled": True, "cache_duration_hours": 24},
        "record_count": {"enabled": True, "threshold_percentage": 5},
    }
}


URL_SOURCE = {"gtfs_schedule": gtfs({"url": "http://127.0.0.1:9/feed.zip"})}


def test_the_documented_methods_block_loads(tmp_path: Path) -> None:
    cfg = make(tmp_path, URL_SOURCE, change_detection=DOCUMENTED)
    policy = ChangePolicy.from_config(cfg.change_detection)
    assert policy.algorithm == "sha256" and policy.cache_duration_hours == 24
    assert policy.threshold_percentage == 5
    assert policy.file_hash and policy.etag and policy.last_modified and policy.record_count


def test_today_boolean_methods_still_load() -> None:
    section = {"methods": {"file_hash": False, "etag": True, "last_modified": False}}
    policy = ChangePolicy.from_config(section)
    assert not policy.file_hash and policy.etag and not policy.last_modified


def test_an_unknown_algorithm_is_a_config_error_with_a_suggestion(tmp_path: Path) -> None:
    section = {"methods": {"file_hash": {"algorithm": "sha265"}}}
    with pytest.raises(ConfigError) as err:
        make(tmp_path, URL_SOURCE, change_detection=section)
    text = str(err.value)
    assert "$.change_detection.methods.file_hash.algorithm" in text
    assert "'sha265'" in text and "did you mean 'sha256'" in text


def test_validators_past_cache_duration_are_not_sent() -> None:
    policy = ChangePolicy.from_config({"methods": {"api_etag": {"cache_duration_hours": 1}}})
    fresh = {"etag": '"a"', "fetched_at": "2999-01-01T00:00:00+00:00"}
    stale = {"etag": '"a"', "fetched_at": "2000-01-01T00:00:00+00:00"}
    assert conditional_headers(fresh, policy) == {"etag": '"a"'}
    assert conditional_headers(stale, policy) == {}


def test_a_disabled_api_etag_sends_no_validators() -> None:
    policy = ChangePolicy.from_config({"methods": {"api_etag": {"enabled": False}}})
    memory = {"etag": '"a"', "last_modified": "x", "fetched_at": "2999-01-01T00:00:00+00:00"}
    assert conditional_headers(memory, policy) == {}


def test_file_digest_uses_the_algorithm(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"payload")
    assert file_digest(path, "blake2b") == "blake2b:" + hashlib.blake2b(b"payload").hexdigest()


HISTORY: dict[str, Any] = {}


async def two_runs(tmp_path: Path, open_orch: Any, methods: dict[str, Any]) -> tuple[Any, list]:
    async with StandinServer() as server:
        cfg = make(
            tmp_path,
            {"gtfs_schedule": gtfs(ckan(server))},
            change_detection={"methods": methods},
        )
        orch = await open_orch(cfg)
        await asyncio.wait_for(orch.scheduler.run_once(), 30)
        second = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
        zips = [r for r in server.requests if r.path.endswith(".zip")]
        await orch.bus.flush()
        (row,) = await orch.store.history(component="gtfs_schedule", limit=1)
        HISTORY["last"] = dict(row)
    return second, zips


def decided_by() -> Any:
    return (HISTORY["last"]["metrics"] or {}).get("change_detection")


async def test_within_cache_duration_the_fetch_is_conditional(tmp_path, open_orch):
    second, zips = await two_runs(tmp_path, open_orch, {"api_etag": {"cache_duration_hours": 24}})
    assert outcome(second) == (
        "unchanged",
        "source answered 304 Not Modified (decided by api_etag)",
    )
    assert zips[-1].if_none_match and zips[-1].status == 304
    methods = ["file_hash", "api_etag", "record_count"]
    assert decided_by() == {"decided_by": "api_etag", "methods": methods}


async def test_after_cache_duration_the_next_fetch_is_unconditional(tmp_path, open_orch):
    """A stored ETag older than cache_duration_hours is not trusted: the feed is fetched
    whole (200), and the hash then finds it unchanged."""
    # 1e-9 hours (3.6 microseconds) has always passed by the second run.
    second, zips = await two_runs(tmp_path, open_orch, {"api_etag": {"cache_duration_hours": 1e-9}})
    conditional = [r for r in zips if r.if_none_match or r.if_modified_since]
    assert conditional == [] and [r.status for r in zips] == [200, 200]
    assert outcome(second) == (
        "unchanged",
        "payload SHA-256 unchanged since the last publish (decided by file_hash)",
    )


async def test_another_algorithm_decides_the_fingerprint(tmp_path, open_orch):
    second, zips = await two_runs(
        tmp_path,
        open_orch,
        {"api_etag": {"enabled": False}, "file_hash": {"algorithm": "blake2b"}},
    )
    assert [r.if_none_match for r in zips] == [None, None]
    assert outcome(second) == (
        "unchanged",
        "payload BLAKE2B unchanged since the last publish (decided by file_hash)",
    )
    methods = ["file_hash", "record_count"]  # api_etag is off: not listed, not consulted
    assert decided_by() == {"decided_by": "file_hash (blake2b)", "methods": methods}


async def test_disabled_methods_are_not_consulted(tmp_path, open_orch):
    """With api_etag and file_hash off, an unchanged feed is fetched whole and published."""
    second, zips = await two_runs(
        tmp_path, open_orch, {"api_etag": {"enabled": False}, "file_hash": {"enabled": False}}
    )
    assert [r.status for r in zips] == [200, 200] and zips[-1].if_none_match is None
    assert outcome(second) == ("succeeded", None)
