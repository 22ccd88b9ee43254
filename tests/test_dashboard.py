"""The dashboard without a browser: config rules, pure folds, endpoints, SSE and request checks."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from structlog.testing import capture_logs

from interlock import events as ev
from interlock.config.dashboard import DashboardSettings, is_loopback, problems, split_listen
from interlock.config.model import Config
from interlock.errors import ConfigError, DashboardError
from interlock.observe.dashboard import queries
from interlock.observe.dashboard.auth import CSRF_HEADER, TOKEN_FILE
from interlock.observe.dashboard.server import Dashboard, start_dashboard
from interlock.service.app import Orchestrator
from tests.conftest import component

MELBOURNE = ZoneInfo("Australia/Melbourne")

# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8765", ("127.0.0.1", 8765)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_split_listen_reads_host_and_port(listen: str, expected: tuple[str, int]) -> None:
    """HOST:PORT, bracketed IPv6 and names are split into host and port."""
    assert split_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8765", "127.0.0.1", "::1:8765", "127.0.0.1:99999", ":80"])
def test_split_listen_rejects_malformed_addresses(listen: str) -> None:
    """Anything that is not HOST:PORT is refused with a reason."""
    with pytest.raises(ValueError, match=repr(listen).replace("[", r"\[")):
        split_listen(listen)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    """Only 127.0.0.0/8, ::1 and localhost count as this machine."""
    assert is_loopback(host) is loopback


def test_a_non_loopback_listen_address_is_a_config_error(
    make_config: Callable[..., Config],
) -> None:
    """0.0.0.0 is refused with the loopback rule and the SSH tunnel to use instead."""
    with pytest.raises(ConfigError) as info:
        make_config(
            {"a": component("Publishes")},
            performance_monitoring={"dashboard": {"enabled": True, "listen": "0.0.0.0:8765"}},
        )
    message = str(info.value)
    assert "$.performance_monitoring.dashboard.listen: '0.0.0.0:8765' is not a loopback" in message
    assert "ssh -L 8765:127.0.0.1:8765" in message


def test_unknown_dashboard_settings_are_refused_by_the_schema(
    make_config: Callable[..., Config],
) -> None:
    """A misspelt key under dashboard is reported, not ignored."""
    with pytest.raises(ConfigError, match="actions_enable"):
        make_config(
            {"a": component("Publishes")},
            performance_monitoring={"dashboard": {"actions_enable": True}},
        )


def test_the_dashboard_is_off_and_read_only_by_default(make_config: Callable[..., Config]) -> None:
    """With no dashboard section the settings say disabled, 127.0.0.1:8765, no actions."""
    config = make_config({"a": component("Publishes")})
    settings = DashboardSettings.from_monitoring(config.monitoring)
    assert settings == DashboardSettings(False, "127.0.0.1", 8765, False)
    assert problems(config.monitoring) == []


# --- pure folds ---------------------------------------------------------------------------


def test_fold_trends_places_hours_and_local_days() -> None:
    """An hour row lands in its hourly bucket and in the Melbourne day it belongs to."""
    now = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)  # 23:30 in Melbourne (UTC+11)
    rows = [
        # component, hour, runs, failures, dur_sum, dur_max, rec_sum, published
        ("a", "2026-03-10T12", 2, 1, 3.0, 2.0, 10, 1),
        ("a", "2026-03-10T13", 9, 9, 9.0, 9.0, 9, 9),  # the future: no bucket
        ("a", "2026-03-09T13", 1, 0, 1.0, 1.0, 4, 1),  # 00:00 on the 10th in Melbourne
        ("a", "2026-02-01T00", 1, 0, 1.0, 1.0, 4, 1),  # older than 30 days
        ("gone", "2026-03-10T12", 1, 0, 1.0, 1.0, 1, 1),
    ]
    out = queries.fold_trends(rows, ["a", "b"], now, MELBOURNE)
    assert set(out) == {"a", "b"}
    week, month = out["a"]["7d"], out["a"]["30d"]
    assert len(week["labels"]) == 168 and len(month["labels"]) == 30
    assert (week["runs"][-1], week["failures"][-1]) == (2, 1)
    assert week["duration_avg"][-1] == 1.5 and week["duration_max"][-1] == 2.0
    assert week["records_avg"][-1] == 10.0
    assert week["runs"][-24] == 1 and week["runs"][-2] == 0 and week["duration_avg"][-2] is None
    assert month["labels"][-1] == "2026-03-10"
    assert month["runs"][-1] == 3 and month["duration_max"][-1] == 2.0
    assert sum(month["runs"]) == 3
    assert week["summary"] == {
        "runs": 3,
        "failures": 1,
        "published": 2,
        "duration_avg": 1.333,
        "duration_max": 2.0,
        "records_avg": 7.0,
    }
    assert out["b"]["30d"]["summary"]["runs"] == 0


@pytest.mark.parametrize(
    ("message", "pattern"),
    [
        ("HTTP 503 from https://x/feed (took 12.5 s)", "HTTP 503 from https://x/feed (took <n> s)"),
        ("run 20261101T101010Z-a1b2c3 failed", "run <run> failed"),
        ("sha 0123456789abcdef0123 differs", "sha <hex> differs"),
        ("stamp 2026-11-01T10:00:00+00:00 stale\nsecond line", "stamp <time> stale"),
        ("", ""),
    ],
)
def test_error_pattern_masks_what_varies(message: str, pattern: str) -> None:
    """Ids, times and measurements are masked; the first line is the pattern."""
    assert queries.error_pattern(message) == pattern


def test_fold_errors_merges_patterns_and_keeps_the_latest_example() -> None:
    """Messages with one shape are counted together, newest example and last seen kept."""
    rows = [
        ("a", "failed", "took 1.5 s", 2, "2026-11-01T01:00:00+00:00", "2026-10-01T00:00:00+00:00"),
        ("a", "failed", "took 2.5 s", 3, "2026-11-02T01:00:00+00:00", "2026-10-05T00:00:00+00:00"),
        (
            "b",
            "timed_out",
            "timed out",
            1,
            "2026-11-03T01:00:00+00:00",
            "2026-11-03T00:00:00+00:00",
        ),
    ]
    out = queries.fold_errors(rows, ZoneInfo("UTC"))
    assert [(e["component"], e["count"]) for e in out] == [("a", 5), ("b", 1)]
    assert out[0]["example"] == "took 2.5 s" and out[0]["pattern"] == "took <n> s"
    assert out[0]["first_seen"].startswith("2026-10-01") and out[0]["last_seen"].startswith(
        "2026-11-02"
    )


def test_summarise_quality_keeps_errors_first_and_bounds_notices() -> None:
    """Notices are cut to a page's worth, errors before warnings; the verdict survives."""
    notices = [{"code": "w", "severity": "WARNING"}] * 80 + [{"code": "e", "severity": "ERROR"}]
    out = queries.summarise_quality({"notices": notices, "passed": False, "error_count": 1})
    assert out["notices"][0]["code"] == "e"
    assert len(out["notices"]) == queries.NOTICES_SHOWN and out["notices_total"] == 81
    assert out["passed"] is False and out["error_count"] == 1


# --- a live dashboard ---------------------------------------------------------------------


class Live:
    """An open orchestrator, its scheduler serving, and a dashboard on an ephemeral port."""

    def __init__(self, orch: Orchestrator, dashboard: Dashboard) -> None:
        self.orch = orch
        self.dashboard = dashboard
        # unsafe=True: keep cookies from an IP-address host, as browsers do.
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        self.finished: dict[str, asyncio.Event] = {}
        assert orch.bus is not None
        orch.bus.subscribe("test_probe", self._seen)

    async def _seen(self, batch: Sequence[ev.Event]) -> None:
        for event in batch:
            if isinstance(event, ev.ComponentFinished | ev.ComponentSkipped):
                self.finished.setdefault(event.component, asyncio.Event()).set()

    def done(self, name: str) -> asyncio.Event:
        return self.finished.setdefault(name, asyncio.Event())

    @property
    def url(self) -> str:
        return self.dashboard.url.rstrip("/")

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.http.get(self.url + path, **kw) as r:
            body = await r.read()
            ctype = r.headers.get("Content-Type", "")
            return r.status, json.loads(body) if "json" in ctype else body.decode(), r

    async def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.post(self.url + path, **kw) as r:
            return r.status, await r.json()

    @property
    def token(self) -> str:
        """The install's secret, read from the state directory as an operator would."""
        return (self.orch.config.runtime.state_dir / TOKEN_FILE).read_text().strip()

    async def sign_in(self) -> dict[str, str]:
        """Log in with the token as the page does; the headers its buttons then send."""
        status, body = await self.post(
            "/api/login", headers={"Origin": self.url}, json={"token": self.token}
        )
        assert status == 200, body
        return {"Origin": self.url, CSRF_HEADER: body["csrf"]}


@pytest.fixture
async def live(
    make_config: Callable[..., Config], open_orch: Callable[[Config], Any]
) -> AsyncIterator[Callable[..., Any]]:
    opened: list[tuple[Live, asyncio.Event, asyncio.Task[None]]] = []

    async def start(components: dict[str, Any] | None = None, **settings: Any) -> Live:
        config = make_config(
            components
            or {
                "fetch": component("Publishes", "1d", records=120),
                "bad": component("Fails", "1d"),
                "load": component("Publishes", "1d", deps=["fetch"]),
            }
        )
        orch: Orchestrator = await open_orch(config)
        dashboard = Dashboard(orch, DashboardSettings(True, "127.0.0.1", 0, **settings))
        await asyncio.wait_for(dashboard.start(), 10)
        handle = Live(orch, dashboard)
        stop = asyncio.Event()
        serving = asyncio.create_task(orch.scheduler.serve(stop), name="test scheduler")
        opened.append((handle, stop, serving))
        return handle

    yield start
    for handle, stop, serving in opened:
        await handle.http.close()
        await asyncio.wait_for(handle.dashboard.close(), 10)
        stop.set()
        await asyncio.wait_for(serving, 10)
        await asyncio.wait_for(handle.orch.scheduler.shutdown(5), 10)


async def test_overview_lists_every_component_with_state_outcome_and_next_due(
    live: Callable[..., Any],
) -> None:
    """After the first scheduled run, each component shows its last outcome and next due."""
    d: Live = await live()
    for name in ("fetch", "bad", "load"):
        await asyncio.wait_for(d.done(name).wait(), 10)
    await asyncio.wait_for(d.orch.bus.flush(), 10)  # type: ignore[union-attr]
    status, doc, _ = await d.get("/api/overview")
    assert status == 200
    cards = {c["component"]: c for c in doc["components"]}
    assert list(cards) == ["fetch", "bad", "load"]
    assert cards["fetch"]["last"]["status"] == "succeeded"
    assert cards["fetch"]["records"] == 120
    assert cards["bad"]["last"]["status"] == "failed"
    assert "source answered nonsense" in cards["bad"]["last"]["error"]
    assert cards["load"]["dependencies"] == ["fetch"]
    assert all(c["next_due"] and c["state"] == "idle" for c in cards.values())
    assert doc["timezone"] == "Australia/Melbourne" and doc["daemon"]["actions_enabled"] is False
    assert doc["quota"]["daily_limit"] > 0 and "left" in doc["quota"]


async def test_history_has_both_windows_and_the_error_pattern(live: Callable[..., Any]) -> None:
    """Trends carry 168 hourly and 30 daily buckets; the failure is an error pattern."""
    d: Live = await live()
    await asyncio.wait_for(d.done("bad").wait(), 10)
    await asyncio.wait_for(d.orch.bus.flush(), 10)  # type: ignore[union-attr]
    status, doc, _ = await d.get("/api/history")
    assert status == 200
    fetch = doc["trends"]["fetch"]
    assert len(fetch["7d"]["runs"]) == 168 and len(fetch["30d"]["runs"]) == 30
    assert fetch["7d"]["summary"]["runs"] == 1 and fetch["30d"]["records_avg"][-1] == 120.0
    assert doc["trends"]["bad"]["30d"]["summary"]["failures"] == 1
    [error] = doc["errors"]
    assert (error["component"], error["status"], error["count"]) == ("bad", "failed", 1)
    assert error["pattern"] == "source answered nonsense"


async def test_quality_shows_the_last_report_with_its_notices(live: Callable[..., Any]) -> None:
    """A failed validation's report, notices included, is the component's last quality report."""
    d: Live = await live({"check": component("Fails", "1d", validation=True)})
    await asyncio.wait_for(d.done("check").wait(), 10)
    status, doc, _ = await d.get("/api/quality")
    assert status == 200
    report = doc["components"]["check"]
    assert report["status"] == "failed" and report["report"]["error_count"] == 1


async def test_events_stream_a_finished_component_to_the_page(live: Callable[..., Any]) -> None:
    """A page's SSE stream receives component events as they happen."""
    d: Live = await live({"a": component("Gated", "1d")})
    async with d.http.get(d.url + "/api/events") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        from tests.testcomponents import PROBE

        PROBE.gate("a").set()
        seen: list[str] = []
        async with asyncio.timeout(10):
            async for line in stream.content:
                if line.startswith(b"data: "):
                    seen.append(json.loads(line[6:])["event"])
                    if "component_succeeded" in seen:
                        break
    assert "component_succeeded" in seen


async def test_every_response_carries_the_protective_headers(live: Callable[..., Any]) -> None:
    """The page gets a strict CSP and no framing, and holds no secret and sets no cookie."""
    d: Live = await live(actions_enabled=True)
    status, page, r = await d.get("/")
    assert status == 200
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert "Set-Cookie" not in r.headers
    assert d.token not in page and 'name="interlock-actions" content="true"' in page
    for asset, ctype in [("app.js", "text/javascript"), ("style.css", "text/css")]:
        status, _, r = await d.get(f"/static/{asset}")
        assert status == 200 and r.headers["Content-Type"].startswith(ctype)
    status, _, _ = await d.get("/static/../server.py")
    assert status == 404


async def test_a_foreign_host_header_is_refused(live: Callable[..., Any]) -> None:
    """A DNS-rebinding page (Host: evil.example) cannot read the dashboard."""
    d: Live = await live()
    status, body, _ = await d.get("/api/overview", headers={"Host": "evil.example:8765"})
    assert status == 421 and body["error"]["code"] == "host_not_allowed"
    status, _, _ = await d.get("/api/overview", headers={"Host": "localhost:1234"})
    assert status == 200


async def test_buttons_do_nothing_when_actions_are_disabled(live: Callable[..., Any]) -> None:
    """A read-only dashboard refuses every POST, even a well-formed one."""
    d: Live = await live()
    status, body = await d.post("/api/components/fetch/trigger", headers={"Origin": d.url})
    assert status == 403 and body["error"]["code"] == "actions_disabled"
    assert "actions_enabled" in body["error"]["message"]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 403, "cross_site"),
        ({"Origin": "http://evil.example"}, 403, "cross_site"),
        ({"Origin": "null"}, 403, "cross_site"),
        ({"Origin": "SELF", "Sec-Fetch-Site": "cross-site"}, 403, "cross_site"),
        ({"Origin": "SELF"}, 401, "not_signed_in"),
        ({"Origin": "SELF", CSRF_HEADER: "guess"}, 401, "not_signed_in"),
        ({"Authorization": "Bearer guess"}, 401, "bad_token"),
        ({"Origin": "http://evil.example", "Authorization": "Bearer TOKEN"}, 403, "cross_site"),
    ],
)
async def test_cross_site_requests_cannot_press_the_buttons(
    live: Callable[..., Any], headers: dict[str, str], status: int, code: str
) -> None:
    """Without the page's origin and a signed-in session (or the token) a POST is refused
    and nothing changes."""
    d: Live = await live(actions_enabled=True)
    headers = {k: v.replace("SELF", d.url).replace("TOKEN", d.token) for k, v in headers.items()}
    got, body = await d.post("/api/components/fetch/pause", headers=headers)
    assert (got, body["error"]["code"]) == (status, code)
    assert "fetch" not in d.orch.scheduler.paused


async def test_a_csrf_value_without_its_session_cookie_is_refused(
    live: Callable[..., Any],
) -> None:
    """A leaked CSRF value without the SameSite session cookie (another site's request) is
    refused: it is the cookie that proves the sign-in."""
    d: Live = await live(actions_enabled=True)
    headers = await d.sign_in()
    async with (
        aiohttp.ClientSession() as fresh,
        fresh.post(d.url + "/api/components/fetch/pause", headers=headers) as r,
    ):
        assert r.status == 401 and (await r.json())["error"]["code"] == "not_signed_in"
    assert "fetch" not in d.orch.scheduler.paused


async def test_the_page_can_pause_resume_and_trigger(live: Callable[..., Any]) -> None:
    """Signed in, with the page's origin and CSRF value, the buttons pause, resume and start
    a run."""
    d: Live = await live(actions_enabled=True)
    await asyncio.wait_for(d.done("fetch").wait(), 10)
    d.done("fetch").clear()
    headers = await d.sign_in()
    status, body = await d.post("/api/components/fetch/pause", headers=headers)
    assert status == 200 and body["paused"] == ["fetch"]
    status, body = await d.post("/api/components/fetch/trigger", headers=headers)
    assert status == 409 and "paused" in body["error"]["message"]
    status, body = await d.post("/api/components/fetch/resume", headers=headers)
    assert status == 200 and body["paused"] == []
    status, body = await d.post("/api/components/fetch/trigger", headers=headers)
    assert status == 202 and body["run_id"]
    await asyncio.wait_for(d.done("fetch").wait(), 10)
    status, body = await d.post("/api/components/nope/trigger", headers=headers)
    assert status == 404 and "known: fetch, bad, load" in body["error"]["message"]
    async with d.http.get(d.url + "/api/components/fetch/trigger") as r:
        assert r.status == 405


async def test_a_busy_port_is_a_clear_error_and_serve_carries_on(
    make_config: Callable[..., Config], open_orch: Callable[[Config], Any]
) -> None:
    """Another process on the port: start() names it; start_dashboard logs and returns None."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(
            {"a": component("Publishes")},
            performance_monitoring={"dashboard": {"enabled": True, "listen": f"127.0.0.1:{port}"}},
        )
        orch: Orchestrator = await open_orch(config)
        with pytest.raises(DashboardError, match=f"cannot listen on '127.0.0.1:{port}'"):
            await Dashboard(orch, DashboardSettings(True, "127.0.0.1", port)).start()
        with capture_logs() as logs:
            assert await asyncio.wait_for(start_dashboard(orch), 10) is None
    assert [e["event"] for e in logs] == ["dashboard_failed"]


async def test_start_dashboard_does_nothing_when_disabled(
    make_config: Callable[..., Config], open_orch: Callable[[Config], Any]
) -> None:
    """The default config starts no web server."""
    orch: Orchestrator = await open_orch(make_config({"a": component("Publishes")}))
    assert await asyncio.wait_for(start_dashboard(orch), 10) is None


def test_history_windows_end_now() -> None:
    """The newest hourly bucket is the current hour (labels in the configured zone)."""
    now = datetime(2026, 7, 1, 5, 10, tzinfo=UTC)
    out = queries.fold_trends([], ["a"], now, MELBOURNE)["a"]
    assert out["7d"]["labels"][-1] == "Wed 01 Jul 15:00"
    assert (
        out["30d"]["labels"][0]
        == (now.astimezone(MELBOURNE) - timedelta(days=29)).date().isoformat()
    )
