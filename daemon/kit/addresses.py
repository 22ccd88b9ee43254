"""Keep URLs that a remote catalogue hands us off this machine and its private networks.

A CKAN resource URL is data from outside: pointed at ``127.0.0.1:9464/metrics`` or a
cloud metadata address it would make the daemon fetch, and echo, what only it can
reach (server-side request forgery). :func:`check_public_url` refuses such a URL
before anything is sent; :func:`public_socket_factory` refuses every connection to
such an address, so a redirect or a DNS answer that changes in between cannot either.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from interlock.errors import PrivateAddressError, TransientError

SCHEMES = ("http", "https")
RESOLVE_TIMEOUT_S = 10.0
HOW_TO_ALLOW = (
    "if the catalogue is meant to point inside your network, set the component's "
    "settings.allow_private_addresses to true"
)


def refusal(address: str) -> str | None:
    """Why ``address`` (an IP literal) is not a public unicast address, or None if it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, hit in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("not globally routable", not ip.is_global),
    ):
        if hit:
            return kind
    return None


def _where(url: str) -> str:
    """The URL without query or userinfo, which may carry a key."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


async def check_public_url(url: str, *, what: str = "URL") -> None:
    """Raise PrivateAddressError unless ``url`` is http(s) to public addresses only.

    The host is resolved off the event loop (``getaddrinfo`` in a worker thread);
    every address it resolves to must be public, since the connection may use any.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise PrivateAddressError(f"{what} {url[:200]!r} is not a valid URL; refusing it") from None
    if parts.scheme.lower() not in SCHEMES or not host:
        raise PrivateAddressError(
            f"{what} {_where(url)!r} is not an http(s) URL with a host; only "
            f"{' and '.join(SCHEMES)} sources are fetched"
        )
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (TimeoutError, OSError) as exc:
        raise TransientError(f"{what} {_where(url)!r}: cannot resolve {host!r} ({exc})") from None
    for info in infos:
        address = str(info[4][0])
        why = refusal(address)
        if why is not None:
            raise PrivateAddressError(
                f"{what} {_where(url)!r} resolves to {address} ({why}), not a public "
                f"address; refusing to fetch it (it could reach services on this host or "
                f"its network); {HOW_TO_ALLOW}"
            )


def public_socket_factory(addr_info: tuple[Any, ...]) -> socket.socket:
    """A socket for aiohttp's connector that refuses to connect to a non-public address.

    Every connection goes through here, a redirect's and an IP literal's included.
    The connector must try addresses one at a time (``happy_eyeballs_delay=None``):
    racing them would set this refusal aside as one more failed attempt.
    """
    family, type_, proto, _, sockaddr = addr_info
    address = str(sockaddr[0])
    why = refusal(address)
    if why is not None:
        raise PrivateAddressError(
            f"refusing to connect to {address} ({why}): a fetch that must reach public "
            f"addresses only was sent there (by a redirect or a changed DNS answer); "
            f"{HOW_TO_ALLOW}"
        )
    return socket.socket(family=family, type=type_, proto=proto)
