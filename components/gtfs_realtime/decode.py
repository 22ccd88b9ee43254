"""The checks a GTFS-realtime payload must pass before any of it is stored.

:func:`decode_feed` refuses what is not a usable feed (empty, an HTML page, not
protobuf, no header timestamp, stamped in the future or too old), saying which.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as rt

from interlock.errors import FeedRejectedError


@dataclass(frozen=True)
class FeedLimits:
    """How old (seconds) a feed may be, and how far ahead of our clock it may be stamped."""

    max_age_s: float = 3600.0
    max_future_s: float = 300.0


def decode_feed(
    data: bytes, *, now: float, limits: FeedLimits, content_type: str | None = None
) -> rt.FeedMessage:
    """Parse ``data`` as a feed or raise :class:`FeedRejectedError` saying why not."""
    if not data:
        raise FeedRejectedError("empty body (0 bytes) where a GTFS-realtime feed was expected")
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"{")) or "html" in (content_type or ""):
        kind = content_type or "unknown content type"
        start = data[:40].decode("utf-8", "replace")
        raise FeedRejectedError(
            f"the source sent {kind} starting {start!r}, not a protobuf feed "
            "(an error or maintenance page served with status 200)"
        )
    msg = rt.FeedMessage()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise FeedRejectedError(
            f"malformed protobuf ({len(data)} bytes): {exc or 'cannot be decoded'}"
        ) from None
    if not msg.HasField("header") or not msg.header.gtfs_realtime_version:
        raise FeedRejectedError(
            f"malformed feed ({len(data)} bytes): no FeedHeader with gtfs_realtime_version; "
            "the payload is not a GTFS-realtime FeedMessage"
        )
    stamp = msg.header.timestamp
    if not stamp:
        raise FeedRejectedError("the feed header has no timestamp; its age cannot be judged")
    age = now - stamp
    if -age > limits.max_future_s:
        raise FeedRejectedError(
            f"the feed is stamped {-age:.0f} s in the future (header timestamp {stamp}); "
            f"over max_future_seconds {limits.max_future_s:g}: check the source's clock"
        )
    if age > limits.max_age_s:
        raise FeedRejectedError(
            f"the feed is stale: stamped {age / 3600:.1f} h ago (header timestamp {stamp}), "
            f"over max_feed_age_seconds {limits.max_age_s:g}"
        )
    return msg
