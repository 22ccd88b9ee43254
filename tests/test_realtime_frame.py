"""The feed scanner agrees with protobuf's own parser on what a FeedMessage holds, and
refuses what protobuf cannot parse."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.frame import MalformedFeed, scan_feed


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def header(stamp: int, version: str = "2.0") -> bytes:
    h = rt.FeedMessage()
    h.header.gtfs_realtime_version, h.header.timestamp = version, stamp
    return h.SerializeToString()


def entities(*sizes: int) -> bytes:
    msg = rt.FeedMessage()
    for i, size in enumerate(sizes):
        entity = msg.entity.add(id=f"e{i}")
        if size:
            entity.alert.header_text.translation.add().text = "x" * size
    return msg.SerializePartialToString()


VALID = {
    "small entities": header(1) + entities(0, 5, 90),
    "two- and three-byte lengths": header(1) + entities(200, 20_000, 3),
    "header last": entities(1, 2) + header(7),
    "header twice (merged)": header(1, "1.0") + entities(4) + header(9),
    "extension fields of every wire type": header(1)
    + varint(1000 << 3 | 0)
    + varint(300)
    + varint(1001 << 3 | 1)
    + b"\x00" * 8
    + varint(1002 << 3 | 5)
    + b"\x00" * 4
    + varint(1003 << 3 | 2)
    + varint(3)
    + b"abc"
    + entities(10),
    "no entities": header(5),
    "empty entity last": header(1) + b"\x12\x00",
    "entity field with the wrong wire type (unknown)": header(1) + b"\x10\x01" + entities(2),
}


@pytest.mark.parametrize("data", VALID.values(), ids=VALID.keys())
def test_the_scan_agrees_with_protobuf(data: bytes) -> None:
    """Entity count, places and header are what protobuf's parser makes of the same bytes."""
    expected = rt.FeedMessage()
    expected.MergeFromString(data)
    frame = scan_feed(data, keep=100)
    assert frame.count == frame.kept == len(expected.entity)
    assert frame.header == expected.header
    decoded = [
        rt.FeedEntity.FromString(data[a:b]) for a, b in zip(frame.starts, frame.ends, strict=True)
    ]
    assert decoded == list(expected.entity)


def test_entities_past_keep_are_counted_not_placed() -> None:
    """Beyond ``keep`` entities are only counted."""
    frame = scan_feed(header(1) + entities(*range(10)), keep=3)
    assert (frame.count, frame.kept) == (10, 3)


MALFORMED = {
    "entity runs past the end": header(1) + b"\x12\x05ab",
    "length varint cut off": header(1) + b"\x12\xff",
    "field number 0": header(1) + b"\x02\x01a",
    "a group": header(1) + varint(1000 << 3 | 3),
    "fixed64 cut off": header(1) + varint(1001 << 3 | 1) + b"\x00" * 3,
    "header not a message": b"\x0a\x02\xff\xff",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_what_protobuf_cannot_parse_is_malformed(data: bytes) -> None:
    """Bytes protobuf's parser refuses are refused by the scan too."""
    with pytest.raises(DecodeError):
        rt.FeedMessage().MergeFromString(data)
    with pytest.raises(MalformedFeed):
        scan_feed(data, keep=100)
