"""The client side of the admin socket, as the CLI uses it (blocking; one request per call).

Also where the socket's path is decided, so the daemon and the CLI agree: ``--socket``,
else ``runtime_settings.admin_socket`` in the config, else
``$RUNTIME_DIRECTORY/admin.sock``, else ``/run/interlock/admin.sock``.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from interlock.errors import AdminError, AdminRequestError, DaemonNotListeningError

DEFAULT_SOCKET = Path("/run/interlock/admin.sock")
SOCKET_NAME = "admin.sock"


def default_socket_path(env: Mapping[str, str] | None = None) -> Path:
    """``$RUNTIME_DIRECTORY/admin.sock`` (systemd's RuntimeDirectory=), else the fixed default."""
    env = os.environ if env is None else env
    runtime = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime) / SOCKET_NAME if runtime else DEFAULT_SOCKET


def socket_from_config(config_path: Path | None) -> Path | None:
    """``runtime_settings.admin_socket`` of a config file (relative to its folder), if set.

    Reads only that key, so it works where the full config would not load; any
    problem reading the file means "not set" (the caller falls back to the default).
    """
    if config_path is None:
        return None
    try:
        doc = json.loads(config_path.read_text(encoding="utf-8"))
        value = doc["runtime_settings"]["admin_socket"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(value, str) or not value:
        return None
    return config_path.resolve().parent / value


def resolve_socket(
    explicit: Path | None, config_path: Path | None, env: Mapping[str, str] | None = None
) -> Path:
    """The admin socket path: explicit, else the config's, else the environment's default."""
    return explicit or socket_from_config(config_path) or default_socket_path(env)


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
