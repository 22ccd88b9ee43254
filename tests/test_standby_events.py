"""``watch`` on a standby carries the leader's events, not only its outcomes.

The leader writes every event it publishes to the shared store's ``events`` table (in
the history transaction); a standby's relay reads the rows after the last it saw and
publishes them on its own bus, so its ``watch`` streams what the leader's does. And
failing over by hand, as the README says: stop the leader, and a standby leads.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_failover import SharedDaemon, db
from tests.test_service import next_event

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
