"""Idle footprint of ``interlock serve``: RSS, CPU between due times, and time to READY.

Starts the stand-in sources, writes the shipped ``config/orchestration.json`` with its
five components pointed at them (credentials in a temporary $CREDENTIALS_DIRECTORY,
gtfs_realtime every 10 minutes so the window below is between due times), starts
``interlock serve`` with NOTIFY_SOCKET and WATCHDOG_USEC set as systemd would, and
waits for READY=1. After the first run has finished it measures 60 s of idling.
The floor is a bare ``python -c "import asyncio"`` process that sleeps in its event
loop, measured over the same window. Targets: under 60 MB, under 0.5 % of one core,
READY under 1 s. The last line is one JSON object.

    python bench/idle.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from interlock.cli.adminclient import AdminClient
from interlock.components.standins.gtfs_realtime import STANDIN_API_KEY
from interlock.components.standins.ptv import DEMO_API_KEY, DEMO_DEVID
from interlock.components.standins.server import StandinServer

ROOT = Path(__file__).resolve().parents[1]

FLOOR = (
    "import asyncio, os, socket\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n"
    "asyncio.run(asyncio.sleep(3600))\n"
)
REAL_HOSTS = {
    "https://opendata.transport.vic.gov.au/api/3/action/": "{base}/ckan/api/3/action/",
    "https://discover.data.vic.gov.au/api/3/action/": "{base}/ckan/api/3/action/",
    "https://api.opendata.transport.vic.gov.au": "{base}",
    "https://timetableapi.ptv.vic.gov.au": "{base}/ptv",
}


def bench_config(work: Path, base: str) -> Path:
    """The shipped config with every real host replaced by the stand-in server."""
    text = (ROOT / "config" / "orchestration.json").read_text()
    for real, standin in REAL_HOSTS.items():
        text = text.replace(real, standin.format(base=base))
    doc = json.loads(text)
    doc["components"]["gtfs_realtime"]["frequency"] = "10m"
    doc["components"]["gtfs_schedule"]["settings"]["modes"] = ["1", "2", "3"]  # the stand-in feed
    for name in ("gtfs_schedule", "datavic_station_patronage", "datavic_temporal_patronage"):
        doc["components"][name]["settings"]["allow_private_addresses"] = True  # CKAN on 127.0.0.1
    doc["runtime_settings"].update(state_dir=str(work / "state"), data_dir=str(work / "data"))
    doc.pop("performance_monitoring", None)  # no alert channels (they would need secrets)
    path = work / "orchestration.json"
    path.write_text(json.dumps(doc))
    return path


def wait_ready(sock: socket.socket, timeout: float) -> float:
    """Seconds until a READY=1 datagram arrives."""
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        if b"READY=1" in sock.recv(4096).split(b"\n"):
            return time.monotonic()


def idle_window(procs: dict[str, psutil.Process], seconds: float) -> dict[str, dict[str, float]]:
    """CPU %, peak RSS and context switches per second of each process over ``seconds``."""
    before = {n: (p.cpu_times(), p.num_ctx_switches()) for n, p in procs.items()}
    peak = {n: p.memory_info().rss for n, p in procs.items()}
    t0 = time.monotonic()
    while (left := seconds - (time.monotonic() - t0)) > 0:
        time.sleep(min(5.0, left))
        for n, p in procs.items():
            peak[n] = max(peak[n], p.memory_info().rss)
    took = time.monotonic() - t0
    out = {}
    for n, p in procs.items():
        (c0, s0), c1, s1 = before[n], p.cpu_times(), p.num_ctx_switches()
        cpu = (c1.user + c1.system) - (c0.user + c0.system)
        out[n] = {
            "cpu_percent": 100.0 * cpu / took,
            "rss_mb": peak[n] / 2**20,
            "wakeups_per_s": (s1.voluntary - s0.voluntary) / took,
        }
    return out


async def main(seconds: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ilk-idle-", dir="/tmp"))
    creds = work / "credentials"
    creds.mkdir()
    for name, value in {
        "opendata_api_key": STANDIN_API_KEY,
        "ptv_devid": DEMO_DEVID,
        "ptv_api_key": DEMO_API_KEY,
    }.items():
        (creds / name).write_text(value)
    async with StandinServer() as standins:
        config = bench_config(work, standins.url("").rstrip("/"))
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(work / "notify"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
        env.update(
            NOTIFY_SOCKET=str(work / "notify"),
            WATCHDOG_USEC="60000000",  # as WatchdogSec=60s in the unit
            CREDENTIALS_DIRECTORY=str(creds),
            PYTHONPATH=str(ROOT),
        )
        sock_path = work / "admin.sock"
        started = time.monotonic()
        daemon = subprocess.Popen(
            [sys.executable, "-m", "interlock.cli", "serve", "--config", str(config),
             "--socket", str(sock_path), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=open(work / "daemon.log", "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            ready_s = await asyncio.to_thread(wait_ready, notify, 30) - started
            client = AdminClient(sock_path, timeout_s=60)
            stream = await asyncio.to_thread(client.watch, ["run_finished"], idle_timeout_s=300)
            status = await asyncio.to_thread(client.request, "status")
            for _run in status["daemon"]["active_runs"]:
                await asyncio.to_thread(next, stream)  # the first run finishing
            stream.close()  # type: ignore[attr-defined]
            status = await asyncio.to_thread(client.request, "status")
            outcomes = {c["component"]: c["last_status"] for c in status["components"]}

            floor_start = time.monotonic()
            floor_notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            floor_notify.bind(str(work / "floor-notify"))
            floor = subprocess.Popen(
                [sys.executable, "-c", FLOOR],
                env={**env, "NOTIFY_SOCKET": str(work / "floor-notify")},
            )
            try:
                floor_ready_s = await asyncio.to_thread(wait_ready, floor_notify, 30) - floor_start
                procs = {"daemon": psutil.Process(daemon.pid), "floor": psutil.Process(floor.pid)}
                window = await asyncio.to_thread(idle_window, procs, seconds)
            finally:
                floor.kill()
                floor.wait(10)
            await asyncio.to_thread(client.request, "status")  # still answering after idling
        finally:
            daemon.terminate()
            code = await asyncio.to_thread(daemon.wait, 60)
    d, f = window["daemon"], window["floor"]
    print(f"components after the first run: {outcomes}")
    print(f"{'':8} {'rss MB':>8} {'cpu %':>8} {'wakeups/s':>10}")
    for name, m in window.items():
        print(f"{name:8} {m['rss_mb']:8.1f} {m['cpu_percent']:8.3f} {m['wakeups_per_s']:10.2f}")
    print(f"ready: daemon {ready_s:.3f} s, floor {floor_ready_s:.3f} s "
          f"(ratio {ready_s / floor_ready_s:.1f}x); rss ratio {d['rss_mb'] / f['rss_mb']:.1f}x; "
          f"exit code after SIGTERM {code}")  # fmt: skip
    return {
        "idle_rss_mb": round(d["rss_mb"], 1),
        "idle_cpu_percent": round(d["cpu_percent"], 3),
        "ready_s": round(ready_s, 3),
        "idle_wakeups_per_s": round(d["wakeups_per_s"], 2),
        "floor_rss_mb": round(f["rss_mb"], 1),
        "floor_cpu_percent": round(f["cpu_percent"], 3),
        "floor_ready_s": round(floor_ready_s, 3),
        "rss_ratio": round(d["rss_mb"] / f["rss_mb"], 2),
        "window_s": seconds,
        "components": outcomes,
        "exit_code": code,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    result = asyncio.run(main(parser.parse_args().seconds))
    print(json.dumps(result))
