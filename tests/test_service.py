"""``interlock serve`` as systemd runs it: a real subprocess, sd_notify on a socket the test
owns, signals, reloads, and recovery after a crash.

:class:`Daemon` (also used by ``test_admin.py``) starts the daemon with its admin socket
and notify socket under a short temporary folder (AF_UNIX paths are limited to 108 bytes).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from interlock.cli.adminclient import AdminClient
from interlock.kit.context import ComponentContext
from interlock.kit.publish import SnapshotDataset, discard
from interlock.outcome import Outcome
from tests.conftest import component

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(60)


class StagesAndSleeps:
    """Stages a partial dataset, then sleeps ``settings.seconds`` (cleanup removes the file)."""

    settings_schema = None

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings

    async def run(self, ctx: ComponentContext) -> Outcome:
        staged = SnapshotDataset(ctx.data_dir, ctx.name).staging_path(ctx.run_id)
        staged.write_bytes(b"half a dataset")
        ctx.on_cleanup(lambda: discard(staged))
        await asyncio.sleep(float(self.settings.get("seconds", 60)))
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.time_ns()}")


def stages(seconds: float = 60, frequency: str = "1h") -> dict[str, Any]:
    """A component entry for :class:`StagesAndSleeps`."""
    return {
        "class": "tests.test_service:StagesAndSleeps",
        "frequency": frequency,
        "retries": 0,
        "settings": {"seconds": seconds},
    }


class Daemon:
    """``interlock serve`` in a subprocess, with the test holding its NOTIFY_SOCKET."""

    def __init__(
        self,
        root: Path,
        components: dict[str, Any],
        *,
        grace: float = 0.5,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.config = root / "orchestration.json"
        self.socket = root / "admin.sock"
        self.log = root / "daemon.log"
        self.grace = grace
        self.extra_env = dict(env or {})
        self.write_config(components)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(root / "notify"))
        self.messages: list[str] = []
        self._read = 0  # messages[:_read] were already matched or passed over
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self, components: dict[str, Any] | str) -> None:
        """Write the config (a dict of components, or raw text for a broken one)."""
        if isinstance(components, str):
            self.config.write_text(components)
            return
        doc = {
            "components": components,
            "runtime_settings": {
                "state_dir": str(self.root / "state"),
                "data_dir": str(self.root / "data"),
                "retry_backoff_seconds": 0.01,
                "retry_backoff_max_seconds": 0.05,
            },
        }
        self.config.write_text(json.dumps(doc))

    def start(self) -> Daemon:
        """Start the process and wait for READY=1."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLOCK_", "WATCHDOG"))}
        env.update(
            PYTHONPATH=str(REPO),
            NOTIFY_SOCKET=str(self.root / "notify"),
            INTERLOCK_ADMIN_READ_TIMEOUT="1",
        )
        env.update(self.extra_env)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "interlock.cli",
                    "serve",
                    "--config",
                    str(self.config),
                    "--socket",
                    str(self.socket),
                    "--grace",
                    str(self.grace),
                    "--log-format",
                    "json",
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_notify("READY=1", timeout=15)
        self._read -= 1  # READY's own STATUS= line counts for wait_status
        return self

    def wait_notify(self, line: str, timeout: float = 10) -> str:
        """The next datagram holding ``line`` (a whole ``KEY=value`` line, or a ``KEY=`` prefix)."""
        return self._wait(
            lambda m: m == line or (line.endswith("=") and m.startswith(line)), line, timeout
        )

    def wait_status(self, text: str, timeout: float = 10) -> str:
        """The next datagram whose STATUS= line contains ``text``."""
        return self._wait(lambda m: m.startswith("STATUS=") and text in m, text, timeout)

    def _wait(self, matches: Callable[[str], bool], what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            while self._read < len(self.messages):
                data = self.messages[self._read]
                self._read += 1
                if any(matches(m) for m in data.split("\n")):
                    return data
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what!r} within {timeout} s; got {self.messages}")
            self.notify.settimeout(left)
            try:
                self.messages.append(self.notify.recv(4096).decode())
            except TimeoutError:
                continue

    def client(self) -> AdminClient:
        """An admin client on this daemon's socket."""
        return AdminClient(self.socket, timeout_s=10)

    def request(self, command: str, **args: Any) -> dict[str, Any]:
        """One admin request; the raw reply."""
        return self.client().call(command, **args)

    def events(self, names: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """A live watch stream (a generator; close it to disconnect)."""
        return self.client().watch(names, idle_timeout_s=15)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Send ``sig`` and wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def logs(self) -> list[dict[str, Any]]:
        """The daemon's JSON log lines so far."""
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "<not json>", "line": line})
        return out

    def history(self) -> list[dict[str, Any]]:
        """Component runs from the state database (read directly)."""
        conn = sqlite3.connect(self.root / "state" / "state.sqlite")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM component_runs ORDER BY rowid")]
        finally:
            conn.close()

    def close(self) -> None:
        """Kill the process if still alive; close the notify socket."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.notify.close()


def next_event(stream: Iterator[dict[str, Any]], **match: Any) -> dict[str, Any]:
    """The next event on ``stream`` whose fields equal ``match`` (bounded by its timeout)."""
    for event in stream:
        if all(event.get(k) == v for k, v in match.items()):
            return event
    raise AssertionError(f"the stream ended before an event matching {match}")


def settle(d: Daemon) -> None:
    """Return once the runs in progress now have finished (a paused ticker starts no more)."""
    stream = d.events(["run_finished"])
    try:
        for run_id in d.request("status")["result"]["daemon"]["active_runs"]:
            next_event(stream, run_id=run_id)
    finally:
        stream.close()  # type: ignore[attr-defined]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder under /tmp short enough for AF_UNIX socket paths."""
    path = Path(tempfile.mkdtemp(prefix="ilk-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test started; killed and closed afterwards."""
    started: list[Daemon] = []
    yield started
    for d in started:
        d.close()


def test_sd_notify_ready_status_watchdog_and_stopping(
    short_dir: Path, daemons: list[Daemon]
) -> None:
    """READY=1 with a STATUS= line, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1, exit 0."""
    d = Daemon(short_dir, {"a": component("Publishes", "1h")}, env={"WATCHDOG_USEC": "400000"})
    daemons.append(d)
    ready = d.start().messages[-1]
    assert ready.startswith("READY=1\n")
    assert "STATUS=" in ready and "components" in ready
    sent = time.monotonic()
    d.wait_notify("WATCHDOG=1", timeout=5)
    d.wait_notify("WATCHDOG=1", timeout=5)
    assert time.monotonic() - sent < 2  # every 0.2 s, not every 0.4 s or slower
    assert d.request("pause", component="a")["ok"]
    assert d.wait_status("paused: a").startswith("STATUS=1 components; idle; paused: a")
    assert d.stop() == 0
    d.wait_notify("STOPPING=1", timeout=5)


def test_sigterm_during_a_long_component_records_it_and_cleans_staging(
    short_dir: Path, daemons: list[Daemon]
) -> None:
    """SIGTERM mid-run: exit 0 within the grace period, outcome recorded, no staging left."""
    d = Daemon(short_dir, {"slow": stages(60)}, grace=0.5)
    daemons.append(d)
    d.start().wait_status("running: slow")
    assert list((short_dir / "data" / ".staging").iterdir())  # the component is mid-write
    began = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - began < 10
    rows = d.history()
    assert [(r["component"], r["status"]) for r in rows] == [("slow", "cancelled")]
    assert not list((short_dir / "data" / ".staging").iterdir())
    assert any(line["event"] == "stopped" for line in d.logs())


def test_sighup_applies_a_valid_config_without_interrupting_a_running_component(
    short_dir: Path, daemons: list[Daemon]
) -> None:
    """A valid new config is applied on SIGHUP; the component running meanwhile finishes."""
    d = Daemon(short_dir, {"slow": stages(3)})
    daemons.append(d)
    d.start().wait_status("running: slow")
    stream = d.events()
    d.write_config({"slow": stages(3), "added": component("Publishes", "1h")})
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)
    assert next_event(stream, event="config_reloaded")["applied"] is True
    next_event(stream, event="component_succeeded", component="added")
    next_event(stream, event="component_succeeded", component="slow")
    status = d.request("status")["result"]
    assert [c["component"] for c in status["components"]] == ["slow", "added"]
    d.wait_notify("READY=1")  # systemd hears the reload has finished
    assert d.stop() == 0


def test_sighup_with_an_invalid_config_keeps_the_old_one_and_says_why(
    short_dir: Path, daemons: list[Daemon]
) -> None:
    """An invalid config on SIGHUP is rejected and logged; the daemon serves the old one."""
    d = Daemon(short_dir, {"a": component("Publishes", "1h")})
    daemons.append(d)
    stream = d.start().events()
    d.write_config({"a": component("Publishes", "1h", deps=["nowhere"])})
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)
    reloaded = next_event(stream, event="config_reloaded")
    assert reloaded["applied"] is False and "'nowhere'" in reloaded["error"]
    settle(d)  # the run it started by itself, "a" being due, has ended
    reply = d.request("trigger", component="a")
    assert reply["ok"], reply
    next_event(stream, event="component_succeeded", component="a", run_id=reply["result"]["run_id"])
    rejected = [line for line in d.logs() if line["event"] == "config_reload_rejected"]
    assert rejected and "depends on unknown component 'nowhere'" in rejected[0]["error"]
    assert d.stop() == 0


def test_reload_command_reports_an_invalid_config(short_dir: Path, daemons: list[Daemon]) -> None:
    """The ``reload`` command answers invalid_config with the problems; the old config stays."""
    d = Daemon(short_dir, {"a": component("Publishes", "1h")})
    daemons.append(d)
    d.start()
    d.write_config("{not json")
    reply = d.request("reload")
    assert reply["ok"] is False and reply["error"]["code"] == "invalid_config"
    assert "invalid JSON" in reply["error"]["message"]
    assert d.request("status")["ok"]
    assert d.stop() == 0


def test_start_after_a_crash_records_interrupted_cleans_staging_and_runs_overdue_once(
    short_dir: Path, daemons: list[Daemon]
) -> None:
    """After SIGKILL and downtime a new daemon records the run interrupted and runs it once."""
    first = Daemon(short_dir, {"slow": stages(60)})
    daemons.append(first)
    first.start().wait_status("running: slow")
    # A round trip through the daemon's store: the run's start is written by now.
    assert first.request("history")["ok"]
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    first.notify.close()
    (short_dir / "notify").unlink()
    # The daemon stayed down for three hours: the hourly component is overdue.
    conn = sqlite3.connect(short_dir / "state" / "state.sqlite")
    with conn:
        conn.execute(
            "UPDATE component_state SET last_started_at = ?", ("2020-01-01T00:00:00+00:00",)
        )
    conn.close()
    second = Daemon(short_dir, {"slow": stages(60)})
    daemons.append(second)
    second.start().wait_status("running: slow")
    run_id = second.request("status")["result"]["components"][0]["run_id"]
    assert second.history()[0]["status"] == "interrupted"
    staging = list((short_dir / "data" / ".staging").iterdir())
    assert [p.name for p in staging] == [f"slow-{run_id}.sqlite"]  # only the new run's
    assert second.stop() == 0
    statuses = [r["status"] for r in second.history()]
    assert statuses == ["interrupted", "cancelled"]


def test_a_pause_survives_a_restart(short_dir: Path, daemons: list[Daemon]) -> None:
    """A component paused through the socket is still paused after the daemon restarts."""
    d = Daemon(short_dir, {"a": component("Publishes", "1s")})
    daemons.append(d)
    d.start()
    assert d.request("pause", component="a")["result"]["paused"] == ["a"]
    assert d.stop() == 0
    d.notify.close()
    (short_dir / "notify").unlink()
    again = Daemon(short_dir, {"a": component("Publishes", "1s")})
    daemons.append(again)
    again.start()
    status = again.request("status")["result"]
    assert status["components"][0]["state"] == "paused"
    plan = again.request("plan")["result"]
    assert plan[0]["reason"] == "paused"
    assert again.stop() == 0
