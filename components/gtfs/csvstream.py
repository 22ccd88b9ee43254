"""Streams the rows of one CSV member without reading the whole file.

Handles a UTF-8 BOM, CRLF / lone CR line ends and quoted values with commas or
newlines; undecodable bytes and NULs surface as one of :data:`CSV_ERRORS` mid-stream.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO

# Raised while iterating the rows; the caller turns them into csv_parsing_failed.
# (Not wrapped in a generator: that would cost a frame switch per row on the hot path.)
CSV_ERRORS: tuple[type[Exception], ...] = (UnicodeDecodeError, csv.Error)


def open_rows(binary: IO[bytes]) -> tuple[list[str] | None, Iterator[list[str]]]:
    """The stripped header (None for an empty file) and an iterator over data rows."""
    # newline="" hands line ends to csv, which then keeps newlines inside quotes.
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")
    rows = csv.reader(text)
    for header in rows:
        if header:
            return [h.strip() for h in header], rows
    return None, rows
