"""How fast the CLI answers: --help, --version, status, history and plan, as wall time.

Each command runs as a fresh process (as a person types it), against a config with
five components and a state database holding one run: ``history`` and ``plan`` with
no daemon (SQLite read directly, the config loaded), ``status`` with a daemon serving
the config (its answer over the admin socket, as an operator sees it), and also
``status`` without one (the plan computed here) for reference, off the target.
The floor is ``python -c pass`` with the same interpreter, measured in the same
run. Prints the median of each and its ratio to the floor; the last line is JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 250.0


def _config(directory: Path) -> Path:
    components = {
        f"c{i}": {"class": "tests.testcomponents:Publishes", "frequency": "1h", "retries": 0}
        for i in range(5)
    }
    doc = {
        "components": components,
        "runtime_settings": {
            "state_dir": str(directory / "state"),
            "data_dir": str(directory / "data"),
            "admin_socket": "admin.sock",
        },
    }
    path = directory / "orchestration.json"
    path.write_text(json.dumps(doc))
    return path


def _wall(cmd: list[str], env: dict[str, str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, timeout=60)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


@contextlib.contextmanager
def _serving(cli: list[str], config: Path, env: dict[str, str]) -> Iterator[None]:
    """``interlock serve`` on ``config`` until the block ends (its socket answering)."""
    proc = subprocess.Popen(
        [*cli, "serve", "--config", str(config), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        path = config.parent / "admin.sock"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the daemon did not start (exit {proc.poll()})")
            time.sleep(0.05)  # polling a process we do not control; bounded by the deadline
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["PYTHONPATH"] = str(ROOT)
    cli = [sys.executable, "-m", "interlock.cli"]
    # /tmp, not $TMPDIR: the admin socket's path must fit AF_UNIX's limit.
    with tempfile.TemporaryDirectory(prefix="ilk-bench-", dir="/tmp") as tmp:
        config = _config(Path(tmp))
        subprocess.run(
            [*cli, "run", "--once", "--config", str(config)],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
        )
        floor = _wall([sys.executable, "-c", "pass"], env, args.repeats)
        commands = {
            "--help": ["--help"],
            "--version": ["--version"],
            "history": ["history", "--config", str(config)],
            "plan": ["plan", "--config", str(config)],
        }
        results = {name: _wall([*cli, *argv], env, args.repeats) for name, argv in commands.items()}
        offline = _wall([*cli, "status", "--config", str(config)], env, args.repeats)
        with _serving(cli, config, env):
            results["status"] = _wall([*cli, "status", "--config", str(config)], env, args.repeats)
    for name, ms in results.items():
        verdict = "ok" if ms < TARGET_MS else f"over {TARGET_MS:g} ms"
        print(f"interlock {name:<10} {ms:7.1f} ms  ({ms / floor:4.1f}x python -c pass)  {verdict}")
    print(f"interlock status, no daemon {offline:7.1f} ms  ({offline / floor:4.1f}x, off target)")
    print(f"python -c pass     {floor:7.1f} ms (floor)")
    print(
        json.dumps(
            {
                "floor_ms": round(floor, 1),
                "median_ms": {k: round(v, 1) for k, v in results.items()},
                "ratio": {k: round(v / floor, 2) for k, v in results.items()},
                "status_no_daemon_ms": round(offline, 1),
                "target_ms": TARGET_MS,
                "repeats": args.repeats,
            }
        )
    )


if __name__ == "__main__":
    main()
