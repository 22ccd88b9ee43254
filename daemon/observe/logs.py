"""Structured logging: one JSON object per line for journald, or a console view.

Processors are plain functions; the redactor masks every resolved secret and any
value under a key that names a secret, wherever it appears in an event. The daemon
writes its lines off the event loop (:mod:`.logwriter`): a stalled stdout drops lines,
counted in a ``log_lines_dropped`` line, and never blocks the loop.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import sys
from collections.abc import MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog

from interlock import events as ev
from interlock import secrets
from interlock.core import loglevel
from interlock.observe.logwriter import (
    LineLoggerFactory,
    LineWriter,
    console_summary,
    json_summary,
)

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_SECRET_KEYS = re.compile(
    r"(api_?key|password|passwd|secret|token|devid|webhook|signature)", re.IGNORECASE
)
MASK = "***"

# Tracebacks as data, without local variables: a local may hold a secret, and a
# truncated repr could leak part of one past the redactor.
_JSON_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)

#: The level set by :func:`configure`; hot paths check it before building debug fields.
current_level = logging.INFO
_stream: TextIO = sys.stdout
#: The off-loop writer, when :func:`configure` was asked for one.
_writer: LineWriter | None = None
#: How long the last lines may take at exit before a stalled stdout is given up on.
EXIT_FLUSH_S = 2.0


def _current_level() -> int:
    return current_level


# The engine cannot import this module; it reads the level through this, at each ask.
loglevel.read_level_from(_current_level)


def _mask(value: Any, known: frozenset[str]) -> Any:
    if isinstance(value, str):
        # The one mask (longest first, quoted spellings, PTV signature= values).
        return secrets.mask(value)
    if isinstance(value, dict):
        return {
            k: MASK if _SECRET_KEYS.search(str(k)) and v else _mask(v, known)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask(v, known) for v in value]
    return value


_SECRET_KEY_SEEN: dict[str, bool] = {}


def _secret_key(key: str) -> bool:
    found = _SECRET_KEY_SEEN.get(key)
    if found is None:
        found = _SECRET_KEY_SEEN[key] = _SECRET_KEYS.search(key) is not None
    return found


def add_timestamp(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """ISO 8601 UTC timestamp, unless the event already carries its own."""
    if "timestamp" not in event_dict:
        event_dict["timestamp"] = datetime.now(UTC).isoformat()
    return event_dict


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask secret values (and values of secret-named keys) anywhere in the event."""
    known = secrets.known_secrets()
    seen = _SECRET_KEY_SEEN
    for key, value in event_dict.items():  # values are replaced, keys never added
        secret_key = seen.get(key)
        if secret_key is None:
            secret_key = _secret_key(key)
        if secret_key and value:
            event_dict[key] = MASK
        elif value.__class__ is str:
            if known or "ignature=" in value:
                event_dict[key] = secrets.mask(value)
        elif isinstance(value, dict | list | tuple):
            event_dict[key] = _mask(value, known)
    return event_dict


def configure(
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    *,
    off_loop: bool = False,
) -> None:
    """Set up structlog for this process: ``fmt`` is json, console, or auto (console on a TTY).

    ``off_loop`` (the daemon: ``serve`` and ``run``) hands lines to a writer thread
    with a bounded queue, flushed at exit; without it lines are written as they come.
    """
    global current_level, _stream, _writer
    current_level = LEVELS[level]
    stream = stream or sys.stdout
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    _stream = stream
    stop(EXIT_FLUSH_S)
    if off_loop:
        _writer = LineWriter(stream, summary=console_summary if fmt == "console" else json_summary)
        atexit.register(flush, EXIT_FLUSH_S)
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            add_timestamp,
            _JSON_TRACEBACKS if fmt == "json" else structlog.dev.set_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=(
            structlog.PrintLoggerFactory(stream) if _writer is None else LineLoggerFactory(_writer)
        ),
        cache_logger_on_first_use=False,
    )


def flush(timeout_s: float = EXIT_FLUSH_S) -> bool:
    """Wait (at most ``timeout_s``) until the off-loop writer has written every line."""
    writer = _writer
    return True if writer is None else writer.flush(timeout_s)


def stop(timeout_s: float = EXIT_FLUSH_S) -> None:
    """Write what is queued (at most ``timeout_s``) and stop the off-loop writer, if any."""
    global _writer
    writer, _writer = _writer, None
    if writer is not None:
        atexit.unregister(flush)
        writer.close(timeout_s)


_LEVEL_FOR = {
    "component_failed": "error",
    "component_timed_out": "error",
    "component_cancelled": "warning",
    "component_retrying": "warning",
    "significant_volume_change": "warning",
    "component_quarantined": "warning",
}
_DROP = frozenset({"at", "inputs", "metrics", "memory"})
#: Events handled before the subscriber lets the scheduler run again.
_SLICE = 8


def log_subscriber() -> Any:
    """An event-bus handler that writes every event as one log line.

    Lines go through the configured processors like every other log line (level
    filter, redaction, rendering), but without a bound logger per call, and a
    batch is written and flushed with one call instead of one per line.
    """
    processors = list(structlog.get_config()["processors"])
    threshold = current_level
    stream = _stream
    writer = _writer

    async def handle(batch: Sequence[ev.Event]) -> None:
        lines: list[str] = []
        for i, event in enumerate(batch):
            if i and i % _SLICE == 0:
                await asyncio.sleep(0)
            if isinstance(event, ev.RunFinished) and event.status != "succeeded":
                level = "error" if event.status in ("failed", "timed_out") else "warning"
            else:
                level = _LEVEL_FOR.get(event.name, "info")
            if LEVELS[level] < threshold:
                continue
            fields = event.to_dict(skip=_DROP, drop_none=True)
            fields["timestamp"] = event.at.isoformat()
            quality = fields.pop("quality", None)
            if quality:
                fields["quality_errors"] = quality.get("error_count")
            line: Any = fields
            for processor in processors:
                line = processor(None, level, line)
            lines.append(line)
        if not lines:
            return
        if writer is not None:
            writer.write_lines(lines)
        else:
            stream.write("\n".join(lines) + "\n")
            stream.flush()

    return handle
