"""``watch`` on a standby carries the leader's events, not only its outcomes.

The leader writes every event it publishes to the shared store's ``events`` table (in
the history transaction); a standby's relay reads the rows after the last it saw and
publishes them on its own bus, so its ``watch`` streams what the leader's does. And
failing over by hand, as the README says: stop the leader, and a standby leads.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock import events as ev
from interlock.service.relay import as_event
from interlock.store.postgresql import PgStateStore
from interlock.store.postgresql.tables import EVENTS_KEPT
from tests.test_failover import SharedDaemon, db
from tests.test_service import next_event
from tests.test_store import two_runs

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def roots() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ile-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_a_standbys_watch_sees_the_starts_and_outcome_of_a_run_the_leader_performs(
    pg_dsn: str, roots: Path
) -> None:
    components = {"feed": {"class": "tests.testcomponents:Publishes", "frequency": "1h"}}
    data = roots / "data"
    (roots / "a").mkdir()
    (roots / "b").mkdir()
    a = SharedDaemon(roots / "a", components, dsn=pg_dsn, data=data)
    b = SharedDaemon(roots / "b", components, dsn=pg_dsn, data=data)
    try:
        a.start()
        a.wait_status("idle", timeout=20)  # its first run is over
        b.start()
        stream = b.events(["run_started", "component_started", "component_succeeded"])
        try:
            reply = a.request("trigger", component="feed")
            assert reply["ok"], reply
            started = next_event(stream, event="run_started")
            run_id = started["run_id"]
            assert next_event(stream, event="component_started", run_id=run_id)["component"] == (
                "feed"
            )
            done = next_event(stream, event="component_succeeded", run_id=run_id)
            assert done["component"] == "feed" and done["records"] == 1
        finally:
            stream.close()  # type: ignore[attr-defined]
        kept = db(pg_dsn, "SELECT count(*) AS n FROM events")
        assert kept[0]["n"] > 0
        assert a.stop() == 0
        assert b.stop() == 0
    finally:
        a.close()
        b.close()


@pytest.mark.slow
def test_a_leader_stopped_by_hand_hands_over_to_the_standby_at_its_next_try(
    pg_dsn: str, roots: Path
) -> None:
    """SIGTERM (systemctl stop) on the leader: it exits 0, releasing the lock, and the
    standby leads at its next try (a fifth of failover_seconds), not after the lease."""
    components = {"feed": {"class": "tests.testcomponents:Publishes", "frequency": "1h"}}
    data = roots / "data"
    (roots / "a").mkdir()
    (roots / "b").mkdir()
    a = SharedDaemon(roots / "a", components, dsn=pg_dsn, data=data, failover_s=10.0)
    b = SharedDaemon(roots / "b", components, dsn=pg_dsn, data=data, failover_s=10.0)
    try:
        a.start()
        a.wait_status("idle", timeout=20)
        b.start()
        assert b.request("status")["result"]["daemon"]["state"] == "standby"
        assert a.stop() == 0
        stopped = time.monotonic()
        b.wait_status("components", timeout=20)  # leading
        took = time.monotonic() - stopped
        assert took < 10.0 * 0.6, f"the standby took {took:.2f} s: it waited for the lease"
        (leader,) = db(pg_dsn, "SELECT epoch, pid FROM leader")
        assert b.proc is not None and (leader["epoch"], leader["pid"]) == (2, b.proc.pid)
        assert b.stop() == 0
    finally:
        a.close()
        b.close()


async def test_the_events_table_is_pruned_and_its_rows_read_back_as_the_events_written(
    pg_dsn: str,
) -> None:
    """Each event reads back equal to what the leader published (but ``memory``); the
    table keeps about the newest EVENTS_KEPT rows, however many are written."""
    store = PgStateStore(pg_dsn)
    await asyncio.wait_for(store.open(), 10)
    try:
        written = two_runs()
        await asyncio.wait_for(store.record_events(written), 10)
        rows = await store.pool.fetch("SELECT name, payload FROM events ORDER BY seq")
        back = [as_event(json.loads(r["payload"])) for r in rows]
        assert [r["name"] for r in rows] == [e.name for e in written]
        assert [b.to_dict(skip=frozenset({"memory"})) if b else None for b in back] == [
            json.loads(json.dumps(e.to_dict(skip=frozenset({"memory"})))) for e in written
        ]
        pauses = [ev.ComponentPaused(component="a", actor="test") for _ in range(1_000)]
        for _ in range(EVENTS_KEPT // 1_000 + 2):
            await asyncio.wait_for(store.record_events(pauses), 10)
        kept = await store.pool.fetchval("SELECT count(*) FROM events")
        assert EVENTS_KEPT <= kept < EVENTS_KEPT + 1_000
    finally:
        await store.close()
