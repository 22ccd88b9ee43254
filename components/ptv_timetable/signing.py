"""PTV Timetable API v3 request signing.

The signed message is the request's path and query *exactly as sent*, ending in
``devid=<id>``; the signature is HMAC-SHA1 of it keyed with the API key, as
uppercase hex, appended as the last parameter ``signature=<hex>``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import quote, urlencode

Param = tuple[str, str | int]


def encode_query(params: Iterable[Param]) -> str:
    """The query string for ``params`` in order (repeated keys allowed), percent-encoded."""
    return urlencode([(k, str(v)) for k, v in params], quote_via=quote)


def signature(message: str, api_key: str) -> str:
    """HMAC-SHA1 of ``message`` keyed with ``api_key``, as uppercase hex."""
    digest = hmac.new(api_key.encode("utf-8"), message.encode("utf-8"), hashlib.sha1)
    return digest.hexdigest().upper()


def with_devid(path_and_query: str, devid: str) -> str:
    """``path_and_query`` with ``devid=<id>`` appended (``&``, or ``?`` if no query yet)."""
    joiner = "&" if "?" in path_and_query else "?"
    return f"{path_and_query}{joiner}devid={quote(devid, safe='')}"


def sign(path_and_query: str, devid: str, api_key: str) -> str:
    """The path and query to send: devid appended, then ``&signature=<HEX>`` last."""
    message = with_devid(path_and_query, devid)
    return f"{message}&signature={signature(message, api_key)}"


def signed_path(path: str, params: Iterable[Param], devid: str, api_key: str) -> str:
    """Build ``path?query`` from ``params`` and sign it."""
    query = encode_query(params)
    return sign(f"{path}?{query}" if query else path, devid, api_key)


def split_signed(raw: str) -> tuple[str, str] | None:
    """Split a request's raw path and query into (signed message, signature).

    None when ``signature`` is not the last parameter. For the stand-in server.
    """
    head, sep, sig = raw.rpartition("&signature=")
    if not sep or not head or "&" in sig or "=" in sig:
        return None
    return head, sig
