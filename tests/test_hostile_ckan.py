"""Tests that a CKAN catalogue cannot steer a fetch at this machine or its private networks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from interlock.config.loader import parse_config
from interlock.errors import PrivateAddressError
from interlock.kit.addresses import check_public_url, public_socket_factory, refusal
from interlock.kit.http import HttpClient

pytestmark = pytest.mark.timeout(60)

ACTION = "/ckan/api/3/action/"
# What a scrape of the daemon's own metrics would show; it must never reach a reason.
SECRET_LINE = "# HELP interlock_internal_only a line only this host may read"


@dataclass
class FakeCkan:
    """A CKAN on 127.0.0.1 whose one resource points back at its own ``/metrics``."""

    url: str = ""
    metrics_hits: int = 0
    resource_format: str = "CSV"
    runner: web.AppRunner | None = field(default=None, repr=False)

    async def package_show(self, request: web.Request) -> web.Response:
        target = str(request.url.origin().with_path("/metrics"))
        resource = {"id": "r1", "name": "patronage", "format": self.resource_format}
        resource |= {"url": target, "created": "2025-01-01T00:00:00", "state": "active"}
        package = {"metadata_modified": "2025-01-01T00:00:00", "resources": [resource]}
        return web.json_response({"success": True, "result": package})

    async def metrics(self, request: web.Request) -> web.Response:
        self.metrics_hits += 1
        return web.Response(text=f"{SECRET_LINE}\ninterlock_internal_only 1\n")


@pytest.fixture
async def fake_ckan() -> AsyncIterator[FakeCkan]:
    ckan = FakeCkan()
    app = web.Application()
    app.router.add_get(ACTION + "package_show", ckan.package_show)
    app.router.add_get("/metrics", ckan.metrics)
    ckan.runner = web.AppRunner(app, access_log=None)
    await ckan.runner.setup()
    site = web.TCPSite(ckan.runner, "127.0.0.1", 0)
    await site.start()
    port = ckan.runner.addresses[0][1]
    ckan.url = f"http://127.0.0.1:{port}"
    yield ckan
    await ckan.runner.cleanup()


def config(tmp_path: Path, name: str, settings: dict[str, Any]) -> Any:
    doc = {
        "components": {name: {"frequency": "daily", "retries": 0, "settings": settings}},
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


async def outcome(orch: Any, name: str) -> tuple[str, str]:
    result = await asyncio.wait_for(orch.scheduler.run_once([name]), 30)
    settled = result.outcomes[name]
    return settled.status.value, settled.reason or ""


async def test_datavic_resource_on_loopback_is_refused_unfetched(
    tmp_path: Path, open_orch: Any, fake_ckan: FakeCkan
) -> None:
    """A CKAN resource URL at 127.0.0.1/metrics fails with a reason, and is never fetched."""
    name = "datavic_temporal_patronage"
    settings = {"ckan_url": fake_ckan.url + ACTION, "dataset": "d"}
    orch = await open_orch(config(tmp_path, name, settings))
    status, reason = await outcome(orch, name)
    assert status == "failed"
    assert fake_ckan.metrics_hits == 0
    assert "127.0.0.1" in reason and "loopback" in reason
    assert "allow_private_addresses" in reason
    assert "HELP" not in reason and "interlock_internal_only" not in reason


async def test_datavic_private_resource_is_fetched_when_allowed(
    tmp_path: Path, open_orch: Any, fake_ckan: FakeCkan
) -> None:
    """With allow_private_addresses (the stand-ins' setting) the same URL is fetched."""
    name = "datavic_temporal_patronage"
    settings = {"ckan_url": fake_ckan.url + ACTION, "dataset": "d", "allow_private_addresses": True}
    orch = await open_orch(config(tmp_path, name, settings))
    status, _ = await outcome(orch, name)
    assert status == "failed"  # /metrics is not a patronage CSV
    assert fake_ckan.metrics_hits == 1


async def test_gtfs_schedule_ckan_resource_on_loopback_is_refused(
    tmp_path: Path, open_orch: Any, fake_ckan: FakeCkan
) -> None:
    """gtfs_schedule's CKAN discovery refuses a zip resource that points at 127.0.0.1."""
    fake_ckan.resource_format = "ZIP"
    source = {"ckan": {"base_url": fake_ckan.url + ACTION, "dataset": "gtfs"}}
    orch = await open_orch(config(tmp_path, "gtfs_schedule", {"source": source}))
    status, reason = await outcome(orch, "gtfs_schedule")
    assert status == "failed"
    assert fake_ckan.metrics_hits == 0
    assert "loopback" in reason and "allow_private_addresses" in reason


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_refusal_names_the_kind_of_address(address: str, kind: str | None) -> None:
    """Loopback, private, link-local, multicast, reserved and unroutable addresses are named."""
    assert refusal(address) == kind


@pytest.mark.parametrize("url", ["ftp://example.org/x.csv", "file:///etc/passwd", "http:///x"])
async def test_non_http_urls_are_refused(url: str) -> None:
    """Only http(s) URLs with a host may be fetched."""
    with pytest.raises(PrivateAddressError, match="not an http"):
        await check_public_url(url)


async def test_localhost_name_is_resolved_and_refused() -> None:
    """A host name is resolved first: ``localhost`` is refused as loopback."""
    with pytest.raises(PrivateAddressError, match="loopback"):
        await check_public_url("http://localhost:9464/metrics")


async def test_connection_guard_stops_a_redirected_or_rebound_fetch(fake_ckan: FakeCkan) -> None:
    """The public session refuses the connection itself, whatever URL check came before."""
    async with HttpClient() as http:
        with pytest.raises(PrivateAddressError, match=r"refusing to connect to 127\.0\.0\.1"):
            async with http.public_session.get(fake_ckan.url + "/metrics"):
                pass
    assert fake_ckan.metrics_hits == 0


def test_socket_factory_builds_sockets_for_public_addresses() -> None:
    """A public address gets an ordinary socket (nothing is connected here)."""
    import socket

    sock = public_socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 443)))
    sock.close()
