"""The admin Unix socket: newline-delimited JSON requests in, one JSON response line each.

The server is deliberately defensive: a line has a size limit, a client that sends
nothing is dropped after a timeout, and beyond a cap of concurrent clients new
ones get a ``busy`` error at once. Every command is logged with the peer's uid and
pid (SO_PEERCRED). ``watch`` turns a connection into a live stream of events.
The protocol is documented in the README ("Admin protocol").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from interlock import events as ev
from interlock.errors import AdminError, AdminRequestError
from interlock.events import EventBus

log = structlog.get_logger("interlock.admin")

MAX_LINE_BYTES = 64 * 1024
READ_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 10.0
MAX_CLIENTS = 32
BUSY_READ_S = 1.0
WATCH_QUEUE = 1000
SOCKET_MODE = 0o660
#: Request arguments worth a place in the log line (anything else may be large or junk).
_LOGGED_ARGS = frozenset(
    {"component", "components", "run_id", "with_deps", "force", "limit", "events"}
)

#: A command handler: the request object and who sent it -> the result (JSON-friendly).
Command = Callable[[dict[str, Any], "Peer"], Awaitable[Any]]


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a connection (from SO_PEERCRED)."""

    pid: int | None
    uid: int | None
    gid: int | None


def peer_of(writer: asyncio.StreamWriter) -> Peer:
    """The connecting process's credentials, as the kernel reports them."""
    sock = writer.get_extra_info("socket")
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
    except (OSError, AttributeError):
        return Peer(None, None, None)
    return Peer(pid, uid, gid)


def encode(message: Mapping[str, Any]) -> bytes:
    """One protocol line."""
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def error_reply(code: str, message: str, request_id: Any = None) -> dict[str, Any]:
    """A failure response."""
    reply: dict[str, Any] = {"ok": False, "error": {"code": code, "message": message}}
    if request_id is not None:
        reply["id"] = request_id
    return reply


def prepare_path(path: Path) -> None:
    """Make ``path`` bindable: create its folder, remove a stale socket, refuse anything else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise AdminError(
            f"admin socket path {str(path)!r} exists and is not a socket; remove it or set "
            "runtime_settings.admin_socket elsewhere"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # left behind by a daemon that died
        return
    finally:
        probe.close()
    raise AdminError(
        f"another process already listens on the admin socket {str(path)!r}; stop it "
        "or set runtime_settings.admin_socket (or --socket) to another path"
    )


def _end_stream(queue: asyncio.Queue[ev.Event | None]) -> None:
    """Put the end marker, dropping queued events if that is what makes room."""
    while queue.full():
        queue.get_nowait()
    queue.put_nowait(None)


class AdminServer:
    """Serves ``commands`` on a Unix socket; ``watch`` streams events from ``bus``."""

    def __init__(
        self,
        path: Path,
        commands: Mapping[str, Command],
        bus: EventBus,
        *,
        max_line: int = MAX_LINE_BYTES,
        read_timeout_s: float = READ_TIMEOUT_S,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.path = path
        self.commands = commands
        self.max_line = max_line
        self.read_timeout_s = read_timeout_s
        self.max_clients = max_clients
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._watchers: dict[asyncio.Queue[ev.Event | None], frozenset[str] | None] = {}
        bus.subscribe("admin_watch", self._fan_out, maxsize=WATCH_QUEUE * 10)

    async def start(self) -> None:
        """Bind the socket (mode 0660) and start accepting clients."""
        prepare_path(self.path)
        try:
            self._server = await asyncio.start_unix_server(
                self._accept, path=str(self.path), limit=self.max_line
            )
        except OSError as exc:
            raise AdminError(
                f"cannot listen on the admin socket {str(self.path)!r}: {exc}; check the folder "
                "exists and is writable, or set runtime_settings.admin_socket"
            ) from None
        os.chmod(self.path, SOCKET_MODE)
        log.info("admin_listening", socket=str(self.path), max_clients=self.max_clients)

    async def close(self) -> None:
        """Stop accepting, end every connection (watchers too), remove the socket. Idempotent."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for queue in list(self._watchers):
            _end_stream(queue)
        if self._clients:
            _, pending = await asyncio.wait(self._clients, timeout=1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # --- connections ------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
            task.add_done_callback(self._clients.discard)
        await self._serve_client(reader, writer)

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = peer_of(writer)
        try:
            if len(self._clients) > self.max_clients:
                log.warning("admin_client_refused", reason="busy", uid=peer.uid, pid=peer.pid)
                # Take the request off the socket first: closing over unread data would
                # reset the connection and the client would never see the reason.
                with contextlib.suppress(TimeoutError, ValueError):
                    await asyncio.wait_for(reader.readline(), BUSY_READ_S)
                await self._write(
                    writer,
                    error_reply(
                        "busy",
                        f"the daemon already serves {self.max_clients} admin clients; "
                        "try again in a moment",
                    ),
                )
                return
            await self._conversation(reader, writer, peer)
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stopped reading; nothing to tell it
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer
    ) -> None:
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), self.read_timeout_s)
            except TimeoutError:
                log.warning(
                    "admin_client_timeout",
                    timeout_s=self.read_timeout_s,
                    uid=peer.uid,
                    pid=peer.pid,
                )
                await self._write(
                    writer,
                    error_reply(
                        "timeout",
                        f"no complete request within {self.read_timeout_s:g} s; closing",
                    ),
                )
                return
            except ValueError:
                log.warning("admin_line_too_long", limit=self.max_line, uid=peer.uid, pid=peer.pid)
                await self._write(
                    writer,
                    error_reply(
                        "line_too_long",
                        f"a request line is limited to {self.max_line} bytes; closing",
                    ),
                )
                return
            if not line:
                return  # the client closed
            if not line.strip():
                continue
            request, reply = self._parse(line)
            if request is None:
                log.warning(
                    "admin_bad_request", code=reply["error"]["code"], uid=peer.uid, pid=peer.pid
                )
                await self._write(writer, reply)
                continue
            command = request["command"]
            log.info(
                "admin_command",
                command=command,
                uid=peer.uid,
                pid=peer.pid,
                **{k: v for k, v in request.items() if k in _LOGGED_ARGS},
            )
            if command == "watch":
                await self._watch(reader, writer, request)
                return
            await self._write(writer, await self._run(request, peer))

    def _parse(self, line: bytes) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        try:
            request = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return None, error_reply("invalid_json", f"the request is not valid JSON: {exc}")
        if not isinstance(request, dict):
            return None, error_reply(
                "invalid_request", 'a request is a JSON object like {"command": "status"}'
            )
        command = request.get("command")
        if command != "watch" and command not in self.commands:
            known = ", ".join(sorted([*self.commands, "watch"]))
            return None, error_reply(
                "unknown_command",
                f"unknown command {command!r}; known: {known}",
                request.get("id"),
            )
        return request, {}

    async def _run(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        request_id = request.get("id")
        try:
            result = await self.commands[request["command"]](request, peer)
        except AdminRequestError as exc:
            return error_reply(exc.code, str(exc), request_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(
                "admin_command_failed", command=request["command"], error=repr(exc), exc_info=True
            )
            return error_reply("internal", f"the command failed: {exc!r}", request_id)
        reply: dict[str, Any] = {"ok": True, "result": result}
        if request_id is not None:
            reply["id"] = request_id
        return reply

    async def _write(self, writer: asyncio.StreamWriter, message: Mapping[str, Any]) -> None:
        writer.write(encode(message))
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)

    # --- watch ------------------------------------------------------------------

    async def _fan_out(self, batch: Sequence[ev.Event]) -> None:
        for queue, wanted in list(self._watchers.items()):
            for event in batch:
                if wanted is not None and event.name not in wanted:
                    continue
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:
                    # A watcher that cannot keep up is cut off rather than slowing the bus.
                    self._watchers.pop(queue, None)
                    _end_stream(queue)
                    break

    async def _watch(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: dict[str, Any]
    ) -> None:
        names = request.get("events")
        known = set(ev._NAMES.values())
        if names is not None and (
            not isinstance(names, list) or not all(n in known for n in names)
        ):
            await self._write(
                writer,
                error_reply(
                    "invalid_argument",
                    f"'events' must be a list of event names; known: {', '.join(sorted(known))}",
                    request.get("id"),
                ),
            )
            return
        queue: asyncio.Queue[ev.Event | None] = asyncio.Queue(WATCH_QUEUE)
        self._watchers[queue] = frozenset(names) if names is not None else None
        reply: dict[str, Any] = {"ok": True, "result": {"watching": names or "all"}}
        if request.get("id") is not None:
            reply["id"] = request["id"]
        closed = asyncio.ensure_future(reader.read())  # EOF: the client went away
        try:
            await self._write(writer, reply)
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    return
                event = getter.result()
                if event is None:
                    if queue not in self._watchers and self._server is not None:
                        await self._write(
                            writer,
                            error_reply(
                                "overflow",
                                f"this watcher fell {WATCH_QUEUE} events behind and was cut off",
                            ),
                        )
                    return
                await self._write(writer, event.to_dict(skip=frozenset({"memory"})))
        finally:
            self._watchers.pop(queue, None)
            closed.cancel()
