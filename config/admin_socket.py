"""Where the admin socket is, decided in one place so the daemon and the CLI agree:
``--socket``, else ``runtime_settings.admin_socket`` in the config, else
``$RUNTIME_DIRECTORY/admin.sock``, else ``/run/interlock/admin.sock``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

DEFAULT_SOCKET = Path("/run/interlock/admin.sock")
SOCKET_NAME = "admin.sock"


def default_socket_path(env: Mapping[str, str] | None = None) -> Path:
    """``$RUNTIME_DIRECTORY/admin.sock`` (systemd's RuntimeDirectory=), else the fixed default."""
    env = os.environ if env is None else env
    runtime = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime) / SOCKET_NAME if runtime else DEFAULT_SOCKET


_ADMIN_SOCKET = re.compile(r'"admin_socket"\s*:\s*("(?:[^"\\\n]|\\.)*")')


def _scan_for_socket(text: str) -> str | None:
    found = _ADMIN_SOCKET.search(text)
    try:
        value = json.loads(found.group(1)) if found else None
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def socket_from_config(config_path: Path | None) -> Path | None:
    """``runtime_settings.admin_socket`` of a config file (relative to its folder), if set.

    Reads only that key, so it works where the full config would not load; any
    problem reading the file means "not set" (the caller falls back to the default).
    """
    if config_path is None:
        return None
    try:
        text = config_path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    try:
        value = json.loads(text)["runtime_settings"]["admin_socket"]
    except ValueError:
        # A file broken mid-edit still names its daemon's socket: `interlock reload` must
        # reach that daemon (which then says what is wrong), not a default path.
        value = _scan_for_socket(text)
    except (KeyError, TypeError):
        return None
    if not isinstance(value, str) or not value:
        return None
    return config_path.resolve().parent / value


def resolve_socket(
    explicit: Path | None, config_path: Path | None, env: Mapping[str, str] | None = None
) -> Path:
    """The admin socket path: explicit, else the config's, else the environment's default."""
    return explicit or socket_from_config(config_path) or default_socket_path(env)
