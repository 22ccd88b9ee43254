"""The top level of a GTFS-realtime ``FeedMessage``, read without decoding its entities.

:func:`scan_feed` walks the protobuf wire format of the message itself: it decodes
the header, counts the entities and notes where the first ``keep`` of them lie.
Counting costs no memory per entity, so a feed with too many entities is refused
before any is decoded, and the rest are decoded one at a time (:mod:`.rows`).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as rt

HEADER, ENTITY = 1, 2  # FeedMessage's field numbers
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5  # the wire types a FeedMessage may hold


class MalformedFeed(ValueError):
    """The bytes are not a protobuf message: ``str()`` says where it breaks."""


@dataclass
class Frame:
    """A scanned feed: its header, how many entities it has, and where the kept ones are."""

    header: rt.FeedHeader | None
    count: int = 0
    tags: array[int] = field(default_factory=lambda: array("Q"))  # where each field starts
    starts: array[int] = field(default_factory=lambda: array("Q"))  # where its entity starts
    ends: array[int] = field(default_factory=lambda: array("Q"))

    @property
    def kept(self) -> int:
        """How many entities' places were noted (at most ``keep``)."""
        return len(self.starts)


def _varint(data: bytes, i: int, n: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= n:
            raise MalformedFeed(f"a varint runs past the end at byte {i:,}")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise MalformedFeed(f"a varint longer than 10 bytes ends at byte {i:,}")


def scan_feed(data: bytes, *, keep: int) -> Frame:
    """The header and entity places of ``data``; raise :class:`MalformedFeed` if it is not one.

    Every entity is counted; the places of the first ``keep`` are kept. Fields other
    than the header and the entities (extensions) are skipped, as protobuf does.
    """
    n = len(data)
    i = count = 0
    tags, starts, ends = array("Q"), array("Q"), array("Q")
    headers: list[tuple[int, int]] = []
    while i < n:
        tag = i
        key = data[i]
        if key == 0x12 and i + 1 < n and data[i + 1] < 0x80:
            # An entity under 128 bytes: the tag and a one-byte length.
            start = i + 2
            end = start + data[i + 1]
        elif key == 0x12 and i + 2 < n and data[i + 2] < 0x80:
            # Under 16 KiB: a two-byte length. Between them, nearly every real entity.
            start = i + 3
            end = start + (data[i + 1] & 0x7F) + (data[i + 2] << 7)
        else:
            key, i = _varint(data, i, n)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise MalformedFeed(f"field number 0 at byte {i:,}")
            if wire != _LEN:
                # Protobuf keeps a field of the wrong wire type as an unknown field.
                i = _skip(data, i, n, wire)
                continue
            length, start = _varint(data, i, n)
            end = start + length
            if number != ENTITY:
                if end > n:
                    raise MalformedFeed(f"field {number} runs past the end ({end:,} > {n:,})")
                if number == HEADER:
                    headers.append((start, end))
                i = end
                continue
        if end > n:
            raise MalformedFeed(f"entity {count + 1:,} runs past the end ({end:,} > {n:,})")
        count += 1
        if count <= keep:
            tags.append(tag)
            starts.append(start)
            ends.append(end)
        i = end
    return Frame(_header(data, headers), count, tags, starts, ends)


def _skip(data: bytes, i: int, n: int, wire: int) -> int:
    if wire == _VARINT:
        return _varint(data, i, n)[1]
    size = {_I64: 8, _I32: 4}.get(wire)
    if size is None:
        raise MalformedFeed(f"wire type {wire} (groups or invalid) at byte {i:,}")
    if i + size > n:
        raise MalformedFeed(f"a fixed-size field runs past the end at byte {i:,}")
    return i + size


def _header(data: bytes, parts: list[tuple[int, int]]) -> rt.FeedHeader | None:
    if not parts:
        return None
    header = rt.FeedHeader()
    try:
        # A message field sent more than once is merged, as protobuf parsers do.
        for start, end in parts:
            header.MergeFromString(data[start:end])
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise MalformedFeed(f"the header cannot be decoded: {exc or 'invalid'}") from None
    return header
