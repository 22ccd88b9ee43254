"""The scheduler's rules, exercised through the real orchestrator with test components."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from interlock import events as ev
from interlock.outcome import SkipReason
from tests.conftest import component
from tests.testcomponents import PROBE

pytestmark = pytest.mark.timeout(30)


def statuses(result):
    return {n: (s.status.value, s.reason) for n, s in result.outcomes.items()}


async def test_dependent_starts_while_unrelated_sibling_still_runs(make_config, open_orch):
    """A component is released as soon as its own upstream finishes, with no layer barrier."""
    cfg = make_config(
        {
            "a": component("Publishes"),
            "slow": component("Gated"),
            "b": component("Publishes", deps=["a"]),
        }
    )
    orch = await open_orch(cfg)
    run = asyncio.create_task(orch.scheduler.run_once())
    async with asyncio.timeout(5):
        await PROBE.started_event("b").wait()
    assert "slow" in PROBE.running
    PROBE.gate("slow").set()
    result = await asyncio.wait_for(run, 5)
    assert statuses(result) == {n: ("succeeded", None) for n in ("a", "slow", "b")}
    assert PROBE.started.index("a") < PROBE.started.index("b")


async def test_max_concurrent_components_is_never_exceeded(make_config, open_orch):
    """Six independent components with a limit of two never run more than two at once."""
    names = [f"c{i}" for i in range(6)]
    cfg = make_config(
        {n: component("Gated") for n in names}, runtime_settings={"max_concurrent_components": 2}
    )
    orch = await open_orch(cfg)
    run = asyncio.create_task(orch.scheduler.run_once())
    for n in names:
        async with asyncio.timeout(5):
            await PROBE.started_event(n).wait()
        assert len(PROBE.running) <= 2
        PROBE.gate(n).set()
    await asyncio.wait_for(run, 5)
    assert PROBE.max_running == 2


async def test_parallel_groups_allow_only_members_to_overlap(make_config, open_orch):
    """Members of one group overlap; a component in no group runs alone."""
    cfg = make_config(
        {"rt": component("Gated"), "ptv": component("Gated"), "alone": component("Gated")},
        dependency_management={"parallel_groups": {"realtime": ["rt", "ptv"]}},
        runtime_settings={"max_concurrent_components": 3},
    )
    orch = await open_orch(cfg)
    run = asyncio.create_task(orch.scheduler.run_once())
    async with asyncio.timeout(5):
        await PROBE.started_event("rt").wait()
        await PROBE.started_event("ptv").wait()
    assert "alone" not in PROBE.running
    PROBE.gate("rt").set()
    PROBE.gate("ptv").set()
    async with asyncio.timeout(5):
        await PROBE.started_event("alone").wait()
    PROBE.gate("alone").set()
    await asyncio.wait_for(run, 5)
    assert PROBE.overlaps == {frozenset({"rt", "ptv"})}


async def test_component_timeout_is_recorded_and_the_run_continues(make_config, open_orch):
    """A component over its timeout is cancelled as timed_out; siblings still succeed."""
    cfg = make_config(
        {
            "slow": component("Sleeps", seconds=30, timeout_minutes=0.002),
            "after": component("Publishes", deps=["slow"]),
            "other": component("Publishes"),
        }
    )
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert statuses(result) == {
        "slow": ("timed_out", "timed out after 0.12 s (timeout_minutes)"),
        "after": ("skipped", "upstream_failed"),
        "other": ("succeeded", None),
    }
    assert result.status == "failed"


async def test_worker_thread_really_stops_on_timeout(make_config, open_orch):
    """A timed-out component's worker thread sees the signal and stops before the outcome."""
    cfg = make_config({"worker": component("ThreadWorker", timeout_minutes=0.003)})
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert result.outcomes["worker"].status.value == "timed_out"
    assert PROBE.thread_stopped["worker"].is_set()
    seen = PROBE.thread_iterations["worker"]
    await asyncio.sleep(0.05)  # long enough for a live loop to count ten more iterations
    assert PROBE.thread_iterations["worker"] == seen


async def test_global_timeout_cancels_everything_and_ends_the_run_timed_out(make_config, open_orch):
    """On the global timeout running components end timed_out; unreleased ones not_started."""
    cfg = make_config(
        {"slow": component("Sleeps", seconds=30), "later": component("Publishes", deps=["slow"])},
        runtime_settings={
            "global_timeout_minutes": 0.003,
            "default_component_timeout_minutes": 0.003,
        },
    )
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert result.status == "timed_out"
    assert {n: s.status.value for n, s in result.outcomes.items()} == {
        "slow": "timed_out",
        "later": "not_started",
    }


async def test_transient_failures_are_retried_then_succeed(make_config, open_orch):
    """Two transient failures with retries=2 end in success on the third attempt."""
    cfg = make_config({"flaky": component("Flaky", failures=2, retries=2)})
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert result.outcomes["flaky"].status.value == "succeeded"
    assert PROBE.attempts["flaky"] == 3
    await orch.bus.flush()
    (row,) = await orch.store.history(component="flaky")
    assert row["attempts"] == 3


async def test_retry_after_is_honoured(make_config, open_orch):
    """A Retry-After of 0.3 s (within retry_backoff_max_seconds) delays the retry that much."""
    cfg = make_config(
        {"flaky": component("Flaky", failures=1, retries=1, retry_after=0.3)},
        runtime_settings={"retry_backoff_max_seconds": 1},
    )
    orch = await open_orch(cfg)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert result.outcomes["flaky"].status.value == "succeeded"
    assert loop.time() - t0 >= 0.3


async def test_a_retry_after_beyond_the_backoff_cap_is_not_waited_for_in_the_slot(
    make_config, open_orch
):
    """Retry-After above retry_backoff_max_seconds fails the run at once, saying why."""
    cfg = make_config({"flaky": component("Flaky", failures=1, retries=3, retry_after=3600)})
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 5)
    status, reason = statuses(result)["flaky"]
    assert status == "failed" and "3600" in reason and "retry_backoff_max_seconds" in reason
    assert PROBE.attempts["flaky"] == 1 and orch.scheduler.running == {}


async def test_validation_failures_are_not_retried(make_config, open_orch):
    """A validation failure fails at once with its report, whatever the retry budget."""
    cfg = make_config({"bad": component("Fails", validation=True, retries=3)})
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert PROBE.attempts["bad"] == 1
    assert statuses(result)["bad"] == ("failed", "stops.txt is missing column 'stop_id'")
    await orch.bus.flush()
    (row,) = await orch.store.history(component="bad")
    assert row["quality"]["error_count"] == 1  # the report, in the one shape every report has


async def test_upstream_failure_skips_the_whole_downstream_chain(make_config, open_orch):
    """A failed component skips its dependents, and theirs, as upstream_failed."""
    cfg = make_config(
        {
            "a": component("Fails"),
            "b": component("Publishes", deps=["a"]),
            "c": component("Publishes", deps=["b"]),
        }
    )
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert statuses(result) == {
        "a": ("failed", "source answered nonsense"),
        "b": ("skipped", "upstream_failed"),
        "c": ("skipped", "upstream_failed"),
    }
    assert "b" not in PROBE.started


async def test_upstream_missing_unless_run_with_deps(make_config, open_orch):
    """A component named alone whose upstream never published is skipped; --with-deps runs both."""
    cfg = make_config({"a": component("Publishes"), "b": component("Publishes", deps=["a"])})
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(["b"]), 10)
    assert statuses(result) == {"b": ("skipped", "upstream_missing")}
    result = await asyncio.wait_for(orch.scheduler.run_once(["b"], with_deps=True), 10)
    assert statuses(result) == {"a": ("succeeded", None), "b": ("succeeded", None)}


async def test_unchanged_upstream_skips_downstream_as_unchanged(make_config, open_orch):
    """When the upstream has nothing new, the downstream is skipped with reason unchanged."""
    cfg = make_config(
        {
            "a": component("Publishes", fingerprint="v1", unchanged_if_same=True),
            "b": component("Publishes", deps=["a"]),
        }
    )
    orch = await open_orch(cfg)
    first = await asyncio.wait_for(orch.scheduler.run_once(["a", "b"]), 10)
    assert statuses(first) == {"a": ("succeeded", None), "b": ("succeeded", None)}
    second = await asyncio.wait_for(orch.scheduler.run_once(["a", "b"]), 10)
    assert statuses(second) == {
        "a": ("unchanged", "source unchanged"),
        "b": ("skipped", "unchanged"),
    }
    forced = await asyncio.wait_for(orch.scheduler.run_once(["a", "b"], force=True), 10)
    assert statuses(forced)["b"] == ("succeeded", None)


async def test_component_that_polls_its_own_source_is_not_skipped(make_config, open_orch):
    """skip_when_upstream_unchanged=false runs the component even when upstream is unchanged."""
    cfg = make_config(
        {
            "a": component("Publishes", fingerprint="v1", unchanged_if_same=True),
            "b": component("Publishes", deps=["a"], skip_when_upstream_unchanged=False),
        }
    )
    orch = await open_orch(cfg)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    second = await asyncio.wait_for(orch.scheduler.run_once(["a", "b"]), 10)
    assert statuses(second)["b"] == ("succeeded", None)


async def test_a_running_component_is_not_released_again(make_config, open_orch):
    """While a component runs, a plan shows it already_running and no second copy starts."""
    cfg = make_config({"g": component("Gated", frequency="1s")})
    orch = await open_orch(cfg)
    run = asyncio.create_task(orch.scheduler.run_once())
    async with asyncio.timeout(5):
        await PROBE.started_event("g").wait()
    (decision,) = orch.scheduler.plan(datetime.now(UTC) + timedelta(seconds=10))
    assert decision.reason is SkipReason.ALREADY_RUNNING
    PROBE.gate("g").set()
    await asyncio.wait_for(run, 5)
    assert PROBE.started == ["g"]


async def test_overdue_component_runs_once_after_downtime(make_config, open_orch):
    """After a long downtime a due component runs once, then is not due again."""
    cfg = make_config({"a": component("Publishes", frequency="15m")})
    orch = await open_orch(cfg)
    orch.scheduler.states["a"].last_started_at = datetime.now(UTC) - timedelta(days=3)
    assert [d.run for d in orch.scheduler.plan()] == [True]
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert [d.reason for d in orch.scheduler.plan()] == [SkipReason.NOT_DUE]
    assert PROBE.started == ["a"]


async def test_paused_and_disabled_components_are_skipped_with_reasons(make_config, open_orch):
    """Paused and disabled components say why they will not run."""
    cfg = make_config({"p": component("Publishes"), "d": component("Publishes", enabled=False)})
    orch = await open_orch(cfg)
    orch.scheduler.paused.add("p")
    reasons = {d.component: d.reason for d in orch.scheduler.plan()}
    assert reasons == {"p": SkipReason.PAUSED, "d": SkipReason.DISABLED}


async def test_dry_run_executes_nothing(make_config, open_orch):
    """With dry_run every chosen component is skipped as dry_run and none starts."""
    cfg = make_config({"a": component("Publishes")}, override_settings={"dry_run": True})
    orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert statuses(result) == {"a": ("skipped", "dry_run")}
    assert PROBE.started == []


async def test_operator_cancel_records_cancelled(make_config, open_orch):
    """A cancel is recorded cancelled, with who asked; the run ends cancelled, not failed."""
    cfg = make_config({"g": component("Gated"), "h": component("Publishes")})
    orch = await open_orch(cfg)
    run = asyncio.create_task(orch.scheduler.run_once())
    async with asyncio.timeout(5):
        await PROBE.started_event("g").wait()
    assert orch.scheduler.cancel_component("g", actor="admin uid 0 (root)")
    result = await asyncio.wait_for(run, 5)
    assert statuses(result)["g"] == ("cancelled", "cancelled by admin uid 0 (root)")
    assert statuses(result)["h"] == ("succeeded", None)
    assert result.status == "cancelled"


async def test_cancelling_a_run_records_who_asked(make_config, open_orch):
    """Each component of a cancelled run says who cancelled it."""
    cfg = make_config({"g": component("Gated")})
    orch = await open_orch(cfg)
    orch.scheduler.state = type(orch.scheduler.state).SERVING
    run_id, _ = orch.scheduler.start_run(["g"], trigger="test")
    assert run_id is not None
    async with asyncio.timeout(5):
        await PROBE.started_event("g").wait()
    assert orch.scheduler.cancel_run(run_id, actor="dashboard session ab12 (127.0.0.1)")
    await asyncio.wait_for(orch.scheduler.shutdown(5), 10)
    assert orch.bus is not None and await orch.bus.flush(5)
    (row,) = await orch.store.history(component="g", limit=5)
    assert row["status"] == "cancelled"
    assert "dashboard session ab12 (127.0.0.1)" in row["reason"]


async def test_serve_sleeps_until_the_next_due_time(make_config, open_orch):
    """An idle serve loop wakes once per due time, not in a polling loop."""
    cfg = make_config({"a": component("Publishes", frequency="1h")})
    orch = await open_orch(cfg)
    stop, finished = asyncio.Event(), asyncio.Event()

    async def on_events(batch):
        if any(isinstance(e, ev.RunFinished) for e in batch):
            finished.set()

    orch.bus.subscribe("test", on_events)
    wakes: list[datetime | None] = []
    serving = asyncio.create_task(orch.scheduler.serve(stop, on_idle=wakes.append))
    async with asyncio.timeout(5):
        await finished.wait()
    await asyncio.sleep(0.3)  # an idle window: a polling loop would wake many times in it
    stop.set()
    await asyncio.wait_for(serving, 5)
    assert PROBE.started == ["a"]
    assert len(wakes) <= 3  # start, the run's end, maybe the stop
    assert wakes[-1] is not None and wakes[-1] > datetime.now(UTC) + timedelta(minutes=59)


async def test_tests_run_in_asyncio_debug_mode():
    """The suite's loops run in debug mode, so slow callbacks and stray coroutines show."""
    assert asyncio.get_running_loop().get_debug()


async def test_a_settled_component_can_join_a_new_run_while_its_old_run_goes_on(
    make_config, open_orch
):
    """A fast component is not 'already_running' just because a slow one shares its run."""
    cfg = make_config({"fast": component("Publishes", frequency="1s"), "slow": component("Gated")})
    orch = await open_orch(cfg)
    fast_done = asyncio.Event()

    async def on_events(batch):
        if any(isinstance(e, ev.ComponentSucceeded) and e.component == "fast" for e in batch):
            fast_done.set()

    orch.bus.subscribe("test", on_events)
    run = asyncio.create_task(orch.scheduler.run_once())
    async with asyncio.timeout(5):
        await PROBE.started_event("slow").wait()
        await fast_done.wait()
    later = datetime.now(UTC) + timedelta(seconds=2)
    reasons = {d.component: d.reason for d in orch.scheduler.plan(later)}
    assert reasons == {"fast": None, "slow": SkipReason.ALREADY_RUNNING}
    PROBE.gate("slow").set()
    await asyncio.wait_for(run, 5)
