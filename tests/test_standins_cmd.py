"""``interlock standins``: the stand-ins served on 127.0.0.1 with a config for ``serve``, the
credentials to export, and a clean exit on SIGTERM. A real subprocess each time."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock import secrets
from interlock.config.loader import load_config

REPO = Path(__file__).resolve().parents[1]


class Standins:
    """``interlock standins`` in a subprocess, its stdout read line by line in a thread."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
        env["PYTHONPATH"] = str(REPO)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "interlock.cli", "standins", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until_ready(self, timeout: float = 30) -> list[str]:
        """Every line up to and including the one starting with "ready" (bounded)."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no 'ready' line within {timeout} s; got {seen}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"standins exited ({self.proc.wait(5)}) before ready: {seen}")
            seen.append(line)
            if line.startswith("ready"):
                return seen


@pytest.fixture
def standins(tmp_path: Path) -> Iterator[Standins]:
    s = Standins("--dir", str(tmp_path / "standins"))
    yield s
    if s.proc.poll() is None:
        s.proc.kill()
        s.proc.wait(10)


def test_standins_serve_print_a_config_and_stop_on_sigterm(standins: Standins) -> None:
    """Ready with URLs, a config path and exports; a URL answers; SIGTERM exits 0."""
    lines = standins.until_ready()
    text = "\n".join(lines)
    urls = re.findall(r"http://127\.0\.0\.1:\d+/\S+", text)
    assert urls, text
    with urllib.request.urlopen(
        next(u for u in urls if "/ckan/" in u) + "package_show?id=gtfs-schedule", timeout=10
    ) as response:
        assert response.status == 200
    exports = dict(re.findall(r"export (INTERLOCK_\w+)=(\S+)", text))
    assert set(exports) == {
        "INTERLOCK_DEMO_API_KEY",
        "INTERLOCK_DEMO_PTV_DEVID",
        "INTERLOCK_DEMO_PTV_KEY",
    }
    (config_path,) = re.findall(r"^config: (.+)$", text, re.MULTILINE)
    assert f"interlock serve --config {config_path}" in text
    # With those exports the config is complete: every component is on.
    known = secrets.known_secrets()
    try:
        config = load_config(Path(config_path), env={**os.environ, **exports})
    finally:
        secrets.forget_all_but(known)  # the stand-in keys must not mask other tests' output
    assert all(spec.enabled for spec in config.components.values())
    assert config.runtime.state_dir == Path(config_path).parent / "state"
    standins.proc.send_signal(signal.SIGTERM)
    assert standins.proc.wait(10) == 0


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    """--port-base on a port already taken: a message naming it and exit 2, no traceback."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        s = Standins("--port-base", str(port), "--dir", str(tmp_path))
        assert s.proc.wait(30) == 2
        assert s.proc.stderr is not None
        err = s.proc.stderr.read()
    assert f"127.0.0.1:{port}" in err and "--port-base" in err
    assert "Traceback" not in err
