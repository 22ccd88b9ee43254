"""Repeated identical warnings and errors are logged once, then counted.

A flood of the same failure (a client that reconnects a thousand times a second,
a source that fails every poll) must not bury the log or fill the disk: the first
line of a kind goes out, the same line again within ``window_s`` is dropped and
counted, and the next one after the window carries ``repeated`` (how many were
dropped meanwhile). A line's kind is its event name, level and error text, not
its timestamp or run id. The same limiter filters the standard library's loggers
(aiohttp's "Error handling request" tracebacks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

#: Levels that are limited; info and debug lines are never dropped here.
LIMITED = frozenset({"warning", "error", "critical", "exception"})
WINDOW_S = 10.0
#: Kinds remembered at once (the oldest are forgotten first).
MAX_KINDS = 1024


class RepeatLimiter:
    """Counts lines of each kind; says whether one goes out, and what it stood for."""

    def __init__(
        self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, ...], list[float | int]] = {}  # kind -> [since, dropped]

    def admit(self, kind: tuple[str, ...]) -> int | None:
        """None to drop the line; else how many of its kind were dropped before it."""
        now = self.clock()
        entry = self._seen.get(kind)
        if entry is None or now - float(entry[0]) >= self.window_s:
            dropped = int(entry[1]) if entry else 0
            if len(self._seen) >= MAX_KINDS and entry is None:
                self._seen.pop(next(iter(self._seen)))
            self._seen[kind] = [now, 0]
            return dropped
        entry[1] = int(entry[1]) + 1
        return None


def _kind(event_dict: MutableMapping[str, Any], level: str) -> tuple[str, ...]:
    error = event_dict.get("error") or event_dict.get("exception") or ""
    # The component is part of the kind: each failing component is still told apart.
    component = str(event_dict.get("component") or "")
    return (str(event_dict.get("event", "")), level, component, str(error)[:300])


def repeat_processor(limiter: RepeatLimiter) -> Any:
    """A structlog processor that drops repeats of a warning or error line."""

    def process(
        _logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if method not in LIMITED:  # the method is the level: one set lookup on the hot path
            return event_dict
        dropped = limiter.admit(_kind(event_dict, method))
        if dropped is None:
            raise structlog.DropEvent
        if dropped:
            event_dict["repeated"] = dropped
        return event_dict

    return process


class RepeatFilter(logging.Filter):
    """The same limit for the standard library's records (warning and above)."""

    def __init__(self, limiter: RepeatLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        kind = (record.name, record.levelname.lower(), f"{record.msg}|{exc!r}"[:300])
        dropped = self.limiter.admit(kind)
        if dropped is None:
            return False
        if dropped:
            record.msg = f"{record.msg} (repeated {dropped} times since the last line)"
        return True
