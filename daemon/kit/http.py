"""The shared HTTP client: conditional GET, streaming to disk with a size limit, timing.

Failures are classified, not retried here: network errors, 5xx, 429 and cut-off
bodies raise :class:`TransientError` (the scheduler retries the component with
backoff, honouring Retry-After); other statuses raise :class:`FetchError`.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from interlock.errors import FetchError, PayloadTooLargeError, TransientError
from interlock.kit.addresses import check_public_url, public_socket_factory
from interlock.kit.files import private_opener

if TYPE_CHECKING:
    # Imported where used: loading a component (``plan``, ``check-config``) need not
    # pay for the HTTP stack.
    import aiohttp

USER_AGENT = "interlock/0.1 (+https://github.com/interlock/interlock)"
CHUNK = 1 << 16


@dataclass(frozen=True, kw_only=True)
class FetchResult:
    """What one GET produced. ``path`` is None when the source answered 304."""

    url: str
    status: int
    path: Path | None
    sha256: str | None
    size: int
    etag: str | None
    last_modified: str | None
    content_type: str | None
    elapsed_s: float

    @property
    def not_modified(self) -> bool:
        """The source said nothing changed since our ETag / Last-Modified."""
        return self.status == 304


@dataclass
class CallStats:
    """Calls and response times per endpoint name, for monitoring.

    The name is the one the component configured (a realtime feed, a PTV request
    kind), else the component's own: never a URL, whose ids and versions would make
    every republish a new metric series.
    """

    calls: dict[str, list[float]] = field(default_factory=dict)
    bytes_received: int = 0
    component: str = ""
    #: (start, end) of each call on the perf_counter clock: concurrent calls overlap,
    #: so the time spent waiting on the API is their union, not their sum.
    spans: list[tuple[float, float]] = field(default_factory=list)

    def record(self, endpoint: str | None, elapsed_s: float, size: int) -> None:
        self.calls.setdefault(endpoint or self.component or "unnamed", []).append(elapsed_s)
        self.bytes_received += size
        end = time.perf_counter()
        self.spans.append((end - elapsed_s, end))

    def busy_s(self) -> float:
        """Seconds during which at least one call was in flight."""
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self.spans):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total


#: The calls of the component running in this task (set by the runner for monitoring),
#: so components record their API calls without passing anything.
current_call_stats: contextvars.ContextVar[CallStats | None] = contextvars.ContextVar(
    "interlock_call_stats", default=None
)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _safe_url(url: str) -> str:
    """The URL without its query string, which may carry a signature or a key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def _raise_for_status(resp: aiohttp.ClientResponse, url: str) -> None:
    import aiohttp

    if resp.status < 400:
        return
    try:
        body = (await resp.content.read(300)).decode("utf-8", "replace").strip()
    except (TimeoutError, aiohttp.ClientError):
        body = ""
    status_line = f"{resp.status} {resp.reason or ''}".strip()
    if body.startswith(status_line):
        # A bare error page ("500 Internal Server Error") would only repeat the status.
        body = body[len(status_line) :].lstrip(" :.-\n")
    detail = f": {body[:200]}" if body else ""
    where = _safe_url(url)
    if resp.status == 429:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        raise TransientError(
            f"GET {where} answered 429 Too Many Requests{detail}", retry_after=retry_after
        )
    if resp.status >= 500:
        raise TransientError(f"GET {where} answered {resp.status} {resp.reason}{detail}")
    raise FetchError(f"GET {where} answered {resp.status} {resp.reason}{detail}")


class HttpClient:
    """One aiohttp session for every component; ``async with HttpClient() as http``."""

    def __init__(self, *, timeout_s: float = 300.0, connect_timeout_s: float = 30.0) -> None:
        import aiohttp

        self._timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=connect_timeout_s, sock_read=connect_timeout_s * 2
        )
        self._session: aiohttp.ClientSession | None = None
        self._public_session: aiohttp.ClientSession | None = None
        self.calls_total = 0
        self.bytes_total = 0

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        import aiohttp

        # Created on first use so that a daemon with nothing to fetch opens no sockets.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                raise_for_status=False,
            )
        return self._session

    @property
    def public_session(self) -> aiohttp.ClientSession:
        """A session that connects to public addresses only (see :mod:`.addresses`)."""
        import aiohttp

        if self._public_session is None or self._public_session.closed:
            self._public_session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                raise_for_status=False,
                connector=aiohttp.TCPConnector(
                    socket_factory=public_socket_factory, happy_eyeballs_delay=None
                ),
            )
        return self._public_session

    async def close(self) -> None:
        """Close the sessions. Idempotent."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        if self._public_session is not None:
            session, self._public_session = self._public_session, None
            await session.close()

    @staticmethod
    async def read_body(
        resp: aiohttp.ClientResponse, *, max_bytes: int, where: str, setting: str | None = None
    ) -> bytes:
        """The whole body of ``resp``, streamed and counted, refused past ``max_bytes``.

        A Content-Length over the limit is refused before a byte is read; a chunked
        (or longer than declared) body is refused at the first chunk past it. ``where``
        names the request in errors (never with its query, which may carry a key) and
        ``setting`` the setting that raises the limit.
        """
        raise_it = f"; raise {setting} if replies this large are real" if setting else ""
        declared = resp.content_length
        if declared is not None and declared > max_bytes:
            raise PayloadTooLargeError(
                f"{where} declares {declared:,} bytes, over the limit of {max_bytes:,}{raise_it}"
            )
        parts: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLargeError(
                    f"{where} sent more than the limit of {max_bytes:,} bytes; reading "
                    f"stopped{raise_it}"
                )
            parts.append(chunk)
        if declared is not None and size < declared:
            raise TransientError(f"{where} was cut off after {size:,} of {declared:,} bytes")
        return b"".join(parts)

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int,
        headers: dict[str, str] | None = None,
        public_only: bool = False,
        endpoint: str | None = None,
    ) -> FetchResult:
        """GET ``url`` into ``dest`` (streamed, hashed, size-limited), conditionally.

        The file is written beside ``dest`` and renamed into place only when the
        whole body arrived, so a cut-off download never looks complete. With
        ``public_only`` (a URL a remote catalogue gave), ``url`` and every redirect
        must reach public addresses only, else PrivateAddressError. ``endpoint``
        names the call in metrics (default: the running component's name).
        """
        import aiohttp

        if public_only:
            await check_public_url(url, what="source URL")
        session = self.public_session if public_only else self.session
        send = dict(headers or {})
        if etag:
            send["If-None-Match"] = etag
        if last_modified:
            send["If-Modified-Since"] = last_modified
        partial = dest.with_name(dest.name + ".part")
        t0 = time.perf_counter()
        size = 0
        try:
            async with session.get(url, headers=send) as resp:
                await _raise_for_status(resp, url)
                if resp.status == 304:
                    return self._done(url, resp, None, None, 0, t0, endpoint)
                declared = resp.content_length
                if declared is not None and declared > max_bytes:
                    raise PayloadTooLargeError(
                        f"GET {_safe_url(url)} declares {declared} bytes, over the limit of "
                        f"{max_bytes}; raise the component's max_download_mb if this is real"
                    )
                digest = hashlib.sha256()
                dest.parent.mkdir(parents=True, exist_ok=True)
                # 0600: it becomes a raw payload. noqa ASYNC230: chunked writes of 64 KiB.
                with open(partial, "wb", opener=private_opener) as out:  # noqa: ASYNC230
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        size += len(chunk)
                        if size > max_bytes:
                            raise PayloadTooLargeError(
                                f"GET {_safe_url(url)} sent more than {max_bytes} bytes; "
                                "download abandoned (raise max_download_mb if this is real)"
                            )
                        digest.update(chunk)
                        out.write(chunk)
                    out.flush()
                    # fsync of a large file can take seconds: keep it off the event loop.
                    await asyncio.to_thread(os.fsync, out.fileno())
                if declared is not None and size != declared:
                    raise TransientError(
                        f"GET {_safe_url(url)} ended after {size} of {declared} bytes"
                    )
                os.replace(partial, dest)
                return self._done(url, resp, dest, digest.hexdigest(), size, t0, endpoint)
        except aiohttp.ClientPayloadError as exc:
            raise TransientError(
                f"GET {_safe_url(url)} was cut off after {size} bytes: {exc}"
            ) from None
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            what = "timed out" if isinstance(exc, asyncio.TimeoutError) else f"failed: {exc}"
            raise TransientError(f"GET {_safe_url(url)} {what}") from None
        finally:
            partial.unlink(missing_ok=True)

    async def get_json(
        self,
        url: str,
        *,
        max_bytes: int = 10 << 20,
        headers: dict[str, str] | None = None,
        endpoint: str | None = None,
    ) -> Any:
        """GET ``url`` and parse JSON, with clear errors for HTML pages and junk."""
        import aiohttp

        t0 = time.perf_counter()
        try:
            async with self.session.get(url, headers=headers) as resp:
                await _raise_for_status(resp, url)
                body = await self.read_body(
                    resp, max_bytes=max_bytes, where=f"GET {_safe_url(url)}"
                )
                self._done(url, resp, None, None, len(body), t0, endpoint)
                ctype = resp.headers.get("Content-Type", "")
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise TransientError(f"GET {_safe_url(url)} failed: {exc or 'timed out'}") from None
        try:
            return json.loads(body)
        except (UnicodeDecodeError, ValueError):
            start = body[:80].decode("utf-8", "replace").strip()
            raise FetchError(
                f"GET {_safe_url(url)} did not return JSON (content type {ctype!r}, "
                f"starts {start!r})"
            ) from None

    def record_call(
        self, url: str, elapsed_s: float, size: int, endpoint: str | None = None
    ) -> None:
        """Count one completed call: process totals and the running component's stats.

        ``endpoint`` names the call in metrics; ``url`` is not used for that.

        Only totals are kept process-wide: per-call figures belong to a component
        run, so a long-running daemon does not grow with every call it makes.
        """
        self.calls_total += 1
        self.bytes_total += size
        running = current_call_stats.get()
        if running is not None:
            running.record(endpoint, elapsed_s, size)

    def _done(
        self,
        url: str,
        resp: aiohttp.ClientResponse,
        path: Path | None,
        sha256: str | None,
        size: int,
        t0: float,
        endpoint: str | None = None,
    ) -> FetchResult:
        elapsed = time.perf_counter() - t0
        self.record_call(url, elapsed, size, endpoint)
        return FetchResult(
            url=url,
            status=resp.status,
            path=path,
            sha256=sha256,
            size=size,
            etag=resp.headers.get("ETag"),
            last_modified=resp.headers.get("Last-Modified"),
            content_type=resp.headers.get("Content-Type"),
            elapsed_s=elapsed,
        )
