"""How fast the CLI answers: --help, --version, status, history and plan, as wall time.

Each command runs as a fresh process (as a person types it), against a config with
five components and a state database holding one run: ``history`` and ``plan`` with
no daemon (SQLite read directly, the config loaded), ``status`` with a daemon serving
the config (its answer over the admin socket, as an operator sees it), and also
``status`` without one (the plan computed here) for reference, off the target; and
``plan`` of ``config/demo.json`` ("plan, built-ins"), which imports and checks every
built-in component class (their runs' loaders, writers and protobuf stay unimported).
The floor is ``python -c pass`` with the same interpreter, measured in the same
run, round-robin with the commands so that load on the machine falls on all alike.
Modules start from bytecode, as an installed interlock does (cached in a folder of
the bench's own; ``--no-bytecode`` compiles every module each run instead). Prints
the median wall and CPU time of each and its wall ratio to the floor; the last line
is JSON.
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


def _once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms: user + system) of one run of ``cmd``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - t0) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} exited {proc.returncode}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def _medians(
    commands: dict[str, list[str]], env: dict[str, str], repeats: int
) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) of each command, run round-robin so that a change in the
    machine's load falls on every command alike rather than on whichever ran then."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            runs[name].append(_once(cmd, env))
    return {
        name: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
        for name, r in runs.items()
    }


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
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="keep the environment's PYTHONDONTWRITEBYTECODE: every module compiled each run",
    )
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["PYTHONPATH"] = str(ROOT)
    if not args.no_bytecode:
        # As an installed interlock starts: from bytecode (pip compiles it at install).
        # The caches go to a folder of the bench's own, not into the source tree.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "ilk-bench-pycache")
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
        floor_cmd = [sys.executable, "-c", "pass"]
        offline = _medians(
            {
                "floor": floor_cmd,
                "--help": [*cli, "--help"],
                "--version": [*cli, "--version"],
                "history": [*cli, "history", "--config", str(config)],
                "plan": [*cli, "plan", "--config", str(config)],
                "plan, built-ins": [*cli, "plan", "--config", str(ROOT / "config" / "demo.json")],
                "status, no daemon": [*cli, "status", "--config", str(config)],
            },
            env,
            args.repeats,
        )
        with _serving(cli, config, env):
            served = _medians(
                {"floor": floor_cmd, "status": [*cli, "status", "--config", str(config)]},
                env,
                args.repeats,
            )
    # Each ratio is against the floor measured in the same round-robin.
    results = {k: (*v, offline["floor"][0]) for k, v in offline.items() if k != "floor"}
    results["status"] = (*served["status"], served["floor"][0])
    reference = results.pop("status, no daemon")
    for name, (wall, cpu, floor) in results.items():
        verdict = "ok" if wall < TARGET_MS else f"over {TARGET_MS:g} ms"
        print(
            f"interlock {name:<15} {wall:7.1f} ms  ({wall / floor:4.1f}x python -c pass)  "
            f"cpu {cpu:6.1f} ms  {verdict}"
        )
    wall, cpu, floor = reference
    print(f"interlock status, no daemon: {wall:.1f} ms ({wall / floor:.1f}x), off target")
    floor_wall, floor_cpu = offline["floor"]
    print(f"python -c pass          {floor_wall:7.1f} ms (floor)  cpu {floor_cpu:.1f} ms")
    print(
        json.dumps(
            {
                "floor_ms": round(offline["floor"][0], 1),
                "median_ms": {k: round(v[0], 1) for k, v in results.items()},
                "ratio": {k: round(v[0] / v[2], 2) for k, v in results.items()},
                "cpu_ms": {k: round(v[1], 1) for k, v in results.items()},
                "status_no_daemon_ms": round(reference[0], 1),
                "target_ms": TARGET_MS,
                "repeats": args.repeats,
            }
        )
    )


if __name__ == "__main__":
    main()
