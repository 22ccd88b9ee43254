"""Who may press the dashboard's buttons: a per-install secret and the sessions it opens.

The secret is a file in the state directory (``dashboard.token``, mode 0600, made
on first start), so only the service user and root can read it: the same people
who may use the admin socket, and never every local user as a token in the page
was. A browser trades it once at the login form for a session cookie
(HttpOnly, SameSite=Strict) plus a CSRF value that only same-origin scripts can
read; a script sends it as ``Authorization: Bearer``. Every action carries the
actor that did it.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from interlock import secrets as redact
from interlock.errors import DashboardError

TOKEN_FILE = "dashboard.token"
TOKEN_MODE = 0o600
MIN_TOKEN = 32
SESSION_S = 12 * 3600
MAX_SESSIONS = 32
CSRF_HEADER = "X-Interlock-CSRF"


def load_token(state_dir: Path) -> str:
    """The install's dashboard secret, made (mode 0600) if there is none yet.

    Raises DashboardError when the file is readable by others or too short.
    """
    path = state_dir / TOKEN_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, TOKEN_MODE)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise DashboardError(
            f"cannot read the dashboard token {str(path)!r}: {exc.strerror}; remove it and "
            "restart to have a new one made"
        ) from None
    with os.fdopen(fd) as src:
        mode = stat.S_IMODE(os.fstat(src.fileno()).st_mode)
        token = src.read(4096).strip()
    if mode & 0o077:
        raise DashboardError(
            f"the dashboard token {str(path)!r} is readable by others (mode {mode:04o}); "
            f"chmod 600 it, or remove it and restart for a new one"
        )
    if len(token) < MIN_TOKEN:
        raise DashboardError(
            f"the dashboard token {str(path)!r} holds {len(token)} characters, fewer than "
            f"{MIN_TOKEN}; remove it and restart to have a new one made"
        )
    redact.remember(token)  # never in a log line, whatever echoes it
    return token


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its cookie value, its CSRF value, where and when it began."""

    sid: str
    csrf: str
    remote: str
    began: float

    @property
    def label(self) -> str:
        """A short name for logs and events that cannot be used to act."""
        return hmac.new(self.sid.encode(), b"label", "sha256").hexdigest()[:8]


class Sessions:
    """The signed-in browsers (at most ``MAX_SESSIONS``, each for ``SESSION_S``)."""

    def __init__(self, token: str, *, lifetime_s: float = SESSION_S) -> None:
        self._token = token
        self.lifetime_s = lifetime_s
        self._open: OrderedDict[str, Session] = OrderedDict()

    def token_matches(self, offered: str) -> bool:
        """Whether ``offered`` is the install's secret (in constant time)."""
        return hmac.compare_digest(offered.encode(), self._token.encode())

    def open(self, remote: str) -> Session:
        """A new session (the oldest is dropped beyond the limit)."""
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(24), remote, _now())
        self._open[session.sid] = session
        while len(self._open) > MAX_SESSIONS:
            self._open.popitem(last=False)
        return session

    def get(self, sid: str) -> Session | None:
        """The live session behind a cookie value, or None."""
        session = self._open.get(sid)
        if session is None:
            return None
        if _now() - session.began > self.lifetime_s:
            del self._open[sid]
            return None
        return session

    def close(self, sid: str) -> None:
        self._open.pop(sid, None)


def csrf_matches(session: Session, offered: str) -> bool:
    """Whether a request carries its session's CSRF value."""
    return hmac.compare_digest(offered.encode(), session.csrf.encode())


def _now() -> float:
    return time.monotonic()
