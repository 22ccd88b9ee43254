"""An unchanged run's reason names the change-detection method that decided, by its config
name, and plan shows the methods that are on and which one decided the last run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from interlock.components.standins import StandinServer
from interlock.components.standins.datavic import DatavicSource
from interlock.components.standins.ptv import PtvSource
from interlock.core.planning import plan_row
from tests import test_datavic, test_gtfs_realtime, test_ptv
from tests.test_change_methods import DOCUMENTED
from tests.test_cli import interlock
from tests.test_gtfs_schedule import ckan, gtfs, make, outcome

pytestmark = pytest.mark.timeout(60)


def plan_of(orch: Any, name: str) -> dict[str, Any]:
    rows = [plan_row(d, orch.config) for d in orch.scheduler.plan()]
    return next(r for r in rows if r["component"] == name)


async def schedule_twice(tmp_path: Path, open_orch: Any, methods: dict[str, Any]) -> Any:
    async with StandinServer() as server:
        cfg = make(tmp_path, {"gtfs_schedule": gtfs(ckan(server))}, change_detection=methods)
        orch = await open_orch(cfg)
        before = plan_of(orch, "gtfs_schedule")
        await asyncio.wait_for(orch.scheduler.run_once(), 30)
        second = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
    return orch, before, second


async def test_the_schedules_reasons_name_api_etag_and_file_hash(tmp_path, open_orch):
    """304 is api_etag's decision; with api_etag off the hash decides: file_hash."""
    orch, before, second = await schedule_twice(tmp_path / "a", open_orch, DOCUMENTED)
    assert outcome(second) == (
        "unchanged",
        "source answered 304 Not Modified (decided by api_etag)",
    )
    on = ["file_hash(sha256)", "api_etag(24h)", "record_count(5%)"]
    assert before["change_detection"] == {"methods": on, "decided_by": None}
    assert plan_of(orch, "gtfs_schedule")["change_detection"] == {
        "methods": on,
        "decided_by": "api_etag",
    }

    methods = {"methods": {"api_etag": {"enabled": False}}}
    orch, _, second = await schedule_twice(tmp_path / "b", open_orch, methods)
    assert outcome(second) == (
        "unchanged",
        "payload SHA-256 unchanged since the last publish (decided by file_hash)",
    )
    shown = plan_of(orch, "gtfs_schedule")["change_detection"]
    assert shown == {
        "methods": ["file_hash(sha256)", "record_count(10%)"],
        "decided_by": "file_hash",
    }


async def test_datavics_metadata_check_names_its_methods(tmp_path, open_orch):
    """Same CKAN metadata: decided by api_etag (timestamps) and file_hash (hashes)."""
    source = DatavicSource("temporal")
    name = "datavic_temporal_patronage"
    async with StandinServer([source]) as server:
        orch = await open_orch(
            test_datavic.make(tmp_path, server, {name: (test_datavic.TEMPORAL, "latest")})
        )
        await test_datavic.run(orch)
        status, reason = (await test_datavic.run(orch, name))[name]
        assert status == "unchanged" and (reason or "").endswith("(decided by api_etag+file_hash)")
        source.touch()
        status, reason = (await test_datavic.run(orch, name))[name]
    assert reason == "payload SHA-256 unchanged since the last publish (decided by file_hash)"
    assert plan_of(orch, name)["change_detection"]["decided_by"] == "file_hash"


async def test_realtime_and_ptv_name_what_decided(tmp_path, open_orch):
    """Realtime: the feed header timestamp (or the same payload); PTV: the answers' fingerprint."""
    async with test_gtfs_realtime.server_with() as server:
        orch = await open_orch(test_gtfs_realtime.make(tmp_path / "rt", server))
        await test_gtfs_realtime.poll(orch)
        status, reason = await test_gtfs_realtime.poll(orch)
    assert status == "unchanged" and reason is not None
    assert reason.startswith("no feed header timestamp advanced since the last poll (decided by ")
    rt = plan_of(orch, "gtfs_realtime")["change_detection"]
    assert rt["methods"] == ["file_hash(sha256)", "header timestamp"]
    assert rt["decided_by"] in ("file_hash", "header timestamp", "file_hash+header timestamp")

    async with StandinServer([PtvSource()]) as server:
        dep = [{"route_type": 0, "stop_id": 1001, "max_results": 6}]
        orch = await open_orch(test_ptv.make(tmp_path / "ptv", server.url("/ptv"), departures=dep))
        await test_ptv.run(orch)
        status, reason = await test_ptv.run(orch)
    assert (status, reason) == (
        "unchanged",
        "the API's answers are the same as at the last poll (decided by response fingerprint)",
    )
    assert plan_of(orch, "ptv_timetable")["change_detection"] == {
        "methods": ["response fingerprint"],
        "decided_by": "response fingerprint",
    }


def test_plan_prints_the_methods_in_the_table_and_json(tmp_path: Path) -> None:
    """Without a daemon: --json carries change_detection, the table a section of its own."""
    doc = {
        "components": {"gtfs_schedule": gtfs({"url": "http://127.0.0.1:9/feed.zip"})},
        "runtime_settings": {"state_dir": str(tmp_path / "s"), "data_dir": str(tmp_path / "d")},
        "change_detection": DOCUMENTED,
    }
    path = tmp_path / "o.json"
    path.write_text(json.dumps(doc))
    (row,) = json.loads(interlock("plan", "--json", "--config", str(path)).stdout)
    on = ["file_hash(sha256)", "api_etag(24h)", "record_count(5%)"]
    assert row["change_detection"] == {"methods": on, "decided_by": None}
    table = interlock("plan", "--config", str(path)).stdout
    header, line = table.splitlines()[:2]
    assert header.split()[-2:] == ["CHANGE", "DETECTION"]
    assert line.rstrip().endswith("file_hash(sha256) api_etag(24h) record_count(5%)")
