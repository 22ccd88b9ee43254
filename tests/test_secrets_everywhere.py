"""A secret an upstream echoes back is stored, served and sent nowhere: every output, grepped.

The stand-ins quote each request back in their error pages (the ``echo_request`` fault):
the GTFS-realtime ``KeyId`` header, the PTV ``devid`` and ``signature``. One failing run
and one succeeding run go through the real orchestrator with email, Slack, the
dashboard and metrics on; then every surface an operator or a machine can read is
searched for the secret values.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import structlog

from interlock import events as ev
from interlock import secrets
from interlock.components.standins import StandinServer
from interlock.components.standins.gtfs_realtime import GtfsRealtimeSource
from interlock.components.standins.ptv import PtvSource
from interlock.components.standins.source import Source
from interlock.config.loader import load_config
from interlock.core.retry import first_line
from interlock.errors import ConfigError, FetchError, PtvApiError, TransientError
from interlock.observe import logs
from interlock.observe.dashboard.server import start_dashboard
from interlock.observe.notify.message import Message, render_html, render_slack, render_text
from interlock.service.app import Orchestrator
from interlock.store.sqlite import STATE_DB, SqliteStateStore
from tests.notify_servers import SlackStandin, SmtpSink, slack, smtp

__all__ = ["slack", "smtp"]  # fixtures

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(120)

# Distinctive values, so a hit is the secret and not a coincidence in binary data.
RT_KEY = "rtkey-Zq8vW3nS7xLpQ2"
PTV_DEVID = "devid-K7mQ2xR9wTf4"
PTV_KEY = "ptvkey-4b1d9e7c-a2f3-4e5d-9c8b"
COMPONENTS = ("gtfs_realtime", "ptv_timetable")
COMMANDS = ("status", "history", "report", "plan")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Logging and the secret registry are process-wide: put them back afterwards."""
    saved = structlog.get_config()
    level, stream = logs.current_level, logs._stream
    known = secrets.known_secrets()
    yield
    structlog.configure(**saved)
    logs.current_level, logs._stream = level, stream
    secrets.forget_all_but(known)


def write_config(tmp_path: Path, server: StandinServer, smtp_port: int) -> Path:
    realtime = server.source("gtfs_realtime")
    assert isinstance(realtime, GtfsRealtimeSource)
    endpoints = {n: server.url(p) for n, p in realtime.endpoints().items()}
    doc = {
        "components": {
            "gtfs_realtime": {
                "frequency": "1h",
                "retries": 0,
                "settings": {"endpoints": endpoints, "api_key": "${IL_TEST_RT_KEY}"},
            },
            "ptv_timetable": {
                "frequency": "1h",
                "retries": 0,
                "settings": {
                    "base_url": server.url("/ptv"),
                    "devid": "${IL_TEST_PTV_DEVID}",
                    "api_key": "${IL_TEST_PTV_KEY}",
                    "departures": [{"route_type": 0, "stop_id": 1001, "max_results": 3}],
                    "request_timeout_s": 10,
                },
            },
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
            "admin_socket": str(tmp_path / "admin.sock"),
            "retry_backoff_seconds": 0.01,
            "retry_backoff_max_seconds": 0.05,
        },
        "data_quality": {
            "quarantine_failed_data": True,
            "default_rules": {"record_count_min": 1},
        },
        "quota_management": {"enabled": False},
        "performance_monitoring": {
            "enabled": True,
            "alerting": {
                "enabled": True,
                "run_summary": "always",
                "email": {
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "security": "none",
                    "from": "interlock@example.org",
                    "to": ["ops@example.org"],
                },
                "slack": {"webhook_url": "${IL_TEST_SLACK}"},
            },
            "metrics": {"enabled": True, "listen": "127.0.0.1:0"},
            "dashboard": {"enabled": True, "listen": "127.0.0.1:0"},
        },
    }
    path = tmp_path / "orchestration.json"
    path.write_text(json.dumps(doc))
    return path


def cli(config: Path, *args: str) -> str:
    """One `interlock ... --json` command as a user runs it; its stdout and stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "interlock.cli", *args, "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    try:
        json.loads(proc.stdout)  # it printed JSON, not an error
    except ValueError:
        pytest.fail(f"interlock {args[0]} --json printed no JSON: {proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


async def get(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200, url
        return await resp.text()


async def read_surfaces(
    orch: Orchestrator, dashboard_port: int | None, config: Path, when: str, out: dict[str, str]
) -> None:
    """What the dashboard, /metrics and the CLI show while the daemon is up."""
    assert orch.bus is not None and orch.observers is not None
    await asyncio.wait_for(orch.bus.flush(), 10)
    base = f"http://127.0.0.1:{dashboard_port}"
    for path in ("/api/overview", "/api/history"):
        out[f"{path} ({when})"] = await asyncio.wait_for(get(base + path), 10)
    assert orch.observers.metrics_server is not None
    metrics = f"http://127.0.0.1:{orch.observers.metrics_server.port}/metrics"
    out[f"/metrics ({when})"] = await asyncio.wait_for(get(metrics), 10)
    for command in COMMANDS:
        out[f"interlock {command} --json ({when})"] = await asyncio.to_thread(cli, config, command)


def mail_texts(sink: SmtpSink) -> list[str]:
    """Each email as sent on the wire, and again with every part and header decoded."""
    out = []
    for envelope in sink.envelopes:
        raw = envelope.original_content or b""
        out.append(raw.decode("utf-8", "replace"))
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        out.append(str(msg["Subject"]))
        out += [str(part.get_content()) for part in msg.walk() if not part.is_multipart()]
    return out


def files_under(*roots: Path) -> dict[str, str]:
    """Every byte of every file below ``roots``, as text (binary bytes replaced)."""
    found = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                found[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return found


@pytest.mark.slow
async def test_an_echoed_secret_appears_in_no_output(
    tmp_path: Path, smtp: SmtpSink, slack: SlackStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failing then succeeding runs: no log, file, CLI, dashboard, metric or message holds one."""
    for name, value in (
        ("IL_TEST_RT_KEY", RT_KEY),
        ("IL_TEST_PTV_DEVID", PTV_DEVID),
        ("IL_TEST_PTV_KEY", PTV_KEY),
        ("IL_TEST_SLACK", slack.url),
    ):
        monkeypatch.setenv(name, value)
    log_lines = io.StringIO()
    logs.configure("debug", "json", stream=log_lines)
    sources: list[Source] = [
        GtfsRealtimeSource(api_keys=(RT_KEY,)),
        PtvSource(accounts={PTV_DEVID: PTV_KEY}),
    ]
    surfaces: dict[str, str] = {}
    async with StandinServer(sources) as server:
        config_path = write_config(tmp_path, server, smtp.port)
        config = load_config(config_path)
        async with Orchestrator(config) as orch:
            dashboard = await start_dashboard(orch)
            assert dashboard is not None and dashboard.port is not None
            try:
                # 1. The upstreams refuse every request with a page quoting it back.
                server.faults.set("gtfs_realtime", "echo_request", times=None, status=401)
                server.faults.set("ptv_timetable", "echo_request", times=None, status=403)
                failed = await asyncio.wait_for(orch.scheduler.run_once(COMPONENTS, force=True), 30)
                assert {failed.outcomes[c].status.value for c in COMPONENTS} == {"failed"}
                await read_surfaces(orch, dashboard.port, config_path, "failing", surfaces)
                # 2. They recover: both publish.
                server.faults.clear()
                ok = await asyncio.wait_for(orch.scheduler.run_once(COMPONENTS, force=True), 30)
                assert {ok.outcomes[c].status.value for c in COMPONENTS} == {"succeeded"}
                await read_surfaces(orch, dashboard.port, config_path, "recovered", surfaces)
            finally:
                await dashboard.close()
        signatures = {r.query["signature"] for r in server.requests if "signature" in r.query}
        echoed = [r for r in server.requests if r.fault == "echo_request"]
    assert signatures and echoed, "the stand-ins were not asked or did not echo"
    # Failure and recovery of each component, and two run summaries, by both channels.
    await smtp.wait(6)
    await slack.wait(6)

    surfaces["logs"] = log_lines.getvalue()
    for command in COMMANDS:  # and once more with no daemon about
        surfaces[f"interlock {command} --json"] = cli(config_path, command)
    surfaces.update(files_under(tmp_path / "state", tmp_path / "data"))
    for i, text in enumerate(mail_texts(smtp)):
        surfaces[f"email part {i}"] = text
    for i, payload in enumerate(slack.payloads):
        surfaces[f"slack body {i}"] = json.dumps(payload)

    # The echoed pages did reach the errors: the test is not searching empty surfaces.
    history = json.loads(surfaces["interlock history --json"])
    errors = [row["error"] or "" for row in history]
    assert sum("Denied" in e for e in errors) == 2, errors
    wanted = {"KeyId": RT_KEY, "devid": PTV_DEVID, "api_key": PTV_KEY}
    wanted |= {f"signature {s[:8]}": s for s in signatures}
    leaks = [
        f"{what} in {where}: ...{text[max(0, text.find(value) - 60) : text.find(value) + 20]!r}"
        for where, text in surfaces.items()
        for what, value in wanted.items()
        if value in text
    ]
    assert leaks == [], "\n".join(leaks)


# --- each layer on its own ------------------------------------------------------------

SECRET = "layer-secret-Hq3vX9"


@pytest.fixture
def known_secret() -> Iterator[str]:
    """``SECRET`` registered as resolved, as the config loader does."""
    before = secrets.known_secrets()
    secrets.remember(SECRET)
    yield SECRET
    secrets.forget_all_but(before)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"GET /x?key={SECRET}", "GET /x?key=***"),
        (f"GET /x?key={SECRET}-longer", "GET /x?key=***-longer"),
        ("?devid=3000165&signature=9F86D081884C7D65", "?devid=3000165&signature=***"),
        ('{"Signature=ab12", "x"}', '{"Signature=***", "x"}'),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_mask_hides_secrets_and_signatures(known_secret: str, text: str, expected: str) -> None:
    """A resolved secret and any signature= value become ***; other text is left as it was."""
    assert secrets.mask(text) == expected


def test_mask_hides_the_spellings_a_secret_takes_in_urls_and_json() -> None:
    """A secret with URL-special characters is masked quoted and JSON-escaped too."""
    before = secrets.known_secrets()
    secrets.remember('k/y+"z&q')
    try:
        assert secrets.mask('a k/y+"z&q b k%2Fy%2B%22z%26q c k/y+\\"z&q') == "a *** b *** c ***"
    finally:
        secrets.forget_all_but(before)


def test_an_error_masks_its_message_as_it_is_made(known_secret: str) -> None:
    """An InterlockError built from an echoed page never holds the secret, whatever its type."""
    page = f"Denied KeyId: {known_secret} for GET /v3/x?signature=ABCDEF"
    config = ConfigError("orchestration.json", [page])
    errors = [
        FetchError(page),
        TransientError(page, retry_after=1.0),
        PtvApiError(page, status=403),
    ]
    assert all(known_secret not in str(e) and "ABCDEF" not in str(e) for e in [*errors, config])
    assert config.problems == ["Denied KeyId: *** for GET /v3/x?signature=***"]


def test_the_runner_error_text_of_any_exception_is_masked(known_secret: str) -> None:
    """first_line (every component error the runner records) masks what any exception says."""
    text = first_line(RuntimeError(f"bad url http://h/x?devid={known_secret}&signature=0A1B"))
    assert text == "bad url http://h/x?devid=***&signature=***"


async def test_the_store_masks_text_on_the_way_in(tmp_path: Path, known_secret: str) -> None:
    """An event carrying a secret (from anywhere) is stored masked: errors, reasons, quality."""
    echoed = f"answered 401: Denied KeyId: {known_secret} ?signature=FFEE"
    now = datetime.now(UTC)
    failed = ev.ComponentFailed(
        at=now,
        run_id="r1",
        component="feed",
        status="failed",
        reason=echoed,
        started_at=now,
        duration_s=0.1,
        error=echoed,
        quality={"failed": {"endpoint": echoed}, "count": 3},
        metrics={"note": [echoed]},
    )
    skipped = ev.ComponentSkipped(at=now, run_id="r1", component="b", reason="x", detail=echoed)
    async with SqliteStateStore(tmp_path / STATE_DB) as store:
        await store.record_events([failed, skipped])
        rows = await store.history(limit=10)
        states = await store.component_states()
    stored = json.dumps([dict(r) for r in rows], default=str) + repr(states)
    assert known_secret not in stored and "FFEE" not in stored
    by_name = {r["component"]: r for r in rows}
    assert by_name["feed"]["quality"] == {"failed": {"endpoint": secrets.mask(echoed)}, "count": 3}
    assert states["feed"].last_error == "answered 401: Denied KeyId: *** ?signature=***"


def test_a_notification_never_carries_a_secret(known_secret: str) -> None:
    """Whatever a composer is handed, the message's text, HTML and Slack body are masked."""
    msg = Message(
        kind="failure",
        title=f"feed failed: {known_secret}",
        lines=(("Why", f"Denied KeyId: {known_secret} ?signature=C0FFEE"),),
        command="interlock history --component feed",
    ).with_note(f"held back: {known_secret}")
    bodies = [msg.subject, render_text(msg), render_html(msg), json.dumps(render_slack(msg))]
    assert not any(known_secret in b or "C0FFEE" in b for b in bodies)
