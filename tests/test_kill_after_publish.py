"""SIGKILL between a snapshot's atomic swap and its history write: the publish is not forgotten.

A real ``interlock`` subprocess loads the GTFS schedule from the stand-in server. The
test holds the state database's write lock while the run loads, so the run can
swap its dataset in but cannot record the outcome; it is killed the moment the live
file's inode changes. The restart must find the feed unchanged and keep the version
before in ``.previous``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from interlock.components.standins import StandinServer

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def write_config(tmp_path: Path, server: StandinServer) -> Path:
    source = {"url": server.url("/gtfs/schedule/google_transit.zip")}
    config = tmp_path / "orchestration.json"
    doc = {
        "components": {
            "gtfs_schedule": {"frequency": "daily", "retries": 0, "settings": {"source": source}}
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
        "data_quality": {"default_rules": {"schema_validation": True}},
    }
    config.write_text(json.dumps(doc))
    return config


async def start(config: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "interlock.cli",
        *args,
        "--config",
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


async def run_once(config: Path) -> None:
    proc = await start(config, "run", "--once", "gtfs_schedule", "--skip-frequency-check")
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def started_and_recorded(state_db: Path) -> bool:
    """Whether the running run and its component's start are in the state database."""
    if not state_db.exists():
        return False
    try:
        rows = query(
            state_db,
            "SELECT 1 FROM runs r JOIN component_state s ON s.component = 'gtfs_schedule' "
            "WHERE r.status = 'running' AND s.last_started_at >= r.started_at",
        )
    except sqlite3.OperationalError:  # the schema is not there yet
        return False
    return bool(rows)


async def until(check: Any, what: str, proc: asyncio.subprocess.Process, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert proc.returncode is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {limit_s} s"
        await asyncio.sleep(0.001)


async def test_sigkill_after_the_swap_keeps_the_publish_and_the_rollback(tmp_path):
    """Killed after its swap and before its history write, the publish is reconciled at
    start-up: the next run gets 304 (nothing re-downloaded) and .previous keeps v1."""
    live = tmp_path / "data" / "gtfs_schedule.sqlite"
    previous = tmp_path / "data" / "gtfs_schedule.previous.sqlite"
    state_db = tmp_path / "state" / "state.sqlite"
    async with StandinServer() as server:
        config = write_config(tmp_path, server)
        await run_once(config)
        ((v1,),) = query(live, "SELECT sha256 FROM provenance")
        server.publish("gtfs_schedule", 2)

        before = inode(live)
        proc = await start(config, "run", "--once", "gtfs_schedule", "--skip-frequency-check")
        try:
            await until(lambda: started_and_recorded(state_db), "recorded start", proc, 60)
            # Holding the write lock, the run can publish but can record nothing more.
            lock = sqlite3.connect(state_db, isolation_level=None, timeout=10)
            try:
                lock.execute("BEGIN IMMEDIATE")
                assert inode(live) == before, "the run published before the lock was taken"
                await until(lambda: inode(live) != before, "atomic swap", proc, 60)
                proc.send_signal(signal.SIGKILL)
                assert await asyncio.wait_for(proc.wait(), 30) == -signal.SIGKILL
            finally:
                lock.close()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        ((v2,),) = query(live, "SELECT sha256 FROM provenance")
        assert v2 != v1
        assert query(previous, "SELECT sha256 FROM provenance") == [(v1,)]
        (killed_run,) = query(state_db, "SELECT run_id FROM runs WHERE status = 'running'")
        zips_before = len([r for r in server.requests if r.path.endswith(".zip")])

        await run_once(config)
        zips = [r for r in server.requests if r.path.endswith(".zip")][zips_before:]

    assert [(r.status, r.if_none_match is not None) for r in zips] == [(304, True)]
    assert query(previous, "SELECT sha256 FROM provenance") == [(v1,)]
    assert query(live, "SELECT sha256 FROM provenance") == [(v2,)]
    (state,) = query(state_db, "SELECT fingerprint, last_status FROM component_state")
    assert state == (v2, "unchanged")
    runs = query(
        state_db,
        "SELECT run_id, status, records, fingerprint, reason FROM component_runs "
        "ORDER BY started_at",
    )
    assert [r[1] for r in runs] == ["succeeded", "succeeded", "unchanged"]
    killed = runs[1]
    assert killed[0] == killed_run[0] and killed[2] > 0 and killed[3] == v2
    assert killed[4].startswith("reconciled at start-up")
    assert runs[2][4] == "source answered 304 Not Modified (decided by api_etag)"
