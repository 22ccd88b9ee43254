"""Logs are written off the event loop: a stalled stdout costs lines (counted), never the daemon.

The writer is tested against a stream whose writes wait on a ``threading.Event`` and
against a real pipe nobody reads; the daemon against ``interlock serve`` with its
stdout connected to such a pipe.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import structlog

from interlock import events as ev
from interlock.cli.adminclient import AdminClient
from interlock.kit.context import ComponentContext
from interlock.observe import logs
from interlock.observe.logwriter import QUEUE_LINES, LineWriter, console_summary, json_summary
from interlock.outcome import Outcome
from tests.test_service import REPO, Daemon, daemons, short_dir  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(30)

#: Enough 200-byte lines to fill a 64 KiB pipe and the writer's queue twice over.
CHATTY_LINES = 25_000


class BlockingStream:
    """A text stream whose writes wait until the test opens it (no file descriptor)."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.entered.set()
        assert self.open.wait(10), "the test never opened the stream"
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def lines(self) -> list[str]:
        return "".join(self.parts).splitlines()


class BrokenStream(BlockingStream):
    """A stream whose reader has gone: every write fails."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.fixture
def stream() -> Iterator[BlockingStream]:
    """A blocking stream, opened after the test so no writer thread is left waiting."""
    s = BlockingStream()
    yield s
    s.open.set()


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    """Put structlog and the log module back as they were (both are process-wide)."""
    saved = structlog.get_config()
    level, out = logs.current_level, logs._stream
    yield
    logs.stop(timeout_s=2)
    structlog.configure(**saved)
    logs.current_level, logs._stream = level, out


def blocked_writer(stream: BlockingStream, maxlines: int) -> LineWriter:
    """A writer whose thread is stuck in its first write (holding ``first``)."""
    writer = LineWriter(stream, maxlines=maxlines)
    writer.write("first")
    assert stream.entered.wait(5)
    return writer


def test_a_blocked_stream_never_blocks_the_caller(stream: BlockingStream) -> None:
    """With the stream stuck, writes return at once; what does not fit is dropped and counted."""
    writer = blocked_writer(stream, maxlines=10)
    t0 = time.monotonic()
    for i in range(1000):
        writer.write(f"line {i}")
    assert time.monotonic() - t0 < 1
    assert writer.dropped == 990
    stream.open.set()
    assert writer.close(5)


def test_one_summary_line_follows_once_the_stream_takes_writes_again(
    stream: BlockingStream,
) -> None:
    """After the stall: the line in flight, a JSON summary of the drops, then the queued lines."""
    writer = blocked_writer(stream, maxlines=10)
    for i in range(100):
        writer.write(f"line {i}")
    stream.open.set()
    assert writer.flush(5)
    lines = stream.lines()
    assert lines[0] == "first"
    summary = json.loads(lines[1])
    assert summary["event"] == "log_lines_dropped"
    assert summary["dropped"] == 90
    assert summary["level"] == "warning"
    assert summary["timestamp"].endswith("+00:00")
    assert lines[2:] == [f"line {i}" for i in range(10)]
    writer.close(1)


def test_each_stall_is_summarised_with_its_own_count(stream: BlockingStream) -> None:
    """A second stall's summary counts only the lines dropped since the first summary."""
    writer = blocked_writer(stream, maxlines=4)
    for i in range(10):
        writer.write(f"a{i}")
    stream.open.set()
    assert writer.flush(5)
    stream.open.clear()
    stream.entered.clear()
    writer.write("second")
    assert stream.entered.wait(5)
    for i in range(7):
        writer.write(f"b{i}")
    stream.open.set()
    assert writer.flush(5)
    summaries = [json.loads(line)["dropped"] for line in stream.lines() if "log_lines" in line]
    assert summaries == [6, 3]
    writer.close(1)


def test_flush_gives_up_after_its_limit_on_a_stalled_stream(stream: BlockingStream) -> None:
    """flush returns False after its timeout instead of waiting for a stream that is stuck."""
    writer = blocked_writer(stream, maxlines=10)
    writer.write("queued")
    t0 = time.monotonic()
    assert writer.flush(0.2) is False
    assert 0.2 <= time.monotonic() - t0 < 2
    stream.open.set()
    assert writer.flush(5)
    assert stream.lines() == ["first", "queued"]
    writer.close(1)


def test_a_broken_stream_counts_lines_and_keeps_the_writer_alive() -> None:
    """A stream whose reader is gone costs lines (counted), not the writer thread."""
    writer = LineWriter(BrokenStream(), maxlines=10)
    writer.write("one")
    writer.write("two")
    assert writer.flush(5)
    assert writer.dropped == 2
    assert writer.alive
    writer.close(1)


def test_a_pipe_nobody_reads_fills_then_drains_with_a_summary() -> None:
    """On a real pipe: writes never block while it is full; reading it brings every kept line."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "w") as out:
        writer = LineWriter(out, maxlines=100)
        t0 = time.monotonic()
        for i in range(5000):
            writer.write(f"{i:05d} " + "x" * 194)  # 200 bytes and a newline
        assert time.monotonic() - t0 < 1
        assert writer.dropped > 0
        got: list[bytes] = []
        drained = threading.Thread(target=lambda: got.append(reader.read()), daemon=True)
        drained.start()
        assert writer.flush(5)
        writer.close(1)
        out.close()
        drained.join(5)
    lines = got[0].decode().splitlines()
    (summary,) = [json.loads(line) for line in lines if line.startswith("{")]
    kept = [line for line in lines if not line.startswith("{")]
    assert summary["dropped"] == writer.dropped
    assert len(kept) + writer.dropped == 5000
    assert kept == sorted(kept)


def test_the_console_summary_is_one_readable_line() -> None:
    """On a console the summary reads like the other console lines: level, name, count."""
    line = console_summary(12)
    assert "\n" not in line
    assert "warning" in line and "log_lines_dropped" in line and "dropped=12" in line
    assert json.loads(json_summary(12))["dropped"] == 12


@pytest.mark.usefixtures("_restore_logging")
def test_off_loop_logging_returns_while_the_stream_is_stuck(stream: BlockingStream) -> None:
    """``configure(off_loop=True)``: a log call never waits for the stream; flush drains it."""
    logs.configure("info", "json", stream=stream, off_loop=True)
    log = structlog.get_logger("test")
    log.info("first_line")
    assert stream.entered.wait(5)
    t0 = time.monotonic()
    for i in range(QUEUE_LINES + 100):
        log.info("flood", n=i)
    assert time.monotonic() - t0 < 5
    stream.open.set()
    assert logs.flush(5)
    lines = [json.loads(line) for line in stream.lines()]
    assert lines[0]["event"] == "first_line"
    assert lines[1]["event"] == "log_lines_dropped" and lines[1]["dropped"] == 100
    assert [e["n"] for e in lines[2:]] == list(range(QUEUE_LINES))


@pytest.mark.usefixtures("_restore_logging")
async def test_the_event_log_subscriber_hands_its_lines_to_the_writer(
    stream: BlockingStream,
) -> None:
    """The bus's log subscriber returns at once with the stream stuck; its lines follow later."""
    logs.configure("info", "json", stream=stream, off_loop=True)
    handle = logs.log_subscriber()
    structlog.get_logger("test").info("first_line")
    assert stream.entered.wait(5)
    batch = [ev.RunStarted(run_id=f"r{i}", trigger="test", components=()) for i in range(50)]
    t0 = time.monotonic()
    await handle(batch)
    assert time.monotonic() - t0 < 1
    stream.open.set()
    assert logs.flush(5)
    runs = [json.loads(line) for line in stream.lines()[1:]]
    assert [e["run_id"] for e in runs] == [f"r{i}" for i in range(50)]


def test_exit_is_not_held_up_by_a_stdout_nobody_reads(tmp_path: Path) -> None:
    """A process that logs into a full pipe still exits, within the flush limit, with status 0."""
    script = (
        "import structlog\n"
        "from interlock.observe import logs\n"
        "logs.configure('info', 'json', off_loop=True)\n"
        "log = structlog.get_logger('t')\n"
        "for i in range(20000):\n"
        "    log.info('line', n=i, pad='x' * 100)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        t0 = time.monotonic()
        assert proc.wait(timeout=15) == 0, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() - t0 < logs.EXIT_FLUSH_S + 5
        assert proc.stderr is not None and b"Fatal Python error" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


# --- the daemon with a stdout nobody reads -----------------------------------------------


class Chatty:
    """Logs ``settings.lines`` lines of about 200 bytes, then says so on ``settings.notify``."""

    settings_schema = None

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings

    async def run(self, ctx: ComponentContext) -> Outcome:
        log = structlog.get_logger("tests.chatty")
        pad = "x" * 120
        for i in range(int(self.settings["lines"])):
            log.info("chatty_line", n=i, pad=pad)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"CHATTY=done", self.settings["notify"])
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.time_ns()}")


class PipedDaemon(Daemon):
    """:class:`Daemon` with stdout connected to a pipe that nobody reads until the test does."""

    def start(self) -> PipedDaemon:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLOCK_", "WATCHDOG"))}
        env.update(
            PYTHONPATH=str(REPO),
            NOTIFY_SOCKET=str(self.root / "notify"),
            INTERLOCK_ADMIN_READ_TIMEOUT="1",
        )
        args = ["--config", str(self.config), "--socket", str(self.socket), "--log-format", "json"]
        with open(self.log, "ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "interlock.cli", "serve", *args, "--grace", str(self.grace)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        self.wait_notify("READY=1", timeout=15)
        return self

    def wait_sent(self, line: str, timeout: float) -> str:
        """The datagram holding ``line``, whether it came before READY=1 or after."""
        self._read = 0
        return self.wait_notify(line, timeout)

    def close(self) -> None:
        super().close()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


def test_a_full_stdout_pipe_never_stalls_the_daemon(
    short_dir: Path,  # noqa: F811 (the fixture)
    daemons: list[Daemon],  # noqa: F811 (the fixture)
) -> None:
    """stdout full and unread: status still answers within 1 s; reading it brings a drop summary."""
    chatty = {
        "class": "tests.test_log_writer:Chatty",
        "frequency": "1h",
        "retries": 0,
        "settings": {"lines": CHATTY_LINES, "notify": str(short_dir / "notify")},
    }
    d = PipedDaemon(short_dir, {"chatty": chatty})
    daemons.append(d)
    d.start()
    d.wait_sent("CHATTY=done", timeout=15)
    t0 = time.monotonic()
    reply = AdminClient(d.socket, timeout_s=1).call("status")
    assert time.monotonic() - t0 < 1
    assert reply["ok"], reply
    assert d.proc is not None
    d.proc.send_signal(signal.SIGTERM)
    out, _ = d.proc.communicate(timeout=20)
    assert d.proc.returncode == 0
    lines = [json.loads(line) for line in out.decode().splitlines()]
    summaries = [e for e in lines if e["event"] == "log_lines_dropped"]
    assert summaries and all(e["level"] == "warning" and e["dropped"] > 0 for e in summaries)
    kept = sum(1 for e in lines if e["event"] == "chatty_line")
    assert kept < CHATTY_LINES <= kept + sum(e["dropped"] for e in summaries)
    assert lines[-1]["event"] == "stopped"  # the last line is not lost on a normal exit
