"""Two real ``interlock serve`` processes on one PostgreSQL database: one leads, one stands by,
and when the leader is killed with SIGKILL mid-run the standby takes over.

The component counts an API call through the quota guard and fetches from a stand-in
that counts requests; the first fetch holds the run open so the kill lands mid-run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from interlock.kit.context import ComponentContext
from interlock.outcome import Outcome
from tests.test_service import Daemon

pytestmark = pytest.mark.timeout(90)

FAILOVER_S = 2.0


class FetchesAndHolds:
    """Takes a quota call, GETs ``settings.url``, holds for the ``hold_s`` it answers, publishes."""

    settings_schema = None

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings

    async def run(self, ctx: ComponentContext) -> Outcome:
        await ctx.services["quota"].acquire("feed")
        body = await ctx.services["http"].get_json(self.settings["url"], endpoint="feed")
        await asyncio.sleep(float(body["hold_s"]))
        return Outcome.published(records=1, fingerprint=f"feed-{body['n']}")


class HoldsAtTheGate(FetchesAndHolds):
    """As :class:`FetchesAndHolds`, but the first run then waits on the stand-in's gate."""

    async def run(self, ctx: ComponentContext) -> Outcome:
        http = ctx.services["http"]
        await ctx.services["quota"].acquire("feed")
        body = await http.get_json(self.settings["url"], endpoint="feed")
        if body["n"] == 1:  # answered when the test opens the gate
            await http.get_json(self.settings["url"] + "/gate", endpoint="gate")
        return Outcome.published(records=1, fingerprint=f"feed-{body['n']}")


class CountingStandIn:
    """A source on 127.0.0.1 that counts GETs; the first answer holds its run 60 s."""

    def __init__(self) -> None:
        self.calls = 0
        self.first = threading.Event()
        self.gate = threading.Event()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.endswith("/gate"):  # not a feed call: held until opened
                    standin.gate.wait(60)
                    body = b"{}"
                else:
                    standin.calls += 1
                    n = standin.calls
                    body = json.dumps({"n": n, "hold_s": 60 if n == 1 else 0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                standin.first.set()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/feed"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


class SharedDaemon(Daemon):
    """A daemon whose state is the shared PostgreSQL database and whose data_dir is shared."""

    def __init__(
        self,
        root: Path,
        components: dict[str, Any],
        *,
        dsn: str,
        data: Path,
        failover_s: float = FAILOVER_S,
    ) -> None:
        self.dsn, self.data, self.failover_s = dsn, data, failover_s
        super().__init__(root, components)

    def write_config(self, components: dict[str, Any] | str) -> None:
        assert not isinstance(components, str)
        doc = {
            "components": components,
            "runtime_settings": {
                "state_dir": str(self.root / "state"),
                "data_dir": str(self.data),
                "retry_backoff_seconds": 0.01,
                "retry_backoff_max_seconds": 0.05,
                "failover_seconds": self.failover_s,
                "state_store": {"postgresql": {"dsn": self.dsn}},
            },
        }
        self.config.write_text(json.dumps(doc))


@pytest.fixture
def roots() -> Iterator[Path]:
    """A short folder (AF_UNIX paths) holding both daemons and the shared data_dir."""
    path = Path(tempfile.mkdtemp(prefix="ilf-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _db(dsn: str, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def db(dsn: str, sql: str) -> list[dict[str, Any]]:
    """Rows of one query on the shared database (bounded)."""
    return asyncio.run(asyncio.wait_for(_db(dsn, sql), 15))


@pytest.mark.slow
def test_the_standby_takes_over_a_killed_leader_and_reruns_its_interrupted_fetch_once(
    pg_dsn: str, roots: Path
) -> None:
    """kill -9 mid-run: the standby leads within failover_seconds, re-runs the fetch once;
    history has no duplicate and no gap; the quota counted every call the stand-in saw."""
    standin = CountingStandIn()
    components = {
        "feed": {
            "class": "tests.test_failover:FetchesAndHolds",
            "frequency": "1h",
            "retries": 0,
            "settings": {"url": standin.url},
        }
    }
    data = roots / "data"
    (roots / "a").mkdir()
    (roots / "b").mkdir()
    a = SharedDaemon(roots / "a", components, dsn=pg_dsn, data=data)
    b = SharedDaemon(roots / "b", components, dsn=pg_dsn, data=data)
    try:
        a.start()
        assert standin.first.wait(20), "the leader never fetched"
        b.start()  # READY=1 as a standby
        status = b.request("status")["result"]["daemon"]
        assert status["state"] == "standby"
        assert status["summary"].startswith("standby (leader: ")
        assert f"pid {a.proc.pid if a.proc else 0} since " in status["summary"]
        refused = b.request("trigger", component="feed")
        assert refused["ok"] is False and refused["error"]["code"] == "standby"
        assert f"pid {a.proc.pid if a.proc else 0}" in refused["error"]["message"]

        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        a.proc.wait(10)
        b.wait_status("components", timeout=FAILOVER_S + 10)  # STATUS: leading, not standby
        took = time.monotonic() - killed
        assert took < FAILOVER_S, f"the standby took {took:.2f} s to lead"
        b.wait_status("idle", timeout=20)  # the re-run finished
        (roots / "c").mkdir()
        c = SharedDaemon(roots / "c", components, dsn=pg_dsn, data=data)
        try:  # a standby stops cleanly on SIGTERM, and never led
            c.start()
            assert c.stop() == 0
        finally:
            c.close()
        assert b.stop() == 0  # its history flushed

        rows = db(
            pg_dsn,
            "SELECT run_id, status FROM component_runs WHERE component = 'feed' ORDER BY seq",
        )
        assert [r["status"] for r in rows] == ["interrupted", "succeeded"]
        assert rows[0]["run_id"] != rows[1]["run_id"]
        runs = db(pg_dsn, "SELECT status FROM runs ORDER BY started_at")
        assert [r["status"] for r in runs] == ["interrupted", "succeeded"]
        counted = db(pg_dsn, "SELECT sum(calls)::bigint AS n FROM quota_calls")
        assert standin.calls == 2
        assert counted[0]["n"] == standin.calls
        (epoch,) = db(pg_dsn, "SELECT epoch, pid FROM leader")
        assert epoch["epoch"] == 2 and b.proc is not None and epoch["pid"] == b.proc.pid
    finally:
        a.close()
        b.close()
        standin.close()


@pytest.mark.slow
def test_a_paused_leader_resumed_after_the_takeover_writes_nothing_and_exits(
    pg_dsn: str, roots: Path
) -> None:
    """SIGSTOP the leader mid-run, the standby takes over, SIGCONT: the old leader's run
    finishes but its outcome is refused, it exits 75, and history is the new leader's."""
    standin = CountingStandIn()
    components = {
        "feed": {
            "class": "tests.test_failover:HoldsAtTheGate",
            "frequency": "1h",
            "retries": 0,
            "settings": {"url": standin.url},
        }
    }
    data = roots / "data"
    (roots / "a").mkdir()
    (roots / "b").mkdir()
    a = SharedDaemon(roots / "a", components, dsn=pg_dsn, data=data)
    b = SharedDaemon(roots / "b", components, dsn=pg_dsn, data=data)
    try:
        a.start()
        assert standin.first.wait(20), "the leader never fetched"
        b.start()
        assert a.proc is not None and b.proc is not None
        a.proc.send_signal(signal.SIGSTOP)
        b.wait_status("components", timeout=FAILOVER_S + 10)  # leading
        b.wait_status("idle", timeout=20)  # its re-run finished
        standin.gate.set()  # the old leader's run publishes as soon as it runs again
        a.proc.send_signal(signal.SIGCONT)
        assert a.proc.wait(FAILOVER_S + 10) == 75
        assert any(line.get("event") == "leadership_lost" for line in a.logs())
        assert b.stop() == 0
        rows = db(
            pg_dsn,
            "SELECT status FROM component_runs WHERE component = 'feed' ORDER BY seq",
        )
        assert [r["status"] for r in rows] == ["interrupted", "succeeded"]
        (leader,) = db(pg_dsn, "SELECT epoch, pid FROM leader")
        assert (leader["epoch"], leader["pid"]) == (2, b.proc.pid)
        counted = db(pg_dsn, "SELECT sum(calls)::bigint AS n FROM quota_calls")
        assert counted[0]["n"] == standin.calls == 2
    finally:
        if a.proc is not None and a.proc.poll() is None:
            a.proc.send_signal(signal.SIGCONT)
        a.close()
        b.close()
        standin.close()


@pytest.mark.slow
def test_a_standby_reloaded_on_sighup_leads_with_the_new_config(pg_dsn: str, roots: Path) -> None:
    """systemctl reload on a standby reads the file again; it leads with what it read."""
    first = {"feed": {"class": "tests.testcomponents:Publishes", "frequency": "1h"}}
    data = roots / "data"
    (roots / "a").mkdir()
    (roots / "b").mkdir()
    a = SharedDaemon(roots / "a", first, dsn=pg_dsn, data=data)
    b = SharedDaemon(roots / "b", first, dsn=pg_dsn, data=data)
    try:
        a.start()
        b.start()
        b.write_config({**first, "extra": {**first["feed"]}})
        assert b.proc is not None and a.proc is not None
        b.proc.send_signal(signal.SIGHUP)
        b.wait_notify("RELOADING=1", timeout=10)
        b.wait_notify("READY=1", timeout=10)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        b.wait_status("components", timeout=FAILOVER_S + 10)
        names = [c["component"] for c in b.request("status")["result"]["components"]]
        assert sorted(names) == ["extra", "feed"]
        assert b.stop() == 0
    finally:
        a.close()
        b.close()
