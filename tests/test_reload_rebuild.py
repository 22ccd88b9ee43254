"""A reload applies everything it can: alerting channels, the metrics listener and the admin
socket are rebuilt when their config changed, and what cannot change live is named.

Every daemon is a real ``interlock serve`` subprocess; the Slack stand-ins run on their own
event loop in a thread, so the test's blocking admin calls do not stall them.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from interlock.cli.adminclient import AdminClient
from tests.conftest import component
from tests.notify_servers import SlackStandin
from tests.test_service import (  # noqa: F401 (fixtures)
    REPO,
    Daemon,
    daemons,
    short_dir,
)

T = TypeVar("T")

pytestmark = pytest.mark.timeout(60)


class LoopThread:
    """An event loop in a thread, for servers the test's blocking calls must not stall."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


class ConfigDaemon(Daemon):
    """A daemon whose config carries more than components (and maybe its socket path)."""

    def __init__(self, root: Path, doc: dict[str, Any], **kwargs: Any) -> None:
        self.extra_doc: dict[str, Any] = {}
        self.use_config_socket = kwargs.pop("use_config_socket", False)
        super().__init__(root, {}, **kwargs)
        self.write_doc(doc)

    def write_doc(self, doc: dict[str, Any]) -> None:
        """Write the config: ``doc`` over the usual runtime settings."""
        runtime = {
            "state_dir": str(self.root / "state"),
            "data_dir": str(self.root / "data"),
            "retry_backoff_seconds": 0.01,
            "retry_backoff_max_seconds": 0.05,
            **doc.get("runtime_settings", {}),
        }
        self.config.write_text(json.dumps({**doc, "runtime_settings": runtime}))

    def start(self) -> Daemon:
        if not self.use_config_socket:
            return super().start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLOCK_", "WATCHDOG"))}
        env.update(PYTHONPATH=str(REPO), NOTIFY_SOCKET=str(self.root / "notify"))
        env.update(self.extra_env)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "interlock.cli", "serve", "--config", str(self.config)),
                    *("--grace", str(self.grace), "--log-format", "json"),
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_notify("READY=1", timeout=15)
        return self


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> int:
    """The HTTP status of GET /metrics on ``port`` (raises when nothing listens)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return int(response.status)


def reload(d: Daemon) -> dict[str, Any]:
    reply = d.request("reload")
    assert reply["ok"], reply
    return dict(reply["result"])


def test_new_alerting_target_gets_the_next_alert(
    short_dir: Path,  # noqa: F811 (fixture)
    daemons: list[Daemon],  # noqa: F811 (fixture)
    loop_thread: LoopThread,
) -> None:
    """After a reload that points Slack elsewhere, the next failure is posted to the new hook."""
    old, new = SlackStandin(), SlackStandin()
    loop_thread.run(old.start())
    loop_thread.run(new.start())
    try:

        def doc(components: dict[str, Any], hook: str) -> dict[str, Any]:
            alerting = {"enabled": True, "run_summary": "never", "slack": {"webhook_url": hook}}
            return {"components": components, "performance_monitoring": {"alerting": alerting}}

        env = {"OLD_HOOK": old.url, "NEW_HOOK": new.url}
        d = ConfigDaemon(short_dir, doc({"a": component("Fails")}, "${OLD_HOOK}"), env=env)
        daemons.append(d)
        d.start()
        (first,) = loop_thread.run(old.wait(1))
        assert first["text"] == "a failed"
        d.write_doc(doc({"a": component("Fails"), "b": component("Fails")}, "${NEW_HOOK}"))
        result = reload(d)
        assert "alerting" in result["rebuilt"]
        (second,) = loop_thread.run(new.wait(1))  # b is new, so due at once, and fails
        assert second["text"] == "b failed"
        assert len(old.payloads) == 1
        assert d.stop() == 0, d.log.read_text()
    finally:
        loop_thread.run(old.stop())
        loop_thread.run(new.stop())


def test_new_metrics_address_is_served_and_the_old_one_closed(
    short_dir: Path,  # noqa: F811 (fixture)
    daemons: list[Daemon],  # noqa: F811 (fixture)
) -> None:
    """metrics.listen changed: the new port answers /metrics, the old one refuses."""
    first, second = free_port(), free_port()

    def doc(port: int) -> dict[str, Any]:
        metrics = {"enabled": True, "listen": f"127.0.0.1:{port}"}
        return {
            "components": {"a": component("Publishes")},
            "performance_monitoring": {"metrics": metrics},
        }

    d = ConfigDaemon(short_dir, doc(first))
    daemons.append(d)
    d.start()
    assert scrape(first) == 200
    d.write_doc(doc(second))
    result = reload(d)
    assert "metrics listener" in result["rebuilt"]
    assert scrape(second) == 200
    with pytest.raises(urllib.error.URLError):
        scrape(first)
    assert d.stop() == 0


def test_a_metrics_address_in_use_is_a_rejected_part_and_the_old_one_stays(
    short_dir: Path,  # noqa: F811 (fixture)
    daemons: list[Daemon],  # noqa: F811 (fixture)
) -> None:
    """A new metrics.listen that cannot bind is named as failed; the old port keeps serving."""
    first = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]

        def doc(port: int) -> dict[str, Any]:
            metrics = {"enabled": True, "listen": f"127.0.0.1:{port}"}
            return {
                "components": {"a": component("Publishes")},
                "performance_monitoring": {"metrics": metrics},
            }

        d = ConfigDaemon(short_dir, doc(first))
        daemons.append(d)
        d.start()
        d.write_doc(doc(busy))
        result = reload(d)
        (failed,) = result["failed"]
        assert failed["part"] == "metrics listener" and f"127.0.0.1:{busy}" in failed["error"]
        assert "metrics listener" not in result["rebuilt"]
        assert scrape(first) == 200
        last = d.request("status")["result"]["daemon"]["last_reload"]
        assert last["failed"] == result["failed"]
        assert d.stop() == 0


def test_new_admin_socket_path_answers_and_the_old_one_is_gone(
    short_dir: Path,  # noqa: F811 (fixture)
    daemons: list[Daemon],  # noqa: F811 (fixture)
) -> None:
    """runtime_settings.admin_socket changed: the reply comes on the old path, then the new
    path answers and the old one is removed."""
    components = {"a": component("Publishes")}
    d = ConfigDaemon(
        short_dir,
        {"components": components, "runtime_settings": {"admin_socket": "one.sock"}},
        use_config_socket=True,
    )
    daemons.append(d)
    d.start()
    d.socket = short_dir / "one.sock"
    d.write_doc({"components": components, "runtime_settings": {"admin_socket": "two.sock"}})
    result = reload(d)
    assert "admin socket" in result["rebuilt"]
    new = AdminClient(short_dir / "two.sock", timeout_s=10)
    status = new.request("status")
    assert status["daemon"]["socket"] == str(short_dir / "two.sock")
    assert not (short_dir / "one.sock").exists()
    assert d.stop() == 0


def test_a_new_state_dir_is_named_as_needing_a_restart(
    short_dir: Path,  # noqa: F811 (fixture)
    daemons: list[Daemon],  # noqa: F811 (fixture)
) -> None:
    """state_dir changed: the rest applies, the daemon keeps its state and says to restart."""
    d = ConfigDaemon(short_dir, {"components": {"a": component("Publishes")}})
    daemons.append(d)
    d.start()
    moved = str(short_dir / "elsewhere")
    d.write_doc(
        {
            "components": {"a": component("Publishes"), "b": component("Publishes")},
            "runtime_settings": {"state_dir": moved},
        }
    )
    result = reload(d)
    assert result["components"] == ["a", "b"]
    (needed,) = result["restart_needed"]
    assert needed["setting"] == "runtime_settings.state_dir"
    assert needed["configured"] == moved and needed["in_use"] == str(short_dir / "state")
    last = d.request("status")["result"]["daemon"]["last_reload"]
    assert last["applied"] is True and last["restart_needed"] == result["restart_needed"]
    assert not Path(moved).exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    shown = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "status", "--socket", str(d.socket)],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.returncode == 0, shown.stderr
    assert "needs a restart: runtime_settings.state_dir" in shown.stdout
    assert d.stop() == 0
    applied = [line for line in d.logs() if line["event"] == "config_applied"]
    assert applied[-1]["restart_needed"] == ["runtime_settings.state_dir"]


def test_new_dashboard_address_is_served_and_the_old_one_closed(
    short_dir: Path,  # noqa: F811 (fixture)
    daemons: list[Daemon],  # noqa: F811 (fixture)
) -> None:
    """dashboard.listen changed: the page answers on the new port, the old one refuses."""
    first, second = free_port(), free_port()

    def doc(port: int) -> dict[str, Any]:
        dashboard = {"enabled": True, "listen": f"127.0.0.1:{port}"}
        return {
            "components": {"a": component("Publishes")},
            "performance_monitoring": {"dashboard": dashboard},
        }

    def page(port: int) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return int(response.status)

    d = ConfigDaemon(short_dir, doc(first))
    daemons.append(d)
    d.start()
    assert page(first) == 200
    d.write_doc(doc(second))
    result = reload(d)
    assert "dashboard listener" in result["rebuilt"]
    assert page(second) == 200
    with pytest.raises(urllib.error.URLError):
        page(first)
    assert d.stop() == 0
