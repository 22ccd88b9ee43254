"""The admin Unix socket: newline-delimited JSON requests in, one JSON response line each.

The server is deliberately defensive: a line has a size limit, a client that sends
nothing is dropped after a timeout, and beyond a cap of concurrent clients the one
idle longest makes room; when none is idle, ``status`` still has a slot of its own
and anything else gets a ``busy`` error at once. Requests are checked by
:mod:`interlock.service.adminrequest`. Every command is logged with the peer's uid
and pid (SO_PEERCRED). ``watch`` turns a connection into a live stream of events.
The protocol is documented in the README ("Admin protocol").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import pwd
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from interlock.errors import AdminError, AdminRequestError
from interlock.events import EventBus
from interlock.service.adminrequest import decode, envelope, request_id
from interlock.service.adminwatch import Watchers

log = structlog.get_logger("interlock.admin")

MAX_LINE_BYTES = 64 * 1024
READ_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 10.0
MAX_CLIENTS = 32
BUSY_READ_S = 1.0
#: After refusing a client, how long its late request is read and dropped, so that
#: the client's write meets an open socket and it reads the reason, not a reset.
BUSY_LINGER_S = 5.0
#: With every slot taken, a connection idle this long is closed to make room.
IDLE_GRACE_S = 1.0
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

    @property
    def actor(self) -> str:
        """Who acted, as events and run triggers record it: ``admin uid 1000 (alice)``."""
        if self.uid is None:
            return "admin"
        name = _user_name(self.uid)
        return f"admin uid {self.uid} ({name})" if name else f"admin uid {self.uid}"


@functools.lru_cache(maxsize=64)
def _user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (a container's, say)
        return None


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
        idle_grace_s: float = IDLE_GRACE_S,
    ) -> None:
        self.path = path
        self.commands = commands
        self.max_line = max_line
        self.read_timeout_s = read_timeout_s
        self.max_clients = max_clients
        self.idle_grace_s = idle_grace_s
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        # Connections waiting for their next request: a future that closes one, and since when.
        self._idle: dict[asyncio.Future[None], float] = {}
        # Over the cap, one ``status`` at a time is still answered.
        self._status_slot = asyncio.Lock()
        self._watchers = Watchers(bus)

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
        self._watchers.end_all()
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
            if len(self._clients) > self.max_clients and not self._close_one_idle():
                await self._over_capacity(reader, writer, peer)
                return
            await self._conversation(reader, writer, peer)
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stopped reading; nothing to tell it
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    def _close_one_idle(self) -> bool:
        """Close the connection idle longest (at least ``idle_grace_s``); whether one was."""
        now = asyncio.get_running_loop().time()
        waiting = [(since, f) for f, since in self._idle.items() if not f.done()]
        if not waiting:
            return False
        since, oldest = min(waiting, key=lambda item: item[0])
        if now - since < self.idle_grace_s:
            return False
        oldest.set_result(None)
        self._idle.pop(oldest, None)
        return True

    async def _over_capacity(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer
    ) -> None:
        """Every slot is busy: answer a ``status`` in the slot kept for it, refuse the rest."""
        # Take the request off the socket first: closing over unread data would
        # reset the connection and the client would never see the reason.
        line = b""
        with contextlib.suppress(TimeoutError, ValueError):
            line = await asyncio.wait_for(reader.readline(), BUSY_READ_S)
        value = request = None
        with contextlib.suppress(AdminRequestError):
            value = decode(line)
            request = envelope(value, self.commands)
        if request and request["command"] == "status" and not self._status_slot.locked():
            async with self._status_slot:
                log.info("admin_command", command="status", uid=peer.uid, pid=peer.pid, slot=1)
                await self._write(writer, await self._run(request, peer))
            return
        log.warning("admin_client_refused", reason="busy", uid=peer.uid, pid=peer.pid)
        await self._write(
            writer,
            error_reply(
                "busy",
                f"the daemon already serves {self.max_clients} admin clients; "
                "try again in a moment",
                request_id(value),
            ),
        )
        if not line:
            await self._linger(reader, writer)

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """End our side, then drop what the client still sends until it closes (bounded):
        closing over its unread request would reset the connection."""
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(TimeoutError, ValueError):
            async with asyncio.timeout(BUSY_LINGER_S):
                while len(await reader.read(MAX_LINE_BYTES)):
                    pass

    async def _next_line(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next request line; None when the connection is closed to make room.

        Raises TimeoutError after ``read_timeout_s``, ValueError for a line too long.
        """
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()
        self._idle[closed] = loop.time()
        read = asyncio.ensure_future(reader.readline())
        either: set[asyncio.Future[Any]] = {read, closed}
        try:
            await asyncio.wait(
                either, timeout=self.read_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._idle.pop(closed, None)
            if not read.done():
                read.cancel()
        if read.done() and not read.cancelled():
            return read.result()
        if closed.done():
            return None
        raise TimeoutError

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer
    ) -> None:
        while True:
            try:
                line = await self._next_line(reader)
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
            if line is None:
                log.info("admin_client_closed_idle", uid=peer.uid, pid=peer.pid)
                await self._write(
                    writer,
                    error_reply(
                        "timeout",
                        f"closing this idle connection: all {self.max_clients} admin client "
                        "slots are taken",
                    ),
                )
                return
            if not line:
                return  # the client closed
            if not line.strip():
                continue
            value = None
            try:
                value = decode(line)
                request = envelope(value, [*self.commands, "watch"])
            except AdminRequestError as exc:
                log.warning("admin_bad_request", code=exc.code, uid=peer.uid, pid=peer.pid)
                await self._write(writer, error_reply(exc.code, str(exc), request_id(value)))
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
                await self._watchers.stream(reader, writer, request, self._write)
                return
            await self._write(writer, await self._run(request, peer))

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
