"""``performance_monitoring.metrics.listen`` checked when the config loads.

``serve`` binds it on a loopback address only; judging it here as well means
``check-config`` (and ``run``) refuse what ``serve`` would, with the same advice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:9464"
WHERE = "$.performance_monitoring.metrics.listen"


def listen_problem(listen: str) -> str | None:
    """Why ``listen`` is not a loopback ``HOST:PORT`` (``[::1]:9464``), or None."""
    host, sep, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit():
        return "is not HOST:PORT"
    if int(port) > 65535:
        return f"has port {int(port)}, above 65535"
    if host == "localhost":
        return None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return None if loopback else "is not a loopback address (127.0.0.1, [::1] or localhost)"


def problems(monitoring: Any) -> list[str]:
    """Config problems in ``performance_monitoring.metrics`` (for ``parse_config``)."""
    section = monitoring.get("metrics") if isinstance(monitoring, Mapping) else None
    if not isinstance(section, Mapping) or not isinstance(section.get("listen"), str):
        return []  # absent, or the wrong type: the schema reports that
    listen = section["listen"]
    why = listen_problem(listen)
    if why is None:
        return []
    return [
        f"{WHERE}: {listen!r} {why}; metrics are served on loopback only, e.g. "
        f"{DEFAULT_LISTEN!r}: expose them elsewhere through a proxy"
    ]
