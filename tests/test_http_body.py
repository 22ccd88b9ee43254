"""The shared HTTP client reads whole JSON bodies, chunked or not, up to its limit."""

from __future__ import annotations

import asyncio
import json

import pytest

from interlock.components.ptv_timetable.signing import sign
from interlock.components.standins import StandinServer
from interlock.components.standins.bodies import Delivery
from interlock.components.standins.ptv import DEMO_API_KEY, DEMO_DEVID, PtvSource
from interlock.errors import PayloadTooLargeError
from interlock.kit import HttpClient

pytestmark = pytest.mark.timeout(60)

DOC = {"result": {"resources": [{"id": f"r{i}", "name": "x" * 200} for i in range(5000)]}}
BODY = json.dumps(DOC).encode()  # about 1.1 MB


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_get_json_reads_a_slow_body_whole(chunked: bool) -> None:
    """A 1 MB JSON answer sent in slow pieces parses whole."""
    source = PtvSource(delivery=Delivery(chunked=chunked, chunk_bytes=32 * 1024))
    source.publish_bytes(BODY)
    async with StandinServer([source]) as server, HttpClient() as http:
        url = server.url("/ptv") + sign("/v3/route_types", DEMO_DEVID, DEMO_API_KEY)
        doc = await asyncio.wait_for(http.get_json(url), 30)
    assert doc == DOC


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_get_json_refuses_a_body_over_its_limit(chunked: bool) -> None:
    """Over max_bytes the call fails saying so, without the query string."""
    source = PtvSource(delivery=Delivery(chunked=chunked, chunk_bytes=32 * 1024))
    source.publish_bytes(BODY)
    async with StandinServer([source]) as server, HttpClient() as http:
        url = server.url("/ptv") + sign("/v3/route_types", DEMO_DEVID, DEMO_API_KEY)
        with pytest.raises(PayloadTooLargeError) as caught:
            await asyncio.wait_for(http.get_json(url, max_bytes=500_000), 30)
    assert "500000" in str(caught.value).replace(",", "") and "/v3/route_types" in str(caught.value)
    assert "signature" not in str(caught.value)
