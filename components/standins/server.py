"""One aiohttp server on 127.0.0.1 hosting every stand-in source.

It wraps the sources' routes with fault injection and a request log, and exposes
the same controls in-process (`server.faults`, `server.publish`) and over HTTP.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Handler

from .ckan import CkanCatalog
from .control import CONTROL_PREFIX, ControlRoutes
from .datavic import DatavicSource
from .errors import DuplicateNameError, ServerStateError, UnknownSourceError
from .fault_injection import Streamed, plan_fault
from .faults import FaultTable
from .gtfs_realtime import GtfsRealtimeSource
from .gtfs_schedule import GtfsScheduleSource
from .ptv import PtvSource
from .request_log import RequestRecord
from .source import Publication, Source

HOST = "127.0.0.1"


class RunState(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    CLOSED = "closed"


def default_sources() -> list[Source]:
    """One of every source that exists, with default settings."""
    return [
        GtfsScheduleSource(),
        GtfsRealtimeSource(),
        PtvSource(),
        DatavicSource("station"),
        DatavicSource("temporal"),
    ]


class StandinServer:
    """Stand-in upstream servers for tests and the demo: ``async with StandinServer() as s``.

    `port` 0 picks a free port. `shutdown_timeout` bounds how long `close()` waits
    for requests still in progress (a `slow` fault may be sleeping in one).
    """

    def __init__(
        self,
        sources: Sequence[Source] | None = None,
        *,
        port: int = 0,
        shutdown_timeout: float = 1.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        chosen = default_sources() if sources is None else list(sources)
        self._sources: dict[str, Source] = {}
        for source in chosen:
            if source.name in self._sources:
                raise DuplicateNameError(
                    f"two sources are named {source.name!r}; give each source a unique name"
                )
            self._sources[source.name] = source
        self._port = port
        self._shutdown_timeout = shutdown_timeout
        self._clock = clock or (lambda: datetime.now(UTC))
        self.faults = FaultTable()
        self.requests: list[RequestRecord] = []
        self.ckan = CkanCatalog()
        self._state = RunState.NEW
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # --- lifecycle -------------------------------------------------------------------

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def base_url(self) -> str:
        """E.g. "http://127.0.0.1:43123", without a trailing slash."""
        if self._base_url is None or self._state is not RunState.RUNNING:
            raise ServerStateError(
                f"the stand-in server is {self._state.value}; it has a URL only while running"
            )
        return self._base_url

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this server."""
        return self.base_url + path

    async def start(self) -> None:
        if self._state is not RunState.NEW:
            raise ServerStateError(
                f"the stand-in server is {self._state.value}; only a new server can be started"
            )
        self._state = RunState.STARTING
        try:
            runner = web.AppRunner(
                self._build_app(),
                shutdown_timeout=self._shutdown_timeout,
                # A client that gives up (e.g. on a `slow` fault) cancels its handler.
                handler_cancellation=True,
                access_log=None,
            )
            self._runner = runner
            await runner.setup()
            await web.TCPSite(runner, HOST, self._port).start()
            host, port = runner.addresses[0][:2]
            self._base_url = f"http://{host}:{port}"
            self._state = RunState.RUNNING
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop serving; safe to call more than once."""
        self._state = RunState.CLOSED
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> StandinServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __del__(self) -> None:
        if getattr(self, "_runner", None) is not None:
            warnings.warn(
                "StandinServer was never closed; use `async with StandinServer()`",
                ResourceWarning,
                stacklevel=1,
            )

    # --- sources ---------------------------------------------------------------------

    @property
    def sources(self) -> dict[str, Source]:
        return dict(self._sources)

    def source(self, name: str) -> Source:
        try:
            return self._sources[name]
        except KeyError:
            known = ", ".join(sorted(self._sources)) or "none"
            raise UnknownSourceError(f"no source named {name!r}; known sources: {known}") from None

    def publish(self, source: str, version: int) -> Publication:
        """Make `source` serve generated content for `version`."""
        return self.source(source).publish(version)

    # --- the application -------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        for source in self._sources.values():
            source.setup(app, self.ckan)
        self.ckan.setup(app)
        ControlRoutes(self).setup(app)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        owners = {s.name for s in self._sources.values() if s.owns(request)}
        if (dataset_owner := self.ckan.owner_of(request)) is not None:
            owners.add(dataset_owner)
        sources = tuple(sorted(owners))
        fault = self.faults.take(request.path, sources)
        fault_name = None if fault is None else fault.kind.value
        planned: web.StreamResponse | Streamed
        try:
            if fault is None:
                planned = await handler(request)
            else:
                planned = await plan_fault(fault, request, handler)
        except web.HTTPException as exc:
            self._record(request, exc.status, sources, fault_name)
            raise
        # Logged before anything is sent, so a client that saw the answer finds it here.
        self._record(request, planned.status, sources, fault_name)
        return await planned.send(request) if isinstance(planned, Streamed) else planned

    def _record(
        self, request: web.Request, status: int, sources: tuple[str, ...], fault: str | None
    ) -> None:
        self.requests.append(
            RequestRecord.of(request, at=self._clock(), status=status, sources=sources, fault=fault)
        )
