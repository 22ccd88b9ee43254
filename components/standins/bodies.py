"""How a stand-in sends a body: at once with a Content-Length, or as a slow writer would.

Real servers send large replies in pieces, often chunked (no Content-Length). A
client that reads one buffer's worth and stops passes against small bodies sent at
once and fails against real ones, so a source can be told to answer like that.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """Send bodies in ``chunk_bytes`` pieces, ``pause_s`` apart, chunked or with a length."""

    chunked: bool = False
    chunk_bytes: int = 16 * 1024
    pause_s: float = 0.001


class SlowBody(web.StreamResponse):
    """A response that writes its body piece by piece once aiohttp finishes it.

    The body goes out in :meth:`write_eof`, which aiohttp calls after the handler
    (and the request log) are done, so the log holds the request before a byte is sent.
    """

    def __init__(
        self, body: bytes, *, content_type: str, delivery: Delivery, status: int = 200
    ) -> None:
        super().__init__(status=status, headers={"Content-Type": content_type})
        self._payload = body
        self._delivery = delivery
        if delivery.chunked:
            self.enable_chunked_encoding()
        else:
            self.content_length = len(body)

    async def write_eof(self, data: bytes = b"") -> None:
        body, self._payload = self._payload, b""
        step = max(1, self._delivery.chunk_bytes)
        for start in range(0, len(body), step):
            if start and self._delivery.pause_s:
                await asyncio.sleep(self._delivery.pause_s)
            await self.write(body[start : start + step])
        await super().write_eof(data)


def answer(
    body: bytes, *, content_type: str, delivery: Delivery | None, status: int = 200
) -> web.StreamResponse:
    """``body`` sent at once (``delivery`` None) or as ``delivery`` says."""
    if delivery is None:
        return web.Response(body=body, status=status, headers={"Content-Type": content_type})
    return SlowBody(body, content_type=content_type, delivery=delivery, status=status)
