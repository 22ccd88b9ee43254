"""Scheduling overhead: a 1,000-component DAG through the real scheduler vs plain asyncio.

The DAG is 100 layers of 10 no-op components, each depending on every component
of the layer before. The real scheduler runs with history (SQLite) and JSON logs
(to a file) on; the floor is the same DAG as bare TaskGroup tasks waiting on
asyncio.Events, in the same process. Prints microseconds per component for both,
their ratio, and the p99 delay between a component's last upstream finishing and
its own start. The last line is one JSON object.

    python bench/scheduler.py [--layers 100] [--width 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from interlock.config.loader import parse_config
from interlock.observe import logs
from interlock.outcome import Outcome
from interlock.service.app import Orchestrator

ROOT = Path(__file__).resolve().parents[1]

STARTS: dict[str, float] = {}
ENDS: dict[str, float] = {}


class Noop:
    """Records when it starts and ends; does nothing else."""

    settings_schema = None

    def __init__(self, name: str, settings: Any) -> None:
        self.name = name

    async def run(self, ctx: Any) -> Outcome:
        STARTS[self.name] = time.perf_counter()
        outcome = Outcome.published(records=0, fingerprint=self.name)
        ENDS[self.name] = time.perf_counter()
        return outcome


def dag(layers: int, width: int) -> dict[str, list[str]]:
    names = [[f"l{i:03d}c{j:02d}" for j in range(width)] for i in range(layers)]
    out: dict[str, list[str]] = {}
    for i, layer in enumerate(names):
        for name in layer:
            out[name] = names[i - 1] if i else []
    return out


def release_delays(deps: dict[str, list[str]]) -> list[float]:
    return [STARTS[n] - max(ENDS[d] for d in ds) for n, ds in deps.items() if ds]


async def floor_run(deps: dict[str, list[str]]) -> tuple[float, list[float]]:
    """The same DAG as bare tasks and events: the cost of asyncio itself."""
    STARTS.clear()
    ENDS.clear()
    done = {n: asyncio.Event() for n in deps}

    async def one(name: str) -> None:
        for d in deps[name]:
            await done[d].wait()
        STARTS[name] = time.perf_counter()
        ENDS[name] = time.perf_counter()
        done[name].set()

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for n in deps:
            tg.create_task(one(n))
    return time.perf_counter() - t0, release_delays(deps)


async def interlock_run(
    deps: dict[str, list[str]], width: int, tmp: Path
) -> tuple[float, list[float]]:
    """The DAG through the real orchestrator, history and JSON logs on."""
    STARTS.clear()
    ENDS.clear()
    doc = {
        "components": {
            n: {"class": f"{__name__}:Noop", "frequency": "1h", "dependencies": ds, "retries": 0}
            for n, ds in deps.items()
        },
        "runtime_settings": {
            "max_concurrent_components": width,
            "state_dir": str(tmp / "s"),
            "data_dir": str(tmp / "d"),
        },
    }
    config = parse_config(doc, "<bench>")
    async with Orchestrator(config) as orch:
        t0 = time.perf_counter()
        result = await orch.scheduler.run_once(trigger="bench")
        assert orch.bus is not None
        await orch.bus.flush(60)
        elapsed = time.perf_counter() - t0
        rows = await orch.store.history(limit=10 * len(deps))
    assert not result.failed, result.status
    assert len(rows) >= len(deps), f"history has {len(rows)} rows for {len(deps)} components"
    return elapsed, release_delays(deps)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    deps = dag(args.layers, args.width)
    n = len(deps)
    ours, floor, delays = [], [], []
    with tempfile.TemporaryDirectory() as d, open(Path(d) / "log.jsonl", "w") as logfile:
        logs.configure("info", "json", stream=logfile)
        for i in range(args.repeat):
            f_s, _ = await floor_run(deps)
            o_s, o_delays = await interlock_run(deps, args.width, Path(d) / f"r{i}")
            floor.append(f_s / n * 1e6)
            ours.append(o_s / n * 1e6)
            delays.extend(o_delays)
            print(
                f"repeat {i + 1}: interlock {ours[-1]:.1f} us/component, "
                f"asyncio floor {floor[-1]:.1f} us/component, "
                f"release p99 {p99(o_delays) * 1e3:.3f} ms",
                flush=True,
            )
        logfile.flush()
        log_lines = (Path(d) / "log.jsonl").read_text().count("\n")
    us, floor_us = statistics.median(ours), statistics.median(floor)
    release_p99_ms = p99(delays) * 1e3
    print(f"{n} components, {args.repeat} repeats, {log_lines} log lines written")
    print(
        f"interlock: {us:.1f} us/component (median); plain asyncio: {floor_us:.1f} "
        f"us/component; ratio {us / floor_us:.1f}x"
    )
    print(f"release delay p99: {release_p99_ms:.3f} ms")
    print(
        json.dumps(
            {
                "components": n,
                "us_per_component": round(us, 2),
                "floor_us_per_component": round(floor_us, 2),
                "ratio": round(us / floor_us, 2),
                "release_p99_ms": round(release_p99_ms, 4),
                "repeats": args.repeat,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
