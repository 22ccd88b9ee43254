"""Who may reach the dashboard and who may act through it.

Every request must name a loopback host (a DNS-rebinding page cannot read it).
Past ``max_connections`` open connections a request gets 503 with Retry-After, and
far past it a connection is closed at once, so a flood of pages cannot take the
daemon's file descriptors. Reading is open to whoever reaches the port; a POST
needs the install's secret (:mod:`.auth`): a session from the login form, with the
page's own Origin and the session's CSRF value, or ``Authorization: Bearer``.
:meth:`Access.actor` names who made an allowed POST.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web

from interlock.config.dashboard import DashboardSettings, host_allowed

from .auth import CSRF_HEADER, Session, Sessions, csrf_matches, load_token

log = structlog.get_logger("interlock.dashboard")

#: Connections past the cap that still get a 503 (beyond these they are closed at once).
SPARE_CONNECTIONS = 16
RETRY_AFTER_S = 5
#: Refusals under a flood are logged at most this often, with their count.
REFUSAL_LOG_S = 10.0
#: POSTs that need the page's origin but no session (they are how one gets a session).
_SIGNING = frozenset({"/api/login", "/api/logout"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str, message: str) -> web.Response:
    """A JSON refusal like every other error the dashboard sends."""
    return web.json_response(
        {"ok": False, "error": {"code": code, "message": message}}, status=status
    )


class _Closed(asyncio.Protocol):
    """A connection far past the cap: closed as soon as it is made, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class Access:
    """The dashboard's gate: Host, connection cap, and the secret behind its buttons."""

    def __init__(self, settings: DashboardSettings, state_dir: Path) -> None:
        self.settings = settings
        # Raises DashboardError for an unsafe token file: better no dashboard than an open one.
        self.sessions = Sessions(load_token(state_dir)) if settings.actions_enabled else None
        self.cookie = f"interlock_session_{settings.port}"
        self.server: web.Server | None = None  # aiohttp's, once the runner is set up
        self._refused = 0
        self._refusal_logged = 0.0

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """The signing-in endpoints."""
        router.add_get("/api/session", self._session)
        router.add_post("/api/login", self._login)
        router.add_post("/api/logout", self._logout)

    # --- connections ------------------------------------------------------------

    @property
    def connections(self) -> int:
        """HTTP connections open now."""
        return len(self.server.connections) if self.server is not None else 0

    def protocol(self) -> asyncio.BaseProtocol:
        """The protocol of a new connection: aiohttp's, or one closed at once far past the cap."""
        limit = self.settings.max_connections + SPARE_CONNECTIONS
        if self.server is None or self.connections >= limit:
            self._note_refusal("connections")
            return _Closed()
        return self.server()

    def _note_refusal(self, reason: str) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._refusal_logged >= REFUSAL_LOG_S:
            log.warning(
                "dashboard_busy",
                reason=reason,
                refused=self._refused,
                connections=self.connections,
                max_connections=self.settings.max_connections,
            )
            self._refusal_logged, self._refused = now, 0

    # --- requests ---------------------------------------------------------------

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse a foreign Host (421), a request past the cap (503), a POST that may not act."""
        host = request.headers.get("Host", "")
        if not host_allowed(host, self.settings.host):
            log.warning("dashboard_refused", reason="host", host=host[:100], remote=request.remote)
            return error(
                421,
                "host_not_allowed",
                f"host {host[:100]!r} is not this machine's loopback address",
            )
        if self.connections > self.settings.max_connections:
            self._note_refusal("max_connections")
            busy = error(
                503,
                "busy",
                f"the dashboard already has {self.settings.max_connections} connections open "
                "(performance_monitoring.dashboard.max_connections); try again shortly",
            )
            busy.headers["Retry-After"] = str(RETRY_AFTER_S)
            busy.force_close()
            return busy
        if request.method == "POST":
            refusal = self._refuse_post(request, host)
            if refusal is not None:
                status, code, message = refusal
                log.warning(
                    "dashboard_refused",
                    reason=code,
                    path=request.path[:200],
                    remote=request.remote,
                    origin=request.headers.get("Origin", "")[:100] or None,
                )
                refused = error(status, code, message)
                if status == 401:
                    refused.headers["WWW-Authenticate"] = 'Bearer realm="interlock dashboard"'
                return refused
        return await handler(request)

    def _refuse_post(self, request: web.Request, host: str) -> tuple[int, str, str] | None:
        """Why a POST may not act: (status, code, message), or None."""
        if self.sessions is None:
            return (
                403,
                "actions_disabled",
                "the dashboard is read-only; set "
                "performance_monitoring.dashboard.actions_enabled to true to use its buttons",
            )
        origin = request.headers.get("Origin")
        bearer = request.headers.get("Authorization", "")
        if bearer:  # a script holding the secret (a page cannot send this to another site)
            if origin is not None and origin != f"http://{host}":
                return (403, "cross_site", f"origin {origin[:100]!r} is not this dashboard")
            scheme, _, offered = bearer.partition(" ")
            if scheme.lower() != "bearer" or not self.sessions.token_matches(offered.strip()):
                return (401, "bad_token", "the Authorization header does not hold the token")
            return None
        if origin != f"http://{host}":
            where = origin[:100] if origin is not None else None
            return (403, "cross_site", f"origin {where!r} is not this dashboard (http://{host})")
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site != "same-origin":
            return (403, "cross_site", f"Sec-Fetch-Site is {site[:40]!r}, not 'same-origin'")
        if request.path in _SIGNING:
            return None
        session = self.session_of(request)
        if session is None:
            return (
                401,
                "not_signed_in",
                "sign in with the dashboard token first (the file dashboard.token in the "
                "state directory, readable by the service user and root only)",
            )
        if not csrf_matches(session, request.headers.get(CSRF_HEADER, "")):
            return (403, "bad_token", "missing or stale CSRF value; reload the dashboard")
        return None

    def actor(self, request: web.Request) -> str:
        """Who made a POST the guard let through, as events and run triggers record it."""
        if request.headers.get("Authorization"):
            return f"dashboard token ({request.remote})"
        session = self.session_of(request)
        label = session.label if session is not None else "?"
        return f"dashboard session {label} ({request.remote})"

    def session_of(self, request: web.Request) -> Session | None:
        """The signed-in session a request's cookie names, if it is still open."""
        sid = request.cookies.get(self.cookie)
        return self.sessions.get(sid) if sid and self.sessions is not None else None

    # --- signing in -------------------------------------------------------------

    async def _session(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        return web.json_response(
            {
                "actions_enabled": self.sessions is not None,
                "signed_in": session is not None,
                "session": session.label if session else None,
                "csrf": session.csrf if session else None,
            }
        )

    async def _login(self, request: web.Request) -> web.Response:
        assert self.sessions is not None  # the guard refuses a POST with actions off
        try:
            body = await request.json()
        except ValueError:
            body = None
        offered = body.get("token") if isinstance(body, dict) else None
        if not isinstance(offered, str):
            return error(400, "bad_request", 'send {"token": "..."} as JSON')
        if not self.sessions.token_matches(offered.strip()):
            log.warning("dashboard_login_failed", remote=request.remote)
            return error(401, "bad_token", "that is not this install's dashboard token")
        session = self.sessions.open(str(request.remote))
        log.info("dashboard_login", session=session.label, remote=request.remote)
        response = web.json_response({"ok": True, "session": session.label, "csrf": session.csrf})
        response.set_cookie(
            self.cookie,
            session.sid,
            httponly=True,
            samesite="Strict",
            path="/",
            max_age=int(self.sessions.lifetime_s),
        )
        return response

    async def _logout(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        if session is not None and self.sessions is not None:
            self.sessions.close(session.sid)
            log.info("dashboard_logout", session=session.label, remote=request.remote)
        response = web.json_response({"ok": True})
        response.del_cookie(self.cookie, path="/")
        return response
