"""The state store's cost: bench/scheduler.py's DAG with the PostgreSQL store against SQLite.

The same 1,000-component DAG (100 layers of 10 no-op components) runs through the real
orchestrator, history and JSON logs on, once per repeat on each store, alternating.
SQLite (the default store, a local file) is the floor; PostgreSQL is a throwaway
cluster on a Unix socket (tests/pg.py) unless ``--dsn`` names a database. Prints
microseconds per component on each, their ratio, and the release delay p99. The last
line is one JSON object.

    python bench/store.py [--layers 100] [--width 10] [--repeat 5] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import scheduler as sched  # noqa: E402 - bench/scheduler.py: its DAG and no-op component

from interlock.config.loader import parse_config  # noqa: E402
from interlock.observe import logs  # noqa: E402
from interlock.service.app import Orchestrator  # noqa: E402


async def run(
    deps: dict[str, list[str]], width: int, tmp: Path, store: Any
) -> tuple[float, list[float]]:
    """The DAG through the real orchestrator on ``store`` (a state_store setting)."""
    sched.STARTS.clear()
    sched.ENDS.clear()
    doc = {
        "components": {
            n: {"class": "scheduler:Noop", "frequency": "1h", "dependencies": ds, "retries": 0}
            for n, ds in deps.items()
        },
        "runtime_settings": {
            "max_concurrent_components": width,
            "state_dir": str(tmp / "s"),
            "data_dir": str(tmp / "d"),
            "state_store": store,
        },
    }
    config = parse_config(doc, "<bench>")
    async with Orchestrator(config) as orch:
        t0 = time.perf_counter()
        result = await orch.scheduler.run_once(trigger="bench")
        assert orch.bus is not None
        await orch.bus.flush(120)
        elapsed = time.perf_counter() - t0
        rows = await orch.store.history(limit=10 * len(deps))
    assert not result.failed, result.status
    assert len(rows) >= len(deps), f"history has {len(rows)} rows for {len(deps)} components"
    return elapsed, sched.release_delays(deps)


def new_database(cluster: Any, name: str) -> str:
    cluster.psql(f"CREATE DATABASE {name} TEMPLATE template0")
    return str(cluster.dsn(name))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--dsn", help="a PostgreSQL database to use (emptied by nobody: use a fresh one)"
    )
    args = parser.parse_args()
    deps = sched.dag(args.layers, args.width)
    n = len(deps)
    cluster = None
    if args.dsn is None:
        from tests.pg import start_cluster

        cluster = start_cluster()
    sqlite_us: list[float] = []
    pg_us: list[float] = []
    delays: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    try:
        with tempfile.TemporaryDirectory() as d, open(Path(d) / "log.jsonl", "w") as logfile:
            logs.configure("info", "json", stream=logfile)
            for i in range(args.repeat):
                dsn = args.dsn or new_database(cluster, f"bench{i}")
                s_s, s_delays = await run(deps, args.width, Path(d) / f"s{i}", {"sqlite": {}})
                p_s, p_delays = await run(
                    deps, args.width, Path(d) / f"p{i}", {"postgresql": {"dsn": dsn}}
                )
                sqlite_us.append(s_s / n * 1e6)
                pg_us.append(p_s / n * 1e6)
                delays["sqlite"].extend(s_delays)
                delays["postgresql"].extend(p_delays)
                print(
                    f"repeat {i + 1}: postgresql {pg_us[-1]:.1f} us/component, "
                    f"sqlite {sqlite_us[-1]:.1f} us/component",
                    flush=True,
                )
    finally:
        if cluster is not None:
            from tests.pg import stop_cluster

            stop_cluster(cluster)
    pg, floor = statistics.median(pg_us), statistics.median(sqlite_us)
    p99 = {k: sched.p99(v) * 1e3 for k, v in delays.items()}
    print(f"{n} components, {args.repeat} repeats")
    print(
        f"postgresql store: {pg:.1f} us/component (median); sqlite store (floor): "
        f"{floor:.1f} us/component; ratio {pg / floor:.2f}x"
    )
    print(
        f"release delay p99: postgresql {p99['postgresql']:.3f} ms, sqlite {p99['sqlite']:.3f} ms"
    )
    print(
        json.dumps(
            {
                "components": n,
                "postgresql_us_per_component": round(pg, 2),
                "sqlite_us_per_component": round(floor, 2),
                "ratio": round(pg / floor, 3),
                "postgresql_release_p99_ms": round(p99["postgresql"], 4),
                "sqlite_release_p99_ms": round(p99["sqlite"], 4),
                "repeats": args.repeat,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
