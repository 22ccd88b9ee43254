"""History is durable: a locked state database is waited for, and a poison event costs only itself.

The lock is a real second SQLite connection holding ``BEGIN IMMEDIATE`` on the real
state database while a real orchestrator runs components. The store's busy timeout is
cut to 50 ms so that a lock of two seconds outlasts it, as a 16 s lock outlasts the
daemon's 5 s.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import threading
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog

from interlock import events as ev
from interlock.delivery import Backoff, is_busy
from interlock.events import EventBus
from interlock.store.sqlite import STATE_DB
from tests.conftest import component

pytestmark = pytest.mark.timeout(30)

COMPONENTS = 40
RUNS = 3


class WriteLockHolder(threading.Thread):
    """A second connection that holds the database's write lock until released or ``hold_s``."""

    def __init__(self, path: Path, *, hold_s: float) -> None:
        super().__init__(name="write lock holder", daemon=True)
        self.path = path
        self.hold_s = hold_s
        self.held = threading.Event()
        self.release = threading.Event()
        self.released = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.held.set()
            self.release.wait(self.hold_s)
            conn.execute("ROLLBACK")
        finally:
            self.released.set()
            conn.close()

    async def hold(self) -> None:
        """Start and wait (bounded) until the lock is taken."""
        self.start()
        assert await asyncio.to_thread(self.held.wait, 5), "the lock was not taken"

    async def let_go(self) -> None:
        """Release the lock and wait (bounded) for the connection to close."""
        self.release.set()
        await asyncio.to_thread(self.join, 5)
        assert not self.is_alive()


class Watch:
    """A structlog processor that keeps entries and sets an asyncio event on a named one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: list[MutableMapping[str, Any]] = []
        self.seen = asyncio.Event()

    def __call__(self, _logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict["log_level"] = method
        self.entries.append(event_dict)
        if event_dict.get("event") == self.name:
            self.seen.set()
        raise structlog.DropEvent

    def named(self, name: str) -> list[MutableMapping[str, Any]]:
        return [e for e in self.entries if e.get("event") == name]


@contextmanager
def watching(name: str) -> Iterator[Watch]:
    """Capture log entries (like ``capture_logs``), with an event set when ``name`` is logged."""
    watch = Watch(name)
    saved = structlog.get_config()
    structlog.configure(processors=[watch], cache_logger_on_first_use=False)
    try:
        yield watch
    finally:
        structlog.configure(**saved)


def stored(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """Runs, component runs and fingerprints as another process would read them."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        runs = [dict(r) for r in conn.execute("SELECT * FROM runs")]
        component_runs = [dict(r) for r in conn.execute("SELECT * FROM component_runs")]
        prints = dict(conn.execute("SELECT component, fingerprint FROM component_state"))
    finally:
        conn.close()
    return runs, component_runs, prints


async def short_busy_timeout(orch: Any) -> None:
    """Make the orchestrator's writer give up on a lock after 50 ms instead of 5 s."""
    await orch.store.db.execute("PRAGMA busy_timeout=50")


async def test_every_outcome_lands_after_another_writer_held_the_lock(
    make_config, open_orch
) -> None:
    """Every run made while another connection held the write lock lands, fingerprints too."""
    names = [f"c{i:02d}" for i in range(COMPONENTS)]
    orch = await open_orch(make_config({n: component("Publishes") for n in names}))
    await short_busy_timeout(orch)
    path = orch.config.runtime.state_dir / STATE_DB
    holder = WriteLockHolder(path, hold_s=2.0)
    await holder.hold()
    results = [await asyncio.wait_for(orch.scheduler.run_once(force=True), 10) for _ in range(RUNS)]
    assert not holder.released.is_set(), "the runs outlasted the lock: nothing was tested"
    await asyncio.to_thread(holder.join, 10)
    assert await asyncio.wait_for(orch.bus.flush(10), 15)

    runs, component_runs, prints = stored(path)
    assert sorted(r["run_id"] for r in runs) == sorted(r.run_id for r in results)
    assert {r["status"] for r in runs} == {"succeeded"}
    assert len(component_runs) == COMPONENTS * RUNS
    assert {(c["run_id"], c["component"]) for c in component_runs} == {
        (r.run_id, n) for r in results for n in names
    }
    assert prints == {n: orch.scheduler.states[n].fingerprint for n in names}


async def test_a_waiting_history_warns_and_counts_what_it_holds(make_config, open_orch) -> None:
    """While the lock is held, history warns ``subscriber_retrying`` and stats show what waits."""
    orch = await open_orch(make_config({"a": component("Publishes")}))
    await short_busy_timeout(orch)
    holder = WriteLockHolder(orch.config.runtime.state_dir / STATE_DB, hold_s=10.0)
    await holder.hold()
    try:
        with watching("subscriber_retrying") as logs:
            await asyncio.wait_for(orch.scheduler.run_once(force=True), 10)
            await asyncio.wait_for(logs.seen.wait(), 5)
            waiting = orch.bus.stats()["history"]
            await holder.let_go()
            assert await asyncio.wait_for(orch.bus.flush(10), 15)
    finally:
        holder.release.set()
    (warning,) = logs.named("subscriber_retrying")[:1]
    assert warning["log_level"] == "warning"
    assert warning["subscriber"] == "history"
    assert warning["attempt"] == 1
    assert "database is locked" in warning["error"]
    assert warning["pending"] >= 1
    # run started, component started and succeeded, run finished: none written yet
    assert waiting.lossless and waiting.pending == 4 and waiting.retries >= 1
    assert waiting.dropped == 0 and waiting.lost == 0
    assert logs.named("subscriber_recovered")
    after = orch.bus.stats()["history"]
    assert after.pending == 0 and after.waiting_s is None


async def test_a_poison_event_is_dropped_alone_and_named(make_config, open_orch) -> None:
    """An event the store can never write (a record count past SQLite's range) is the only loss."""
    names = [f"c{i}" for i in range(10)]
    orch = await open_orch(make_config({n: component("Publishes") for n in names}))
    now = ev.utcnow()
    orch.bus.publish(ev.RunStarted(run_id="r1", trigger="test", components=tuple(names)))
    for i, name in enumerate(names):
        orch.bus.publish(
            ev.ComponentSucceeded(
                run_id="r1",
                component=name,
                status="succeeded",
                reason=None,
                started_at=now,
                duration_s=0.1,
                records=2**70 if name == "c4" else i,
                fingerprint=f"fp-{name}",
            )
        )
    orch.bus.publish(
        ev.RunFinished(run_id="r1", status="succeeded", started_at=now, duration_s=1.0, counts={})
    )
    with structlog.testing.capture_logs() as logs:
        assert await asyncio.wait_for(orch.bus.flush(10), 15)
    runs, component_runs, prints = stored(orch.config.runtime.state_dir / STATE_DB)
    assert [(r["run_id"], r["status"]) for r in runs] == [("r1", "succeeded")]
    assert sorted(c["component"] for c in component_runs) == [n for n in names if n != "c4"]
    assert prints == {n: f"fp-{n}" for n in names if n != "c4"}
    (dropped,) = [e for e in logs if e["event"] == "subscriber_event_dropped"]
    assert dropped["log_level"] == "error"
    assert dropped["subscriber"] == "history"
    assert dropped["event_name"] == "component_succeeded"
    assert dropped["component"] == "c4"
    assert "OverflowError" in dropped["error"]
    assert orch.bus.stats()["history"].lost == 1


# --- the lossless subscription itself ----------------------------------------------------


def started(i: int) -> ev.RunStarted:
    """A distinguishable event."""
    return ev.RunStarted(run_id=f"run-{i}", trigger="test", components=("a",))


LOCKED = sqlite3.OperationalError("database is locked")
FAST = Backoff(first_s=0.001, max_s=0.004)


@pytest.fixture
async def bus() -> Any:
    """An event bus closed after the test."""
    b = EventBus()
    yield b
    await asyncio.wait_for(b.close(limit_s=1), 5)


async def test_a_lossless_subscriber_never_drops_behind_a_stalled_batch(bus: EventBus) -> None:
    """Events published while a lossless handler stalls all arrive, in order, none dropped."""
    entered, release = asyncio.Event(), asyncio.Event()
    seen: list[ev.Event] = []

    async def stalls_once(batch: Sequence[ev.Event]) -> None:
        seen.extend(batch)
        if not release.is_set():
            entered.set()
            await release.wait()

    bus.subscribe("history", stalls_once, lossless=True)
    bus.publish(started(0))
    await asyncio.wait_for(entered.wait(), 5)
    for i in range(1, 50_001):
        bus.publish(started(i))
    assert bus.stats()["history"].pending == 50_001
    release.set()
    assert await asyncio.wait_for(bus.flush(5), 10)
    assert [e.run_id for e in seen] == [f"run-{i}" for i in range(50_001)]  # type: ignore[attr-defined]
    assert bus.stats()["history"].dropped == 0


async def test_a_busy_batch_is_retried_in_order_and_warned_about_once(bus: EventBus) -> None:
    """Twenty busy failures: the batch lands whole and first, with one warning, not twenty."""
    failures = 20
    batches: list[list[str]] = []

    async def busy_then_fine(batch: Sequence[ev.Event]) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            if failures == 10:
                bus.publish(started(99))  # arrives while the first batch is still retried
            raise LOCKED
        batches.append([e.run_id for e in batch])  # type: ignore[attr-defined]

    bus.subscribe("history", busy_then_fine, lossless=True, backoff=FAST)
    with structlog.testing.capture_logs() as logs:
        for i in range(3):
            bus.publish(started(i))
        assert await asyncio.wait_for(bus.flush(5), 10)
    assert batches == [["run-0", "run-1", "run-2"], ["run-99"]]
    warnings = [e for e in logs if e["event"] == "subscriber_retrying"]
    assert len(warnings) == 1
    assert warnings[0]["attempt"] == 1 and warnings[0]["pending"] == 3
    (recovered,) = [e for e in logs if e["event"] == "subscriber_recovered"]
    assert recovered["attempts"] == 21
    assert bus.stats()["history"].retries == 20
    assert not [e for e in logs if e["event"] == "subscriber_event_dropped"]


async def test_a_handler_bug_on_one_event_loses_only_that_event(bus: EventBus) -> None:
    """A non-busy error that repeats splits the batch; only the event that fails is dropped."""
    poison = ev.ComponentQuarantined(run_id="r", component="bad", path="/q", reason="test")
    written: list[ev.Event] = []

    async def chokes_on_poison(batch: Sequence[ev.Event]) -> None:
        if poison in batch:
            raise ValueError("cannot store this")
        written.extend(batch)

    bus.subscribe("history", chokes_on_poison, lossless=True, backoff=FAST)
    events: list[ev.Event] = [started(i) for i in range(30)]
    events.insert(12, poison)
    with structlog.testing.capture_logs() as logs:
        for e in events:
            bus.publish(e)
        assert await asyncio.wait_for(bus.flush(5), 10)
    assert written == [e for e in events if e is not poison]
    (dropped,) = [e for e in logs if e["event"] == "subscriber_event_dropped"]
    assert dropped["event_name"] == "component_quarantined"
    assert dropped["component"] == "bad"
    assert dropped["error"] == "ValueError('cannot store this')"
    assert bus.stats()["history"].lost == 1


async def test_close_gives_up_after_its_limit_and_says_what_was_not_written() -> None:
    """A database locked past the flush limit: close returns in time and counts what is lost."""
    b = EventBus()

    async def always_locked(batch: Sequence[ev.Event]) -> None:
        raise LOCKED

    b.subscribe("history", always_locked, lossless=True, backoff=FAST)
    for i in range(3):
        b.publish(started(i))
    b.publish(ev.ConfigReloaded(source="test", applied=True))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with structlog.testing.capture_logs() as logs:
        await asyncio.wait_for(b.close(limit_s=0.3), 5)
    assert loop.time() - t0 < 2
    (unwritten,) = [e for e in logs if e["event"] == "subscriber_unwritten"]
    assert unwritten["log_level"] == "error"
    assert unwritten["subscriber"] == "history"
    assert unwritten["events"] == 4
    assert unwritten["by_event"] == {"run_started": 3, "config_reloaded": 1}


@pytest.mark.parametrize(
    ("attempt", "delay"),
    [(1, 0.05), (2, 0.1), (3, 0.2), (5, 0.8), (6, 1.6), (7, 2.0), (8, 2.0), (10_000, 2.0)],
)
def test_the_retry_delay_doubles_from_50_ms_to_at_most_2_s(attempt: int, delay: float) -> None:
    """The default backoff after failed attempt ``attempt``."""
    assert Backoff().delay(attempt) == pytest.approx(delay)


@pytest.mark.parametrize(
    ("error", "busy"),
    [
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("database table is locked: runs"), True),
        (sqlite3.OperationalError("database is busy"), True),
        (sqlite3.OperationalError("database or disk is full"), True),
        (sqlite3.OperationalError("no such table: runs"), False),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), False),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), False),
        (RuntimeError("database is locked"), False),
    ],
)
def test_only_a_locked_busy_or_full_database_is_waited_for_indefinitely(
    error: BaseException, busy: bool
) -> None:
    """Which errors are retried until they land."""
    assert is_busy(error) is busy


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB tmpfs, so the state database can really run out of space."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the disk is full; its path (delete it to free the space)."""
    filler = disk / "filler"
    with open(filler, "wb") as out:
        chunk = b"\0" * 65536
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass
    return filler


async def test_history_waits_out_a_full_disk_and_loses_nothing(
    small_disk: Path, tmp_path: Path, make_config, open_orch
) -> None:
    """Runs made while the state disk is full land once space comes back; none is dropped."""
    names = [f"c{i:02d}" for i in range(10)]
    cfg = make_config(
        {n: component("Publishes") for n in names},
        runtime_settings={"state_dir": str(small_disk / "state")},
    )
    orch = await open_orch(cfg)
    path = orch.config.runtime.state_dir / STATE_DB
    filler = await asyncio.to_thread(_fill, small_disk)
    try:
        result = await asyncio.wait_for(orch.scheduler.run_once(force=True), 10)
        async with asyncio.timeout(10):
            # Long enough that an ordinary error would have been given up on (3 tries).
            while orch.bus.stats()["history"].retries < 5:  # noqa: ASYNC110 - no event for it
                await asyncio.sleep(0.02)
        assert orch.bus.stats()["history"].pending > 0  # held, not dropped
    finally:
        filler.unlink()
    assert await asyncio.wait_for(orch.bus.flush(15), 20)
    runs, component_runs, prints = stored(path)
    assert [r["run_id"] for r in runs] == [result.run_id]
    assert sorted(c["component"] for c in component_runs) == names
    assert prints == {n: orch.scheduler.states[n].fingerprint for n in names}
    assert orch.bus.stats()["history"].lost == 0
