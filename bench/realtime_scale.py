"""The daemon polling 500 GTFS-realtime endpoints every 30 s: its CPU and peak memory.

Starts the stand-in API in its own process (feeds re-stamped every 30 s, so every
poll stores), then ``interlock serve`` with one ``gtfs_realtime`` component polling
every endpoint every 30 s (rates configured high enough), for 2 minutes. Prints the
daemon's CPU % of one core and its peak RSS (targets < 25 % and < 150 MB). The
floor, measured in the same run: a bare aiohttp poller of the same endpoints that
only parses each feed (no quota, archive, checks or storage). Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
from google.transit import gtfs_realtime_pb2 as rt

ROOT = Path(__file__).resolve().parents[1]
MIX = ("trip-updates", "vehicle-positions", "service-alerts")


def feeds(n: int) -> dict[str, tuple[str, ...]]:
    """``n`` endpoints: agencies each with one feed, the three kinds in turn."""
    return {f"agency{i:03d}": (MIX[i % 3],) for i in range(n)}


async def serve_standin(n: int, every: float) -> None:
    from interlock.components.standins import StandinServer
    from interlock.components.standins.gtfs_realtime import GtfsRealtimeSource

    source = GtfsRealtimeSource(feeds=feeds(n))
    async with StandinServer([source]) as server:
        print(server.base_url, flush=True)
        while True:
            await asyncio.sleep(every)
            source.advance_to(int(time.time()))


def start_standin(n: int, every: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--standin", str(n), "--interval", str(every)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def endpoint_urls(base: str, n: int) -> dict[str, str]:
    prefix = f"{base}/opendata/public-transport/gtfs/realtime/v1"
    return {
        f"{mode}_{feed.replace('-', '_')}": f"{prefix}/{mode}/{feed}"
        for mode, (feed,) in feeds(n).items()
    }


def write_config(tmp: Path, urls: dict[str, str], every: float) -> Path:
    from interlock.components.standins.gtfs_realtime import STANDIN_API_KEY

    doc = {
        "components": {
            "gtfs_realtime": {
                "frequency": f"{int(every)}s",
                "retries": 0,
                "timeout_minutes": 1,
                "settings": {
                    "endpoints": urls,
                    "api_key": STANDIN_API_KEY,
                    "concurrency": 32,
                    "archive_keep": 1000,
                },
            }
        },
        "runtime_settings": {
            "state_dir": str(tmp / "state"),
            "data_dir": str(tmp / "data"),
            "admin_socket": str(tmp / "admin.sock"),
        },
        "quota_management": {
            "daily_limit": 10_000_000,
            "rate_limit": {"calls": 100_000, "per_seconds": 60},
        },
    }
    path = tmp / "orchestration.json"
    path.write_text(json.dumps(doc))
    return path


def peak_rss_mb(pid: int) -> float:
    # VmHWM is the kernel's own high-water mark: no peak is missed between samples.
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return psutil.Process(pid).memory_info().rss / 2**20


async def run_scheduler(config_path: Path) -> None:
    """The daemon's scheduling loop without the admin socket and sd_notify (``--core``)."""
    import signal

    from interlock.config.loader import load_config
    from interlock.observe import logs
    from interlock.service.app import Orchestrator

    logs.configure("warning", "json", stream=sys.stdout)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Orchestrator(load_config(config_path)) as orch:
        await orch.scheduler.serve(stop)
        await orch.scheduler.shutdown(5.0)


def measure_daemon(config: Path, duration: float, core: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "interlock.cli", "serve", "--config", str(config)]
    if core:
        cmd = [sys.executable, __file__, "--run-daemon", str(config)]
    proc = subprocess.Popen(
        [*cmd] if core else [*cmd, "--log-level", "warning", "--log-format", "json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    ps = psutil.Process(proc.pid)
    time.sleep(duration)
    cpu = ps.cpu_times()
    used = cpu.user + cpu.system
    peak = peak_rss_mb(proc.pid)
    elapsed = time.time() - ps.create_time()
    proc.terminate()
    proc.wait(30)
    return {"cpu_percent": 100 * used / elapsed, "peak_rss_mb": peak, "elapsed_s": elapsed}


async def poll_floor(urls: dict[str, str], every: float, duration: float) -> int:
    from interlock.components.standins.gtfs_realtime import KEY_HEADER, STANDIN_API_KEY

    polls = 0
    deadline = time.monotonic() + duration
    slots = asyncio.Semaphore(32)
    async with aiohttp.ClientSession(headers={KEY_HEADER: STANDIN_API_KEY}) as session:

        async def one(url: str) -> None:
            async with slots, session.get(url) as resp:
                rt.FeedMessage().ParseFromString(await resp.read())

        while time.monotonic() < deadline:
            started = time.monotonic()
            await asyncio.gather(*(one(u) for u in urls.values()))
            polls += 1
            pause = min(every - (time.monotonic() - started), deadline - time.monotonic())
            await asyncio.sleep(max(0.0, pause))
    return polls


def measure_floor(urls: dict[str, str], every: float, duration: float) -> dict[str, float]:
    ps = psutil.Process()
    before = ps.cpu_times()
    t0 = time.perf_counter()
    asyncio.run(poll_floor(urls, every, duration))
    after = ps.cpu_times()
    elapsed = time.perf_counter() - t0
    used = (after.user - before.user) + (after.system - before.system)
    return {"cpu_percent": 100 * used / elapsed, "elapsed_s": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=500)
    parser.add_argument("--interval", type=float, default=30.0, help="poll period, seconds")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds to measure")
    parser.add_argument(
        "--core",
        action="store_true",
        help="run the orchestrator's serve loop directly instead of `interlock serve`",
    )
    parser.add_argument("--standin", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--run-daemon", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_daemon is not None:
        asyncio.run(run_scheduler(args.run_daemon))
        return
    if args.standin is not None:
        asyncio.run(serve_standin(args.standin, args.interval))
        return
    standin, base = start_standin(args.endpoints, args.interval)
    try:
        urls = endpoint_urls(base, args.endpoints)
        with tempfile.TemporaryDirectory(prefix="rt-scale-") as tmp:
            daemon = measure_daemon(
                write_config(Path(tmp), urls, args.interval), args.duration, args.core
            )
            db = Path(tmp) / "data" / "gtfs_realtime.sqlite"
            import sqlite3

            conn = sqlite3.connect(db)
            polls = conn.execute("SELECT count(*), count(DISTINCT run_id) FROM feeds").fetchone()
            conn.close()
        floor = measure_floor(urls, args.interval, args.duration)
    finally:
        standin.terminate()
        standin.wait(30)
    ratio = daemon["cpu_percent"] / max(floor["cpu_percent"], 1e-9)
    how = "orchestrator serve loop (--core)" if args.core else "interlock serve"
    print(f"{args.endpoints} endpoints every {args.interval:g} s for {args.duration:g} s ({how})")
    print(f"daemon: {polls[0]} feeds stored in {polls[1]} runs")
    print(f"daemon: {daemon['cpu_percent']:.1f}% of one core (target < 25%)")
    print(f"daemon: peak RSS {daemon['peak_rss_mb']:.1f} MB (target < 150 MB)")
    print(f"floor (bare aiohttp poll + parse): {floor['cpu_percent']:.1f}% of one core")
    print(f"cpu ratio daemon/floor: {ratio:.2f}")
    print(
        json.dumps(
            {
                "endpoints": args.endpoints,
                "daemon": "core" if args.core else "interlock serve",
                "interval_s": args.interval,
                "duration_s": args.duration,
                "feeds_stored": polls[0],
                "runs": polls[1],
                "cpu_percent": round(daemon["cpu_percent"], 1),
                "peak_rss_mb": round(daemon["peak_rss_mb"], 1),
                "floor_cpu_percent": round(floor["cpu_percent"], 1),
                "cpu_ratio_vs_floor": round(ratio, 2),
                "targets": {"cpu_percent": 25, "peak_rss_mb": 150},
            }
        )
    )


if __name__ == "__main__":
    main()
