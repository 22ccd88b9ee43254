"""A leader killed between a snapshot's atomic swap and its history write, with a standby
on the same PostgreSQL database and a shared ``data_dir``: the new leader reconciles the
publish from the dataset's stamp and does not fetch that due time again.

The test holds a lock on the history tables while the run loads, so the run can swap
its dataset in but cannot record the outcome; the leader is killed the moment the live
file's inode changes.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from interlock.components.standins import StandinServer
from tests.test_failover import SharedDaemon

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

LOCKED = "runs, component_runs, component_state, events, meta"


@pytest.fixture
def roots() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ilp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


async def test_a_publish_the_killed_leader_did_not_record_is_not_fetched_again(
    pg_dsn: str, roots: Path
) -> None:
    data = roots / "data"
    live = data / "gtfs_schedule.sqlite"
    (roots / "a").mkdir()
    (roots / "b").mkdir()
    conn = await asyncpg.connect(pg_dsn, timeout=10)
    async with StandinServer() as server:
        source = {"url": server.url("/gtfs/schedule/google_transit.zip")}
        components = {
            "gtfs_schedule": {"frequency": "daily", "retries": 0, "settings": {"source": source}}
        }
        a = SharedDaemon(roots / "a", components, dsn=pg_dsn, data=data)
        b = SharedDaemon(roots / "b", components, dsn=pg_dsn, data=data)
        try:
            await asyncio.to_thread(a.start)
            await asyncio.to_thread(a.wait_status, "idle", 60)  # v1 published and recorded
            await asyncio.to_thread(b.start)
            server.publish("gtfs_schedule", 2)
            before = inode(live)
            reply = await asyncio.to_thread(a.request, "trigger", component="gtfs_schedule")
            run_id = reply["result"]["run_id"]

            async def started() -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM runs r JOIN component_state s ON "
                        "s.component = 'gtfs_schedule' WHERE r.run_id = $1 "
                        "AND s.last_started_at >= r.started_at",
                        run_id,
                    )
                )

            deadline = time.monotonic() + 30
            while not await started():
                assert time.monotonic() < deadline, "the run's start was never recorded"
                await asyncio.sleep(0.001)
            async with conn.transaction():  # the run can publish but record nothing more
                await conn.execute(f"LOCK TABLE {LOCKED} IN EXCLUSIVE MODE")
                assert inode(live) == before, "the run published before the lock was taken"
                deadline = time.monotonic() + 60
                while inode(live) == before:
                    assert time.monotonic() < deadline, "no atomic swap"
                    await asyncio.sleep(0.001)
                assert a.proc is not None
                a.proc.send_signal(signal.SIGKILL)
                await asyncio.to_thread(a.proc.wait, 10)
            zips_before = len([r for r in server.requests if r.path.endswith(".zip")])
            leading = await asyncio.to_thread(b.wait_status, "components", 20)
            if "idle" not in leading:
                await asyncio.to_thread(b.wait_status, "idle", 60)
            assert await asyncio.to_thread(b.stop) == 0
            zips = [r for r in server.requests if r.path.endswith(".zip")][zips_before:]
            assert zips == [], [(r.path, r.status) for r in zips]
            rows = await conn.fetch(
                "SELECT run_id, status, reason FROM component_runs ORDER BY started_at"
            )
            assert [r["status"] for r in rows] == ["succeeded", "succeeded"], rows
            assert rows[1]["run_id"] == run_id
            assert rows[1]["reason"].startswith("reconciled at start-up")
        finally:
            a.close()
            b.close()
            await conn.close()
