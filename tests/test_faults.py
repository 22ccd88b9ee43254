"""The fault matrix: whatever a component does, the scheduler holds its promises.

Every misbehaviour in :mod:`tests.faultcomponents` runs beside an unrelated
component, under ``run --once`` (in-process) and under ``interlock serve`` (a real
subprocess). Afterwards: the daemon answers, each component run has exactly one
history row with the right status and attempts, no slot is held, the next run
starts, the unrelated component is unaffected, and SIGTERM exits promptly.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import component
from tests.faultcomponents import LEAKED
from tests.test_service import Daemon, daemons, short_dir
from tests.testcomponents import PROBE

__all__ = ["daemons", "short_dir"]  # fixtures shared with test_service

SHORT = 0.005  # timeout_minutes: 0.3 s


def fault(kind: str, *, retries: int = 1, timeout_minutes: float = SHORT, **settings: Any) -> dict:
    return {
        "class": "tests.faultcomponents:Misbehaves",
        "frequency": "1h",
        "retries": retries,
        "timeout_minutes": timeout_minutes,
        "settings": {"kind": kind, **settings},
    }


#: kind -> (status recorded, attempts recorded)
MATRIX = {
    "own_timeout": ("failed", 2),  # transient: retried once, then failed, not a crash
    "exception_group": ("failed", 1),
    "keyboard_interrupt": ("failed", 1),
    "system_exit": ("failed", 1),
    "base_exception": ("failed", 1),
    "returns_none": ("failed", 1),
    "returns_wrong_type": ("failed", 1),
    "hangs": ("timed_out", 1),
    "blocks_loop": ("timed_out", 1),  # 0.6 s of time.sleep under a 0.3 s limit
    "leaks_thread": ("timed_out", 1),
}


async def _history(orch: Any, name: str) -> list[dict[str, Any]]:
    assert orch.bus is not None and await orch.bus.flush(5)
    rows: list[dict[str, Any]] = await orch.store.history(component=name, limit=50)
    return rows


@pytest.mark.parametrize("kind", sorted(MATRIX))
async def test_run_once_survives(kind: str, make_config, open_orch) -> None:
    """One fault beside a healthy component: recorded once, slot released, next run starts."""
    status, attempts = MATRIX[kind]
    cfg = make_config(
        {
            "bad": fault(kind),
            "ok": component("Publishes"),
            "after": component("Publishes", deps=["ok"]),
        },
        runtime_settings={"worker_stop_grace_seconds": 0.1},
    )
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    outcomes = {n: s.status.value for n, s in result.outcomes.items()}
    assert outcomes == {"bad": status, "ok": "succeeded", "after": "succeeded"}
    (row,) = await _history(orch, "bad")
    assert (row["status"], row["attempts"]) == (status, attempts)
    assert row["error"]  # it says what happened
    if kind == "leaks_thread":
        # The thread outlived the run: the slot stays taken, shown as stopping, until it ends.
        assert set(orch.scheduler.stopping) == {"bad"}
        (plan,) = [d for d in orch.scheduler.plan(names=["bad"]) if d.component == "bad"]
        assert plan.reason is not None and plan.reason.value == "already_running"
        assert await asyncio.to_thread(LEAKED[row["run_id"]].wait, 5)
        # The thread has ended; the slot is released as its completion reaches the loop.
        async with asyncio.timeout(5):
            while orch.scheduler.stopping:  # noqa: ASYNC110 - no event to wait on from here
                await asyncio.sleep(0.01)
    assert orch.scheduler.running == {}
    again = await asyncio.wait_for(orch.scheduler.run_once(["bad"], trigger="test"), 10)
    assert again.outcomes["bad"].status.value == status
    assert len(await _history(orch, "bad")) == 2
    assert PROBE.running == set()


async def test_a_blocked_loop_is_logged_with_the_component_and_time(
    make_config, open_orch, capsys: pytest.CaptureFixture[str]
) -> None:
    """time.sleep in a component is reported as blocking the loop, by name and duration."""
    import structlog.testing

    cfg = make_config({"bad": fault("blocks_loop", retries=0, timeout_minutes=1, seconds=0.6)})
    orch = await open_orch(cfg)
    with structlog.testing.capture_logs() as logs:
        result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert result.outcomes["bad"].status.value == "succeeded"  # within its 60 s limit
    (blocked,) = [e for e in logs if e["event"] == "event_loop_blocked"]
    assert blocked["component"] == "bad" and blocked["blocked_s"] >= 0.55


async def test_cancel_during_cleanup_is_recorded_cancelled(make_config, open_orch) -> None:
    """An operator's cancel that lands while the component cleans up wins: cancelled."""
    cfg = make_config({"bad": fault("cancelled_in_cleanup", timeout_minutes=1)})
    orch = await open_orch(cfg)
    task = asyncio.create_task(orch.scheduler.run_once())
    await asyncio.wait_for(PROBE.started_event("bad-cleanup").wait(), 5)
    assert orch.scheduler.cancel_component("bad")
    PROBE.gate("bad-cleanup").set()  # the cleanup finishes; it is not abandoned
    result = await asyncio.wait_for(task, 10)
    assert result.outcomes["bad"].status.value == "cancelled"
    (row,) = await _history(orch, "bad")
    assert row["status"] == "cancelled"
    assert orch.scheduler.running == {}


async def test_four_simultaneous_triggers_start_one_run(make_config, open_orch) -> None:
    """The claim is taken when a run is spawned: extra triggers are refused already_running."""
    cfg = make_config({"y": component("Gated")})
    orch = await open_orch(cfg)
    orch.scheduler.state = type(orch.scheduler.state).SERVING
    started = [orch.scheduler.start_run(["y"], trigger="test") for _ in range(4)]
    run_ids = [run_id for run_id, _ in started if run_id is not None]
    assert len(run_ids) == 1
    refused = [d for _, decisions in started[1:] for d in decisions if d.component == "y"]
    assert {d.reason.value for d in refused if d.reason} == {"already_running"}
    PROBE.gate("y").set()
    await asyncio.wait_for(orch.scheduler.shutdown(5), 10)
    assert PROBE.attempts["y"] == 1


async def test_an_upstream_failure_does_not_use_up_the_dependents_due_time(
    make_config, open_orch
) -> None:
    """A weekly dependent skipped as upstream_failed runs once its upstream next succeeds."""
    cfg = make_config(
        {
            "up": component("Flaky", "1h", failures=1),
            "weekly": component("Publishes", "weekly", deps=["up"]),
        }
    )
    orch = await open_orch(cfg)
    first = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert first.outcomes["weekly"].reason == "upstream_failed"
    held = {d.component: d for d in orch.scheduler.plan()}["weekly"]
    # Held back (not run on nothing), without a wake-up of its own: up has never published.
    assert (held.run, held.reason.value if held.reason else None) == (False, "upstream_missing")
    assert held.next_due is None
    second = await asyncio.wait_for(orch.scheduler.run_once(["up"], trigger="test"), 10)
    assert second.outcomes["up"].status.value == "succeeded"
    due = {d.component: d for d in orch.scheduler.plan()}["weekly"]
    assert due.run, due.detail  # its due time was kept for this moment
    third = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert third.outcomes["weekly"].status.value == "succeeded"


async def test_plan_foresees_unchanged(make_config, open_orch) -> None:
    """plan says skip/unchanged when nothing upstream has published since the last success."""
    cfg = make_config(
        {
            "up": component("Publishes", "weekly", fingerprint="same"),
            "down": component("Publishes", "1s", deps=["up"]),
        }
    )
    orch = await open_orch(cfg)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    orch.scheduler.states["down"].last_started_at = None  # due again now; up is not
    (down,) = [d for d in orch.scheduler.plan() if d.component == "down"]
    assert down.shown()[:2] == (False, down.then) and down.then is not None
    assert down.then.value == "unchanged"


def _serve_components() -> dict[str, Any]:
    # A component that blocks the loop delays everything beside it (it can be named,
    # not prevented): only the ones meant to time out get a short limit.
    short = {"hangs", "blocks_loop", "leaks_thread"}
    comps = {f"bad_{k}": fault(k, timeout_minutes=0.01 if k in short else 0.1) for k in MATRIX}
    comps["bad_blocks_loop"]["settings"]["seconds"] = 0.8  # past its 0.6 s limit
    comps["bad_leaks_thread"]["settings"]["seconds"] = 2.0
    for entry in comps.values():
        entry["frequency"] = "2s"
    comps["ok"] = component("Publishes", "2s")
    return comps


@pytest.mark.slow
def test_serve_survives_the_whole_matrix(short_dir: Path, daemons: list[Daemon]) -> None:
    """Under serve: every fault twice, status always answers, rows exact, SIGTERM prompt."""
    d = Daemon(short_dir, _serve_components(), grace=0.5)
    daemons.append(d)
    doc_extra = {"max_concurrent_components": 16, "worker_stop_grace_seconds": 0.1}
    import json

    doc = json.loads(d.config.read_text())
    doc["runtime_settings"].update(doc_extra)
    d.config.write_text(json.dumps(doc))
    d.start()
    deadline = time.monotonic() + 30
    names = set(_serve_components())
    while True:
        t0 = time.monotonic()
        reply = d.request("status")
        assert reply["ok"] and time.monotonic() - t0 < 1.0
        rows = d.history()
        runs = {
            n: [r for r in rows if r["component"] == n and r["status"] != "running"] for n in names
        }
        if all(len(v) >= 2 for v in runs.values()):
            break
        assert time.monotonic() < deadline, {n: len(v) for n, v in runs.items()}
        time.sleep(0.2)
    for kind, (status, attempts) in MATRIX.items():
        done = runs[f"bad_{kind}"]
        assert {(r["status"], r["attempts"]) for r in done} == {(status, attempts)}, kind
        assert len({r["run_id"] for r in done}) == len(done)  # one row per run
    assert {r["status"] for r in runs["ok"]} == {"succeeded"}
    t0 = time.monotonic()
    assert d.stop(signal.SIGTERM, timeout=15) == 0
    assert time.monotonic() - t0 < 0.5 + 3.0 + 3.0  # grace + margin + start-up slack
    left = [r for r in d.history() if r["status"] == "running"]
    assert left == []


async def test_a_dry_run_releases_its_claim_and_passes_the_due_time_in_memory(
    make_config, open_orch
) -> None:
    """serve --dry-run shows each due time once, never 'already_running' forever."""
    cfg = make_config({"a": component("Publishes")}, override_settings={"dry_run": True})
    orch = await open_orch(cfg)
    first = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert first.outcomes["a"].reason == "dry_run" and PROBE.attempts.get("a") is None
    (after,) = orch.scheduler.plan()
    assert after.reason is not None and after.reason.value == "not_due", after.detail
    rows = await _history(orch, "a")
    assert orch.scheduler.states["a"].last_started_at is not None
    stored = await orch.store.component_states()
    assert "a" not in stored or stored["a"].last_started_at is None  # nothing of it stored
    assert [r["reason"] for r in rows] == ["dry_run"]


async def test_an_interrupted_component_is_due_again_at_once(make_config, open_orch) -> None:
    """A component a crash interrupted runs at start-up, not at its next due time."""
    cfg = make_config({"a": component("Publishes", "weekly")})
    orch = await open_orch(cfg)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    state = orch.scheduler.states["a"]
    (before,) = orch.scheduler.plan()
    assert not before.run
    state.last_status = "interrupted"  # as recover_interrupted leaves it after a crash
    (after,) = orch.scheduler.plan()
    assert after.run and "interrupted" in after.detail


@pytest.mark.slow
def test_sigterm_exits_within_the_grace_whatever_a_thread_does(
    short_dir: Path, daemons: list[Daemon]
) -> None:
    """A worker thread that ignores its signal for 60 s does not hold the exit past grace+3 s."""
    comps = {"stuck": fault("leaks_thread", timeout_minutes=5, seconds=60)}
    d = Daemon(short_dir, comps, grace=0.5)
    daemons.append(d)
    d.start().wait_status("running: stuck")
    t0 = time.monotonic()
    assert d.stop(signal.SIGTERM, timeout=20) == 0
    assert time.monotonic() - t0 < 0.5 + 3.0 + 2.0
    (row,) = d.history()
    assert row["status"] == "cancelled"


async def test_leaked_threads_never_starve_another_component(make_config, open_orch) -> None:
    """Eight threads that ignore their signal hold only their own component's places."""
    cfg = make_config(
        {
            "bad": fault("leaks_thread", retries=0, threads=8, seconds=2),
            "innocent": fault("quick_thread", retries=0, timeout_minutes=0.02),
        },
        runtime_settings={"worker_stop_grace_seconds": 0.05},
    )
    orch = await open_orch(cfg)
    first = await asyncio.wait_for(orch.scheduler.run_once(["bad"], trigger="test"), 10)
    assert first.outcomes["bad"].status.value == "timed_out"
    assert "bad" in orch.scheduler.stopping
    second = await asyncio.wait_for(orch.scheduler.run_once(["innocent"], trigger="test"), 10)
    assert second.outcomes["innocent"].status.value == "succeeded"


@pytest.mark.parametrize(
    ("kind", "status"),
    [("thread_raises_system_exit", "failed"), ("cleanup_raises_keyboard_interrupt", "succeeded")],
)
async def test_base_exceptions_from_threads_and_cleanups_stay_with_the_component(
    kind: str, status: str, make_config, open_orch
) -> None:
    """SystemExit in a worker thread, KeyboardInterrupt in a cleanup: recorded, loop alive."""
    cfg = make_config(
        {"bad": fault(kind, retries=0, timeout_minutes=1), "ok": component("Publishes")}
    )
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert {n: s.status.value for n, s in result.outcomes.items()} == {
        "bad": status,
        "ok": "succeeded",
    }
    again = await asyncio.wait_for(orch.scheduler.run_once(["ok"], trigger="test"), 10)
    assert again.outcomes["ok"].status.value == "succeeded"  # the loop and scheduler live on


async def test_a_hanging_cleanup_is_abandoned_after_one_limit(make_config, open_orch) -> None:
    """Cleanup gets one limit, not two; then it is cancelled and the slot released."""
    cfg = make_config({"bad": fault("hangs_in_cleanup", retries=0, timeout_minutes=1)})
    orch = await open_orch(cfg)
    orch.scheduler.runner.budget.limit_s = 0.3
    t0 = time.monotonic()
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert 0.3 <= time.monotonic() - t0 < 1.5
    assert result.outcomes["bad"].status.value == "succeeded"
    assert orch.scheduler.running == {} and orch.scheduler.stopping == {}


@pytest.mark.slow
def test_run_once_cli_survives_the_whole_matrix(tmp_path: Path) -> None:
    """`interlock run --once` with every fault at once: exit 1, one exact row per component."""
    import json
    import sqlite3

    from tests.test_cli import interlock, write_config

    comps = {f"bad_{k}": fault(k) for k in MATRIX}
    comps["bad_blocks_loop"]["settings"]["seconds"] = 0.6
    comps["ok"] = component("Publishes")
    short = {"hangs", "blocks_loop", "leaks_thread"}
    for kind in MATRIX:
        comps[f"bad_{kind}"]["timeout_minutes"] = SHORT if kind in short else 0.1
    path = write_config(
        tmp_path,
        comps,
        runtime_settings={"max_concurrent_components": 16, "worker_stop_grace_seconds": 0.1},
    )
    proc = interlock("run", "--once", "--config", str(path), timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    conn = sqlite3.connect(tmp_path / "state" / "state.sqlite")
    rows = conn.execute("SELECT component, status, attempts FROM component_runs").fetchall()
    conn.close()
    got = {name: (status, attempts) for name, status, attempts in rows}
    assert len(rows) == len(comps)
    assert got == {"ok": ("succeeded", 1), **{f"bad_{k}": v for k, v in MATRIX.items()}}
    assert json.loads(interlock("history", "--json", "--config", str(path)).stdout)
