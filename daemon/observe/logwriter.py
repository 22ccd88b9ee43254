"""Log lines written off the event loop: a bounded queue drained by one writer thread.

A stalled reader of the stream (a full pipe, a stuck journald) holds up only the
writer thread. While the queue is full the newest lines are dropped and counted;
once the stream takes writes again, one summary line says how many were lost.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

#: Lines held for a stalled stream before new ones are dropped (about 3 MB of JSON).
QUEUE_LINES = 10_000
SUMMARY_EVENT = "log_lines_dropped"


def json_summary(dropped: int) -> str:
    """The summary line in the JSON log format."""
    return json.dumps(
        {
            "event": SUMMARY_EVENT,
            "dropped": dropped,
            "level": "warning",
            "timestamp": datetime.now(UTC).isoformat(),
        }
    )


def console_summary(dropped: int) -> str:
    """The summary line in the console log format."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{when} [warning  ] {SUMMARY_EVENT:<30} dropped={dropped}"


class _Mark(threading.Event):
    """Queued behind lines: set once everything before it is written (``stop``: and exit)."""

    def __init__(self, *, stop: bool = False) -> None:
        super().__init__()
        self.stop = stop


def _raw_fd(stream: TextIO) -> int | None:
    """The file descriptor to write to directly, or None for a stream without one.

    Writing to the descriptor keeps the thread out of the stream's own buffer lock:
    a daemon thread blocked while holding it would make the interpreter abort at exit.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    with contextlib.suppress(OSError, ValueError):
        stream.flush()  # whatever was written through the stream before goes first
    return fd


def connected_to_journal(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` is systemd's journal: ``$JOURNAL_STREAM`` holds its ``dev:ino``.

    systemd.exec(5): the variable names the device and inode of the stream it connected;
    one inherited by a process whose output was redirected names another file.
    """
    env = os.environ if env is None else env
    dev, sep, ino = env.get("JOURNAL_STREAM", "").partition(":")
    if not sep or not dev.isdigit() or not ino.isdigit():
        return False
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


class LineWriter:
    """Writes lines to ``stream`` from a thread of its own; ``write`` never blocks.

    ``summary(n)`` renders the line that reports ``n`` dropped lines.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        maxlines: int = QUEUE_LINES,
        summary: Callable[[int], str] = json_summary,
    ) -> None:
        self.stream = stream
        self.maxlines = maxlines
        self.summary = summary
        self.dropped = 0  # lines lost since the start: refused when full, or failed to write
        self._reported = 0
        self._pending: deque[str | _Mark] = deque()
        self._wake = threading.Event()
        self._count = threading.Lock()
        self._fd = _raw_fd(stream)
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._thread = threading.Thread(target=self._run, name="log writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the writer thread runs."""
        return self._thread.is_alive()

    def write(self, line: str) -> None:
        """Queue one line (without its newline), or drop and count it when the queue is full."""
        pending = self._pending
        if len(pending) >= self.maxlines:
            self._lost(1)
            return
        pending.append(line)
        if not self._wake.is_set():
            self._wake.set()

    def write_lines(self, lines: Iterable[str]) -> None:
        """Queue several lines, in order."""
        for line in lines:
            self.write(line)

    def flush(self, timeout_s: float) -> bool:
        """Wait until every line queued so far is written; False after ``timeout_s``."""
        return self._mark(_Mark(), timeout_s)

    def close(self, timeout_s: float) -> bool:
        """Write what is queued (for at most ``timeout_s``) and stop the thread."""
        if not self.alive:
            return True
        done = self._mark(_Mark(stop=True), timeout_s)
        if done:
            self._thread.join(timeout_s)
        return done

    def _mark(self, mark: _Mark, timeout_s: float) -> bool:
        if not self.alive:
            return False
        self._pending.append(mark)  # past the bound: a mark is not a line
        self._wake.set()
        return mark.wait(timeout_s)

    def _lost(self, n: int) -> None:
        with self._count:
            self.dropped += n

    def _run(self) -> None:
        pending = self._pending
        while True:
            self._wake.wait()
            self._wake.clear()
            lines: list[str] = []
            while pending:
                item = pending.popleft()
                if isinstance(item, str):
                    lines.append(item)
                    continue
                self._write(lines)
                lines = []
                item.set()
                if item.stop:
                    return
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        if not self._emit("\n".join(lines) + "\n"):
            self._lost(len(lines))
            return
        # The stream took writes again: say what was lost before going on.
        dropped = self.dropped
        if dropped > self._reported:
            lost, self._reported = dropped - self._reported, dropped
            self._emit(self.summary(lost) + "\n")

    def _emit(self, text: str) -> bool:
        """Write and flush ``text`` (blocking); False when the stream refuses it."""
        try:
            if self._fd is None:
                self.stream.write(text)
                self.stream.flush()
                return True
            data = memoryview(text.encode(self._encoding, "replace"))
            while data:
                data = data[os.write(self._fd, data) :]
            return True
        except (OSError, ValueError):  # the reader went away, or the stream was closed
            return False


class LineLogger:
    """A structlog logger that hands each rendered line to a :class:`LineWriter`.

    ``name`` is the name given to ``structlog.get_logger`` (the ``logger`` field).
    """

    def __init__(self, writer: LineWriter, name: str | None = None) -> None:
        self._writer = writer
        self.name = name

    def msg(self, message: str) -> None:
        self._writer.write(message)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg
    failure = msg


def logger_name(args: tuple[Any, ...]) -> str | None:
    """The name a ``structlog.get_logger(name)`` call passed to the logger factory."""
    return args[0] if args and isinstance(args[0], str) else None


class LineLoggerFactory:
    """structlog's ``logger_factory``: every logger writes through the same writer.

    One logger per name, kept: without logger caching structlog asks at every call.
    """

    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer
        self._loggers: dict[str | None, LineLogger] = {}

    def __call__(self, *args: Any) -> LineLogger:
        name = logger_name(args)
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = LineLogger(self._writer, name)
        return logger
