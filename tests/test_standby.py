"""A standby's admin socket on a real PostgreSQL store: status names the leader, actions are
refused naming it, history is the shared store's, and ``watch`` streams the leader's outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from interlock.cli.adminclient import AdminClient
from interlock.config.model import Config
from interlock.events import utcnow
from interlock.service.leader import PgElection
from interlock.service.standby import StandbyServer, standby_server
from interlock.store.abc import StateStore
from tests.conftest import component
from tests.test_store import two_runs

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder under /tmp short enough for an AF_UNIX socket path."""
    path = Path(tempfile.mkdtemp(prefix="ils-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def standing_by(
    dsn: str, config: Config, short_dir: Path
) -> AsyncIterator[tuple[StateStore, StandbyServer, AdminClient]]:
    """A leader's open (fenced) store, and a standby's server and a client on its socket."""
    leading, waiting = PgElection(dsn, 1.0), PgElection(dsn, 1.0)
    assert await asyncio.wait_for(leading.try_lead(), 10) == 1
    store = leading.store()
    assert store is not None
    await asyncio.wait_for(store.open(), 10)
    service: Any = SimpleNamespace(
        config_path=short_dir / "orchestration.json",
        socket_path=short_dir / "s",
        started_at=utcnow(),
        admin_read_timeout_s=1.0,
    )
    standby = await asyncio.wait_for(standby_server(service, config, waiting), 10)
    try:
        yield store, standby, AdminClient(service.socket_path, timeout_s=10)
    finally:
        await asyncio.wait_for(standby.aclose(), 10)
        await store.close()
        await leading.aclose()
        await waiting.aclose()


def shared_config(make_config: Callable[..., Config], dsn: str, **sections: Any) -> Config:
    """Components a and b on the shared store."""
    return make_config(
        {"a": component("Publishes"), "b": component("Publishes")},
        runtime_settings={"failover_seconds": 1, "state_store": {"postgresql": {"dsn": dsn}}},
        **sections,
    )


@pytest.fixture
async def both(
    pg_dsn: str, make_config: Callable[..., Config], short_dir: Path
) -> AsyncIterator[tuple[StateStore, StandbyServer, AdminClient]]:
    """A leader's store and a standby, without a dashboard."""
    async with standing_by(pg_dsn, shared_config(make_config, pg_dsn), short_dir) as opened:
        yield opened


async def test_a_standby_names_its_leader_and_refuses_what_only_the_leader_does(
    both: tuple[StateStore, StandbyServer, AdminClient],
) -> None:
    """status says standby (leader: host pid N since ...); plan is the stored states'; trigger,
    pause, resume, cancel and reload are refused naming the leader."""
    store, _, client = both
    await asyncio.wait_for(store.record_events(two_runs()[:3]), 5)
    reply = await asyncio.to_thread(client.call, "status")
    daemon = reply["result"]["daemon"]
    assert daemon["state"] == "standby"
    assert daemon["summary"].startswith("standby (leader: ")
    assert f" pid {os.getpid()} since " in daemon["summary"]
    rows = {c["component"]: c for c in reply["result"]["components"]}
    assert rows["a"]["last_status"] == "succeeded" and rows["b"]["last_status"] is None
    assert rows["b"]["next_due"] is not None  # never run: due now, as the leader plans it
    for command in ("trigger", "pause", "resume", "cancel", "reload"):
        args = {} if command == "reload" else {"component": "a"}
        refused = await asyncio.to_thread(client.call, command, **args)
        assert refused["ok"] is False and refused["error"]["code"] == "standby", command
        assert f"pid {os.getpid()}" in refused["error"]["message"]
    history = await asyncio.to_thread(client.call, "history", component="a")
    assert [r["status"] for r in history["result"]] == ["succeeded"]
    plan = await asyncio.to_thread(client.call, "plan")
    details = {r["component"]: r["detail"] for r in plan["result"]}
    assert details["a"].startswith("due since") and details["b"] == "never run"


async def test_watch_on_a_standby_streams_the_outcomes_the_leader_records(
    both: tuple[StateStore, StandbyServer, AdminClient],
) -> None:
    """An outcome the leader writes reaches a watch on the standby within a poll."""
    store, _, client = both
    stream = await asyncio.to_thread(
        client.watch, ["component_succeeded", "component_skipped"], idle_timeout_s=10
    )
    try:
        await asyncio.wait_for(store.record_events(two_runs()[:4]), 5)
        first = await asyncio.to_thread(next, stream)
        second = await asyncio.to_thread(next, stream)
    finally:
        stream.close()  # type: ignore[attr-defined]
    assert (first["event"], first["component"], first["records"]) == (
        "component_succeeded",
        "a",
        5,
    )
    assert (second["event"], second["component"]) == ("component_skipped", "b")


async def test_a_standby_serves_the_dashboard_read_only_with_the_leaders_outcomes(
    pg_dsn: str, make_config: Callable[..., Config], short_dir: Path
) -> None:
    """The standby's dashboard shows what the leader recorded, live; its buttons do nothing."""
    config = shared_config(
        make_config,
        pg_dsn,
        performance_monitoring={
            "dashboard": {"enabled": True, "listen": "127.0.0.1:0", "actions_enabled": True}
        },
    )
    async with (
        standing_by(pg_dsn, config, short_dir) as (store, standby, _),
        aiohttp.ClientSession() as http,
    ):
        assert standby.dashboard is not None
        url = standby.dashboard.url
        await asyncio.wait_for(store.record_events(two_runs()[:3]), 5)

        async def last_of_a() -> Any:
            while True:  # the relay polls every 0.2 s; bounded by wait_for
                async with http.get(url + "api/overview") as reply:
                    assert reply.status == 200
                    doc = await reply.json()
                row = {c["component"]: c for c in doc["components"]}["a"]
                if row["last"] is not None:
                    return doc, row
                await asyncio.sleep(0.05)

        doc, row = await asyncio.wait_for(last_of_a(), 5)
        assert row["last"]["status"] == "succeeded" and row["records"] == 5
        assert doc["daemon"]["actions_enabled"] is False
        async with http.post(url + "api/components/a/trigger") as reply:
            assert reply.status >= 400
