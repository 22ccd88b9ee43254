"""The SQLite state store on a real file: WAL, batched history, crash recovery, persistence."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interlock import events as ev
from interlock.service.app import Orchestrator
from interlock.store.sqlite import STATE_DB, SqliteStateStore
from tests.conftest import component

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """An instant ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    """An open store on a file under tmp_path."""
    s = SqliteStateStore(tmp_path / "state" / STATE_DB)
    await asyncio.wait_for(s.open(), 5)
    yield s
    await asyncio.wait_for(s.close(), 5)


def two_runs() -> list[ev.Event]:
    """Run r1: a publishes, b is skipped. Run r2: a fails."""
    return [
        ev.RunStarted(at=at(0), run_id="r1", trigger="test", components=("a", "b")),
        ev.ComponentStarted(at=at(1), run_id="r1", component="a", attempt=1),
        ev.ComponentSucceeded(
            at=at(3),
            run_id="r1",
            component="a",
            status="succeeded",
            reason=None,
            started_at=at(1),
            duration_s=2.0,
            records=5,
            fingerprint="fp-1",
            inputs={},
            metrics={"bytes": 10},
            quality={"error_count": 0},
        ),
        ev.ComponentSkipped(
            at=at(4),
            run_id="r1",
            component="b",
            reason="upstream_missing",
            detail="upstream 'x' has never published",
        ),
        ev.RunFinished(
            at=at(5),
            run_id="r1",
            status="succeeded",
            started_at=at(0),
            duration_s=5.0,
            counts={"succeeded": 1},
        ),
        ev.RunStarted(at=at(100), run_id="r2", trigger="test", components=("a",)),
        ev.ComponentStarted(at=at(101), run_id="r2", component="a", attempt=1),
        ev.ComponentFailed(
            at=at(102),
            run_id="r2",
            component="a",
            status="failed",
            reason="HTTP 404",
            started_at=at(101),
            duration_s=1.0,
            error="HTTP 404",
        ),
        ev.RunFinished(
            at=at(103),
            run_id="r2",
            status="failed",
            started_at=at(100),
            duration_s=3.0,
            counts={"failed": 1},
        ),
    ]


async def test_the_database_is_in_wal_mode(store: SqliteStateStore) -> None:
    """The state database file is switched to write-ahead logging."""
    with sqlite3.connect(store.path) as other:
        (mode,) = other.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


async def test_batches_round_trip_into_history_newest_first(store: SqliteStateStore) -> None:
    """Events written in batches come back as component runs, newest first."""
    events = two_runs()
    await asyncio.wait_for(store.record_events(events[:3]), 5)
    await asyncio.wait_for(store.record_events(events[3:]), 5)
    rows = await asyncio.wait_for(store.history(), 5)
    assert [(r["run_id"], r["component"], r["status"]) for r in rows] == [
        ("r2", "a", "failed"),
        ("r1", "b", "skipped"),
        ("r1", "a", "succeeded"),
    ]
    failed, skipped, succeeded = rows
    assert failed["error"] == "HTTP 404" and failed["reason"] == "HTTP 404"
    assert skipped["reason"] == "upstream_missing"
    assert skipped["error"] == "upstream 'x' has never published"
    assert succeeded["records"] == 5 and succeeded["duration_s"] == 2.0
    assert succeeded["started_at"] == at(1).isoformat()
    assert succeeded["finished_at"] == at(3).isoformat()
    assert succeeded["metrics"] == {"bytes": 10}
    assert succeeded["quality"] == {"error_count": 0}
    only_a = await asyncio.wait_for(store.history(component="a", limit=1), 5)
    assert [(r["run_id"], r["component"]) for r in only_a] == [("r2", "a")]


async def test_batches_round_trip_into_component_states(store: SqliteStateStore) -> None:
    """Component state keeps the last success's data when a later run fails."""
    await asyncio.wait_for(store.record_events(two_runs()), 5)
    states = await asyncio.wait_for(store.component_states(), 5)
    a = states["a"]
    assert a.last_status == "failed"
    assert a.last_error == "HTTP 404"
    assert a.last_started_at == at(101)
    assert a.last_finished_at == at(102)
    assert a.last_success_at == at(3)
    assert a.published_at == at(3)
    assert a.fingerprint == "fp-1"
    assert a.records == 5
    # upstream_missing keeps b's due time: b runs once its upstream has published
    assert "b" not in states or states["b"].last_started_at is None


async def test_a_crash_leaves_the_run_interrupted_after_recovery(tmp_path: Path) -> None:
    """A run left 'running' is marked interrupted on reopening, with each component's reason."""
    path = tmp_path / "state" / STATE_DB
    async with SqliteStateStore(path) as crashed:
        await asyncio.wait_for(
            crashed.record_events(
                [
                    ev.RunStarted(at=at(0), run_id="r1", trigger="test", components=("a", "b")),
                    ev.ComponentStarted(at=at(1), run_id="r1", component="a", attempt=1),
                ]
            ),
            5,
        )
    # The process "dies" here: no ComponentFinished, no RunFinished.
    async with SqliteStateStore(path) as reopened:
        interrupted = await asyncio.wait_for(reopened.recover_interrupted(at(600)), 5)
        rows = await asyncio.wait_for(reopened.history(), 5)
        states = await asyncio.wait_for(reopened.component_states(), 5)
        again = await asyncio.wait_for(reopened.recover_interrupted(at(700)), 5)
    assert interrupted == [("r1", "a")]
    by_name = {r["component"]: r for r in rows}
    assert by_name["a"]["status"] == "interrupted"
    assert by_name["a"]["reason"] == "the daemon stopped while it ran (crash or kill)"
    assert by_name["a"]["started_at"] == at(1).isoformat()
    assert by_name["b"]["status"] == "interrupted"
    assert by_name["b"]["reason"] == (
        "the daemon stopped before this component finished (crash or kill)"
    )
    assert states["a"].last_status == "interrupted"
    assert again == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT status FROM runs WHERE run_id='r1'").fetchall() == [
            ("interrupted",)
        ]


async def test_orchestrator_start_up_recovers_a_crashed_run(make_config) -> None:
    """Opening the orchestrator marks a run a crash left behind as interrupted."""
    cfg = make_config({"a": component("Publishes")})
    async with SqliteStateStore(cfg.runtime.state_dir / STATE_DB) as crashed:
        await asyncio.wait_for(
            crashed.record_events(
                [
                    ev.RunStarted(at=at(0), run_id="r1", trigger="test", components=("a",)),
                    ev.ComponentStarted(at=at(1), run_id="r1", component="a", attempt=1),
                ]
            ),
            5,
        )
    orch = Orchestrator(cfg, log_events=False)
    async with asyncio.timeout(10):
        async with orch:
            rows = await orch.store.history()
            state = orch.scheduler.states["a"]
    assert [(r["run_id"], r["status"]) for r in rows] == [("r1", "interrupted")]
    assert state.last_status == "interrupted"


async def test_component_state_persists_across_restarts(make_config) -> None:
    """A second orchestrator on the same state dir remembers fingerprints and start times."""
    cfg = make_config(
        {"a": component("Publishes", frequency="1h"), "b": component("Publishes", deps=["a"])}
    )
    async with asyncio.timeout(10):
        async with Orchestrator(cfg, log_events=False) as first:
            result = await first.scheduler.run_once()
            before = {n: first.scheduler.states[n] for n in ("a", "b")}
        assert result.status == "succeeded"
        async with Orchestrator(cfg, log_events=False) as second:
            after = second.scheduler.states
            decisions = second.scheduler.plan()
    for name in ("a", "b"):
        assert after[name].fingerprint == before[name].fingerprint is not None
        assert after[name].last_started_at == before[name].last_started_at is not None
        assert after[name].last_success_at == before[name].last_success_at
        assert after[name].last_status == "succeeded"
    assert after["b"].inputs == {"a": before["a"].fingerprint}
    assert [d.reason.value if d.reason else None for d in decisions] == ["not_due", "not_due"]


async def test_read_states_does_not_create_a_missing_database(tmp_path: Path) -> None:
    """Reading states from a database that does not exist returns nothing and creates nothing."""
    path = tmp_path / "state" / STATE_DB
    assert await asyncio.wait_for(SqliteStateStore.read_states(path), 5) == {}
    assert not path.parent.exists()


async def test_read_states_reads_without_writing(store: SqliteStateStore) -> None:
    """read_states returns the saved states and leaves the database file as it was."""
    await asyncio.wait_for(store.record_events(two_runs()), 5)
    await asyncio.wait_for(store.close(), 5)
    before = (store.path.read_bytes(), store.path.stat().st_mtime_ns)
    states = await asyncio.wait_for(SqliteStateStore.read_states(store.path), 5)
    assert states["a"].fingerprint == "fp-1"
    assert (store.path.read_bytes(), store.path.stat().st_mtime_ns) == before


async def test_read_states_without_a_live_writer_leaves_no_files_behind(
    store: SqliteStateStore,
) -> None:
    """With no daemon running, reading states adds no -wal or -shm file to state_dir."""
    await asyncio.wait_for(store.record_events(two_runs()), 5)
    await asyncio.wait_for(store.close(), 5)
    before = sorted(p.name for p in store.path.parent.iterdir())
    states = await asyncio.wait_for(SqliteStateStore.read_states(store.path, live=False), 5)
    assert states["a"].fingerprint == "fp-1"
    assert sorted(p.name for p in store.path.parent.iterdir()) == before


async def test_read_states_beside_a_live_writer_sees_its_committed_writes(
    store: SqliteStateStore,
) -> None:
    """While the daemon's connection is open, a read sees what it committed to the WAL."""
    await asyncio.wait_for(store.record_events(two_runs()), 5)
    states = await asyncio.wait_for(SqliteStateStore.read_states(store.path, live=True), 5)
    assert states["a"].last_status == "failed"
    assert states["a"].fingerprint == "fp-1"


async def test_prune_history_deletes_old_runs_and_keeps_component_state(store):
    """Runs that started before the cut go; newer runs and each component's state stay."""
    await asyncio.wait_for(store.record_events(two_runs()), 5)
    newer = [
        ev.RunStarted(at=at(86400), run_id="r3", trigger="test", components=("a",)),
        ev.ComponentStarted(at=at(86401), run_id="r3", component="a", attempt=1),
        ev.ComponentUnchanged(
            at=at(86402),
            run_id="r3",
            component="a",
            status="unchanged",
            reason="same",
            started_at=at(86401),
            duration_s=1.0,
            inputs={},
        ),
        ev.RunFinished(
            at=at(86403),
            run_id="r3",
            status="succeeded",
            started_at=at(86400),
            duration_s=3.0,
            counts={"unchanged": 1},
        ),
    ]
    await asyncio.wait_for(store.record_events(newer), 5)
    deleted = await asyncio.wait_for(store.prune_history(at(3600)), 5)
    rows = await asyncio.wait_for(store.history(limit=100), 5)
    states = await asyncio.wait_for(store.component_states(), 5)
    assert deleted >= 2
    assert {r["run_id"] for r in rows} == {"r3"}
    assert states["a"].fingerprint == "fp-1"  # the last publish is still known


async def test_the_daemon_prunes_history_past_its_retention(tmp_path, make_config):
    """With history_retention_days set, writing history deletes runs older than that."""
    config = make_config(
        {"a": component("Publishes")}, runtime_settings={"history_retention_days": 1}
    )
    now = [T0]
    async with Orchestrator(config, clock=lambda: now[0], log_events=False) as orch:
        await asyncio.wait_for(orch.scheduler.run_once(), 10)
        await asyncio.wait_for(orch.bus.flush(), 10)
        now[0] = T0 + timedelta(days=3)
        await asyncio.wait_for(orch.scheduler.run_once(["a"]), 10)
        await asyncio.wait_for(orch.bus.flush(), 10)
        rows = await orch.store.history(limit=10)
    assert [r["started_at"] for r in rows] == [now[0].isoformat()]


async def test_a_new_state_database_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """state.sqlite and its WAL files are created 0600 even under umask 022."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = tmp_path / "state" / STATE_DB
        async with SqliteStateStore(path) as store:
            await asyncio.wait_for(store.set_meta("k", 1), 5)
            modes = {
                p.name: stat.S_IMODE(p.stat().st_mode)
                for p in path.parent.iterdir()
                if p.name.startswith(STATE_DB)
            }
    finally:
        os.umask(old)
    assert modes and set(modes.values()) == {0o600}, modes
