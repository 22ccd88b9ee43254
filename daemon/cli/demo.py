"""``interlock demo``: the whole pipeline against local stand-in sources.

Starts the stand-in servers on 127.0.0.1, runs ``config/demo.json`` twice (the
second run shows change detection skipping the unchanged feed), then publishes a
changed feed and runs once more. Prints progress, a summary and where the data is.
Nothing leaves this machine.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interlock import events as ev
from interlock.config.loader import parse_config, read_json, shipped_config
from interlock.config.model import Config
from interlock.core.scheduler import RunResult
from interlock.service.app import Orchestrator

_MARK = {
    "succeeded": "published",
    "unchanged": "unchanged",
    "failed": "FAILED",
    "timed_out": "TIMED OUT",
    "cancelled": "cancelled",
    "skipped": "skipped",
}


def _say(text: str = "") -> None:
    print(text, flush=True)


async def _progress(batch: Sequence[ev.Event]) -> None:
    for e in batch:
        if isinstance(e, ev.ComponentStarted):
            _say(f"    {e.component}: started (attempt {e.attempt})")
        elif isinstance(e, ev.ComponentRetrying):
            _say(f"    {e.component}: retrying in {e.delay_s:.1f}s after: {e.error}")
        elif isinstance(e, ev.ComponentFinished):
            what = _MARK.get(e.status, e.status)
            extra = f", {e.records:,} records" if e.records else ""
            why = f" ({e.reason})" if e.reason and e.status != "succeeded" else ""
            _say(f"    {e.component}: {what}{extra} in {e.duration_s:.2f}s{why}")
        elif isinstance(e, ev.ComponentSkipped):
            _say(f"    {e.component}: skipped ({e.reason}: {e.detail})")
        elif isinstance(e, ev.ComponentQuarantined):
            _say(f"    {e.component}: payload quarantined in {e.path}")


def _demo_config(base_url: str, root: Path, path: Path | None = None) -> Config:
    path = path or shipped_config("demo.json")
    from interlock.components.standins.gtfs_realtime import STANDIN_API_KEY
    from interlock.components.standins.ptv import DEMO_API_KEY, DEMO_DEVID

    env = {
        **os.environ,
        "INTERLOCK_STANDIN_URL": base_url,
        # The stand-in's KeyId; the real API key never appears in the demo.
        "INTERLOCK_DEMO_API_KEY": STANDIN_API_KEY,
        # The account the stand-in PTV API checks signatures against.
        "INTERLOCK_DEMO_PTV_DEVID": DEMO_DEVID,
        "INTERLOCK_DEMO_PTV_KEY": DEMO_API_KEY,
    }
    config = parse_config(read_json(path), str(path), env)
    config = config.with_dirs(root / "state", root / "data")
    return config.with_overrides({"skip_frequency_check": True})


def _table_counts(db: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        counts = [(n, conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names]
    finally:
        conn.close()
    return [(n, c) for n, c in counts if c]


async def _run(label: str, orch: Orchestrator) -> RunResult:
    _say(f"\n{label}")
    result = await orch.scheduler.run_once(trigger="demo")
    assert orch.bus is not None
    await orch.bus.flush()
    return result


async def _demo(root: Path, config_path: Path | None = None) -> int:
    from interlock.components.standins import StandinServer

    async with StandinServer() as server:
        _say(f"interlock demo: stand-in sources on {server.base_url} (nothing leaves this machine)")
        _say(f"state and data in {root}")
        config = _demo_config(server.base_url, root, config_path)
        disabled = [c for c in config.components.values() if not c.enabled]
        for spec in disabled:
            _say(f"  {spec.name} is disabled: {spec.disabled_reason}")
        if disabled:
            _say("the demo needs every component it configures; nothing was run")
            return 1
        results: list[tuple[str, RunResult]] = []
        async with Orchestrator(config) as orch:
            assert orch.bus is not None
            orch.bus.subscribe("demo-progress", _progress)
            results.append(("1 first load", await _run("Run 1: first load of every source", orch)))
            results.append(
                (
                    "2 nothing new",
                    await _run(
                        "Run 2: the sources have not changed (change detection skips them)", orch
                    ),
                )
            )
            server.publish("gtfs_schedule", 2)
            server.publish("gtfs_realtime", 2)  # new entities, header timestamp advanced
            server.publish("ptv_timetable", 2)  # later departures, a new disruption
            server.publish("datavic_temporal_patronage", 2)  # one more month of patronage
            results.append(
                (
                    "3 new feed",
                    await _run(
                        "Run 3: a new GTFS feed, fresh realtime feeds and PTV answers, and "
                        "one more month of patronage",
                        orch,
                    ),
                )
            )
            history = await orch.store.history(limit=50)
        _summary(results, history, config)
    return 1 if any(r.failed for _, r in results) else 0


def _summary(
    results: list[tuple[str, RunResult]], history: list[dict[str, Any]], config: Config
) -> None:
    from interlock.cli.common import print_table

    _say("\nSummary")
    rows = []
    for label, result in results:
        for name, settled in result.outcomes.items():
            rec = next(
                (h for h in history if h["run_id"] == result.run_id and h["component"] == name), {}
            )
            rows.append(
                (
                    label,
                    name,
                    settled.status.value,
                    settled.reason or "",
                    rec.get("records") or 0,
                    f"{rec.get('duration_s') or 0:.2f}s",
                )
            )
    print_table(rows, ["run", "component", "outcome", "reason", "records", "took"])
    from interlock.cli.statustext import join_lines

    # The newest realtime run that stored feeds: how their ids join the demo schedule.
    joined = [
        {"component": h["component"], "joins": (h.get("quality") or {}).get("joins")}
        for h in history
        if (h.get("quality") or {}).get("joins")
    ]
    join_lines(joined[:1], print_table)
    data_dir = config.runtime.data_dir
    _say("\nPublished datasets")
    for db in sorted(data_dir.glob("*.sqlite")):
        if db.name.endswith(".previous.sqlite"):
            continue
        counts = _table_counts(db)
        summary = ", ".join(f"{n} {c:,}" for n, c in counts if n != "provenance")
        _say(f"  {db}\n    {summary}")
    _say(f"\nHistory:  interlock history --state-dir {config.runtime.state_dir}")
    _say(
        "Query the data: sqlite3 "
        + str(data_dir / "gtfs_schedule.sqlite")
        + " 'select route_short_name, route_long_name from routes'"
    )


def run_demo(directory: Path | None, config_path: Path | None = None) -> int:
    """Entry point of ``interlock demo``; returns the exit code.

    ``config_path`` replaces the shipped ``demo.json`` (its state and data
    directories are replaced by the demo's own).
    """
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_demo(directory.resolve(), config_path))
    root = Path(tempfile.mkdtemp(prefix="interlock-demo-"))
    code = asyncio.run(_demo(root, config_path))
    _say(f"\n(the demo's files stay in {root}; delete the folder when done)")
    return code


if __name__ == "__main__":
    sys.exit(run_demo(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
