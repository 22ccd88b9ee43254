"""The state store's read side: the queries status, the dashboard and the offline CLI share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from interlock.store.abc import ErrorTally, HourlyTotals
from interlock.store.sqlite import STATE_DB, SqliteStateReader, SqliteStateStore
from tests.test_store import T0, at, two_runs

pytestmark = pytest.mark.timeout(30)

FAILED = ("failed", "timed_out")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    """An open store on a file under tmp_path, holding :func:`two_runs`."""
    s = SqliteStateStore(tmp_path / "state" / STATE_DB)
    await asyncio.wait_for(s.open(), 5)
    await asyncio.wait_for(s.record_events(two_runs()), 5)
    yield s
    await asyncio.wait_for(s.close(), 5)


async def test_last_runs_are_each_components_newest_history_row(store: SqliteStateStore) -> None:
    """One row per named component, the same row history gives first; unknown names absent."""
    last = await asyncio.wait_for(store.last_runs(["a", "b", "never"]), 5)
    assert set(last) == {"a", "b"}
    assert last["a"] == (await store.history(component="a", limit=1))[0]
    assert (last["a"]["run_id"], last["a"]["status"]) == ("r2", "failed")
    assert (last["b"]["status"], last["b"]["reason"]) == ("skipped", "upstream_missing")


async def test_last_quality_is_the_newest_run_with_a_report(store: SqliteStateStore) -> None:
    """a's newest run has no report, so its last quality is r1's; b never had one."""
    quality = await asyncio.wait_for(store.last_quality(["a", "b"]), 5)
    assert quality == {
        "a": {
            "run_id": "r1",
            "status": "succeeded",
            "finished_at": at(3).isoformat(),
            "quality": {"error_count": 0},
        }
    }


async def test_hourly_totals_sum_runs_per_component_and_utc_hour(store: SqliteStateStore) -> None:
    """Skipped runs are not runs; failures and publishes are counted by status."""
    rows = await asyncio.wait_for(store.hourly_totals(T0, failed=FAILED), 5)
    hour = T0.strftime("%Y-%m-%dT%H")
    assert sorted(rows) == [
        HourlyTotals("a", hour, 2, 1, 3.0, 2.0, 5, 1),
        HourlyTotals("b", hour, 0, 0, None, None, None, 0),
    ]
    assert await store.hourly_totals(at(3600), failed=FAILED) == []


async def test_error_tallies_count_failures_per_message(store: SqliteStateStore) -> None:
    """Only the statuses asked for are counted, with first and last seen."""
    rows = await asyncio.wait_for(store.error_tallies(T0, statuses=FAILED), 5)
    assert rows == [
        ErrorTally("a", "failed", "HTTP 404", 1, at(102).isoformat(), at(101).isoformat())
    ]


async def test_a_reader_beside_the_writer_sees_what_it_committed(store: SqliteStateStore) -> None:
    """The store's read-only view answers the same reads on a connection of its own."""
    async with store.reader(timeout_s=2.0) as reader:
        assert await reader.last_runs(["a"]) == await store.last_runs(["a"])
        assert await reader.get_meta("missing") is None


async def test_a_reader_of_a_missing_database_reads_empty_and_creates_nothing(
    tmp_path: Path,
) -> None:
    """No state yet: every read answers nothing, and no file or directory appears."""
    path = tmp_path / "state" / STATE_DB
    async with SqliteStateReader(path, live=False) as reader:
        assert await reader.component_states() == {}
        assert await reader.history() == []
        assert await reader.get_meta("paused") is None
    assert not path.parent.exists()
