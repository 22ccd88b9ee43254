"""The admin socket of a real ``interlock serve`` subprocess: the commands, the CLI that
uses them, and requests that are wrong or hostile while the schedule carries on."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import pwd
import re
import socket
import stat
import subprocess
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from interlock.service.admin import MAX_CLIENTS, MAX_LINE_BYTES
from tests.conftest import component
from tests.test_service import REPO, Daemon, daemons, next_event, settle, short_dir, stages

__all__ = ["daemons", "short_dir"]  # fixtures shared with test_service

pytestmark = pytest.mark.timeout(60)


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``interlock ARGS`` as a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "interlock.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def raw(path: Path, data: bytes, *, timeout: float = 5) -> list[dict[str, Any]]:
    """Send ``data`` on a fresh connection, half-close, and read every reply line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        buf = b""
        while chunk := sock.recv(65536):
            buf += chunk
    return [json.loads(line) for line in buf.splitlines()]


@pytest.fixture
def ticking(short_dir: Path, daemons: list[Daemon]) -> Daemon:
    """A daemon whose 'tick' publishes every second."""
    d = Daemon(short_dir, {"tick": component("Publishes", "1s")})
    daemons.append(d)
    return d.start()


def test_status_shows_each_component_state_last_outcome_and_next_due(
    short_dir: Path, daemons: list[Daemon]
) -> None:
    """``status`` reports the daemon and, per component, state, last outcome and next due."""
    d = Daemon(short_dir, {"quick": component("Publishes", "1h"), "slow": stages(60)})
    daemons.append(d)
    d.start().wait_status("running: slow")
    reply = d.request("status")
    assert reply["ok"], reply
    result = reply["result"]
    assert d.proc is not None and result["daemon"]["pid"] == d.proc.pid
    assert result["daemon"]["state"] == "serving" and len(result["daemon"]["active_runs"]) == 1
    by_name = {c["component"]: c for c in result["components"]}
    assert by_name["slow"]["state"] == "running" and by_name["slow"]["run_id"]
    assert by_name["quick"]["last_status"] == "succeeded"
    assert by_name["quick"]["paused"] is False and by_name["quick"]["frequency"] == "1h"
    assert by_name["quick"]["next_due"] > by_name["quick"]["last_started_at"]
    assert stat.S_IMODE(os.stat(d.socket).st_mode) == 0o660


def test_trigger_starts_a_run_that_watch_streams(short_dir: Path, daemons: list[Daemon]) -> None:
    """``trigger`` returns a run id at once and ``watch`` streams that run's events."""
    d = Daemon(short_dir, {"a": component("Publishes", "1h")})
    daemons.append(d)
    stream = d.start().events()
    settle(d)  # the run it started by itself, "a" being due, has ended
    reply = d.request("trigger", component="a")
    assert reply["ok"], reply
    run_id = reply["result"]["run_id"]
    assert reply["result"]["components"] == ["a"]
    assert next_event(stream, event="run_started", run_id=run_id)["trigger"].startswith("admin")
    done = next_event(stream, event="component_succeeded", run_id=run_id)
    assert done["component"] == "a" and done["records"] == 1
    next_event(stream, event="run_finished", run_id=run_id)


def test_pause_holds_a_component_until_resume(ticking: Daemon) -> None:
    """A paused component is planned as paused and a trigger refuses it; resume brings it back."""
    stream = ticking.events(["component_paused", "component_resumed", "component_started"])
    assert ticking.request("pause", component="tick")["result"]["changed"] == ["tick"]
    assert next_event(stream, event="component_paused")["component"] == "tick"
    settle(ticking)
    plan = {p["component"]: p for p in ticking.request("plan")["result"]}
    assert plan["tick"]["reason"] == "paused"
    refused = ticking.request("trigger", component="tick")
    assert refused["error"]["code"] == "not_started" and "paused" in refused["error"]["message"]
    assert ticking.request("resume", component="tick")["ok"]
    next_event(stream, event="component_resumed")
    next_event(stream, event="component_started", component="tick")


def test_pause_and_trigger_record_who_asked(ticking: Daemon) -> None:
    """The admin peer's uid and name are in the pause and resume events and the run's trigger."""
    actor = f"admin uid {os.getuid()} ({pwd.getpwuid(os.getuid()).pw_name})"
    stream = ticking.events(["component_paused", "component_resumed", "run_started"])
    assert ticking.request("pause", component="tick")["ok"]
    assert next_event(stream, event="component_paused")["actor"] == actor
    settle(ticking)  # paused: nothing starts by itself now, so the trigger cannot collide
    run_id = ticking.request("trigger", component="tick", force=True)["result"]["run_id"]
    assert next_event(stream, event="run_started", run_id=run_id)["trigger"] == actor
    assert ticking.request("resume", component="tick")["ok"]
    assert next_event(stream, event="component_resumed")["actor"] == actor


def test_cancel_a_component_and_a_run(short_dir: Path, daemons: list[Daemon]) -> None:
    """``cancel`` stops a running component by name, and a whole run by its id."""
    ticking = Daemon(short_dir, {"slow": stages(60)})
    daemons.append(ticking)
    ticking.start().wait_status("running: slow")
    stream = ticking.events(["component_cancelled", "component_started"])
    assert ticking.request("cancel", component="slow")["ok"]
    cancelled = next_event(stream, event="component_cancelled")
    assert cancelled["component"] == "slow"
    assert cancelled["reason"].startswith(f"cancelled by admin uid {os.getuid()}")
    again = ticking.request("trigger", component="slow")["result"]["run_id"]
    next_event(stream, event="component_started", component="slow", run_id=again)
    assert ticking.request("cancel", run_id=again)["result"] == {
        "cancelled": "run",
        "run_id": again,
    }
    by_run = next_event(stream, event="component_cancelled", run_id=again)
    assert by_run["reason"].startswith(f"cancelled by admin uid {os.getuid()}")
    missing = ticking.request("cancel", component="slow")
    assert missing["error"]["code"] == "not_running"


def test_bad_requests_get_clear_errors_on_one_connection(ticking: Daemon) -> None:
    """Invalid JSON, a non-object, an unknown command or component each get a coded error."""
    replies = raw(
        ticking.socket,
        b'{"command": "status"\n'
        b"[1, 2]\n"
        b'{"command": "explode", "id": 7}\n'
        b'{"command": "trigger", "component": "gtfs_schedul"}\n'
        b'{"command": "history", "limit": "many"}\n'
        b'{"command": "status", "id": "last"}\n',
    )
    codes = [r.get("error", {}).get("code") for r in replies]
    assert codes == [
        "invalid_json",
        "invalid_request",
        "unknown_command",
        "unknown_component",
        "invalid_argument",
        None,
    ]
    assert replies[2]["id"] == 7 and "known: cancel, history" in replies[2]["error"]["message"]
    assert "'gtfs_schedul'" in replies[3]["error"]["message"]
    assert replies[5]["ok"] and replies[5]["id"] == "last"


def test_a_line_over_the_limit_is_refused_and_the_connection_closed(ticking: Daemon) -> None:
    """A request line above the size limit gets line_too_long; the daemon still answers."""
    replies = raw(
        ticking.socket, b'{"command": "status", "pad": "' + b"x" * MAX_LINE_BYTES + b'"}\n'
    )
    assert [r["error"]["code"] for r in replies] == ["line_too_long"]
    assert ticking.request("status")["ok"]


def test_a_client_that_never_sends_is_dropped_after_the_read_timeout(ticking: Daemon) -> None:
    """A silent client is told it timed out and disconnected; the daemon carries on."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(ticking.socket))
        data = sock.recv(65536)
        assert sock.recv(65536) == b""  # closed by the daemon
    assert json.loads(data)["error"]["code"] == "timeout"
    assert ticking.request("status")["ok"]
    assert any(line["event"] == "admin_client_timeout" for line in ticking.logs())


async def test_200_clients_at_once_get_an_answer_or_busy_and_the_schedule_runs_on(
    ticking: Daemon,
) -> None:
    """200 simultaneous clients each get a status or a busy error; ticks keep coming."""
    stream = ticking.events(["component_started"])

    async def one() -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(str(ticking.socket))
        try:
            writer.write(b'{"command": "status"}\n')
            await writer.drain()
            return dict(json.loads(await reader.readline()))
        finally:
            writer.close()

    replies = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(200))), 30)
    ok = [r for r in replies if r["ok"]]
    busy = [r for r in replies if not r["ok"]]
    # Every client is answered; the cap (less the one watch connection) are served.
    assert len(ok) + len(busy) == 200 and len(ok) >= MAX_CLIENTS - 1
    assert {r["error"]["code"] for r in busy} <= {"busy"}
    assert all(r["result"]["components"][0]["component"] == "tick" for r in ok)
    # The schedule carried on: a new tick starts after the storm.
    await asyncio.wait_for(
        asyncio.to_thread(next_event, stream, event="component_started", component="tick"), 15
    )
    assert ticking.request("status")["ok"]
    logged = [line for line in ticking.logs() if line["event"] == "admin_command"]
    assert logged and all(line["uid"] == os.getuid() and line["pid"] for line in logged)


def test_cli_admin_commands_print_tables_and_json(ticking: Daemon) -> None:
    """status, pause, resume, trigger, plan, history and report work from the CLI over the
    socket."""
    sock = ["--socket", str(ticking.socket), "--config", str(ticking.config)]
    status = cli("status", *sock)
    assert status.returncode == 0, status.stderr
    assert "COMPONENT" in status.stdout and "tick" in status.stdout and "pid" in status.stdout
    as_json = json.loads(cli("status", "--json", *sock).stdout)
    assert [c["component"] for c in as_json["components"]] == ["tick"]
    assert cli("pause", "tick", *sock).stdout.startswith("paused tick")
    settle(ticking)
    plan = json.loads(cli("plan", "--json", *sock).stdout)
    assert {p["component"]: p["reason"] for p in plan}["tick"] == "paused"
    assert cli("resume", "tick", *sock).returncode == 0
    unknown = cli("trigger", "nope", *sock)
    assert unknown.returncode == 2 and "unknown component 'nope'" in unknown.stderr
    history = json.loads(cli("history", "--json", "--limit", "3", *sock).stdout)
    assert len(history) <= 3
    report = json.loads(cli("report", "--json", "--since", "1h", *sock).stdout)
    assert report["components"]["tick"]["runs"] >= 1
    bad = cli("report", "--since", "soon", *sock)
    assert bad.returncode == 2 and "'soon'" in bad.stderr


def test_cli_without_a_daemon_says_so_and_exits_3(short_dir: Path) -> None:
    """Admin commands with nothing listening explain it and exit 3, without a traceback."""
    for args in (["status"], ["trigger", "x"], ["pause", "x"], ["reload"], ["watch"]):
        proc = cli(*args, "--socket", str(short_dir / "none.sock"))
        assert proc.returncode == 3, (args, proc.stderr)
        assert "no interlock daemon is listening on" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_refused_trigger_hints_only_what_would_help(
    short_dir: Path, daemons: list[Daemon]
) -> None:
    """Refused as already running, a trigger does not suggest --force (that is for pauses)."""
    d = Daemon(short_dir, {"slow": stages(60)})
    daemons.append(d)
    d.start().wait_status("running: slow")
    refused = d.request("trigger", component="slow")
    assert refused["error"]["code"] == "not_started"
    assert "already_running" in refused["error"]["message"]
    assert "--force" not in refused["error"]["message"]
    resumed = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "resume", "slow", "--socket", str(d.socket)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "(it was not paused)" in resumed.stdout


def test_reload_with_a_broken_config_reaches_the_daemon_and_shows_why(
    short_dir: Path, daemons: list[Daemon]
) -> None:
    """A config broken mid-edit still names its daemon's socket: reload reaches it and fails."""
    d = Daemon(short_dir, {"a": component("Publishes", "1h")})
    daemons.append(d)
    doc = json.loads(d.config.read_text())
    doc["runtime_settings"]["admin_socket"] = str(d.socket)
    d.config.write_text(json.dumps(doc, indent=2))
    d.start()
    d.config.write_text(d.config.read_text().replace('"components": {', '"components": {,'))
    proc = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "reload", "--config", str(d.config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "no interlock daemon is listening" not in proc.stderr, proc.stderr
    assert proc.returncode != 3
    assert "orchestration.json" in proc.stderr + proc.stdout


def _first_line(*args: str) -> str:
    """The first line ``interlock ARGS`` prints (a stream: the process is then ended)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(proc.stdout.readline).result(timeout=20)
    finally:
        proc.kill()
        proc.wait(10)


def test_watch_prints_times_in_the_configured_zone_to_the_second(ticking: Daemon) -> None:
    """watch, like status and history, speaks the configured zone: people see local time to
    the second, JSON carries ISO 8601 with that zone's offset."""
    zone = ZoneInfo("Australia/Melbourne")  # the daemon's configured (default) zone
    sock = ["--socket", str(ticking.socket), "--events", "component_started"]
    line = _first_line("watch", *sock)
    clock, event = line.split()[:2]
    assert event == "component_started" and re.fullmatch(r"\d\d:\d\d:\d\d", clock), line
    shown = datetime.combine(datetime.now(zone).date(), time.fromisoformat(clock), zone)
    gap = abs((datetime.now(zone) - shown).total_seconds()) % 86400
    assert min(gap, 86400 - gap) < 120, (clock, datetime.now(zone))
    at = datetime.fromisoformat(json.loads(_first_line("watch", "--json", *sock))["at"])
    assert at.utcoffset() == at.astimezone(zone).utcoffset() != timedelta(0)
