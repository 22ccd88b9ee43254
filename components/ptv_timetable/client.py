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
from collections.abc import Iterable
from typing import Any

import aiohttp
from yarl import URL

from interlock.components.ptv_timetable.signing import Param, signed_path
from interlock.errors import FetchError, PtvApiError, TransientError
from interlock.kit import HttpClient, parse_retry_after

MAX_BODY = 20 << 20


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
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._devid = devid
        self._key = api_key
        self.timeout_s = timeout_s
        self.calls = 0

    async def get(self, path: str, params: Iterable[Param] = ()) -> dict[str, Any]:
        """GET the signed ``path``; ``path`` (without the query) names it in every error."""
        url = URL(self.base_url + signed_path(path, params, self._devid, self._key), encoded=True)
        where = f"PTV {path}"
        t0 = time.perf_counter()
        self.calls += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._http.session.get(url) as resp:
                    body = await resp.content.read(MAX_BODY + 1)
                    status, reason = resp.status, resp.reason
                    ctype = resp.headers.get("Content-Type", "")
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    declared = resp.content_length
        except TimeoutError:
            raise TransientError(f"{where} timed out after {self.timeout_s:g} s") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise TransientError(f"{where} failed: {type(exc).__name__}: {exc}") from None
        self._http.record_call(str(url.with_query(None)), time.perf_counter() - t0, len(body))
        if declared is not None and len(body) < declared:
            raise TransientError(f"{where} was cut off after {len(body)} of {declared} bytes")
        if len(body) > MAX_BODY:
            raise FetchError(f"{where} sent more than {MAX_BODY} bytes; refusing it")
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
        return _parse(where, body, ctype)


_HINTS = {
    403: "; check the devid and api_key settings (a wrong key or a disabled devid is not retried)",
    400: "; check the component's settings (route types, stop ids)",
}


def _detail(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace").strip()
    return f": {text}" if text else ""


def _parse(where: str, body: bytes, ctype: str) -> dict[str, Any]:
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
