"""One contract, two stores: every test here runs against SQLite and a real PostgreSQL server.

The ``kind`` fixture is parametrised over both; ``new_store`` makes a store (not yet
open) on the same state each time it is called, so a test can reopen it as a
restarted daemon would.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from interlock import events as ev
from interlock.delivery import POISON_ATTEMPTS, Backoff, LosslessSubscriber, is_busy
from interlock.errors import SchemaVersionError, StoreUnavailableError
from interlock.secrets import forget_all_but, known_secrets, remember
from interlock.store.abc import ErrorTally, HourlyTotals, StateStore
from interlock.store.postgresql import PgStateStore
from interlock.store.postgresql.tables import VERSION
from interlock.store.sqlite import STATE_DB, SqliteStateStore
from tests.pg import PgCluster
from tests.test_store import T0, at, two_runs

pytestmark = pytest.mark.timeout(30)

FAILED = ("failed", "timed_out")
NewStore = Callable[[], StateStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which store the test runs against."""
    return str(request.param)


@pytest.fixture
def new_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> NewStore:
    """A factory of stores (not yet open) on one state: one file, or one database."""
    if kind == "sqlite":
        path = tmp_path / "state" / STATE_DB
        return lambda: SqliteStateStore(path)
    dsn = request.getfixturevalue("pg_dsn")
    return lambda: PgStateStore(dsn)


@pytest.fixture
async def store(new_store: NewStore) -> AsyncIterator[StateStore]:
    """An open store."""
    s = new_store()
    await asyncio.wait_for(s.open(), 10)
    yield s
    await asyncio.wait_for(s.close(), 10)


async def test_batches_round_trip_into_history_newest_first(store: StateStore) -> None:
    """Events written in batches come back as component runs, newest first, JSON parsed."""
    events = two_runs()
    await asyncio.wait_for(store.record_events(events[:3]), 5)
    await asyncio.wait_for(store.record_events(events[3:]), 5)
    rows = await asyncio.wait_for(store.history(), 5)
    assert [(r["run_id"], r["component"], r["status"]) for r in rows] == [
        ("r2", "a", "failed"),
        ("r1", "b", "skipped"),
        ("r1", "a", "succeeded"),
    ]
    succeeded = rows[2]
    assert succeeded["records"] == 5 and succeeded["duration_s"] == 2.0
    assert succeeded["started_at"] == at(1).isoformat()
    assert succeeded["metrics"] == {"bytes": 10}
    assert succeeded["quality"] == {"error_count": 0}
    assert succeeded["inputs"] == {}
    assert set(succeeded) == set(rows[0]) and "seq" not in succeeded
    only_a = await asyncio.wait_for(store.history(component="a", limit=1), 5)
    assert [(r["run_id"], r["component"]) for r in only_a] == [("r2", "a")]


async def test_component_state_keeps_the_last_success_after_a_failure(store: StateStore) -> None:
    """The remembered state of a component that published, then failed."""
    await asyncio.wait_for(store.record_events(two_runs()), 5)
    a = (await asyncio.wait_for(store.component_states(), 5))["a"]
    assert (a.last_status, a.last_error, a.fingerprint, a.records) == (
        "failed",
        "HTTP 404",
        "fp-1",
        5,
    )
    assert (a.last_started_at, a.last_finished_at, a.last_success_at) == (at(101), at(102), at(3))


async def test_a_component_run_written_twice_is_replaced_and_newest(store: StateStore) -> None:
    """The same run and component recorded again replaces the row and sorts first."""
    first = two_runs()[:3]
    again = ev.ComponentFailed(
        at=at(3),
        run_id="r1",
        component="a",
        status="failed",
        reason="again",
        started_at=at(1),
        duration_s=2.0,
        error="again",
    )
    await store.record_events(first)
    await store.record_events(
        [ev.ComponentSkipped(at=at(1), run_id="r1", component="c", reason="not_due", detail="")]
    )
    await store.record_events([again])
    rows = await store.history()
    assert [(r["component"], r["status"]) for r in rows] == [("a", "failed"), ("c", "skipped")]


async def test_reads_for_status_and_the_dashboard(store: StateStore) -> None:
    """last_runs, last_quality, recent_outcomes, runs_between, hourly totals, error tallies."""
    await asyncio.wait_for(store.record_events(two_runs()), 5)
    last = await store.last_runs(["a", "b", "never"])
    assert set(last) == {"a", "b"} and last["a"]["run_id"] == "r2"
    assert await store.last_quality(["a", "b"]) == {
        "a": {
            "run_id": "r1",
            "status": "succeeded",
            "finished_at": at(3).isoformat(),
            "quality": {"error_count": 0},
        }
    }
    assert await store.recent_outcomes(5) == {"a": [True, False]}
    between = await store.runs_between(at(0), at(100))
    assert [(r["component"], r["status"]) for r in between] == [
        ("a", "succeeded"),
        ("b", "skipped"),
    ]
    assert between[0]["metrics"] == {"bytes": 10}
    assert [r["status"] for r in await store.runs_between(at(0), at(200), component="a")] == [
        "succeeded",
        "failed",
    ]
    hour = T0.strftime("%Y-%m-%dT%H")
    assert sorted(await store.hourly_totals(T0, failed=FAILED)) == [
        HourlyTotals("a", hour, 2, 1, 3.0, 2.0, 5, 1),
        HourlyTotals("b", hour, 0, 0, None, None, None, 0),
    ]
    assert await store.hourly_totals(at(3600), failed=FAILED) == []
    assert await store.error_tallies(T0, statuses=FAILED) == [
        ErrorTally("a", "failed", "HTTP 404", 1, at(102).isoformat(), at(101).isoformat())
    ]


async def test_meta_values_round_trip_and_overwrite(store: StateStore) -> None:
    """A small JSON value stored under a key is read back; a second write replaces it."""
    assert await store.get_meta("paused") is None
    await store.set_meta("paused", ["a"])
    await store.set_meta("quota", {"day": "2026-03-01", "n": 1.5})
    await store.set_meta("paused", ["a", "b"])
    assert await store.get_meta("paused") == ["a", "b"]
    assert await store.get_meta("quota") == {"day": "2026-03-01", "n": 1.5}


async def test_a_reader_beside_the_writer_sees_its_committed_writes(store: StateStore) -> None:
    """The store's read-only view answers the same reads on a connection of its own."""
    await store.record_events(two_runs())
    await store.set_meta("paused", ["b"])
    async with asyncio.timeout(10):
        reader = store.reader(timeout_s=2.0)
        await reader.open()
        try:
            assert await reader.last_runs(["a"]) == await store.last_runs(["a"])
            assert await reader.get_meta("paused") == ["b"]
            assert set(await reader.component_states()) == {"a"}
        finally:
            await reader.close()
            await reader.close()  # idempotent


async def test_a_crashed_run_is_interrupted_after_reopening(new_store: NewStore) -> None:
    """A run left running is marked interrupted by the next daemon, each component with why."""
    crashed = new_store()
    await crashed.open()
    await crashed.record_events(
        [
            ev.RunStarted(at=at(0), run_id="r1", trigger="test", components=("a", "b")),
            ev.ComponentStarted(at=at(1), run_id="r1", component="a", attempt=1),
        ]
    )
    await crashed.close()
    reopened = new_store()
    await reopened.open()
    try:
        assert await reopened.recover_interrupted(at(600)) == [("r1", "a")]
        by_name = {r["component"]: r for r in await reopened.history()}
        assert await reopened.recover_interrupted(at(700)) == []
        states = await reopened.component_states()
    finally:
        await reopened.close()
    assert (by_name["a"]["status"], by_name["a"]["started_at"]) == (
        "interrupted",
        at(1).isoformat(),
    )
    assert by_name["a"]["reason"] == "the daemon stopped while it ran (crash or kill)"
    assert by_name["b"]["reason"] == (
        "the daemon stopped before this component finished (crash or kill)"
    )
    assert states["a"].last_status == "interrupted"


async def test_prune_history_keeps_newer_runs_and_component_state(store: StateStore) -> None:
    """Runs that started before the cut go; each component's state stays."""
    await store.record_events(two_runs())
    deleted = await store.prune_history(at(50))
    assert deleted == 2
    assert {r["run_id"] for r in await store.history()} == {"r2"}
    assert (await store.component_states())["a"].fingerprint == "fp-1"


async def test_a_secret_in_an_error_is_masked_in_history(store: StateStore) -> None:
    """An error echoing a resolved secret is stored masked."""
    keep = known_secrets()
    remember("hunter2-secret-token")
    try:
        failed = ev.ComponentFailed(
            at=at(2),
            run_id="r1",
            component="a",
            status="failed",
            reason="HTTP 401",
            started_at=at(1),
            duration_s=1.0,
            error="bad key hunter2-secret-token",
        )
        await store.record_events([failed])
    finally:
        forget_all_but(keep)
    (row,) = await store.history()
    assert "hunter2" not in row["error"] and "***" in row["error"]
    assert "hunter2" not in ((await store.component_states())["a"].last_error or "")


async def test_reopening_keeps_the_schema_and_the_rows(new_store: NewStore) -> None:
    """A second open of the same state migrates nothing and loses nothing."""
    first = new_store()
    await first.open()
    await first.record_events(two_runs())
    await first.close()
    second = new_store()
    await second.open()
    try:
        assert len(await second.history()) == 3
    finally:
        await second.close()


async def test_a_poison_event_is_dropped_alone(store: StateStore) -> None:
    """A row the database refuses (records past 64 bits) loses that event only."""
    events = two_runs()
    poison = ev.ComponentSucceeded(
        at=at(3),
        run_id="r1",
        component="p",
        status="succeeded",
        reason=None,
        started_at=at(1),
        duration_s=2.0,
        records=2**70,
        fingerprint="fp",
        inputs={},
    )
    sub: LosslessSubscriber[ev.Event] = LosslessSubscriber(
        "history", store.record_events, backoff=Backoff(first_s=0.001, max_s=0.01)
    )
    await asyncio.wait_for(sub.deliver([*events[:3], poison, *events[3:]]), 10)
    assert sub.stats().lost == 1
    assert {(r["run_id"], r["component"]) for r in await store.history()} == {
        ("r1", "a"),
        ("r1", "b"),
        ("r2", "a"),
    }


async def test_a_schema_newer_than_the_code_is_refused(
    kind: str, new_store: NewStore, request: pytest.FixtureRequest
) -> None:
    """State written by a newer interlock is refused with the version, not overwritten."""
    first = new_store()
    await first.open()
    await first.close()
    if isinstance(first, SqliteStateStore):
        with sqlite3.connect(first.path) as db:
            db.execute("PRAGMA user_version=99")
    else:
        assert isinstance(first, PgStateStore)
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        cluster.psql("UPDATE schema_version SET version = 99", database=_database(first.dsn))
    with pytest.raises(SchemaVersionError, match="99"):
        await asyncio.wait_for(new_store().open(), 10)


def _database(dsn: str) -> str:
    return dsn.split("///", 1)[1].split("?", 1)[0]


async def test_two_daemons_opening_a_new_database_together_migrate_it_once(pg_dsn: str) -> None:
    """Two stores opening one empty database at once both open it at the current version."""
    one, two = PgStateStore(pg_dsn), PgStateStore(pg_dsn)
    await asyncio.wait_for(asyncio.gather(one.open(), two.open()), 10)
    try:
        async with one.pool.acquire() as conn:
            assert await conn.fetch("SELECT version FROM schema_version") == [(VERSION,)]
    finally:
        await one.close()
        await two.close()


async def test_an_unreachable_server_is_busy_not_a_config_error(tmp_path: Path) -> None:
    """No server behind the DSN: the store says it is unavailable and names no DSN."""
    dsn = f"postgresql:///nowhere?host={tmp_path}&user=postgres&password=s3cret-pw"
    with pytest.raises(StoreUnavailableError) as caught:
        await asyncio.wait_for(PgStateStore(dsn).open(), 10)
    assert is_busy(caught.value)
    assert "s3cret-pw" not in str(caught.value) and str(tmp_path) not in str(caught.value)


async def test_history_waits_out_a_lost_and_refused_server(
    pg_cluster: PgCluster, pg_dsn: str
) -> None:
    """Connections cut and the socket gone: the history subscriber retries until it lands."""
    gate = Path(tempfile.mkdtemp(prefix="ilgate-", dir="/tmp"))
    socket = gate / ".s.PGSQL.5432"
    socket.symlink_to(Path(pg_cluster.socket_dir) / ".s.PGSQL.5432")
    database = _database(pg_dsn)
    store = PgStateStore(f"postgresql:///{database}?host={gate}&user=postgres")
    await asyncio.wait_for(store.open(), 10)
    failures = 0
    long_enough = asyncio.Event()  # more failures than a poison event is allowed

    async def write(events: Sequence[ev.Event]) -> None:
        nonlocal failures
        try:
            await store.record_events(events)
        except StoreUnavailableError:
            failures += 1
            if failures >= 4 * POISON_ATTEMPTS:
                long_enough.set()
            raise

    sub: LosslessSubscriber[ev.Event] = LosslessSubscriber(
        "history", write, backoff=Backoff(first_s=0.001, max_s=0.005)
    )
    try:
        socket.unlink()  # new connections are refused ...
        pg_cluster.psql(  # ... and the open ones are lost
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )
        delivering = asyncio.create_task(sub.deliver(two_runs()))
        await asyncio.wait_for(long_enough.wait(), 10)
        assert not delivering.done()
        socket.symlink_to(Path(pg_cluster.socket_dir) / ".s.PGSQL.5432")
        await asyncio.wait_for(delivering, 10)
        assert sub.stats().lost == 0 and sub.stats().retries >= 1
        assert len(await store.history()) == 3
    finally:
        await asyncio.wait_for(store.close(), 10)
        shutil.rmtree(gate, ignore_errors=True)


async def test_the_postgresql_tables_are_the_declared_state_tables(pg_dsn: str) -> None:
    """Each declared state table has the same columns, nullability included, in PostgreSQL."""
    from interlock.store.sqlite.tables import STATE

    store = PgStateStore(pg_dsn)
    await asyncio.wait_for(store.open(), 10)
    try:
        rows = await store.pool.fetch(
            "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        )
    finally:
        await store.close()
    found: dict[str, list[tuple[str, bool]]] = {}
    for r in rows:
        found.setdefault(r["table_name"], []).append((r["column_name"], r["is_nullable"] == "YES"))
    for table in STATE.tables:
        have = [c for c in found[table.name] if c[0] != "seq"]
        assert have == [(c.name, c.nullable) for c in table.columns], table.name
    assert {"quota_days", "quota_calls", "quota_rate", "schema_version"} <= set(found)
