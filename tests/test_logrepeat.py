"""A flood of the same warning or error is logged once, then counted."""

from __future__ import annotations

import io
import logging

import pytest
import structlog

from interlock.observe.logrepeat import RepeatFilter, RepeatLimiter, repeat_processor


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(process, level: str, **fields):
    try:
        return process(None, level, {"level": level, **fields})
    except structlog.DropEvent:
        return None


def test_the_same_error_is_dropped_within_the_window_then_counted() -> None:
    """One line, the repeats dropped, then the next line says how many were dropped."""
    clock = Clock()
    process = repeat_processor(RepeatLimiter(window_s=10, clock=clock))
    first = _run(process, "error", event="accept_failed", error="Too many open files")
    assert first is not None and "repeated" not in first
    assert all(
        _run(process, "error", event="accept_failed", error="Too many open files") is None
        for _ in range(1000)
    )
    clock.now += 10
    later = _run(process, "error", event="accept_failed", error="Too many open files")
    assert later is not None and later["repeated"] == 1000


@pytest.mark.parametrize(
    "other",
    [
        {"event": "accept_failed", "error": "Connection reset"},  # another error
        {"event": "accept_failed", "error": "Too many open files", "component": "b"},
        {"event": "poll_failed", "error": "Too many open files"},
    ],
)
def test_a_different_kind_of_line_is_not_held_back(other: dict[str, str]) -> None:
    """Only identical lines count as repeats: another error, component or event goes out."""
    process = repeat_processor(RepeatLimiter(window_s=10, clock=Clock()))
    assert _run(process, "error", event="accept_failed", error="Too many open files") is not None
    assert _run(process, "error", **other) is not None


def test_info_lines_are_never_dropped() -> None:
    """Progress lines (info, debug) pass however often they repeat."""
    process = repeat_processor(RepeatLimiter(window_s=10, clock=Clock()))
    assert all(_run(process, "info", event="component_started") is not None for _ in range(50))


def test_the_standard_librarys_tracebacks_are_limited_too() -> None:
    """aiohttp's 'Error handling request' lines go through the same limit."""
    stream = io.StringIO()
    logger = logging.getLogger("interlock.test.repeat")
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatFilter(RepeatLimiter(window_s=10, clock=Clock())))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for _ in range(500):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                logger.exception("Error handling request")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().count("Error handling request") == 1


def test_the_daemons_log_setup_limits_a_flood() -> None:
    """Through logs.configure: a thousand identical errors are one JSON line."""
    import json

    from interlock.observe import logs

    stream = io.StringIO()
    logs.configure("info", "json", stream=stream)
    try:
        log = structlog.get_logger("interlock.test")
        for _ in range(1000):
            log.error("accept_failed", error="[Errno 24] Too many open files")
        log.info("still_here")
    finally:
        logs.configure("info", "json")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["accept_failed", "still_here"]
