"""Structured logging: one JSON object per line for journald, or a console view.

When stdout is the journal (``$JOURNAL_STREAM``) each line starts with its syslog
priority, ``<3>`` error to ``<7>`` debug (sd-daemon(3)), so ``journalctl -p`` filters it.

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
from interlock.observe.logrepeat import RepeatFilter, RepeatLimiter, repeat_processor
from interlock.observe.logwriter import (
    LineLoggerFactory,
    LineWriter,
    connected_to_journal,
    console_summary,
    json_summary,
    logger_name,
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
#: sd-daemon(3)'s prefixes (SD_ERR "<3>" ... SD_DEBUG "<7>") by structlog level name.
PRIORITY = {"debug": "<7>", "info": "<6>", "warning": "<4>", "error": "<3>", "critical": "<2>"}
#: The ``logger`` field of the lines the event bus writes (:func:`log_subscriber`).
EVENTS_LOGGER = "interlock.events"

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


def add_logger_name(
    logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The ``logger`` field: the name given to ``structlog.get_logger``."""
    name = getattr(logger, "name", None)
    if name and "logger" not in event_dict:
        event_dict["logger"] = name
    return event_dict


def _with_priority(renderer: Any) -> Any:
    """``renderer`` with the line's syslog priority in front, for the journal."""

    def render(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        prefix = PRIORITY.get(event_dict.get("level", method), "<6>")
        return prefix + str(renderer(logger, method, event_dict))

    return render


class _NamedPrintLogger(structlog.PrintLogger):
    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name


class _NamedPrintLoggerFactory:
    """``PrintLoggerFactory`` whose loggers keep their name (one logger per name)."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._loggers: dict[str | None, _NamedPrintLogger] = {}

    def __call__(self, *args: Any) -> _NamedPrintLogger:
        name = logger_name(args)
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = _NamedPrintLogger(self._file, name)
        return logger


#: Repeated identical warnings and errors: one line, then a count (see logrepeat).
_STDLIB_FILTER = RepeatFilter(RepeatLimiter())
#: The libraries whose own (standard library) warnings and tracebacks can flood.
_LIMITED_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.access", "aiohttp.client", "asyncio")


def _limit_library_floods() -> None:
    for name in _LIMITED_LOGGERS:
        logger = logging.getLogger(name)
        if _STDLIB_FILTER not in logger.filters:
            logger.addFilter(_STDLIB_FILTER)


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
    limiter = _STDLIB_FILTER.limiter = RepeatLimiter()  # each setup counts afresh
    _limit_library_floods()
    current_level = LEVELS[level]
    stream = stream or sys.stdout
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    _stream = stream
    journal = connected_to_journal(stream)
    stop(EXIT_FLUSH_S)
    if off_loop:
        summary = console_summary if fmt == "console" else json_summary
        if journal:
            summary = _prefixed_summary(summary)
        _writer = LineWriter(stream, summary=summary)
        atexit.register(flush, EXIT_FLUSH_S)
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    if journal:
        renderer = _with_priority(renderer)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            repeat_processor(limiter),
            add_logger_name,
            add_timestamp,
            _JSON_TRACEBACKS if fmt == "json" else structlog.dev.set_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=(
            _NamedPrintLoggerFactory(stream) if _writer is None else LineLoggerFactory(_writer)
        ),
        cache_logger_on_first_use=False,
    )


def _prefixed_summary(summary: Any) -> Any:
    def prefixed(dropped: int) -> str:
        return PRIORITY["warning"] + summary(dropped)

    return prefixed


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
            fields["logger"] = EVENTS_LOGGER
            fields["timestamp"] = event.at.isoformat()
            quality = fields.pop("quality", None)
            if quality:
                fields["quality_errors"] = quality.get("error_count")
            line: Any = fields
            try:
                for processor in processors:
                    line = processor(None, level, line)
            except structlog.DropEvent:  # a repeat the limiter holds back
                continue
            lines.append(line)
        if not lines:
            return
        if writer is not None:
            writer.write_lines(lines)
        else:
            stream.write("\n".join(lines) + "\n")
            stream.flush()

    return handle
