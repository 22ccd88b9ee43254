"""Remote control of a stand-in server over HTTP, for servers in another process.

Routes under `/_control/` publish, set and clear faults, and read the request log.
They answer loopback clients only, and faults and the log never apply to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from .errors import StandinError, UnknownSourceError

if TYPE_CHECKING:
    from .faults import FaultTable
    from .request_log import RequestRecord
    from .source import Publication, Source

CONTROL_PREFIX = "/_control/"
LOOPBACK = frozenset({"127.0.0.1", "::1"})


class Controlled(Protocol):
    """What the control endpoints drive: the stand-in server (``server.StandinServer``)."""

    faults: FaultTable
    requests: list[RequestRecord]

    def source(self, name: str) -> Source:
        """The source called ``name``."""
        ...

    def publish(self, source: str, version: int) -> Publication:
        """Publish version ``version`` of ``source``."""
        ...


class ControlRoutes:
    """The `/_control/` endpoints of one server."""

    def __init__(self, server: Controlled) -> None:
        self._server = server

    def setup(self, app: web.Application) -> None:
        router = app.router
        router.add_post(CONTROL_PREFIX + "publish", self._publish)
        router.add_post(CONTROL_PREFIX + "publish-bytes", self._publish_bytes)
        router.add_post(CONTROL_PREFIX + "fault", self._set_fault)
        router.add_get(CONTROL_PREFIX + "faults", self._list_faults)
        router.add_post(CONTROL_PREFIX + "clear", self._clear)
        router.add_get(CONTROL_PREFIX + "requests", self._list_requests)
        router.add_delete(CONTROL_PREFIX + "requests", self._clear_requests)

    async def _publish(self, request: web.Request) -> web.Response:
        """`{"source": "gtfs_schedule", "version": 2}` -> the publication."""
        body = await _json_object(request)
        source, version = body.get("source"), body.get("version")
        if not isinstance(source, str) or not isinstance(version, int) or version < 1:
            return _error(400, 'publish needs {"source": <name>, "version": <int >= 1>}')
        return _run(lambda: self._server.publish(source, version).as_json())

    async def _publish_bytes(self, request: web.Request) -> web.Response:
        """Raw body, `?source=<name>`, optional `Content-Type` -> the publication."""
        _require_loopback(request)
        source = request.query.get("source", "")
        data = await request.read()
        content_type = request.headers.get("Content-Type")
        return _run(
            lambda: (
                self._server.source(source).publish_bytes(data, content_type=content_type).as_json()
            )
        )

    async def _set_fault(self, request: web.Request) -> web.Response:
        """`{"target", "fault", "times" (default 1, null = until cleared), "params"}`."""
        body = await _json_object(request)
        target, fault = body.get("target"), body.get("fault")
        times, params = body.get("times", 1), body.get("params") or {}
        if not isinstance(target, str) or not isinstance(fault, str):
            return _error(400, 'fault needs {"target": <path or source>, "fault": <name>}')
        if not (times is None or isinstance(times, int)) or not isinstance(params, dict):
            return _error(400, '"times" must be an integer or null and "params" an object')
        faults = self._server.faults
        return _run(lambda: faults.set(target, fault, times=times, **params).as_json())

    async def _list_faults(self, request: web.Request) -> web.Response:
        _require_loopback(request)
        return web.json_response({"faults": [r.as_json() for r in self._server.faults.rules]})

    async def _clear(self, request: web.Request) -> web.Response:
        """Clear every fault, or `{"target": ...}`'s only."""
        body = await _json_object(request)
        target = body.get("target")
        if target is not None and not isinstance(target, str):
            return _error(400, '"target" must be a string')
        return web.json_response({"cleared": self._server.faults.clear(target)})

    async def _list_requests(self, request: web.Request) -> web.Response:
        _require_loopback(request)
        return web.json_response({"requests": [r.as_json() for r in self._server.requests]})

    async def _clear_requests(self, request: web.Request) -> web.Response:
        _require_loopback(request)
        count = len(self._server.requests)
        self._server.requests.clear()
        return web.json_response({"cleared": count})


def _require_loopback(request: web.Request) -> None:
    # The server only listens on 127.0.0.1; this guards against a proxy in front of it.
    if request.remote not in LOOPBACK:
        raise web.HTTPForbidden(text="control endpoints answer loopback clients only\n")


async def _json_object(request: web.Request) -> dict[str, Any]:
    _require_loopback(request)
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "the body is not JSON"}', content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text='{"error": "the body must be a JSON object"}', content_type="application/json"
        )
    return body


def _run(action: Callable[[], object]) -> web.Response:
    """Run a control action, turning the stand-ins' own errors into JSON answers."""
    try:
        return web.json_response(action())
    except UnknownSourceError as exc:
        return _error(404, str(exc))
    except (StandinError, TypeError) as exc:
        return _error(400, str(exc))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
