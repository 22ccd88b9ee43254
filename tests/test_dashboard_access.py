"""Who may act through the dashboard and how many may connect: the install's token file,
sign-in sessions, the actor each action records, the connection cap, and a local user
(``nobody``) with curl against a real ``interlock serve``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from interlock import events as ev
from interlock.config.dashboard import DashboardSettings
from interlock.errors import DashboardError
from interlock.observe.dashboard.access import SPARE_CONNECTIONS
from interlock.observe.dashboard.auth import TOKEN_FILE
from interlock.observe.dashboard.server import Dashboard
from tests.test_dashboard import Live, live
from tests.test_dashboard_browser import ServeProcess

__all__ = ["live"]  # fixture shared with test_dashboard

pytestmark = pytest.mark.timeout(60)


class Seen:
    """Pause, resume and run-start events, as a subscriber on the bus receives them."""

    def __init__(self, d: Live) -> None:
        self.events: list[ev.Event] = []
        self.arrived = asyncio.Event()
        assert d.orch.bus is not None
        d.orch.bus.subscribe("test_actor", self._seen)

    async def _seen(self, batch: Sequence[ev.Event]) -> None:
        for e in batch:
            if isinstance(e, ev.ComponentPaused | ev.ComponentResumed | ev.RunStarted):
                self.events.append(e)
                self.arrived.set()

    async def next(self, kind: type[ev.Event]) -> Any:
        async with asyncio.timeout(10):
            while True:
                for e in self.events:
                    if isinstance(e, kind):
                        self.events.remove(e)
                        return e
                self.arrived.clear()
                await self.arrived.wait()


# --- the token file ---------------------------------------------------------------------


async def test_the_token_file_is_made_private_and_kept_across_restarts(
    live: Callable[..., Any],
) -> None:
    """On first start the token is written mode 0600 in the state directory; the next
    start uses the same one."""
    d: Live = await live(actions_enabled=True)
    path = d.orch.config.runtime.state_dir / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(d.token) >= 32
    again = Dashboard(d.orch, DashboardSettings(True, "127.0.0.1", 0, actions_enabled=True))
    await asyncio.wait_for(again.start(), 10)
    try:
        assert again.access is not None and again.access.sessions is not None
        assert again.access.sessions.token_matches(d.token)
    finally:
        await asyncio.wait_for(again.close(), 10)


async def test_a_token_file_others_can_read_stops_the_dashboard(
    live: Callable[..., Any],
) -> None:
    """A token file readable by the group is refused with its mode and what to do."""
    d: Live = await live(actions_enabled=True)
    path = d.orch.config.runtime.state_dir / TOKEN_FILE
    path.chmod(0o640)
    again = Dashboard(d.orch, DashboardSettings(True, "127.0.0.1", 0, actions_enabled=True))
    with pytest.raises(DashboardError, match="readable by others \\(mode 0640\\); chmod 600"):
        await asyncio.wait_for(again.start(), 10)


# --- signing in and acting -------------------------------------------------------------


async def test_a_wrong_token_signs_nobody_in(live: Callable[..., Any]) -> None:
    """The login form refuses a wrong token with 401 and sets no cookie."""
    d: Live = await live(actions_enabled=True)
    async with d.http.post(
        d.url + "/api/login", headers={"Origin": d.url}, json={"token": "x" * 43}
    ) as r:
        assert r.status == 401 and "Set-Cookie" not in r.headers
        assert (await r.json())["error"]["code"] == "bad_token"
    _, session, _ = await d.get("/api/session")
    assert session["signed_in"] is False and session["csrf"] is None


async def test_signing_in_gives_a_private_cookie_and_a_csrf_value(
    live: Callable[..., Any],
) -> None:
    """The right token gets an HttpOnly, SameSite=Strict session cookie; /api/session then
    hands the page its CSRF value."""
    d: Live = await live(actions_enabled=True)
    async with d.http.post(
        d.url + "/api/login", headers={"Origin": d.url}, json={"token": d.token}
    ) as r:
        assert r.status == 200
        cookie = r.headers["Set-Cookie"]
        body = await r.json()
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and d.token not in cookie
    _, session, _ = await d.get("/api/session")
    assert session["signed_in"] is True and session["csrf"] == body["csrf"]


async def test_a_pause_and_a_trigger_record_the_signed_in_actor(
    live: Callable[..., Any],
) -> None:
    """A signed-in pause and trigger name the dashboard session and the remote address."""
    d: Live = await live(actions_enabled=True)
    await asyncio.wait_for(d.done("fetch").wait(), 10)
    seen = Seen(d)
    headers = await d.sign_in()
    status, _ = await d.post("/api/components/fetch/pause", headers=headers)
    assert status == 200
    paused = await seen.next(ev.ComponentPaused)
    assert paused.component == "fetch"
    assert paused.actor.startswith("dashboard session ") and "(127.0.0.1)" in paused.actor
    await d.post("/api/components/fetch/resume", headers=headers)
    assert (await seen.next(ev.ComponentResumed)).actor == paused.actor
    status, body = await d.post("/api/components/fetch/trigger", headers=headers)
    assert status == 202
    started = await seen.next(ev.RunStarted)
    assert started.run_id == body["run_id"] and started.trigger == paused.actor


async def test_a_script_with_the_token_acts_as_the_token(live: Callable[..., Any]) -> None:
    """``Authorization: Bearer TOKEN`` (no browser, no Origin) may act; the actor says so."""
    d: Live = await live(actions_enabled=True)
    seen = Seen(d)
    async with (
        aiohttp.ClientSession() as script,
        script.post(
            d.url + "/api/components/bad/pause", headers={"Authorization": f"Bearer {d.token}"}
        ) as r,
    ):
        assert r.status == 200, await r.text()
    assert (await seen.next(ev.ComponentPaused)).actor == "dashboard token (127.0.0.1)"


# --- the connection cap ------------------------------------------------------------------


async def test_far_past_the_cap_connections_are_closed_unanswered(
    live: Callable[..., Any],
) -> None:
    """Silent connections beyond the cap's spare room are closed at once: however many are
    opened, the dashboard holds about cap + spare."""
    d: Live = await live(max_connections=2)
    host, port = "127.0.0.1", d.dashboard.port
    limit = 2 + SPARE_CONNECTIONS
    silent = [await asyncio.open_connection(host, port) for _ in range(limit + 20)]
    try:
        # A request after them: a 503 proves every silent one was seen first; a close with
        # no answer is the gate itself.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET /api/overview HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        answer = b""
        with contextlib.suppress(ConnectionError):
            answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 503"), answer[:80]
        assert d.dashboard.access is not None
        assert d.dashboard.access.connections <= limit + 10
    finally:
        for _, w in silent:
            w.close()


# --- a real daemon ------------------------------------------------------------------------


async def _get(url: str, session: aiohttp.ClientSession) -> aiohttp.ClientResponse:
    response = await asyncio.wait_for(session.get(url), 10)
    return response


def _serve_config() -> Path:
    """A root folder with a config: the dashboard on (actions, a cap of 5), one component."""
    root = Path(tempfile.mkdtemp(prefix="ild-", dir="/tmp"))  # short: the admin socket
    root.chmod(0o755)  # others may look in: only the token file's own mode keeps it
    state = root / "state"
    state.mkdir(mode=0o755)
    (root / "orchestration.json").write_text(
        json.dumps(
            {
                "components": {"a": {"class": "tests.testcomponents:Publishes", "frequency": "1h"}},
                "runtime_settings": {"state_dir": str(state), "data_dir": str(root / "data")},
                "performance_monitoring": {
                    "dashboard": {
                        "enabled": True,
                        "listen": "127.0.0.1:0",
                        "actions_enabled": True,
                        "max_connections": 5,
                    }
                },
            }
        )
    )
    return root


@pytest.fixture
async def served() -> AsyncIterator[tuple[ServeProcess, str, Path]]:
    """``interlock serve`` from :func:`_serve_config`; its URL and root."""
    root = _serve_config()
    daemon = ServeProcess(root, root / "orchestration.json")
    try:
        url = await daemon.start()
        yield daemon, url, root
    finally:
        await daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def _private_token(path: Path) -> str:
    """The token in ``path``, after checking only its owner may read it."""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path.read_text().strip()


async def admin(root: Path, command: str, **args: Any) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(root / "admin.sock"))
    try:
        writer.write(json.dumps({"command": command, **args}).encode() + b"\n")
        return dict(json.loads(await asyncio.wait_for(reader.readline(), 10)))
    finally:
        writer.close()


async def test_past_max_connections_a_stream_gets_503_and_the_admin_socket_answers(
    served: tuple[ServeProcess, str, Path],
) -> None:
    """With a cap of 5, five live streams are served, the sixth gets 503 with Retry-After,
    and the admin socket still answers."""
    _, url, root = served
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        streams = [await _get(url + "api/events", http) for _ in range(5)]
        try:
            assert [s.status for s in streams] == [200] * 5
            sixth = await _get(url + "api/events", http)
            assert sixth.status == 503 and int(sixth.headers["Retry-After"]) > 0
            assert (await sixth.json())["error"]["code"] == "busy"
            sixth.release()
            assert (await asyncio.wait_for(admin(root, "status"), 10))["ok"]
        finally:
            for s in streams:
                s.close()


def as_nobody() -> dict[str, Any]:
    """``subprocess.run`` arguments that run the child as ``nobody`` (when the test runs as
    root; otherwise the child stays this user, and the file's mode is checked instead)."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    """``curl`` as another local user: status code on the last line."""
    return subprocess.run(
        ["curl", "-s", "-m", "10", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        **as_nobody(),
    )


async def test_another_local_user_can_read_the_page_but_not_act(
    served: tuple[ServeProcess, str, Path],
) -> None:
    """As ``nobody``: the page holds no token, the token file cannot be read, and a POST
    (with or without the page's Origin, or a guessed token) is refused; nothing is paused."""
    _, url, root = served
    origin = url.rstrip("/")
    token_file = root / "state" / TOKEN_FILE
    token = _private_token(token_file)
    page = await asyncio.to_thread(curl, url)
    assert page.stdout.endswith("200") and token not in page.stdout
    if os.geteuid() == 0:  # as nobody, the file itself is out of reach
        cat = await asyncio.to_thread(
            subprocess.run,
            ["cat", str(token_file)],
            capture_output=True,
            check=False,
            **as_nobody(),
        )
        assert cat.returncode != 0 and token.encode() not in cat.stdout
    pause = url + "api/components/a/pause"
    for extra in ([], ["-H", f"Origin: {origin}"], ["-H", "Authorization: Bearer guess"]):
        refused = await asyncio.to_thread(curl, "-X", "POST", *extra, pause)
        assert refused.stdout[-3:] in ("401", "403"), refused.stdout
    status = await asyncio.wait_for(admin(root, "status"), 10)
    assert status["result"]["components"][0]["paused"] is False
