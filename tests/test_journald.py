"""Log lines as journald reads them: a ``<N>`` syslog priority prefix when stdout is the
journal (``$JOURNAL_STREAM`` names its device and inode), plain JSON lines elsewhere.

The journal is stood in for by a file: the test puts the file's own ``dev:ino`` in
``JOURNAL_STREAM``, which is exactly what systemd does for the stream it connects.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import component
from tests.test_service import Daemon, daemons, next_event, short_dir  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(60)

_LOGS_EVERY_LEVEL = """
import structlog
from interlock.observe import logs
logs.configure("debug", "json", off_loop=True)
log = structlog.get_logger("interlock.probe")
log.debug("a_debug")
log.info("an_info")
log.warning("a_warning")
log.error("an_error")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("an_exception")
"""

_PREFIXED = re.compile(r"^<([0-7])>(\{.*\})$")


def journal_stream(path: Path) -> str:
    """What systemd puts in ``$JOURNAL_STREAM`` for a stream connected to ``path``."""
    st = path.stat()
    return f"{st.st_dev}:{st.st_ino}"


def run_logging(out: Path, journal: str | None) -> list[str]:
    """Run a process that logs at every level with stdout on ``out``; its lines."""
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env["PYTHONPATH"] = str(REPO)
    if journal is not None:
        env["JOURNAL_STREAM"] = journal
    with open(out, "ab") as stdout:
        subprocess.run(
            [sys.executable, "-c", _LOGS_EVERY_LEVEL],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            timeout=30,
            check=True,
        )
    return out.read_text().splitlines()


def priorities(lines: list[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Event name -> (priority, the JSON object) of prefixed lines; asserts all are prefixed."""
    out = {}
    for line in lines:
        match = _PREFIXED.match(line)
        assert match, f"not a <N>-prefixed JSON line: {line!r}"
        fields = json.loads(match.group(2))
        out[fields["event"]] = (int(match.group(1)), fields)
    return out


def test_lines_carry_their_syslog_priority_when_stdout_is_the_journal(tmp_path: Path) -> None:
    """With JOURNAL_STREAM naming stdout, each line starts <7> debug ... <3> error."""
    out = tmp_path / "journal"
    out.touch()
    seen = priorities(run_logging(out, journal_stream(out)))
    assert {name: p for name, (p, _) in seen.items()} == {
        "a_debug": 7,
        "an_info": 6,
        "a_warning": 4,
        "an_error": 3,
        "an_exception": 3,
    }
    assert seen["an_info"][1]["logger"] == "interlock.probe"


def test_lines_stay_plain_json_when_stdout_is_not_the_journal(tmp_path: Path) -> None:
    """A JOURNAL_STREAM naming another file (stdout redirected) leaves plain JSON lines."""
    out, other = tmp_path / "log", tmp_path / "journal"
    out.touch()
    other.touch()
    for journal in (journal_stream(other), None, "not-a-dev:ino"):
        out.write_text("")
        lines = run_logging(out, journal)
        parsed = [json.loads(line) for line in lines]  # no prefix: every line is JSON
        assert [p["event"] for p in parsed] == [
            "a_debug",
            "an_info",
            "a_warning",
            "an_error",
            "an_exception",
        ]
        assert all(p["logger"] == "interlock.probe" for p in parsed)


def test_the_daemon_logs_a_failed_component_at_error_priority_in_the_journal(
    short_dir: Path,  # noqa: F811 (fixture)
    daemons: list[Daemon],  # noqa: F811 (fixture)
) -> None:
    """``journalctl -p warning`` sees the daemon's failures: event lines are prefixed too."""
    d = Daemon(short_dir, {"bad": component("Fails", "1h")})
    daemons.append(d)
    d.log.touch()
    d.extra_env["JOURNAL_STREAM"] = journal_stream(d.log)
    stream = d.start().events()
    # The start-up run may have failed before the stream opened; a trigger fails it again
    # (or is refused while that first run is still going, whose failure the stream sees).
    d.request("trigger", component="bad")
    next_event(stream, event="component_failed", component="bad")
    assert d.stop() == 0
    seen = priorities(d.log.read_text().splitlines())
    assert seen["component_failed"][0] == 3
    assert seen["serving"] == (6, seen["serving"][1])
    assert seen["serving"][1]["logger"] == "interlock.service"
    assert seen["stopped"][0] == 6
