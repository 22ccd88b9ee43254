"""``interlock report``: figures per component, trends, errors and insights, from real history."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from interlock.config.model import Config
from interlock.observe.report import build, parse_since
from tests.conftest import component

NOW = datetime(2025, 5, 14, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("12h", NOW - timedelta(hours=12)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2)),
        ("-5d", NOW - timedelta(days=5)),
        ("2025-05-01", datetime(2025, 5, 1, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    """Spans count back from now; dates are taken as UTC when they carry no zone."""
    assert parse_since(text, NOW) == expected


def test_parse_since_rejects_nonsense_with_examples() -> None:
    """An unreadable --since says what forms are accepted."""
    with pytest.raises(ValueError, match="neither a span like '7d'"):
        parse_since("last tuesday", NOW)


def row(status: str, duration: float, **kw: Any) -> dict[str, Any]:
    return {
        "component": kw.pop("component", "gtfs_schedule"),
        "status": status,
        "reason": kw.pop("reason", None),
        "started_at": kw.pop("started_at", NOW.isoformat()),
        "finished_at": None,
        "duration_s": duration,
        "records": kw.pop("records", 0),
        "attempts": kw.pop("attempts", 1),
        "error": kw.pop("error", None),
        "metrics": kw or None,
    }


def test_report_figures_trend_errors_and_bottleneck_insights() -> None:
    """p50/p95, success rate, trend, top errors and where the time goes are all computed."""
    phases = {"fetch": 2.0, "load": 16.0, "quality": 1.0, "publish": 1.0}
    now = [row("succeeded", 20.0, phases=phases, records_per_s=5000.0) for _ in range(3)]
    now += [
        row("failed", 1.0, error="GET x answered 503 after 120 ms", attempts=3),
        row("failed", 1.0, error="GET x answered 503 after 98 ms", attempts=3),
        row("skipped", 0.0, reason="upstream_failed", component="stops_view"),
    ]
    before = [row("succeeded", 10.0) for _ in range(3)]
    report = build(
        now, before, since=NOW - timedelta(days=7), until=NOW, timeouts={"gtfs_schedule": 22}
    )
    s = report["components"]["gtfs_schedule"]
    assert (s["runs"], s["success_rate"], s["p50_s"], s["p95_s"]) == (5, 60.0, 20.0, 20.0)
    assert s["trend_percent"] == 100.0 and s["records_per_s"] == 5000.0 and s["retries"] == 4
    (err,) = s["top_errors"]
    assert err["count"] == 2 and err["message"] == "GET x answered 503 after 98 ms"
    text = "\n".join(report["insights"])
    assert "gtfs_schedule spends 80% of its time in load" in text
    assert "p95 duration (20 s) is 91% of its timeout" in text
    assert "got slower: p50 up 100%" in text
    assert "stops_view was skipped 1x as upstream_failed" in text


async def test_the_report_command_reads_real_history(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], tmp_path: Path
) -> None:
    """After real runs, `interlock report --json` and the table show each component."""
    config = make_config({"ok": component("Publishes", records=50), "bad": component("Fails")})
    orch = await open_orch(config)
    for _ in range(3):
        await asyncio.wait_for(orch.scheduler.run_once(force=True), 10)
    assert await orch.bus.flush(5)
    await asyncio.wait_for(orch.aclose(), 10)
    state = str(config.runtime.state_dir)
    cmd = [sys.executable, "-m", "interlock.cli", "report", "--state-dir", state, "--since", "1h"]
    proc = await asyncio.to_thread(
        subprocess.run, [*cmd, "--json"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["components"]["ok"]["success_rate"] == 100.0
    assert report["components"]["bad"]["success_rate"] == 0.0
    assert report["components"]["bad"]["top_errors"][0]["count"] == 3
    table = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert "COMPONENT" in table.stdout and "Top errors:" in table.stdout
    assert "3x  bad: source answered nonsense" in table.stdout
    # --state-dir has no config: the period is shown in --timezone (default Melbourne's),
    # to the second, like every human-readable time.
    zoned = await asyncio.to_thread(
        subprocess.run,
        [*cmd, "--timezone", "Asia/Kolkata"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    head = zoned.stdout.splitlines()[0]
    until = datetime.strptime(head.split(" to ")[1], "%Y-%m-%d %H:%M:%S")
    local = datetime.now(ZoneInfo("Asia/Kolkata")).replace(tzinfo=None)
    assert abs((local - until).total_seconds()) < 120, head
    bad = await asyncio.to_thread(
        subprocess.run,
        [*cmd, "--timezone", "Mars/Olympus"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "unknown time zone 'Mars/Olympus'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_report_rejects_a_bad_since(tmp_path: Path) -> None:
    """A bad --since exits 2 with a clear message."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "interlock.cli",
            "report",
            "--state-dir",
            str(tmp_path),
            "--since",
            "soon",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--since 'soon'" in proc.stderr


async def test_concurrent_api_calls_count_once_in_the_waiting_share(
    make_config: Callable[..., Config], open_orch: Callable[..., Any]
) -> None:
    """Eight calls in flight together cost the run their union, not their sum: the insight
    never says a component spends more than 100% of its time waiting on API calls."""
    calls = 8
    arrived = 0
    all_in = asyncio.Event()

    async def answer(request: web.Request) -> web.Response:
        nonlocal arrived
        arrived += 1
        if arrived >= calls:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 10)  # answer once every call is in flight
        await asyncio.sleep(0.1)  # the stand-in's own latency, shared by all eight
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/slow", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slow"
    try:
        config = make_config({"api": component("CallsApi", url=url, calls=calls, parallel=True)})
        orch = await open_orch(config)
        await asyncio.wait_for(orch.scheduler.run_once(force=True), 20)
        assert await orch.bus.flush(5)
        rows = await orch.store.history(component="api")
        await asyncio.wait_for(orch.aclose(), 10)
    finally:
        await runner.cleanup()
    (run,) = rows
    m = run["metrics"]
    assert m["api"]["api"]["calls"] == calls
    assert m["api"]["api"]["total_ms"] / 1e3 > 2 * m["wall_s"]  # the sum overlaps itself
    assert 0.1 <= m["api_busy_s"] <= m["wall_s"]
    report = build(rows, [], since=NOW - timedelta(days=1), until=datetime.now(UTC), timeouts={})
    waiting = [i for i in report["insights"] if "waiting on API calls" in i]
    assert waiting, report["insights"]
    share = int(waiting[0].split(" spends ")[1].split("%")[0])
    assert 30 <= share <= 100


def test_history_without_a_busy_figure_is_capped_at_the_run_time() -> None:
    """Runs recorded before the union was kept are judged by min(sum, wall): never >100%."""
    api = {"api": {"calls": 4, "total_ms": 4000.0, "p95_ms": 1000.0, "max_ms": 1000.0}}
    rows = [row("succeeded", 1.0, component="rt", api=api, wall_s=1.0) for _ in range(3)]
    report = build(rows, [], since=NOW - timedelta(days=7), until=NOW, timeouts={})
    assert "rt spends 100% of its time waiting on API calls (mostly api)" in report["insights"]
