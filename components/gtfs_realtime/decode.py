"""The checks a GTFS-realtime payload must pass before any of it is stored.

:func:`read_feed` refuses what is not a usable feed (empty, an HTML page, not
protobuf, no header timestamp, stamped in the future or too old, more entities than
``max_entities``), saying which, without decoding a single entity.
:func:`decode_feed` makes the same checks and decodes the whole message.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.frame import Frame, MalformedFeed, scan_feed
from interlock.components.gtfs_realtime.rows import INT64_MAX
from interlock.errors import FeedRejectedError

#: The default ``max_entities``: the real Melbourne metro trip updates carry 192, and
#: the largest Victorian feeds (bus) a few thousand.
MAX_ENTITIES = 50_000


@dataclass(frozen=True)
class FeedLimits:
    """How old (seconds) a feed may be, how far ahead of our clock it may be stamped,
    and how many entities it may have."""

    max_age_s: float = 3600.0
    max_future_s: float = 300.0
    max_entities: int = MAX_ENTITIES


def _refuse_pages(data: bytes, content_type: str | None) -> None:
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


def _check_header(header: rt.FeedHeader | None, size: int, now: float, limits: FeedLimits) -> None:
    if header is None or not header.gtfs_realtime_version:
        raise FeedRejectedError(
            f"malformed feed ({size} bytes): no FeedHeader with gtfs_realtime_version; "
            "the payload is not a GTFS-realtime FeedMessage"
        )
    stamp = header.timestamp
    if not stamp:
        raise FeedRejectedError("the feed header has no timestamp; its age cannot be judged")
    if stamp > INT64_MAX:
        raise FeedRejectedError(
            f"the feed header timestamp {stamp} is past any real time (over 2^63-1 seconds); "
            "check the source's clock"
        )
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


def read_feed(
    data: bytes, *, now: float, limits: FeedLimits, content_type: str | None = None
) -> Frame:
    """The checked header and entity places of ``data``, or :class:`FeedRejectedError`."""
    _refuse_pages(data, content_type)
    try:
        frame = scan_feed(data, keep=limits.max_entities)
    except MalformedFeed as exc:
        raise FeedRejectedError(f"malformed protobuf ({len(data)} bytes): {exc}") from None
    _check_header(frame.header, len(data), now, limits)
    if frame.count > limits.max_entities:
        raise FeedRejectedError(
            f"the feed has {frame.count:,} entities, over max_entities "
            f"{limits.max_entities:,}; none was decoded (raise max_entities if feeds this "
            "large are real)"
        )
    return frame


def decode_feed(
    data: bytes, *, now: float, limits: FeedLimits, content_type: str | None = None
) -> rt.FeedMessage:
    """Parse ``data`` as a whole feed or raise :class:`FeedRejectedError` saying why not."""
    read_feed(data, now=now, limits=limits, content_type=content_type)
    msg = rt.FeedMessage()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise FeedRejectedError(
            f"malformed protobuf ({len(data)} bytes): {exc or 'cannot be decoded'}"
        ) from None
    return msg
