"""Leader election and fencing on a real PostgreSQL server, and SQLite's local election.

The fencing test pauses a real leader process with SIGSTOP, lets a second process take
over, resumes the first with SIGCONT and asserts that its next write is refused.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from interlock.config.model import Config
from interlock.errors import StoreError
from interlock.events import utcnow
from interlock.service.leader import (
    LocalElection,
    PgElection,
    election_for,
    keep_lease,
    wait_to_lead,
)
from interlock.store.postgresql import PgStateStore
from interlock.store.postgresql.leader import LEADER_LOCK, PgLeaderLock, fenced_dsn
from tests.conftest import component
from tests.pg import PgCluster

pytestmark = pytest.mark.timeout(60)

#: One process of the fencing test: lead, then write one meta value per line read.
WORKER = r"""
import asyncio, sys
from interlock.service.leader import PgElection, wait_to_lead

async def main(dsn, failover_s):
    election = PgElection(dsn, failover_s)
    epoch = await wait_to_lead(election, failover_s, asyncio.Event())
    store = election.store()
    await store.open()
    print("LEADER", epoch, flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        try:
            await store.set_meta("writer", line.strip())
            print("WROTE", flush=True)
        except Exception as exc:
            print("REFUSED", exc, flush=True)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """The process's next answer line (log lines skipped), waited for at most ``timeout_s``."""
    import selectors

    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while sel.select(max(0.0, deadline - time.monotonic())):
            line = proc.stdout.readline().strip()
            if line.startswith(("LEADER", "WROTE", "REFUSED")):
                return line
            if not line and proc.poll() is not None:
                break
    raise AssertionError(f"no answer from pid {proc.pid} within {timeout_s} s")


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    """Started worker processes, killed at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(10)


def _start(dsn: str, failover_s: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, dsn, str(failover_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent,
    )


async def test_one_of_two_daemons_leads_and_the_next_election_bumps_the_epoch(
    pg_dsn: str,
) -> None:
    """The first election wins epoch 1, the second waits; when the first leaves, epoch 2."""
    first, second = PgElection(pg_dsn, 2.0), PgElection(pg_dsn, 2.0)
    try:
        assert await asyncio.wait_for(first.try_lead(), 10) == 1
        assert await asyncio.wait_for(second.try_lead(), 10) is None
        leader = await asyncio.wait_for(second.leader(), 5)
        assert leader is not None and leader.epoch == 1 and leader.pid == os.getpid()
        assert f"pid {os.getpid()} since " in leader.describe()
        await first.aclose()
        assert await asyncio.wait_for(second.try_lead(), 10) == 2
        await asyncio.wait_for(second.heartbeat(), 5)
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_write_from_a_stale_epoch_is_refused_and_the_leaders_is_not(
    pg_dsn: str,
) -> None:
    """A store carrying epoch 1 cannot write once epoch 2 leads; epoch 2's store can."""
    first, second = PgElection(pg_dsn, 2.0), PgElection(pg_dsn, 2.0)
    old = new = None
    try:
        await asyncio.wait_for(first.try_lead(), 10)
        old = first.store()
        assert old is not None
        await asyncio.wait_for(old.open(), 10)
        await asyncio.wait_for(old.set_meta("k", 1), 5)
        await first.aclose()
        assert await asyncio.wait_for(second.try_lead(), 10) == 2
        with pytest.raises(StoreError, match=r"epoch 1.*epoch 2"):
            await asyncio.wait_for(old.set_meta("k", 2), 5)
        with pytest.raises(StoreError, match="epoch 1"):
            await asyncio.wait_for(old.prune_history(utcnow()), 5)
        new = second.store()
        assert new is not None
        await asyncio.wait_for(new.open(), 10)
        await asyncio.wait_for(new.set_meta("k", 3), 5)
        assert await asyncio.wait_for(new.get_meta("k"), 5) == 3
        with pytest.raises(StoreError):
            await asyncio.wait_for(first.heartbeat(), 5)  # the old leader knows it lost
    finally:
        for store in (old, new):
            if store is not None:
                await store.close()
        await first.aclose()
        await second.aclose()


async def test_a_silent_leader_loses_the_lock_within_its_lease(pg_dsn: str) -> None:
    """A leader that stops renewing its lease is cut by the server and the lock freed."""
    lock = PgLeaderLock(pg_dsn, lease_s=0.5)
    waiting = PgElection(pg_dsn, 1.0)
    try:
        assert await asyncio.wait_for(lock.try_lead("h", 1, utcnow()), 10) == 1
        started = time.monotonic()
        epoch = await asyncio.wait_for(wait_to_lead(waiting, 1.0, asyncio.Event()), 10)
        assert epoch == 2
        assert time.monotonic() - started < 1.0  # the lease (0.5 s) and one retry (0.2 s)
        with pytest.raises(StoreError):
            await asyncio.wait_for(lock.heartbeat(), 5)
    finally:
        await lock.aclose()
        await waiting.aclose()


async def test_a_leader_whose_session_is_cut_hears_it_lost_within_a_renewal(
    pg_dsn: str, pg_cluster: PgCluster
) -> None:
    """The server ends the leader's session (as a network cut does): keep_lease says so."""
    election = PgElection(pg_dsn, 1.0)
    lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    try:
        assert await asyncio.wait_for(election.try_lead(), 10) == 1
        keeping = asyncio.create_task(keep_lease(election, 1.0, lost.set_result))
        database = pg_dsn.split("///", 1)[1].split("?", 1)[0]
        await asyncio.to_thread(
            pg_cluster.psql,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'interlock leader election' "
            "AND datname = current_database()",
            database,
        )
        assert await asyncio.wait_for(lost, 5)  # one renewal (0.2 s) and its timeout
        await asyncio.wait_for(keeping, 5)
    finally:
        await election.aclose()


@pytest.mark.slow
def test_a_paused_then_resumed_old_leader_cannot_write(
    pg_dsn: str, workers: list[subprocess.Popen[str]]
) -> None:
    """SIGSTOP the leader, a second process takes over, SIGCONT: the old one's write is refused."""
    failover_s = 1.5
    a = _start(pg_dsn, failover_s)
    workers.append(a)
    assert _read_line(a, 20) == "LEADER 1"
    assert a.stdin is not None
    a.stdin.write("a1\n")
    a.stdin.flush()
    assert _read_line(a, 10) == "WROTE"
    a.send_signal(signal.SIGSTOP)
    b = _start(pg_dsn, failover_s)
    workers.append(b)
    assert _read_line(b, 20) == "LEADER 2"
    a.send_signal(signal.SIGCONT)
    a.stdin.write("a2\n")
    a.stdin.flush()
    answer = _read_line(a, 10)
    assert answer.startswith("REFUSED") and "epoch 1" in answer and "epoch 2" in answer
    assert b.stdin is not None
    b.stdin.write("b1\n")
    b.stdin.flush()
    assert _read_line(b, 10) == "WROTE"
    reader = PgStateStore(pg_dsn)

    async def stored() -> object:
        await reader.open()
        try:
            return await reader.get_meta("writer")
        finally:
            await reader.close()

    assert asyncio.run(asyncio.wait_for(stored(), 10)) == "b1"


async def test_a_dsn_that_can_never_work_fails_the_election_at_once(pg_dsn: str) -> None:
    """A missing database is not waited for as an unreachable server is: the error names
    the setting."""
    wrong = pg_dsn.replace("///", "///no_such_db_", 1)
    election = PgElection(wrong, 1.0)
    try:
        with pytest.raises(StoreError) as caught:
            await asyncio.wait_for(wait_to_lead(election, 1.0, asyncio.Event()), 5)
    finally:
        await election.aclose()
    assert "runtime_settings.state_store.postgresql.dsn" in str(caught.value)


async def test_sqlite_leads_at_once_through_its_local_election(
    make_config: Callable[..., Config],
) -> None:
    """With the default SQLite store the election is the state directory's lock: it leads."""
    config = make_config({"a": component("Publishes")}, runtime_settings={"failover_seconds": 3})
    assert config.runtime.failover_s == 3
    election = election_for(config)
    assert isinstance(election, LocalElection)
    assert await wait_to_lead(election, 15.0, asyncio.Event()) == 0
    assert election.store() is None


def test_a_fenced_dsn_carries_the_epoch_and_keeps_the_dsns_own_options() -> None:
    """The epoch is added to the DSN's query; what the DSN already said stays."""
    dsn = fenced_dsn("postgresql:///db?host=/tmp/s&user=u", 7, lease_s=3)
    assert dsn.startswith("postgresql:///db?host=/tmp/s&user=u&")
    assert "interlock.epoch=7" in dsn and "idle_in_transaction_session_timeout=3000" in dsn
    assert LEADER_LOCK > 0
