"""Streams the rows of one CSV member, a block at a time, without reading the whole file.

Handles a UTF-8 BOM, CRLF / lone CR line ends and quoted values with commas or
newlines; undecodable bytes and NULs surface as one of :data:`CSV_ERRORS` mid-stream
(csv itself accepts NUL since Python 3.11, so the bytes are checked as they are read).
Blocks of plain text (no quotes, NULs or lone CRs: nearly every real feed) are split
with ``str.split``, several times faster than :mod:`csv`; the first block that is not
plain hands the rest of the file to :func:`csv.reader`, which then sees exactly the
lines it would have seen from the start.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from itertools import islice, repeat, tee
from typing import IO, cast

from interlock.components.gtfs_schedule.cells import settle, trim_unquoted

# Raised while iterating the blocks; the caller turns them into csv_parsing_failed.
CSV_ERRORS: tuple[type[Exception], ...] = (UnicodeDecodeError, csv.Error)

# Characters of text per block: about 6k stop_times rows, so a block and its converted
# values cost a few MiB and a cancel is noticed within milliseconds.
BLOCK_CHARS = 256 * 1024
_CSV_BLOCK_ROWS = 5_000

Block = Iterable[list[str]]


def open_rows(binary: IO[bytes]) -> tuple[list[str] | None, Iterator[Block]]:
    """The stripped header (None for an empty file) and an iterator over blocks of rows.

    Blocks hold data rows in file order, never a blank line (which csv reads as ``[]``
    and gtfs-validator skips without counting); a block may be empty.
    """
    # newline="" hands line ends to us / csv, which then keeps newlines inside quotes.
    guarded = cast(IO[bytes], _NulGuard(binary))  # a BufferedIOBase: what TextIOWrapper reads
    text = io.TextIOWrapper(guarded, encoding="utf-8-sig", errors="strict", newline="")
    # The header alone is read line by line, so a problem further down the file is
    # met only once its header has been judged (unknown_column and the like).
    for header in csv.reader(iter(text.readline, "")):
        if header:
            return [h.strip() for h in header], _blocks(text)
    return None, iter(())


class _NulGuard(io.BufferedIOBase):
    """The member's bytes as read, refused at the first NUL (csv.Error, so a notice).

    UTF-8 never encodes anything else with a zero byte, and no GTFS value holds
    U+0000: a NUL means a corrupt or binary payload, which must not be published.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._checked(self._raw.read(-1 if size is None else size))

    def read1(self, size: int = -1) -> bytes:
        read1 = getattr(self._raw, "read1", self._raw.read)
        return self._checked(read1(size))

    def _checked(self, data: bytes) -> bytes:
        at = data.find(0)
        if at >= 0:
            near = data[max(0, at - 20) : at + 20].decode("utf-8", "replace")
            raise csv.Error(
                f"byte {self._offset + at} is a NUL (U+0000), near {near!r}; no GTFS text "
                "holds one, so the file is corrupt: the publisher must re-export it"
            )
        self._offset += len(data)
        return data


def plain_lines(body: str) -> list[str] | None:
    """``body`` (whole lines) split into lines, or None when csv must read it."""
    if '"' in body or "\x00" in body or "\ufffd" in body:  # U+FFFD: see cells.settle
        return None
    if "\r" in body:
        body = body.replace("\r\n", "\n")
        if "\r" in body:  # a lone CR ends a line for csv; rare enough to leave to it
            return None
    body = trim_unquoted(body)  # as univocity, which gtfs-validator reads CSV with
    lines = body.split("\n")
    lines.pop()  # body ends with a newline: the last piece is empty
    # csv refuses fields over its limit; no line over it means no field over it.
    if len(body) > csv.field_size_limit() and max(map(len, lines)) > csv.field_size_limit():
        return None
    if "" in lines:
        lines = [line for line in lines if line]
    return lines


def _blocks(text: IO[str]) -> Iterator[Block]:
    pending = ""
    while True:
        chunk = text.read(BLOCK_CHARS)
        if chunk:
            chunk = pending + chunk
            cut = chunk.rfind("\n") + 1
            body, pending = chunk[:cut], chunk[cut:]
        else:
            # The last line may lack its newline; csv reads it as a whole line all the same.
            body, pending = (pending + "\n" if pending else ""), ""
        lines = plain_lines(body) if body else []
        if lines is None:
            # Give csv the text exactly as read (without a newline added at the end).
            yield from _csv_blocks(_csv_lines(chunk or body[:-1], text))
            return
        # Lazily: a row's list is freed before the next is made, so a block never
        # holds thousands of live lists that would set off the cyclic GC again and again.
        yield map(str.split, lines, repeat(","))
        if not chunk:
            return


def _csv_lines(buffered: str, text: IO[str]) -> Iterator[str]:
    """The lines of ``buffered`` then of ``text``, split as iterating ``text`` would."""
    # ``buffered`` holds whole lines and then perhaps the start of one more; complete
    # that line from the stream first so that csv never sees a line cut in two.
    if buffered and buffered[-1] not in "\r\n":
        buffered += text.readline()
    yield from io.StringIO(buffered, newline="")
    yield from text


def _csv_blocks(lines: Iterator[str]) -> Iterator[Block]:
    lines, raw = tee(lines)  # each block's own lines, for settle
    reader = csv.reader(lines)
    seen = 0
    while True:
        block = list(islice(reader, _CSV_BLOCK_ROWS))
        if not block:
            return
        text = list(islice(raw, reader.line_num - seen))
        seen = reader.line_num
        yield settle([row for row in block if row], text)
