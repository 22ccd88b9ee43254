"""Read a published CSV as the real Data Vic files come: a UTF-8 BOM, numbers with
thousands separators inside quotes, trailing empty columns and trailing junk rows.

Pure functions; the parsers in :mod:`.parsers` give the columns meaning.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from interlock.errors import FetchError

_NOT_WORD = re.compile(r"[^0-9a-z]+")
_NUMBER = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$|^-?\d+(\.\d+)?$")
NULLS = frozenset({"", "-", "n/a", "na", "null", "none"})


def norm(name: str) -> str:
    """A header as a key: ``"Pax_AM_peak "`` and ``"Pax AM Peak"`` both give ``pax_am_peak``."""
    return _NOT_WORD.sub("_", name.replace("\ufeff", "").strip().lower()).strip("_")


def number(text: str) -> int | float | None:
    """``"1,234,550"`` -> 1234550, ``"12.5"`` -> 12.5, empty or ``-`` -> None.

    Raises ValueError for anything else, e.g. ``"12a"`` or ``"1,23"``.
    """
    value = text.strip().replace("\u00a0", "")
    if value.lower() in NULLS:
        return None
    if not _NUMBER.match(value):
        raise ValueError(f"not a number: {text!r}")
    value = value.replace(",", "")
    return float(value) if "." in value else int(value)


@dataclass
class Table:
    """A CSV's header (normalised and as written) and its data rows, junk removed."""

    header: list[str]
    raw_header: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    junk_rows: int = 0
    encoding: str = "utf-8"
    # Lines whose values held a NUL: left out of ``rows``; the parsers count each one.
    nul_lines: list[int] = field(default_factory=list)


def looks_like_html(head: bytes) -> bool:
    """Whether a payload is a web page (a portal's error page or a login wall)."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body"))


def read_table(path: Path, *, label: str) -> Table:
    """Read ``path`` (named ``label`` in errors) into a :class:`Table`.

    Blank rows, rows of empty cells and footnote rows (one filled cell in a wide
    table) are junk: skipped and counted. Empty trailing columns are dropped. A row
    with a NUL in a value (csv reads it since Python 3.11) is rejected whole: its line
    goes to ``nul_lines``, since a value cut or joined around the NUL would be a guess.
    """
    data = path.read_bytes()
    if looks_like_html(data[:512]):
        start = data[:60].decode("utf-8", "replace").strip()
        raise FetchError(
            f"{label} is an HTML page, not CSV (starts {start!r}); the portal may be serving "
            "an error page"
        )
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = data.decode("cp1252", "replace"), "cp1252"
    reader = csv.reader(io.StringIO(text, newline=""))
    table: Table | None = None
    for line_no, row in enumerate(reader, start=1):
        cells = [c.strip() for c in row]
        while cells and not cells[-1]:
            cells.pop()
        if any("\x00" in c for c in cells):
            if table is None:
                raise FetchError(
                    f"{label}'s header (line {line_no}) holds a NUL byte (U+0000); the file "
                    "is corrupt or not text, so nothing of it is used"
                )
            table.nul_lines.append(line_no)
            continue
        if table is None:
            if cells:
                names = [norm(c) for c in cells]
                table = Table(header=names, raw_header=cells, encoding=encoding)
            continue
        filled = sum(1 for c in cells if c)
        if filled == 0 or (filled == 1 and len(table.header) > 2 and not cells[0].isdigit()):
            table.junk_rows += 1
            continue
        table.rows.append((line_no, cells + [""] * (len(table.header) - len(cells))))
    if table is None:
        raise FetchError(f"{label} is empty: no header row")
    return table
