"""Hostile admin requests against a real ``interlock serve``: wrong types, deep nesting,
dates out of range, random JSON at every command, and idle clients holding every slot."""

from __future__ import annotations

import asyncio
import json
import select
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.events import EventBus
from interlock.service.admin import BUSY_LINGER_S, BUSY_READ_S, MAX_CLIENTS, AdminServer, Peer
from tests.conftest import component
from tests.test_admin import cli, raw
from tests.test_service import Daemon

pytestmark = pytest.mark.timeout(60)

COMMANDS = ["status", "plan", "trigger", "pause", "resume", "cancel", "history", "report"]
COMMANDS += ["reload", "watch"]
ARGUMENTS = ["component", "components", "with_deps", "force", "run_id", "limit", "since"]
ARGUMENTS += ["events", "id"]
#: Every code a refusal may carry; ``internal`` (an unexpected exception) is not one of them.
REFUSALS = {
    "invalid_json",
    "invalid_request",
    "unknown_command",
    "unknown_component",
    "invalid_argument",
    "not_started",
    "not_running",
    "invalid_config",
}


@pytest.fixture(scope="module")
def served() -> Iterator[Daemon]:
    """One daemon for the module (idle clients may wait 30 s before it drops them)."""
    root = Path(tempfile.mkdtemp(prefix="ilh-", dir="/tmp"))  # short: AF_UNIX paths
    d = Daemon(
        root, {"a": component("Publishes", "1h")}, env={"INTERLOCK_ADMIN_READ_TIMEOUT": "30"}
    )
    d.start()
    yield d
    d.close()


def ask(d: Daemon, line: bytes, timeout: float = 5) -> dict[str, Any]:
    """The one reply to ``line`` (a request line without its newline)."""
    replies = raw(d.socket, line + b"\n", timeout=timeout)
    assert len(replies) == 1, replies
    return replies[0]


def well_formed(reply: Any, request: Any) -> None:
    """A reply is ok with a result, or a refusal with a known code and a message."""
    assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
    if reply["ok"]:
        assert "result" in reply, reply
    else:
        error = reply["error"]
        assert error["code"] in REFUSALS, reply
        assert isinstance(error["message"], str) and error["message"], reply
    if isinstance(request, dict) and request.get("id") is not None and "id" in reply:
        assert reply["id"] == request["id"], reply


# --- the requests the issue names -------------------------------------------------------


def test_a_list_as_the_command_is_an_invalid_request(served: Daemon) -> None:
    """``{"command": ["status"]}`` is refused with the field, its type and the id."""
    reply = ask(served, b'{"command": ["status"], "id": 3}')
    assert reply["error"]["code"] == "invalid_request" and reply["id"] == 3
    assert "'command' must be a string, not list" in reply["error"]["message"]
    assert served.request("status")["ok"]


def test_thirty_thousand_brackets_are_invalid_json(served: Daemon) -> None:
    """Nesting too deep to parse (but under the line limit) is refused, not a traceback."""
    reply = ask(served, b"[" * 30_000)
    assert reply["error"]["code"] == "invalid_json"
    assert "nested" in reply["error"]["message"]
    assert served.request("status")["ok"]


def test_nesting_deeper_than_the_limit_is_refused_even_when_it_parses(served: Daemon) -> None:
    """A request 100 levels deep inside an argument is refused before any handler sees it."""
    reply = ask(served, b'{"command": "plan", "components": ' + b"[" * 100 + b"]" * 100 + b"}")
    assert reply["error"]["code"] == "invalid_request"
    assert "nested" in reply["error"]["message"]


@pytest.mark.parametrize(
    "line",
    [
        b'{"command": "status", "id": NaN}',
        b'{"command": "status", "id": 1e999}',
        b'{"command": "status", "id": ' + b"9" * 5000 + b"}",
    ],
    ids=["nan", "infinity", "5000-digit integer"],
)
def test_numbers_json_cannot_carry_are_invalid_json(served: Daemon, line: bytes) -> None:
    """NaN, an overflowing float and an integer too long to convert are refused cleanly."""
    assert ask(served, line)["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("since", ["9999-12-31", "0001-01-01", "999999999d", "1" * 400 + "h"])
def test_a_report_since_out_of_range_is_an_invalid_argument(served: Daemon, since: str) -> None:
    """A ``since`` far in the future or the past is refused, naming the value."""
    reply = ask(served, json.dumps({"command": "report", "since": since}).encode())
    assert reply["error"]["code"] == "invalid_argument", reply
    assert repr(since)[:40] in reply["error"]["message"]


def test_the_cli_report_refuses_a_since_out_of_range(served: Daemon) -> None:
    """``interlock report --since 999999999d`` exits 2 with the reason, no traceback."""
    proc = cli("report", "--since", "999999999d", "--config", str(served.config))
    assert proc.returncode == 2, proc.stderr
    assert "'999999999d'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"command": "history", "component": ["a"]}, "'component' must be a string, not list"),
        ({"command": "history", "limit": 2.5}, "'limit' must be an integer"),
        ({"command": "report", "since": 7}, "'since' must be a string, not integer"),
        ({"command": "cancel", "run_id": {"x": 1}}, "'run_id' must be a string, not object"),
        ({"command": "trigger", "component": "a", "force": "yes"}, "'force' must be a boolean"),
        ({"command": "watch", "events": [["run_started"]]}, "'events' must be a list of"),
        ({"command": "pause", "componet": "a"}, "unknown argument 'componet' for 'pause'"),
    ],
)
def test_each_argument_has_its_type_checked(
    served: Daemon, request_: dict[str, Any], field: str
) -> None:
    """A wrong type (or an unknown argument) is an invalid_argument naming the field."""
    reply = ask(served, json.dumps(request_).encode())
    assert reply["error"]["code"] == "invalid_argument", reply
    assert field in reply["error"]["message"]


# --- random JSON at every command -----------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["a", "7d", "1h", "run_started", "2025-01-01"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
requests = st.one_of(
    st.fixed_dictionaries(
        {"command": st.sampled_from(COMMANDS)},
        optional={name: values for name in ARGUMENTS},
    ),
    st.fixed_dictionaries({"command": values}, optional={"id": values}),
    values,
)
#: A request line: a JSON value, or bytes that may not be JSON (or UTF-8) at all.
lines = requests.map(lambda r: (r, json.dumps(r).encode())) | st.binary(max_size=64).filter(
    lambda b: b"\n" not in b and bool(b.strip())
).map(lambda b: (None, b))


@settings(
    max_examples=200,
    deadline=3000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(example=lines)
def test_random_json_at_every_command_always_gets_a_well_formed_reply(
    served: Daemon, example: tuple[Any, bytes]
) -> None:
    """Whatever JSON value (or junk) arrives, the reply is one well-formed line, never
    ``internal``, and the daemon goes on answering."""
    request, line = example
    well_formed(ask(served, line), request)


# --- idle clients ----------------------------------------------------------------------


def _served_once(path: Path) -> socket.socket:
    """A connection that has had one reply and now sits idle (so the daemon counts it)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(path))
    sock.sendall(b'{"command": "history", "limit": 1}\n')
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, "the daemon closed a connection it should keep"
        reply += chunk
    assert json.loads(reply)["ok"]
    return sock


def test_status_answers_at_once_while_idle_clients_hold_every_slot(served: Daemon) -> None:
    """With 32 idle clients connected, ``status`` still answers ok within a second."""
    idle = [_served_once(served.socket) for _ in range(MAX_CLIENTS)]
    try:
        began = time.monotonic()
        reply = ask(served, b'{"command": "status", "id": "probe"}', timeout=2)
        took = time.monotonic() - began
        assert reply["ok"], reply
        assert reply["id"] == "probe" and took < 1.0, took
    finally:
        for sock in idle:
            sock.close()


@pytest.fixture
async def small_server() -> AsyncIterator[AdminServer]:
    """A real admin server with two slots and no grace for idle clients, serving ``plan``."""

    async def plan(request: dict[str, Any], peer: Peer) -> list[str]:
        return ["planned"]

    root = Path(tempfile.mkdtemp(prefix="ilh-", dir="/tmp"))
    bus = EventBus()
    server = AdminServer(root / "a.sock", {"plan": plan}, bus, max_clients=2, idle_grace_s=0.0)
    await asyncio.wait_for(server.start(), 5)
    yield server
    await asyncio.wait_for(server.close(), 5)
    await asyncio.wait_for(bus.close(), 5)
    shutil.rmtree(root, ignore_errors=True)


async def _plan(
    path: Path, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
) -> tuple[dict[str, Any], tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = connection or await asyncio.open_unix_connection(str(path))
    writer.write(b'{"command": "plan"}\n')
    return json.loads(await asyncio.wait_for(reader.readline(), 5)), (reader, writer)


async def test_with_every_slot_taken_the_client_idle_longest_makes_room(
    small_server: AdminServer,
) -> None:
    """Over the cap any command is served: the connection idle longest is told and closed."""
    path = small_server.path
    first, oldest = await _plan(path)
    second, other = await _plan(path)
    assert first["ok"] and second["ok"]  # both now sit idle in their slots
    try:
        reply, newcomer = await _plan(path)
        assert reply == {"ok": True, "result": ["planned"]}
        told = json.loads(await asyncio.wait_for(oldest[0].readline(), 5))
        assert told["error"]["code"] == "timeout" and "slots are taken" in told["error"]["message"]
        assert await asyncio.wait_for(oldest[0].read(), 5) == b""
        again, _ = await _plan(path, other)  # the younger idle client kept its slot
        assert again["ok"]
        newcomer[1].close()
    finally:
        oldest[1].close()
        other[1].close()


async def test_a_refused_client_that_writes_late_still_reads_why() -> None:
    """A client slow to send its request (a loaded machine) is refused as busy; its late
    write must not meet a closed socket (EPIPE/reset) and it still reads the reason."""

    async def plan(request: dict[str, Any], peer: Peer) -> list[str]:
        return ["planned"]

    root = Path(tempfile.mkdtemp(prefix="ilh-", dir="/tmp"))
    bus = EventBus()
    server = AdminServer(root / "a.sock", {"plan": plan}, bus, max_clients=1, idle_grace_s=60.0)
    await asyncio.wait_for(server.start(), 5)
    holder, held = await _plan(server.path)  # takes the only slot, then sits idle
    assert holder["ok"]

    def late_writer() -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(server.path))
            # Wait until the server has given up on us, answered (busy) and ended its
            # side of the stream, then write.
            poll = select.poll()
            poll.register(sock, select.POLLIN | select.POLLRDHUP)
            assert poll.poll(10_000), "no busy reply within 10 s"
            while not poll.poll(10_000)[0][1] & (select.POLLRDHUP | select.POLLHUP):
                pass
            sock.sendall(b'{"command": "plan"}\n')
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                assert chunk, "closed before a whole reply"
                data += chunk
            return dict(json.loads(data))

    try:
        reply = await asyncio.wait_for(asyncio.to_thread(late_writer), 20)
        assert reply["ok"] is False and reply["error"]["code"] == "busy"
    finally:
        held[1].close()
        await asyncio.wait_for(server.close(), 5)
        await asyncio.wait_for(bus.close(), 5)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow  # the refusal waits out BUSY_READ_S, then BUSY_LINGER_S
async def test_a_refused_client_that_never_closes_is_let_go_within_the_linger() -> None:
    """The late-request linger is bounded: a refused client that neither writes nor
    closes is disconnected after BUSY_READ_S + BUSY_LINGER_S, not held forever."""

    async def plan(request: dict[str, Any], peer: Peer) -> list[str]:
        return ["planned"]

    root = Path(tempfile.mkdtemp(prefix="ilh-", dir="/tmp"))
    bus = EventBus()
    server = AdminServer(root / "a.sock", {"plan": plan}, bus, max_clients=1, idle_grace_s=60.0)
    await asyncio.wait_for(server.start(), 5)
    holder, held = await _plan(server.path)
    assert holder["ok"]

    def silent_client() -> tuple[dict[str, Any], float]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(server.path))
            t0 = time.monotonic()
            poll = select.poll()
            poll.register(sock, select.POLLIN)
            assert poll.poll(10_000), "no busy reply"
            reply = json.loads(sock.recv(65536).split(b"\n")[0])
            # The daemon half-closes at once; POLLHUP comes only when it lets go entirely.
            limit_ms = int((BUSY_READ_S + BUSY_LINGER_S + 5) * 1000)
            while True:
                events = poll.poll(limit_ms)
                assert events, "held past the linger"
                if events[0][1] & select.POLLHUP:
                    break
                assert sock.recv(65536) == b"", "the daemon sent more than its reply"
                assert time.monotonic() - t0 < limit_ms / 1000, "held past the linger"
            return reply, time.monotonic() - t0

    try:
        reply, held_s = await asyncio.wait_for(asyncio.to_thread(silent_client), 30)
        assert reply["error"]["code"] == "busy"
        assert BUSY_LINGER_S <= held_s < BUSY_READ_S + BUSY_LINGER_S + 5
    finally:
        held[1].close()
        await asyncio.wait_for(server.close(), 5)
        await asyncio.wait_for(bus.close(), 5)
        shutil.rmtree(root, ignore_errors=True)
