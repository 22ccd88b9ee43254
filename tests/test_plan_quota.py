"""plan predicts quota_exhausted: a component whose calls are all non-priority endpoints
shows as skipped while the daily quota is spent (or paused), with when it resumes."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from interlock.config.loader import parse_config
from interlock.core.planning import plan_row
from interlock.service.app import Orchestrator
from tests.test_cli import interlock

pytestmark = pytest.mark.timeout(60)


def doc(tmp_path: Path, priority: list[str] | None = None) -> dict[str, Any]:
    return {
        "components": {
            "gtfs_realtime": {
                "frequency": "60s",
                "settings": {
                    "endpoints": {
                        "metro_trip_updates": "http://127.0.0.1:9/metro",
                        "tram_trip_updates": "http://127.0.0.1:9/tram",
                    },
                    "api_key": "test-key",
                },
            }
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
        "quota_management": {
            "daily_limit": 2,
            "retry_after_quota": "30m",
            "priority_endpoints": priority or [],
            "rate_limit": {"calls": 100, "per_seconds": 60},
        },
    }


async def spend(orch: Orchestrator, calls: int) -> None:
    assert orch.quota is not None
    for _ in range(calls):
        await asyncio.wait_for(orch.quota.acquire("metro_trip_updates"), 5)


async def test_the_daemons_plan_shows_quota_exhausted_with_the_resume_time(tmp_path, open_orch):
    """With the day's 2 calls spent, the live plan skips the realtime component."""
    orch = await open_orch(parse_config(doc(tmp_path), str(tmp_path / "o.json")))
    await spend(orch, 1)
    (due,) = [plan_row(d, orch.config) for d in orch.scheduler.plan()]
    assert due["run"] and due["resume_at"] is None
    await spend(orch, 1)
    (row,) = [plan_row(d, orch.config) for d in orch.scheduler.plan()]
    resume_at = orch.quota.describe()["resume_at"]
    assert (row["run"], row["reason"], row["resume_at"]) == (False, "quota_exhausted", resume_at)
    assert f"resumes at {datetime.fromisoformat(resume_at):%Y-%m-%d %H:%M:%S}" in row["detail"]


async def test_a_priority_endpoint_keeps_the_component_due(tmp_path, open_orch):
    """One priority endpoint among its calls: it still runs (that endpoint goes on)."""
    config = parse_config(doc(tmp_path, ["tram_trip_updates"]), str(tmp_path / "o.json"))
    orch = await open_orch(config)
    await spend(orch, 2)
    (row,) = [plan_row(d, orch.config) for d in orch.scheduler.plan()]
    assert row["run"] and row["reason"] != "quota_exhausted"


async def test_plan_without_a_daemon_reads_the_stored_quota(tmp_path: Path) -> None:
    """The CLI's plan (table and --json) reads the saved counters read-only."""
    path = tmp_path / "o.json"
    path.write_text(json.dumps(doc(tmp_path)))
    async with Orchestrator(parse_config(doc(tmp_path), str(path)), log_events=False) as orch:
        await spend(orch, 2)
        resume_at = orch.quota.describe()["resume_at"] if orch.quota else None
    assert resume_at is not None
    proc = await asyncio.to_thread(interlock, "plan", "--json", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert (row["run"], row["reason"], row["resume_at"]) == (False, "quota_exhausted", resume_at)
    table = await asyncio.to_thread(interlock, "plan", "--config", str(path))
    line = next(x for x in table.stdout.splitlines() if x.startswith("gtfs_realtime"))
    assert "skip" in line and "quota_exhausted" in line
    assert f"resumes at {datetime.fromisoformat(resume_at):%Y-%m-%d %H:%M:%S}" in line
