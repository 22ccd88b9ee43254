"""A notification is sent once, not once per daemon: two real ``interlock serve`` processes
on one PostgreSQL database, alerting to a Slack stand-in.

Only the leader's observers notify; a standby relays the leader's events to ``watch``
and sends nothing. The dedup book is in the shared store (``meta``), so after a failover
the new leader knows the failure the old one announced: it stays quiet while the same
failure repeats, and announces the recovery.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from interlock.kit.context import ComponentContext
from interlock.outcome import Outcome
from tests.test_failover import FAILOVER_S, SharedDaemon, db
from tests.test_service import next_event

pytestmark = pytest.mark.timeout(120)


class FailsWhileFlagged:
    """Fails while the file ``settings.flag`` exists, else publishes."""

    settings_schema = None

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.settings = settings

    async def run(self, ctx: ComponentContext) -> Outcome:
        if await asyncio.to_thread(Path(self.settings["flag"]).exists):
            raise RuntimeError("the source answered nonsense")
        return Outcome.published(records=1, fingerprint=f"{self.name}-{ctx.run_id}")


class SlackHook:
    """A Slack incoming webhook on 127.0.0.1 (threaded: the daemons are other processes)."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook.changed:
                    hook.payloads.append(json.loads(body))
                    hook.changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/x"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """The payloads once there are ``count`` (or what came within ``timeout``)."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.payloads) >= count, timeout)
            return list(self.payloads)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AlertingDaemon(SharedDaemon):
    """A shared-store daemon alerting to the Slack hook in ``TEST_SLACK_WEBHOOK``."""

    def write_config(self, components: dict[str, Any] | str) -> None:
        super().write_config(components)
        doc = json.loads(self.config.read_text())
        doc["performance_monitoring"] = {
            "alerting": {
                "enabled": True,
                "run_summary": "never",
                "retry_backoff_seconds": 0.05,
                "slack": {"webhook_url": "${TEST_SLACK_WEBHOOK}"},
            }
        }
        self.config.write_text(json.dumps(doc))


@pytest.fixture
def roots() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="iln-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _failed_in_history(d: SharedDaemon, run_id: str) -> bool:
    rows = d.request("history", component="broken")["result"]
    return any(r["run_id"] == run_id and r["status"] == "failed" for r in rows)


@pytest.mark.slow
def test_a_failure_is_announced_once_by_the_leader_and_not_again_after_a_failover(
    pg_dsn: str, roots: Path
) -> None:
    hook = SlackHook()
    flag = roots / "failing"
    components = {
        "broken": {
            "class": "tests.test_notify_once:FailsWhileFlagged",
            "frequency": "1h",
            "retries": 0,
            "settings": {"flag": str(flag)},
        }
    }
    data = roots / "data"
    (roots / "a").mkdir()
    (roots / "b").mkdir()
    a = AlertingDaemon(roots / "a", components, dsn=pg_dsn, data=data)
    b = AlertingDaemon(roots / "b", components, dsn=pg_dsn, data=data)
    for d in (a, b):
        d.extra_env["TEST_SLACK_WEBHOOK"] = hook.url
    try:
        a.start()
        a.wait_status("idle", timeout=20)  # its first run succeeded: nothing to announce
        b.start()
        assert b.request("status")["result"]["daemon"]["state"] == "standby"
        flag.touch()
        on_b = b.events(["component_failed"])
        try:
            run_id = a.request("trigger", component="broken")["result"]["run_id"]
            failed = next_event(on_b, component="broken", run_id=run_id)  # through the relay
        finally:
            on_b.close()  # type: ignore[attr-defined]
        assert failed["error"]
        assert _failed_in_history(b, run_id)
        first = hook.wait(1, timeout=15)
        assert len(first) == 1 and "broken" in json.dumps(first[0])
        # The standby has read the failure: had it a notifier, it would send now.
        assert len(hook.wait(2, timeout=1.0)) == 1

        def book_has_it() -> bool:
            rows = db(pg_dsn, "SELECT value FROM meta WHERE key = 'notify'")
            return bool(rows) and "broken" in rows[0]["value"]

        assert next((True for _ in range(100) if book_has_it()), False), "book never stored"

        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        if "idle" not in b.wait_status("components", timeout=FAILOVER_S + 10):  # leading
            b.wait_status("idle", timeout=20)
        on_b = b.events(["component_failed", "component_succeeded"])
        try:  # the same failure again, on the new leader: already announced
            run_id = b.request("trigger", component="broken")["result"]["run_id"]
            next_event(on_b, event="component_failed", run_id=run_id)
            flag.unlink()
            run_id = b.request("trigger", component="broken")["result"]["run_id"]
            next_event(on_b, event="component_succeeded", run_id=run_id)
        finally:
            on_b.close()  # type: ignore[attr-defined]
        # The recovery is announced (the new leader knew the failure); nothing in between.
        sent = hook.wait(2, timeout=15)
        assert len(sent) == 2, sent
        assert "recovered" in json.dumps(sent[1])
        assert len(hook.wait(3, timeout=1.0)) == 2
        assert b.stop() == 0
    finally:
        a.close()
        b.close()
        hook.close()
