"""Cuts a CSV member's bytes into line-aligned chunks that workers can load on their own.

Pure functions over bytes: where a chunk may end, how many rows it holds, and the
header line. Anything unusual (a quoted or very long header, no line end in sight)
answers None, and the member goes to the serial path instead.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO

_BOM = b"\xef\xbb\xbf"
# How far back a cut may move to fall between two trips (a few thousand stop_times);
# past that the cut stays put and the order check's merge notices the split trip.
_TRIP_SCAN_BYTES = 256 * 1024
# Read past the chunk size so that the line after a cut is always in the buffer.
_SLACK = 64 * 1024


def parse_header(line: bytes) -> list[str] | None:
    """The stripped header from the member's first line (with its line end), or None
    when it is not a plain one-line, non-blank header that the serial reader would
    read the same way.
    """
    if line.startswith(_BOM):
        line = line[len(_BOM) :]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in text or "\r" in text[:-2] or not text.endswith("\n"):
        return None
    reader = csv.reader([text, "\n"])
    header = next(reader, [])
    if not header or reader.line_num != 1:
        return None
    return [h.strip() for h in header]


def count_rows(chunk: bytes) -> int:
    """Non-blank lines in ``chunk`` (whole lines, the last perhaps without its end)."""
    rows = chunk.count(b"\n") + (0 if not chunk or chunk.endswith(b"\n") else 1)
    if b"\n\n" in chunk or b"\n\r\n" in chunk or chunk.startswith((b"\n", b"\r\n")):
        pieces = chunk.split(b"\n")
        if pieces[-1] == b"":
            pieces.pop()
        rows = sum(1 for p in pieces if p not in (b"", b"\r"))
    return rows


def _field(line: bytes, col: int) -> bytes | None:
    parts = line.rstrip(b"\r\n").split(b",", col + 1)
    return parts[col] if col < len(parts) else None


def cut_point(buf: bytes, size: int, key_col: int | None) -> int:
    """Where the chunk starting at ``buf[0]`` ends: just after a line end at or before
    ``size`` (after the first line end when one line is longer), moved back between
    two lines whose ``key_col`` values differ when it can be; 0 when ``buf`` holds no
    line end.
    """
    end = buf.rfind(b"\n", 0, size) + 1 or buf.find(b"\n", size) + 1
    if end == 0 or key_col is None or end >= len(buf):
        return end
    nxt = buf.find(b"\n", end)
    key = _field(buf[end : nxt if nxt >= 0 else len(buf)], key_col)
    pos = end
    while pos > 1 and end - pos < _TRIP_SCAN_BYTES:
        start = buf.rfind(b"\n", 0, pos - 1) + 1
        if _field(buf[start:pos], key_col) != key:
            return pos
        pos = start
    return end


def split(
    stream: IO[bytes], head: bytes, size: int, key_col: int | None
) -> Iterator[tuple[bytes, int]]:
    """(chunk, rows) pairs of the member after its header; ``head`` is what was read
    past the header line already. Raises ValueError for a line longer than can be held.
    """
    buf = head
    eof = False
    while True:
        while not eof and len(buf) < size + _SLACK:
            more = stream.read(size + _SLACK - len(buf))
            eof = not more
            buf += more
        if not buf:
            return
        cut = len(buf) if eof and len(buf) <= size else cut_point(buf, size, key_col)
        if cut == 0:
            if len(buf) > 4 * size:
                raise ValueError(f"no line end in {len(buf)} bytes")
            more = stream.read(size)
            eof = not more
            if eof:
                cut = len(buf)
            else:
                buf += more
                continue
        chunk, buf = buf[:cut], buf[cut:]
        yield chunk, count_rows(chunk)
