"""``interlock serve`` under systemd: ``systemctl reload`` (Type=notify-reload), a second
stop signal, the directories systemd hands over, and the unit file itself.

Every daemon is a real subprocess (:class:`tests.test_service.Daemon`) with the test
holding its NOTIFY_SOCKET; the unit file is read as systemd would, key by key.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interlock.cli.adminclient import AdminClient
from tests.conftest import component
from tests.test_service import (  # noqa: F401 (fixtures)
    Daemon,
    daemons,
    next_event,
    short_dir,
    stages,
)

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "interlock.service"

pytestmark = pytest.mark.timeout(60)


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in µs, as systemd compares MONOTONIC_USEC= with it."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def field(datagram: str, key: str) -> str:
    """The value of ``KEY=`` in one sd_notify datagram."""
    for line in datagram.split("\n"):
        if line.startswith(key + "="):
            return line[len(key) + 1 :]
    raise AssertionError(f"no {key}= in {datagram!r}")


def test_sighup_sends_reloading_with_monotonic_usec_then_ready(
    short_dir: Path,  # noqa: F811 (fixture)
    daemons: list[Daemon],  # noqa: F811 (fixture)
) -> None:
    """systemd's notify-reload handshake: RELOADING=1 with MONOTONIC_USEC=, then READY=1."""
    d = Daemon(short_dir, {"a": component("Publishes", "1h")})
    daemons.append(d)
    d.start()
    d.write_config({"a": component("Publishes", "1h"), "b": component("Publishes", "1h")})
    before = monotonic_usec()
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)
    reloading = d.wait_notify("RELOADING=1")
    assert before <= int(field(reloading, "MONOTONIC_USEC")) <= monotonic_usec()
    d.wait_notify("READY=1")
    last = d.request("status")["result"]["daemon"]["last_reload"]
    assert last["applied"] is True and last["trigger"] == "SIGHUP" and last["error"] is None
    assert d.stop() == 0


def test_a_rejected_reload_is_logged_at_error_and_shown_in_status(
    short_dir: Path,  # noqa: F811 (fixture)
    daemons: list[Daemon],  # noqa: F811 (fixture)
) -> None:
    """An invalid config on reload: READY=1 all the same, an error line, and status says why."""
    d = Daemon(short_dir, {"a": component("Publishes", "1h")})
    daemons.append(d)
    d.start()
    assert d.request("status")["result"]["daemon"]["last_reload"] is None
    d.write_config({"a": component("Publishes", "1h", deps=["nowhere"])})
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)
    d.wait_notify("RELOADING=1")
    d.wait_notify("READY=1")
    last = d.request("status")["result"]["daemon"]["last_reload"]
    assert last["applied"] is False and last["trigger"] == "SIGHUP"
    assert "'nowhere'" in last["error"] and last["at"]
    shown = cli(["status", "--socket", str(d.socket)], short_dir, plain_env())
    assert shown.returncode == 0, shown.stderr
    assert "REJECTED" in shown.stdout and "'nowhere'" in shown.stdout
    assert d.stop() == 0
    rejected = [line for line in d.logs() if line["event"] == "config_reload_rejected"]
    assert [line["level"] for line in rejected] == ["error"]


def unit_settings() -> dict[str, list[str]]:
    """The unit file's ``Key=value`` settings, every value of a repeated key in order."""
    out: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def test_the_unit_reloads_by_notify_and_does_not_restart_a_bad_config() -> None:
    """Type=notify-reload; exit 2 (bad config) is not restarted; no unused CacheDirectory=."""
    unit = unit_settings()
    assert unit["Type"] == ["notify-reload"]
    assert unit["ReloadSignal"] == ["SIGHUP"]
    assert "ExecReload" not in unit  # with notify-reload it would replace the handshake
    assert unit["RestartPreventExitStatus"] == ["2"]
    assert "CacheDirectory" not in unit and "CacheDirectoryMode" not in unit
    assert unit["UMask"] == ["0027"]
    assert unit["Group"] == ["interlock"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_second_stop_signal_ends_the_grace_period_and_records_outcomes(
    short_dir: Path,  # noqa: F811 (fixture)
    daemons: list[Daemon],  # noqa: F811 (fixture)
    sig: int,
) -> None:
    """A second SIGTERM (or Ctrl-C) during a 30 s grace cancels now; the run is recorded."""
    d = Daemon(short_dir, {"slow": stages(60)}, grace=30)
    daemons.append(d)
    d.start().wait_status("running: slow")
    assert d.proc is not None
    d.proc.send_signal(sig)
    d.wait_notify("STOPPING=1")  # in the grace period now
    began = time.monotonic()
    assert d.stop(sig, timeout=20) == 0
    assert time.monotonic() - began < 10  # not the 30 s grace
    assert [(r["component"], r["status"]) for r in d.history()] == [("slow", "cancelled")]
    assert not list((short_dir / "data" / ".staging").iterdir())
    hastened = [line for line in d.logs() if line["event"] == "stop_hastened"]
    assert len(hastened) == 1 and hastened[0]["signal"] == signal.Signals(sig).name


# --- the directories systemd hands over ------------------------------------------------


def plain_env(**extra: str) -> dict[str, str]:
    """This environment without interlock's or systemd's variables, plus ``extra``."""
    drop = ("INTERLOCK_", "WATCHDOG", "NOTIFY_SOCKET", "JOURNAL_STREAM")
    systemd_dirs = ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY", "RUNTIME_DIRECTORY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k not in systemd_dirs}
    env.update(PYTHONPATH=str(REPO), INTERLOCK_ADMIN_READ_TIMEOUT="1", **extra)
    return env


def bare_config(path: Path, **runtime: str) -> Path:
    """A one-component config without state_dir or data_dir unless given."""
    doc = {"components": {"a": component("Publishes", "1h")}, "runtime_settings": runtime}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One bounded ``interlock`` command."""
    return subprocess.run(
        [sys.executable, "-m", "interlock.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serve_takes_config_state_and_socket_from_systemds_directories(short_dir: Path) -> None:  # noqa: F811
    """With only $CONFIGURATION_DIRECTORY, $STATE_DIRECTORY and $RUNTIME_DIRECTORY set, serve
    reads the config, keeps its state and binds its admin socket where systemd said."""
    etc, state, run = short_dir / "etc", short_dir / "state", short_dir / "run"
    run.mkdir()
    bare_config(etc / "orchestration.json")
    bare_config(short_dir / "config" / "orchestration.json", state_dir=str(short_dir / "wrong"))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(short_dir / "notify"))
    notify.settimeout(15)
    env = plain_env(
        CONFIGURATION_DIRECTORY=str(etc),
        STATE_DIRECTORY=str(state),
        RUNTIME_DIRECTORY=str(run),
        NOTIFY_SOCKET=str(short_dir / "notify"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", "serve", "--grace", "0.5", "--log-format", "json"],
        cwd=short_dir,  # holds a ./config/orchestration.json the daemon must not read
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while "READY=1" not in notify.recv(4096).decode().split("\n"):
            pass
        status = AdminClient(run / "admin.sock", timeout_s=10).request("status")
        assert status["daemon"]["config"] == str(etc / "orchestration.json")
        assert (state / "state.sqlite").is_file()
        assert not (short_dir / "wrong").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        notify.close()


def test_serve_does_not_fall_back_to_the_config_of_the_current_directory(tmp_path: Path) -> None:
    """Without --config and any systemd variable, serve names the system path and exits 2."""
    bare_config(tmp_path / "config" / "orchestration.json", state_dir=str(tmp_path / "state"))
    proc = cli(["serve", "--grace", "0.5"], tmp_path, plain_env())
    assert proc.returncode == 2, proc.stderr
    assert "/etc/interlock/orchestration.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "state").exists()


def test_check_config_says_where_the_config_came_from(tmp_path: Path) -> None:
    """check-config names its source: the current directory, $CONFIGURATION_DIRECTORY, argv."""
    bare_config(tmp_path / "config" / "orchestration.json", state_dir=str(tmp_path / "state"))
    local = cli(["check-config"], tmp_path, plain_env())
    assert local.returncode == 0, local.stderr
    assert "config/orchestration.json: valid (1 components)" in local.stdout
    assert "current directory" in local.stdout
    etc = bare_config(tmp_path / "etc" / "orchestration.json", state_dir=str(tmp_path / "s"))
    systemd = cli(["check-config"], tmp_path, plain_env(CONFIGURATION_DIRECTORY=str(etc.parent)))
    assert systemd.returncode == 0, systemd.stderr
    assert f"{etc}: valid" in systemd.stdout and "$CONFIGURATION_DIRECTORY" in systemd.stdout
    given = cli(["check-config", str(etc)], tmp_path, plain_env())
    assert "command line" in given.stdout


def test_under_the_units_umask_datasets_are_group_readable_and_state_is_private(
    tmp_path: Path,
) -> None:
    """UMask=0027: a published dataset is 0640 in a 0750 folder (group 'interlock' reads
    it); the state database and raw payloads stay 0600, the service user's own."""
    from interlock.components.standins.sample_feed import build_zip_of_zips
    from interlock.config.registry import BUILTINS

    feed = tmp_path / "feed.zip"
    feed.write_bytes(build_zip_of_zips())
    doc = {
        "components": {
            "schedule": {
                "class": BUILTINS["gtfs_schedule"],
                "frequency": "daily",
                "retries": 0,
                "settings": {"source": {"path": str(feed)}},
            }
        },
        "runtime_settings": {"state_dir": str(tmp_path / "state"), "data_dir": "data"},
        "quota_management": {"enabled": False},
    }
    config = tmp_path / "orchestration.json"
    config.write_text(json.dumps(doc))
    proc = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "run", "--once", "--config", str(config)],
        cwd=tmp_path,
        env=plain_env(),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(0o027),
    )
    assert proc.returncode == 0, proc.stderr

    def mode(path: Path) -> int:
        return path.stat().st_mode & 0o777

    data = tmp_path / "data"
    assert (mode(data), mode(data / "schedule.sqlite")) == (0o750, 0o640)
    assert mode(tmp_path / "state" / "state.sqlite") == 0o600
    raw = [p for p in (data / "raw").rglob("*") if p.is_file()]
    assert raw and {mode(p) for p in raw} == {0o600}
