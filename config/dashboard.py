"""``performance_monitoring.dashboard`` from the config: parsed, with the loopback rule.

Its pages are open to whoever reaches the port (only its buttons need the install's
token), so it only ever listens on a loopback address; operators reach it from
elsewhere through an SSH tunnel. The Host-header rule here guards /metrics too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:8765"
#: A page holds two or three connections; 64 is a room full of operators, far from any
#: file-descriptor limit.
DEFAULT_MAX_CONNECTIONS = 64
WHERE = "$.performance_monitoring.dashboard"


@dataclass(frozen=True)
class DashboardSettings:
    """Whether the dashboard runs, where it listens, whether its buttons act, how many
    connections it holds open at most."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8765
    actions_enabled: bool = False
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def from_monitoring(cls, monitoring: Mapping[str, Any]) -> DashboardSettings:
        """From the ``performance_monitoring`` section (already validated by the config)."""
        section = monitoring.get("dashboard")
        section = section if isinstance(section, Mapping) else {}
        host, port = split_listen(str(section.get("listen", DEFAULT_LISTEN)))
        return cls(
            enabled=bool(section.get("enabled", False)),
            host=host,
            port=port,
            actions_enabled=bool(section.get("actions_enabled", False)),
            max_connections=int(section.get("max_connections", DEFAULT_MAX_CONNECTIONS)),
        )


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8765"`` / ``"[::1]:8765"`` / ``"localhost:8765"`` -> (host, port).

    Raises ValueError saying what is wrong.
    """
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"{listen!r} is not HOST:PORT; use e.g. {DEFAULT_LISTEN!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{listen!r}: write an IPv6 address in brackets, e.g. '[::1]:8765'")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"{listen!r}: port {port} is above 65535")
    return host, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: 127.0.0.0/8, ::1 or ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_allowed(header: str, listen_host: str) -> bool:
    """Whether a Host header names this machine (``listen_host`` or a loopback name).

    A DNS-rebinding page reaches a loopback port under its own name
    (``evil.example:8765``); refusing that name keeps it from reading the answer.
    """
    if header.startswith("["):
        host = header[1:].partition("]")[0]
    else:
        host = header.rpartition(":")[0] if header.count(":") == 1 else header
    return bool(host) and (is_loopback(host) or host == listen_host)


def problems(monitoring: Any) -> list[str]:
    """Config problems in ``performance_monitoring.dashboard`` (for ``parse_config``)."""
    if not isinstance(monitoring, Mapping):
        return []
    section = monitoring.get("dashboard")
    if not isinstance(section, Mapping) or not isinstance(section.get("listen"), str):
        return []  # absent, or the wrong type: the schema reports that
    listen = section["listen"]
    try:
        host, _ = split_listen(listen)
    except ValueError as exc:
        return [f"{WHERE}.listen: {exc}"]
    if not is_loopback(host):
        return [
            f"{WHERE}.listen: {listen!r} is not a loopback address; the dashboard's pages "
            "have no login, so it listens on 127.0.0.1, ::1 or localhost only: use "
            f"{DEFAULT_LISTEN!r} and reach it from elsewhere through an SSH tunnel "
            "(ssh -L 8765:127.0.0.1:8765 HOST)"
        ]
    return []
