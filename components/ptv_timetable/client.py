"""A signed client for the PTV Timetable API v3 on the daemon's shared HTTP session.

Errors are classified the way the API means them: 400 and 403 carry
``{message, status: {version, health}}`` and are not worth retrying (a bad
request, a wrong signature, a disabled devid), so they raise :class:`PtvApiError`
quoting the API's message; 5xx, 429, timeouts and network errors raise
:class:`TransientError`. URLs are never logged or quoted with their query: it
carries the devid and the signature.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from interlock.components.ptv_timetable.signing import Param, signed_path
from interlock.errors import FetchError, PayloadTooLargeError, PtvApiError, TransientError
from interlock.kit import HttpClient, parse_retry_after

if TYPE_CHECKING:
    # Imported where a call is made: loading the component (plan, check-config) does not
    # pay for the HTTP stack.
    import aiohttp

#: The default ``max_response_bytes``: the largest real replies are a few hundred KB
#: (``/v3/routes``; recorded departures and stopping patterns are under 30 KB).
MAX_RESPONSE_BYTES = 16 << 20
#: What is read of an error answer (400, 403, 5xx): enough for any message PTV sends.
MAX_ERROR_BODY = 64 << 10
#: Bodies larger than this are parsed in a worker thread, off the event loop.
PARSE_IN_THREAD = 256 << 10

Runner = Callable[..., Awaitable[Any]]


def api_message(body: bytes) -> str | None:
    """The ``message`` (or ``Message``) of a PTV error body, if it is one."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(doc, dict):
        message = doc.get("message", doc.get("Message"))
        if isinstance(message, str) and message.strip():
            return message.strip()
    return None


class PtvClient:
    """``await client.get("/v3/route_types")`` -> the parsed JSON object."""

    def __init__(
        self,
        http: HttpClient,
        *,
        base_url: str,
        devid: str,
        api_key: str,
        timeout_s: float = 30.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        to_thread: Runner = asyncio.to_thread,
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._devid = devid
        self._key = api_key
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._to_thread = to_thread
        self.calls = 0

    async def get(self, path: str, params: Iterable[Param] = ()) -> dict[str, Any]:
        """GET the signed ``path``; ``path`` (without the query) names it in every error."""
        return (await self.fetch(path, params))[0]

    async def fetch(
        self, path: str, params: Iterable[Param] = ()
    ) -> tuple[dict[str, Any], int, bytes]:
        """:meth:`get`, with the status and exact bytes of the answer (for the raw archive)."""
        import aiohttp
        from yarl import URL

        url = URL(self.base_url + signed_path(path, params, self._devid, self._key), encoded=True)
        where = f"PTV {path}"
        t0 = time.perf_counter()
        self.calls += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._http.session.get(url) as resp:
                    status, reason = resp.status, resp.reason
                    ctype = resp.headers.get("Content-Type", "")
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    body = await self._read(resp, where)
        except TimeoutError:
            raise TransientError(f"{where} timed out after {self.timeout_s:g} s") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise TransientError(f"{where} failed: {type(exc).__name__}: {exc}") from None
        kind = path.split("/")[2] if path.count("/") >= 2 else None  # /v3/KIND/...: no stop ids
        self._http.record_call(str(url.with_query(None)), time.perf_counter() - t0, len(body), kind)
        if status == 429:
            raise TransientError(f"{where} answered 429 Too Many Requests", retry_after=retry_after)
        if status >= 500:
            raise TransientError(f"{where} answered {status} {reason}{_detail(body)}")
        if status >= 400:
            message = api_message(body)
            if message is not None:
                hint = _HINTS.get(status, "")
                raise PtvApiError(
                    f"{where} answered {status}: the API says {message!r}{hint}", status=status
                )
            raise FetchError(f"{where} answered {status} {reason}{_detail(body)}")
        if len(body) > PARSE_IN_THREAD:
            parsed: dict[str, Any] = await self._to_thread(parse_answer, where, body, ctype)
            return parsed, status, body
        return parse_answer(where, body, ctype), status, body

    async def _read(self, resp: aiohttp.ClientResponse, where: str) -> bytes:
        """The whole answer, up to ``max_response_bytes``; of an error, what explains it."""
        if resp.status < 400:
            return await self._http.read_body(
                resp,
                max_bytes=self.max_response_bytes,
                where=where,
                setting="the component's max_response_bytes",
            )
        try:
            return await self._http.read_body(resp, max_bytes=MAX_ERROR_BODY, where=where)
        except PayloadTooLargeError:
            # The status says what went wrong; an error page this large adds nothing.
            return b""


_HINTS = {
    403: "; check the devid and api_key settings (a wrong key or a disabled devid is not retried)",
    400: "; check the component's settings (route types, stop ids)",
}


def _detail(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace").strip()
    return f": {text}" if text else ""


def parse_answer(where: str, body: bytes, ctype: str = "application/json") -> dict[str, Any]:
    """The JSON object of a 2xx answer, or FetchError naming ``where``."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        start = body[:60].decode("utf-8", "replace").strip()
        raise FetchError(
            f"{where} did not return JSON (content type {ctype!r}, starts {start!r}); the "
            "API or a proxy in front of it may be serving an error page"
        ) from None
    if not isinstance(doc, dict):
        raise FetchError(f"{where} returned JSON {type(doc).__name__}, not an object")
    return doc
