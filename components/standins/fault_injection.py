"""Turn a `Fault` into the misbehaving HTTP response a client actually sees.

Planning (which status goes out) is separate from sending (delays, trickling,
cutting the connection) so the request log holds the status before any byte is sent.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from .faults import Fault, FaultKind

MAINTENANCE_PAGE = """<!DOCTYPE html>
<html><head><title>Service unavailable</title></head>
<body><h1>We'll be back soon</h1>
<p>This site is undergoing scheduled maintenance. Please try again later.</p>
</body></html>
"""


@dataclass(frozen=True, kw_only=True)
class Streamed:
    """A response sent by hand: after `delay`, in chunks, possibly cut short."""

    response: web.Response
    delay: float = 0.0
    chunk_size: int = 0
    chunk_delay: float = 0.0
    # Bytes of the body to send before closing the connection; None sends them all.
    keep: int | None = None

    @property
    def status(self) -> int:
        return self.response.status

    async def send(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        body = self.response.body
        streaming = self.chunk_size or self.keep is not None
        if not streaming or not isinstance(body, bytes) or not body or request.method == "HEAD":
            return self.response
        stream = web.StreamResponse(status=self.response.status, reason=self.response.reason)
        for name, value in self.response.headers.items():
            if name not in (hdrs.CONTENT_LENGTH, hdrs.TRANSFER_ENCODING):
                stream.headers.add(name, value)
        # The full length is announced even when the body will be cut short: that is
        # what lets the client notice the truncation.
        stream.content_length = len(body)
        await stream.prepare(request)
        end = len(body) if self.keep is None else self.keep
        step = self.chunk_size or max(end, 1)
        for start in range(0, end, step):
            await stream.write(body[start : min(start + step, end)])
            if self.chunk_delay and start + step < end:
                await asyncio.sleep(self.chunk_delay)
        if self.keep is not None and request.transport is not None:
            # Closing mid-body is the only way to end a response short of its
            # Content-Length; aiohttp then ignores the failed end-of-response write.
            request.transport.close()
        return stream


Planned = web.Response | Streamed


async def plan_fault(fault: Fault, request: web.Request, handler: Handler) -> Planned:
    """The response `fault` puts on for `request`, calling the real handler if it needs to."""
    params = fault.params
    match fault.kind:
        case FaultKind.STATUS_500:
            return web.Response(status=500, text="500 Internal Server Error\n")
        case FaultKind.STATUS_429:
            retry_after = str(math.ceil(params["retry_after"]))
            return web.Response(
                status=429, text="429 Too Many Requests\n", headers={hdrs.RETRY_AFTER: retry_after}
            )
        case FaultKind.WRONG_CONTENT_TYPE:
            # What a portal's maintenance page or a captive proxy sends in place of a file.
            return web.Response(status=200, text=MAINTENANCE_PAGE, content_type="text/html")
        case FaultKind.CORRUPT_ZIP:
            return web.Response(
                status=200,
                body=corrupt_zip_bytes(int(params["size"])),
                content_type="application/zip",
            )
        case FaultKind.ECHO_REQUEST:
            return web.Response(status=int(params["status"]), text=echoed(request))
        case FaultKind.SLOW:
            return Streamed(
                response=await _real_response(request, handler),
                delay=params["delay"],
                chunk_size=int(params["chunk_size"]),
                chunk_delay=params["chunk_delay"],
            )
        case FaultKind.TRUNCATE:
            response = await _real_response(request, handler)
            length = len(response.body) if isinstance(response.body, bytes) else 0
            keep = truncated_length(
                length, fraction=params["fraction"], keep_bytes=params["keep_bytes"]
            )
            return Streamed(response=response, keep=keep)


#: Headers every client sends; an echo page leaves them out to get to the interesting ones.
_PLAIN_HEADERS = frozenset(
    h.lower() for h in (hdrs.HOST, hdrs.USER_AGENT, hdrs.ACCEPT, hdrs.ACCEPT_ENCODING)
)


def echoed(request: web.BaseRequest) -> str:
    """An error page quoting ``request`` back: the credential headers first, then the query."""
    headers = [
        f"{name}: {value}"
        for name, value in request.headers.items()
        if name.lower() not in _PLAIN_HEADERS
    ]
    return f"Denied {' '.join(headers)} for {request.method} {request.raw_path}\n"


def truncated_length(length: int, *, fraction: float, keep_bytes: float) -> int:
    """How much of a `length`-byte body a truncated response sends: always less than all.

    `keep_bytes` wins when it is set (>= 0); otherwise `fraction` of the body is sent.
    """
    keep = int(keep_bytes) if keep_bytes >= 0 else int(length * fraction)
    return max(0, min(keep, length - 1))


def corrupt_zip_bytes(size: int) -> bytes:
    """Garbage that starts like a zip (a local file header signature) but is not one."""
    # Seeded so a failing test sees the same bytes on every run.
    noise = random.Random(size).randbytes(max(size - 4, 0))
    return (b"PK\x03\x04" + noise)[:size]


async def _real_response(request: web.Request, handler: Handler) -> web.Response:
    response = await handler(request)
    if not isinstance(response, web.Response):
        raise TypeError(
            f"cannot slow down or truncate {request.path!r}: its handler returned a "
            f"{type(response).__name__}, and only web.Response bodies can be replayed"
        )
    return response
