"""Logging: JSON lines, the console view, the secret redactor, and debug decision traces."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from interlock import events as ev
from interlock import secrets
from interlock.observe import logs
from interlock.service.app import Orchestrator
from tests.conftest import component
from tests.testcomponents import PROBE

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Restore structlog, daemon.logs and the secret registry: all three are process-wide."""
    saved = structlog.get_config()
    level, stream = logs.current_level, logs._stream
    known = secrets.known_secrets()
    yield
    structlog.configure(**saved)
    logs.current_level, logs._stream = level, stream
    secrets.forget_all_but(known)  # the test secrets must not mask other tests' output


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed as one JSON object."""
    text = buffer.getvalue()
    assert text.endswith("\n")
    out = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(o, dict) for o in out)
    return out


def a_secret(name: str, value: str) -> str:
    """Resolve an ``${ENV}`` placeholder the way the config loader does, registering it."""
    resolved, missing = secrets.resolve({"key": f"${{{name}}}"}, env={name: value})
    assert missing == []
    return str(resolved["key"])


def test_json_format_writes_one_object_per_line() -> None:
    """Each log call becomes one line holding one JSON object with event, level and timestamp."""
    buffer = io.StringIO()
    logs.configure("info", "json", stream=buffer)
    log = structlog.get_logger("test")
    log.info("thing_happened", count=3)
    log.warning("other_thing", text="two\nlines")
    log.debug("not_shown")
    first, second = json_lines(buffer)
    assert first["event"] == "thing_happened" and first["count"] == 3
    assert first["level"] == "info" and first["timestamp"].endswith("+00:00")
    assert second["event"] == "other_thing" and second["text"] == "two\nlines"


def test_bound_context_is_on_every_line() -> None:
    """run_id and component bound to the context appear on every line logged under them."""
    buffer = io.StringIO()
    logs.configure("info", "json", stream=buffer)
    log = structlog.get_logger("test")
    with structlog.contextvars.bound_contextvars(run_id="r1", component="gtfs_schedule"):
        log.info("one")
        log.error("two")
    log.info("three")
    lines = json_lines(buffer)
    assert [(line.get("run_id"), line.get("component")) for line in lines] == [
        ("r1", "gtfs_schedule"),
        ("r1", "gtfs_schedule"),
        (None, None),
    ]


def test_resolved_secret_is_masked_wherever_it_appears() -> None:
    """A value resolved from a placeholder is masked at top level, nested, and inside strings."""
    secret = a_secret("INTERLOCK_TEST_PTV_DEVKEY", "9f8e7d6c-5b4a-secret-value")
    buffer = io.StringIO()
    logs.configure("info", "json", stream=buffer)
    structlog.get_logger("test").info(
        "fetched",
        plain=secret,
        url=f"https://timetableapi.ptv.vic.gov.au/v3/departures?devid=1&key={secret}&x=2",
        nested={"request": {"headers": {"X-Thing": secret}}},
        items=["ok", f"prefix {secret} suffix"],
    )
    assert secret not in buffer.getvalue()
    (line,) = json_lines(buffer)
    assert line["plain"] == "***"
    assert line["url"].endswith("key=***&x=2")
    assert line["nested"] == {"request": {"headers": {"X-Thing": "***"}}}
    assert line["items"] == ["ok", "prefix *** suffix"]


def test_values_of_secret_named_keys_are_masked() -> None:
    """Values under keys like api_key, password or token are masked, at any depth."""
    buffer = io.StringIO()
    logs.configure("info", "json", stream=buffer)
    structlog.get_logger("test").info(
        "settings_loaded",
        api_key="abc123",
        password="pw",
        token="tok",
        settings={"smtp": {"password": "pw2", "host": "mail"}, "PTV_DEVID": "3001234"},
    )
    (line,) = json_lines(buffer)
    assert (line["api_key"], line["password"], line["token"]) == ("***", "***", "***")
    assert line["settings"] == {"smtp": {"password": "***", "host": "mail"}, "PTV_DEVID": "***"}


def test_a_secret_that_extends_another_is_fully_masked() -> None:
    """A secret that starts with another secret is masked whole, not with its tail showing."""
    pairs = [
        (
            a_secret(f"INTERLOCK_TEST_SHORT_{i}", f"base{i:02d}"),
            a_secret(f"INTERLOCK_TEST_LONG_{i}", f"base{i:02d}-tail-{i:02d}"),
        )
        for i in range(24)
    ]
    buffer = io.StringIO()
    logs.configure("info", "json", stream=buffer)
    log = structlog.get_logger("test")
    for _, long in pairs:
        log.info("fetched", url=f"https://x/?k={long}")
    # With 24 pairs the chance that set order happens to put every long one first is 2**-24.
    for line in json_lines(buffer):
        assert line["url"] == "https://x/?k=***", line


def test_console_format_is_human_readable_and_redacted() -> None:
    """The console view prints the event and its fields as text, with secrets masked too."""
    secret = a_secret("INTERLOCK_TEST_CONSOLE_KEY", "console-secret-42")
    buffer = io.StringIO()
    logs.configure("info", "console", stream=buffer)
    structlog.get_logger("test").info("component_started", component="gtfs", key=secret)
    text = buffer.getvalue()
    assert "component_started" in text and "component" in text and "gtfs" in text
    assert secret not in text and "***" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_auto_format_is_console_on_a_tty_and_json_otherwise() -> None:
    """'auto' picks the console view for a terminal and JSON lines for a pipe."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Terminal(), io.StringIO()
    logs.configure("info", "auto", stream=tty)
    structlog.get_logger("test").info("hello_tty")
    logs.configure("info", "auto", stream=pipe)
    structlog.get_logger("test").info("hello_pipe")
    assert "hello_tty" in tty.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(tty.getvalue().splitlines()[0])
    assert json_lines(pipe)[0]["event"] == "hello_pipe"


async def test_event_log_lines_carry_run_id_component_and_are_redacted() -> None:
    """The bus's log subscriber writes each event as a JSON line, with secrets in errors masked."""
    secret = a_secret("INTERLOCK_TEST_EVENT_KEY", "event-secret-77")
    buffer = io.StringIO()
    logs.configure("info", "json", stream=buffer)
    handle = logs.log_subscriber()
    failed = ev.ComponentFailed(
        run_id="r1",
        component="ptv",
        status="failed",
        reason="HTTP 403",
        started_at=ev.utcnow(),
        duration_s=0.5,
        error=f"HTTP 403 for ...?key={secret}",
    )
    await asyncio.wait_for(
        handle([ev.ComponentStarted(run_id="r1", component="ptv", attempt=1), failed]), 5
    )
    started_line, failed_line = json_lines(buffer)
    assert (started_line["event"], started_line["run_id"], started_line["component"]) == (
        "component_started",
        "r1",
        "ptv",
    )
    assert (failed_line["event"], failed_line["level"]) == ("component_failed", "error")
    assert failed_line["error"] == "HTTP 403 for ...?key=***"
    assert failed_line["timestamp"] == failed.at.isoformat()


async def test_debug_level_traces_decisions_of_scheduled_runs(make_config, tmp_path) -> None:
    """With debug logging, a run started by serve logs a decision for the component it starts."""
    logs.configure("debug", "json", stream=io.StringIO())
    assert logs.current_level == logging.DEBUG
    cfg = make_config({"a": component("Publishes", frequency="1h")})
    with structlog.testing.capture_logs() as captured:
        async with asyncio.timeout(10):
            async with Orchestrator(cfg, log_events=False) as orch:
                stop = asyncio.Event()
                serving = asyncio.create_task(orch.scheduler.serve(stop))
                await PROBE.started_event("a").wait()
                stop.set()
                await serving
                await orch.scheduler.shutdown(5)
    decisions = [e for e in captured if e["event"] == "decision"]
    assert [(d["component"], d["run"]) for d in decisions] == [("a", True)]


def test_a_ptv_signature_is_masked_in_log_lines() -> None:
    """A signed PTV URL in a log field loses its signature value even with no secret known."""
    line = logs.redact_secrets(
        None, "info", {"event": "x", "url": "/v3/routes?devid=1&signature=ABCDEF0123"}
    )
    assert "ABCDEF0123" not in str(line) and "signature=" in line["url"]
