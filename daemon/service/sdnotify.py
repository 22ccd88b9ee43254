"""systemd's notify protocol (sd_notify) without a dependency: READY, RELOADING, STATUS,
WATCHDOG, STOPPING.

Messages are datagrams to ``$NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract
socket). Outside systemd nothing is set and every call is a cheap no-op. The
watchdog is fed by a task on the event loop itself, so a blocked loop stops the
pings and systemd restarts the service.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger("interlock.sdnotify")


def _address(value: str) -> str | bytes:
    # '@name' is Linux's abstract namespace: a leading NUL byte on the wire.
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class Notifier:
    """Sends sd_notify messages when systemd (or a test) asked for them."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address: str | bytes | None = None
        target = env.get("NOTIFY_SOCKET", "")
        if target.startswith(("/", "@")):
            self.address = _address(target)
        self.watchdog_s: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process systemd watches; a child that inherited
        # the variables must not feed it.
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1_000_000
        self._sock: socket.socket | None = None
        self._last_status: str | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        """Whether anyone listens for notifications."""
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send one datagram of ``KEY=value`` lines; False if it could not be sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            if not self._failed:  # say it once; a missing listener must not flood the log
                log.warning("sd_notify_failed", error=repr(exc), socket=repr(self.address))
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str) -> None:
        """The service is serving: systemd finishes ``start``."""
        self._last_status = status
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, text: str) -> None:
        """A one-line summary for ``systemctl status`` (sent only when it changes)."""
        text = text.replace("\n", " ")
        if text != self._last_status:
            self._last_status = text
            self.send(f"STATUS={text}")

    def reloading(self) -> None:
        """A configuration reload has begun (``ready`` ends it, applied or rejected).

        Type=notify-reload matches RELOADING=1 to the reload it asked for by
        MONOTONIC_USEC= (CLOCK_MONOTONIC in µs, sd_notify(3)); without it systemd ≥ 253
        may take the message for an older reload and return from ``systemctl reload`` early.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading the configuration")

    def stopping(self, status: str = "stopping") -> None:
        """The service is shutting down."""
        self._last_status = status
        self.send("STOPPING=1", f"STATUS={status}")

    def watchdog(self) -> None:
        """One keep-alive ping."""
        self.send("WATCHDOG=1")

    async def feed_watchdog(self) -> None:
        """Ping at half the watchdog interval until cancelled (returns at once if none)."""
        if self.watchdog_s is None or self.address is None:
            return
        interval = self.watchdog_s / 2
        while True:
            self.watchdog()
            await asyncio.sleep(interval)

    def close(self) -> None:
        """Close the socket. Idempotent."""
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()
