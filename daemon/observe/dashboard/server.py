"""The dashboard's aiohttp application: one page, its assets, JSON, SSE and (opt-in) actions.

Who may reach it and who may act (Host check, connection cap, the secret behind
the buttons) is :mod:`.access`; this module serves the page and its data and
carries out the actions, each recorded with its actor.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from interlock.config.dashboard import DashboardSettings
from interlock.errors import DashboardError, StateError
from interlock.events import utcnow
from interlock.store.abc import StateReader

from . import queries, views
from .access import Access
from .access import error as _error
from .live import LiveHub

if TYPE_CHECKING:
    from interlock.observe.dashboard.host import DashboardHost

log = structlog.get_logger("interlock.dashboard")

ASSETS = {"app.js": "text/javascript", "style.css": "text/css", "favicon.svg": "image/svg+xml"}
HEARTBEAT_S = 15.0
HISTORY_TTL_S = 2.0
#: An idle keep-alive connection (or one that never sends a request) is closed after this.
KEEPALIVE_S = 15.0
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _asset(name: str) -> bytes:
    return (resources.files("interlock.observe.dashboard") / "static" / name).read_bytes()


class Dashboard:
    """Serves the dashboard of ``orch`` while open (``async with`` or start/close)."""

    def __init__(
        self,
        orch: DashboardHost,
        settings: DashboardSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if orch.bus is None:
            raise StateError("the orchestrator is not open; start the dashboard inside it")
        self.orch = orch
        self.settings = settings
        self.clock = clock
        self.access: Access | None = None
        self._hub: LiveHub | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._reader: StateReader | None = None
        self._history: tuple[int, float, bytes] | None = None
        self._history_lock = asyncio.Lock()
        self._page = _asset("index.html")
        self._assets = {name: _asset(name) for name in ASSETS}
        self.port: int | None = None

    @property
    def url(self) -> str:
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        return f"http://{host}:{self.port}/"

    async def __aenter__(self) -> Dashboard:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Listen, then follow the bus and read the last outcomes from the state database."""
        try:
            access = self.access = Access(self.settings, self.orch.config.runtime.state_dir)
            app = web.Application(middlewares=[access.guard], client_max_size=64 * 1024)
            app.on_response_prepare.append(self._headers)
            app.router.add_get("/", self._index)
            app.router.add_get("/static/{name}", self._static)
            app.router.add_get("/api/overview", self._overview)
            app.router.add_get("/api/history", self._history_view)
            app.router.add_get("/api/quality", self._quality)
            app.router.add_get("/api/events", self._events)
            access.add_routes(app.router)
            app.router.add_post("/api/components/{name}/{action}", self._action)
            self._runner = web.AppRunner(
                app, access_log=None, shutdown_timeout=2.0, keepalive_timeout=KEEPALIVE_S
            )
            await self._runner.setup()
            access.server = self._runner.server
            try:
                self._server = await asyncio.get_running_loop().create_server(
                    access.protocol, self.settings.host, self.settings.port, backlog=128
                )
            except OSError as exc:
                raise DashboardError(
                    f"the dashboard cannot listen on {self.settings.listen!r}: {exc.strerror}; "
                    "stop what uses that port or set performance_monitoring.dashboard.listen"
                ) from None
            self.port = self._server.sockets[0].getsockname()[1]
            # Subscribed only once listening, so a dashboard that failed leaves no subscriber;
            # events from here on win over what the database says below.
            assert self.orch.bus is not None
            self._hub = LiveHub(self.orch.bus)
            # A read-only view of its own: page queries never hold up history writes.
            reader = self.orch.store.reader(timeout_s=2.0)
            await reader.open()
            self._reader = reader
            names = list(self.orch.config.components)
            self._hub.seed(
                await queries.read_last_runs(reader, names),
                await queries.read_last_quality(reader, names),
            )
        except BaseException:
            await self.close()
            raise
        log.info(
            "dashboard_listening",
            url=self.url,
            actions=self.settings.actions_enabled,
            max_connections=self.settings.max_connections,
        )

    async def close(self) -> None:
        """End the live streams, stop listening, close the database view. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._hub is not None:
            self._hub.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if server is not None:
            await server.wait_closed()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await reader.close()

    @property
    def hub(self) -> LiveHub:
        if self._hub is None:
            raise StateError("the dashboard is not open; call start() first")
        return self._hub

    @property
    def reader(self) -> StateReader:
        """The dashboard's read-only view of the state store (only while open)."""
        if self._reader is None:
            raise StateError("the dashboard is not open")
        return self._reader

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(SECURITY_HEADERS)
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"

    # --- pages ------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.Response:
        page = self._page.replace(
            b"{{ACTIONS}}", b"true" if self.settings.actions_enabled else b"false"
        )
        response = web.Response(body=page, content_type="text/html", charset="utf-8")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self._assets:
            return _error(404, "not_found", f"no asset {name!r}")
        response = web.Response(body=self._assets[name], content_type=ASSETS[name])
        response.headers["Cache-Control"] = "no-cache"
        return response

    # --- data -------------------------------------------------------------------

    async def _overview(self, request: web.Request) -> web.Response:
        doc = views.overview(
            self.orch, self.hub.last, self.clock(), actions_enabled=self.settings.actions_enabled
        )
        return web.json_response(doc, dumps=_dumps)

    async def history(self) -> bytes:
        """Trends and error patterns as JSON, recomputed when history changed (or aged)."""
        async with self._history_lock:
            cached = self._history
            now_s = time.monotonic()
            if cached and cached[0] == self.hub.version and now_s - cached[1] < HISTORY_TTL_S:
                return cached[2]
            version = self.hub.version
            started = time.perf_counter()
            now = self.clock()
            tz = self.orch.config.runtime.timezone
            doc: dict[str, Any] = {
                "now": now.astimezone(tz).isoformat(),
                "timezone": str(tz),
                "trends": await queries.read_trends(
                    self.reader, list(self.orch.config.components), now, tz
                ),
                "errors": await queries.read_errors(self.reader, now, tz),
            }
            doc["query_ms"] = round((time.perf_counter() - started) * 1000, 1)
            body = _dumps(doc).encode()
            self._history = (version, now_s, body)
            return body

    async def _history_view(self, request: web.Request) -> web.Response:
        return web.Response(body=await self.history(), content_type="application/json")

    async def _quality(self, request: web.Request) -> web.Response:
        tz = self.orch.config.runtime.timezone
        out = {}
        for name in self.orch.config.components:
            entry = self.hub.quality.get(name)
            if entry is not None:
                out[name] = {**entry, "finished_at": views._local(entry["finished_at"], tz)}
        return web.json_response({"components": out}, dumps=_dumps)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        queue = self.hub.connect()
        try:
            await response.write(b"retry: 2000\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if message is None:
                    break
                await response.write(message)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the page went away (or the server is closing)
        finally:
            self.hub.disconnect(queue)
        return response

    # --- actions ----------------------------------------------------------------

    async def _action(self, request: web.Request) -> web.Response:
        name, action = request.match_info["name"], request.match_info["action"]
        assert self.access is not None  # open: start() made it
        actor = self.access.actor(request)
        components = self.orch.config.components
        if name not in components:
            return _error(
                404,
                "unknown_component",
                f"unknown component {name[:100]!r}; known: {', '.join(components)}",
            )
        log.info("dashboard_action", action=action[:40], component=name, actor=actor)
        if action in ("pause", "resume"):
            changed = await self.orch.set_paused(name, action == "pause", actor=actor)
            return web.json_response(
                {"ok": True, "changed": changed, "paused": sorted(self.orch.scheduler.paused)}
            )
        if action != "trigger":
            return _error(
                404,
                "unknown_action",
                f"unknown action {action[:40]!r}; known: trigger, pause, resume",
            )
        try:
            run_id, decisions = self.orch.scheduler.start_run([name], trigger=actor)
        except StateError as exc:
            return _error(409, "not_serving", str(exc))
        if run_id is None:
            why = "; ".join(
                f"{d.reason.value if d.reason else 'not run'}: {d.detail}"
                for d in decisions
                if d.component == name
            )
            return _error(409, "not_started", f"{name!r} was not started: {why}")
        return web.json_response({"ok": True, "run_id": run_id}, status=202)


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), default=str)


async def start_dashboard(orch: DashboardHost) -> Dashboard | None:
    """Start the dashboard if the config enables it (None when off or when it cannot listen).

    A port already in use is logged, not fatal: the daemon's job is the data, and
    the admin socket still answers.
    """
    settings = DashboardSettings.from_monitoring(orch.config.monitoring)
    if not settings.enabled:
        return None
    dashboard = Dashboard(orch, settings)
    try:
        await dashboard.start()
    except DashboardError as exc:
        log.error("dashboard_failed", error=str(exc))
        return None
    return dashboard
