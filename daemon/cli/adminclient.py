"""The client side of the admin socket, as the CLI uses it (blocking; one request per call).

Where the socket is comes from :mod:`interlock.config.admin_socket`, which the daemon
uses too, so both agree.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from interlock.errors import AdminError, AdminRequestError, DaemonNotListeningError


class AdminClient:
    """Talks newline-delimited JSON to a daemon's admin socket."""

    def __init__(self, path: Path, *, timeout_s: float = 30.0) -> None:
        self.path = path
        self.timeout_s = timeout_s

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            why = "no such socket" if isinstance(exc, FileNotFoundError) else "connection refused"
            raise DaemonNotListeningError(
                f"no interlock daemon is listening on {str(self.path)!r} ({why}); start it "
                "('systemctl start interlock' or 'interlock serve') or pass --socket PATH"
            ) from None
        except PermissionError:
            sock.close()
            raise DaemonNotListeningError(
                f"permission denied on the admin socket {str(self.path)!r}; run as root or as "
                "a member of the socket's group (interlock)"
            ) from None
        except OSError as exc:
            sock.close()
            raise DaemonNotListeningError(
                f"cannot reach the admin socket {str(self.path)!r}: {exc}"
            ) from None
        return sock

    def listening(self) -> bool:
        """Whether a daemon accepts connections on the socket now."""
        try:
            self._connect().close()
        except DaemonNotListeningError:
            return False
        return True

    def call(self, command: str, **args: Any) -> dict[str, Any]:
        """Send one request; the whole response object (``ok`` true or false)."""
        request = {"command": command, **{k: v for k, v in args.items() if v is not None}}
        with self._connect() as sock:
            sock.sendall(json.dumps(request).encode() + b"\n")
            reader = sock.makefile("rb")
            try:
                line = reader.readline()
            except TimeoutError:
                raise AdminError(
                    f"the daemon on {str(self.path)!r} did not answer {command!r} within "
                    f"{self.timeout_s:g} s"
                ) from None
        if not line:
            raise AdminError(
                f"the daemon on {str(self.path)!r} closed the connection without answering "
                f"{command!r}; see its log (journalctl -u interlock)"
            )
        reply: dict[str, Any] = json.loads(line)
        return reply

    def request(self, command: str, **args: Any) -> Any:
        """Send one request and return its result; a refusal raises AdminRequestError."""
        return _result(self.call(command, **args))

    def watch(
        self, events: list[str] | None = None, *, idle_timeout_s: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Subscribe now, then yield events as the daemon publishes them until it closes.

        The subscription is made before this returns, so nothing published after
        the call is missed. By default a quiet daemon is not an error;
        ``idle_timeout_s`` bounds the wait for each event (TimeoutError).
        """
        sock = self._connect()
        try:
            sock.settimeout(idle_timeout_s if idle_timeout_s is not None else self.timeout_s)
            request: dict[str, Any] = {"command": "watch"}
            if events:
                request["events"] = events
            sock.sendall(json.dumps(request).encode() + b"\n")
            reader = sock.makefile("rb")
            first = reader.readline()
            if not first:
                raise AdminError(f"the daemon on {str(self.path)!r} closed the watch stream")
            _result(json.loads(first))
            sock.settimeout(idle_timeout_s)
        except BaseException:
            sock.close()
            raise
        return self._stream(sock, reader)

    @staticmethod
    def _stream(sock: socket.socket, reader: Any) -> Iterator[dict[str, Any]]:
        try:
            for line in reader:
                message: dict[str, Any] = json.loads(line)
                if message.get("ok") is False:
                    _result(message)
                yield message
        finally:
            reader.close()
            sock.close()


def _result(reply: dict[str, Any]) -> Any:
    """A response's result, or AdminRequestError for a refusal."""
    if not reply.get("ok"):
        error = reply.get("error") or {}
        raise AdminRequestError(str(error.get("code", "error")), str(error.get("message", reply)))
    return reply.get("result")
