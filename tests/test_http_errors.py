"""An error reply's text says the status once, then what the page adds."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from interlock.errors import FetchError, TransientError
from interlock.kit.http import HttpClient


async def _serve(status: int, body: str) -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body)

    app = web.Application()
    app.router.add_get("/feed", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/feed"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, "500 Internal Server Error", "answered 500 Internal Server Error"),
        (
            500,
            "500 Internal Server Error\n\nServer got itself in trouble",
            "answered 500 Internal Server Error: Server got itself in trouble",
        ),
        (404, "no such feed", "answered 404 Not Found: no such feed"),
    ],
)
async def test_the_status_is_said_once(status: int, body: str, expected: str, tmp_path) -> None:
    """'500 Internal Server Error: 500 Internal Server Error' no longer appears."""
    runner, url = await _serve(status, body)
    try:
        async with HttpClient() as http:
            with pytest.raises((TransientError, FetchError)) as raised:
                await asyncio.wait_for(http.download(url, tmp_path / "x", max_bytes=1 << 20), 10)
    finally:
        await runner.cleanup()
    message = str(raised.value)
    assert message.endswith(expected), message
    assert message.count(f"{status} ") == 1
