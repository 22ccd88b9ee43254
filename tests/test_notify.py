"""Email and Slack notifications end to end: content, dedup, recovery, outages, rate limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from interlock import events as ev
from interlock.config.model import Config
from interlock.errors import ConfigError
from interlock.observe.notify import compose
from interlock.observe.notify.message import render_text
from interlock.observe.notify.policy import AlertBook
from interlock.service.app import Orchestrator
from tests.conftest import component
from tests.notify_servers import SlackStandin, SmtpSink, self_signed, server_tls, slack, smtp
from tests.test_monitor import Collector
from tests.testcomponents import FAILING

__all__ = ["slack", "smtp"]  # fixtures


@pytest.fixture(autouse=True)
def _clear_failing() -> Iterator[None]:
    FAILING.clear()
    yield
    FAILING.clear()


def alerting(
    slack: SlackStandin | None = None, smtp: SmtpSink | None = None, **extra: Any
) -> dict[str, Any]:
    section: dict[str, Any] = {"enabled": True, "run_summary": "never", **extra}
    if slack is not None:
        section["slack"] = {"webhook_url": "${TEST_SLACK_WEBHOOK}"}
    if smtp is not None:
        section["email"] = {
            "host": "127.0.0.1",
            "port": smtp.port or 25,
            "security": "none",
            "from": "interlock@example.org",
            "to": ["ops@example.org", "oncall@example.org"],
        }
    return {"alerting": section}


@pytest.fixture(autouse=True)
def _slack_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if "slack" in request.fixturenames:
        hook: SlackStandin = request.getfixturevalue("slack")
        monkeypatch.setenv("TEST_SLACK_WEBHOOK", hook.url)


async def test_a_failure_reaches_email_and_slack_readably(
    make_config: Callable[..., Config],
    open_orch: Callable[..., Any],
    smtp: SmtpSink,
    slack: SlackStandin,
) -> None:
    """A failure sends one email (plain text + HTML, every recipient) and one Slack message."""
    config = make_config({"feed": component("Fails")}, performance_monitoring=alerting(slack, smtp))
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    (mail,) = await smtp.wait(1)
    (post,) = await slack.wait(1)
    assert smtp.envelopes[0].rcpt_tos == ["ops@example.org", "oncall@example.org"]
    assert mail["Subject"] == "[interlock] feed failed: source answered nonsense"
    plain = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    text = plain.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert any(p.get_content_type() == "text/html" for p in mail.walk())
    assert "Why: source answered nonsense\n" in text and "second line" not in text
    assert "(first failure)" in text and "Next attempt: " in text and "(in 59 min)" in text
    assert "More: interlock history --component feed" in text
    assert [b["type"] for b in post["blocks"]] == ["header", "section", "context"]
    assert post["blocks"][0]["text"]["text"].endswith("feed failed")
    assert "*Why:* source answered nonsense" in post["blocks"][1]["text"]["text"]


async def test_a_storm_of_100_failures_sends_one_message_then_a_recovery(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], slack: SlackStandin
) -> None:
    """100 identical failures send one message; the success after them sends one recovery."""
    config = make_config({"feed": component("Switchable")}, performance_monitoring=alerting(slack))
    orch = await open_orch(config)
    seen = Collector()
    orch.bus.subscribe("test", seen.handle)
    FAILING["feed"] = "GET http://src/feed answered 503 after 1200 ms"
    for i in range(100):
        FAILING["feed"] = f"GET http://src/feed answered 503 after {1200 + i} ms"
        await asyncio.wait_for(orch.scheduler.run_once(force=True), 10)
    FAILING["feed"] = None
    await asyncio.wait_for(orch.scheduler.run_once(force=True), 10)
    await seen.wait(ev.NotificationSent, 2)
    assert await orch.bus.flush(5)
    first, recovered = slack.payloads
    assert first["text"] == "feed failed"
    assert recovered["text"] == "feed recovered"
    body = recovered["blocks"][1]["text"]["text"]
    assert "100 times since" in body and "answered 503 after 1299 ms" in body
    assert len(slack.payloads) == 2


async def test_dedup_state_survives_a_restart(
    make_config: Callable[..., Config], slack: SlackStandin
) -> None:
    """A failure announced before a restart is not announced again after it."""
    config = make_config({"feed": component("Switchable")}, performance_monitoring=alerting(slack))
    FAILING["feed"] = "boom"
    for _ in range(2):
        async with Orchestrator(config, log_events=False) as orch:
            await asyncio.wait_for(orch.scheduler.run_once(force=True), 10)
    FAILING["feed"] = None
    async with Orchestrator(config, log_events=False) as orch:
        await asyncio.wait_for(orch.scheduler.run_once(force=True), 10)
    assert [p["text"] for p in slack.payloads] == ["feed failed", "feed recovered"]
    assert "twice" not in slack.payloads[1]["blocks"][1]["text"]["text"]
    assert "2 times since" in slack.payloads[1]["blocks"][1]["text"]["text"]


async def test_a_channel_down_for_a_while_is_retried_without_blocking_runs(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], slack: SlackStandin
) -> None:
    """Slack answers 500 three times; runs go on, and the message arrives when it is back."""
    slack.fail_next = 3
    config = make_config(
        {"feed": component("Fails")},
        performance_monitoring=alerting(slack, retry_backoff_seconds=0.05),
    )
    orch = await open_orch(config)
    seen = Collector()
    orch.bus.subscribe("test", seen.handle)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert result.failed and slack.payloads == []  # the run did not wait for the channel
    (sent,) = await seen.wait(ev.NotificationSent)
    failed = seen.of(ev.NotificationFailed)
    assert [f.attempt for f in failed] == [1, 2, 3]
    assert [f.retry_in_s for f in failed] == [0.05, 0.1, 0.2]
    assert "500" in failed[0].error and SlackStandin.path not in failed[0].error
    assert sent.channel == "slack" and len(slack.payloads) == 1


async def test_the_rate_limit_holds_messages_back_and_says_so(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], slack: SlackStandin
) -> None:
    """With 2 per hour, 4 failures send 2; the recovery still goes out and counts the rest."""
    names = ["a", "b", "c", "d"]
    config = make_config(
        {n: component("Switchable") for n in names}, performance_monitoring=alerting(slack)
    )
    config.monitoring["alerting"]["slack"]["rate_limit_per_hour"] = 2
    for n in names:
        FAILING[n] = f"{n} broke"
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    FAILING["a"] = None
    await asyncio.wait_for(orch.scheduler.run_once(["a"], force=True), 10)
    payloads = await slack.wait(3)
    assert [p["text"] for p in payloads] == ["a failed", "b failed", "a recovered"]
    notes = [e["text"] for e in payloads[2]["blocks"][2]["elements"]]
    assert any("2 earlier notification(s) held back" in n for n in notes)


async def test_email_over_starttls_with_a_password_from_a_credential(
    make_config: Callable[..., Config],
    open_orch: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """STARTTLS to a relay with a private CA, logging in with a systemd credential."""
    cert, key = self_signed(tmp_path)
    sink = SmtpSink()
    await sink.start(
        tls_context=server_tls(cert, key),
        require_starttls=True,
        authenticator=sink.authenticate,
        auth_require_tls=True,
    )
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "smtp_password").write_text("s3cret-pass\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    section = alerting(smtp=sink)
    section["alerting"]["email"].update(
        security="starttls",
        username="interlock",
        password="${credential:smtp_password}",
        ca_file=str(cert),
    )
    try:
        orch = await open_orch(
            make_config({"feed": component("Fails")}, performance_monitoring=section)
        )
        await asyncio.wait_for(orch.scheduler.run_once(), 10)
        (mail,) = await sink.wait(1)
    finally:
        await sink.stop()
    assert sink.logins == [("interlock", "s3cret-pass")]
    assert mail["Subject"].startswith("[interlock] feed failed")


def test_a_missing_secret_disables_only_that_channel(make_config: Callable[..., Config]) -> None:
    """A webhook placeholder with no value disables Slack, says why, and keeps email."""
    section = alerting(smtp=SmtpSink())
    section["alerting"]["slack"] = {"webhook_url": "${NO_SUCH_WEBHOOK_VAR}"}
    config = make_config({"feed": component("Fails")}, performance_monitoring=section)
    slack_cfg = config.monitoring["alerting"]["slack"]
    assert slack_cfg["enabled"] is False
    assert "'NO_SUCH_WEBHOOK_VAR' is not set" in slack_cfg["disabled_reason"]
    assert config.monitoring["alerting"]["email"].get("enabled", True)


def test_a_literal_password_is_refused_without_being_echoed(
    make_config: Callable[..., Config],
) -> None:
    """A password written into the config is an error whose message does not repeat it."""
    section = alerting(smtp=SmtpSink())
    section["alerting"]["email"]["password"] = "hunter2-literal"
    with pytest.raises(ConfigError) as err:
        make_config({"feed": component("Fails")}, performance_monitoring=section)
    assert "alerting.email.password: must be a placeholder" in str(err.value)
    assert "hunter2" not in str(err.value)


async def test_run_summary_always_and_quota_warnings(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], slack: SlackStandin
) -> None:
    """run_summary=always summarises a good run; a quota warning event is announced."""
    config = make_config(
        {"ok": component("Publishes")}, performance_monitoring=alerting(slack, run_summary="always")
    )
    orch = await open_orch(config)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 10)
    (summary,) = await slack.wait(1)
    assert summary["text"] == f"run {result.run_id} succeeded"
    assert "1 succeeded" in summary["blocks"][1]["text"]["text"]
    now = datetime.now(UTC)
    orch.bus.publish(
        ev.QuotaWarning(
            threshold_percent=80.0, used=800, limit=1000, reset_at=now + timedelta(hours=3)
        )
    )
    _, quota = await slack.wait(2)
    assert quota["text"] == "API quota 80% used"
    assert "800 of 1000 API calls today" in quota["blocks"][1]["text"]["text"]


def test_a_repeated_failure_is_summarised_once_per_window() -> None:
    """Within the window a repeat is quiet; after it one 'still failing' summary is due."""
    book = AlertBook()
    t0 = datetime(2025, 5, 13, 23, 0, tzinfo=UTC)  # 09:00 in Melbourne
    window = timedelta(minutes=60)
    verdicts = [
        book.on_failure("feed", "HTTP 503", t0 + timedelta(minutes=5 * i), window)
        for i in range(12)
    ]
    assert verdicts == ["failure"] + [None] * 11
    assert (
        book.on_failure("feed", "HTTP 503", t0 + timedelta(minutes=61), window) == "still_failing"
    )
    assert (
        book.on_failure("feed", "no route to host", t0 + timedelta(minutes=62), window) == "failure"
    )
    state = book.failing["feed"]
    e = ev.ComponentFailed(
        at=t0 + timedelta(minutes=61),
        run_id="r",
        component="feed",
        status="failed",
        reason=None,
        started_at=t0 + timedelta(minutes=61),
        duration_s=1.0,
        error="HTTP 503",
    )
    state.failures, state.last_error = 13, "HTTP 503"
    text = render_text(compose.still_failing(e, state, None, ZoneInfo("Australia/Melbourne")))
    assert "Since: failed 13 times since 09:00 (1 h 1 min)" in text
    assert "Next attempt: not scheduled" in text
    assert AlertBook.from_json(book.to_json()).failing["feed"].failures == 13
