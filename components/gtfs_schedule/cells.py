"""Cell values read as MobilityData's gtfs-validator reads them: trimming and number syntax.

gtfs-validator reads CSV with univocity, which trims unquoted values silently; a value
still padded after that (it was quoted: ``" S1"``) is trimmed too, with the WARNING
``leading_or_trailing_whitespaces``, and a newline inside one is the ERROR
``new_line_in_value``. Numbers follow Java: ``Integer.parseInt`` (32 bits) and
``Double.parseDouble`` (``NaN``, ``Infinity``, ``1d``, ``0x1p3``), with ASCII digits
only, as MobilityData wants (``٣`` is invalid_integer though Java's parseInt reads it).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from itertools import chain

# Java's String.trim() strips every char up to U+0020 (not U+00A0).
WHITESPACE = "".join(map(chr, range(0x21)))
# Univocity's trim in a block of unquoted lines: spaces and tabs at a value's edges.
_UNQUOTED_EDGE = re.compile(r"[ \t]+(?=,|\n)|(?:(?<=,)|(?<=\n)|\A)[ \t]+")
_SEP = "\x7f"  # joins a block's cells for one scan; never trimmed, rare in feeds
_DIRTY = (f" {_SEP}", f"{_SEP} ", f"\t{_SEP}", f"{_SEP}\t", "\n", "\r", "\ufffd")

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# ASCII digits only: Python's \d (like Java's Character.digit) takes "٣" too.
_INT_RE = re.compile(r"[+-]?[0-9]+")
_JAVA_DOUBLE = re.compile(
    r"[+-]?(?:NaN|Infinity"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?"
    r"|0[xX](?:[0-9a-fA-F]+\.?|[0-9a-fA-F]*\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?)"
)


def trim_unquoted(body: str) -> str:
    """Unquoted lines (each ending in a newline) with their values' edge spaces and tabs
    removed, as univocity removes them; ``body`` itself when it has none (the usual case).
    """
    if " " not in body and "\t" not in body:
        return body  # two scans answer for most blocks (stop_times hold no spaces)
    marks = ("\t", " ,", ", ", " \n", "\n ")
    if not body.startswith(" ") and not any(mark in body for mark in marks):
        return body
    return _UNQUOTED_EDGE.sub("", body)


class Padded(list[list[str]]):
    """Rows csv read of which some value is still padded or holds a newline: it was
    quoted, so the converter trims it with a notice (see :func:`settle`)."""


def settle(rows: list[list[str]], lines: list[str]) -> list[list[str]]:
    """``rows`` as univocity would give them: csv read them from exactly ``lines``
    (whole records). Unquoted values lose edge spaces and tabs silently; when a value
    is left padded, or holds a newline, the rows come back :class:`Padded`.

    Only a block that needs it (rare) is read a second time to learn which values
    were quoted.
    """
    if not needs_cleaning(rows):
        return rows
    out = Padded()
    reader = csv.reader(lines)
    start = 0
    for row in reader:
        record = "".join(lines[start : reader.line_num])
        start = reader.line_num
        if not row:
            continue  # a blank line, left out of ``rows`` too
        quoted = _quoted_fields(record)
        out.append(
            [
                v if not v or q or (v[0] not in " \t" and v[-1] not in " \t") else v.strip(" \t")
                for v, q in zip(row, quoted + [False] * (len(row) - len(quoted)), strict=False)
            ]
        )
    return out if needs_cleaning(out) else list(out)


def _quoted_fields(record: str) -> list[bool]:
    """Which fields of one raw CSV record started with a quote (csv's default dialect)."""
    out: list[bool] = []
    i = 0
    while True:
        if record.startswith('"', i):
            out.append(True)
            i += 1
            while True:  # to the closing quote; "" is an escaped quote
                j = record.find('"', i)
                if j < 0:
                    return out
                if record.startswith('"', j + 1):
                    i = j + 2
                    continue
                i = j + 1
                break
        else:
            out.append(False)
        k = record.find(",", i)
        if k < 0:
            return out
        i = k + 1


def needs_cleaning(rows: list[list[str]]) -> bool:
    """Whether any value of ``rows`` (from csv: values may have been quoted) has edge
    whitespace or a newline; one scan of the joined block answers for all of them."""
    s = _SEP.join(chain.from_iterable(rows))
    if not s:
        return False
    return s[0] in WHITESPACE or s[-1] in WHITESPACE or any(mark in s for mark in _DIRTY)


Bad = Callable[[tuple[str, int, str | None, str | int | float | None]], None]


def clean(value: str, rowno: int, field: str, bad: Bad) -> str:
    """``value`` trimmed, with the notices gtfs-validator's ``RowParser.asString`` gives."""
    if "\n" in value or "\r" in value:
        bad(("new_line_in_value", rowno, field, value))
    if "\ufffd" in value:  # what a decoder leaves of bytes it could not read
        bad(("invalid_character", rowno, field, value))
    trimmed = value.strip(WHITESPACE)
    if len(trimmed) < len(value):
        bad(("leading_or_trailing_whitespaces", rowno, field, value))
    return trimmed


def parse_int(v: str) -> int | None:
    """``Integer.parseInt``: an optional sign, decimal digits, and 32 bits."""
    if not _INT_RE.fullmatch(v):
        return None
    try:
        n = int(v)
    except ValueError:  # more digits than Python converts: far past 32 bits anyway
        return None
    return n if INT_MIN <= n <= INT_MAX else None


def java_double(v: str) -> float | None:
    """``Double.parseDouble`` of a trimmed value, or None where Java throws."""
    if not _JAVA_DOUBLE.fullmatch(v):
        return None
    body = v.lstrip("+-")
    sign = -1.0 if v.startswith("-") else 1.0
    if body == "NaN":
        return float("nan")
    if body == "Infinity":
        return sign * float("inf")
    body = body.rstrip("fFdD")  # a type suffix; an exponent always ends a hex float
    if body[:2] in ("0x", "0X"):
        return sign * float.fromhex(body)
    return sign * float(body)
