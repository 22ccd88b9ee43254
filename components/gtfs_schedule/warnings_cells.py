"""gtfs-validator's WARNINGs about single values, which its parser raises row by row:
unexpected_enum_value (an integer enum holding a value its enum lacks),
non_ascii_or_non_printable_char (an ID outside printable ASCII) and
missing_timepoint_value (a timed stop_time without a timepoint, where the file has
the column).

One query per table finds the rows holding any of them, so stop_times is scanned once
for all three; only the columns the feeds' headers carry are tested.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.schema import Kind, Table
from interlock.components.gtfs_schedule.spec import TABLES
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles
from interlock.components.gtfs_schedule.warnings_rows import ENUMS

_ROW_MASK = (1 << ROWID_BITS) - 1
_NOT_PRINTABLE = "'*[^ -~]*'"  # a GLOB for any character outside U+0020..U+007E
# stop_times' IDs that reference a small table's key: the bad values are the bad keys
# of that table, and only the rows holding one are read through the index, so that
# stop_times is not GLOBbed row by row. (A bad value no trip or stop has is a
# foreign_key_violation, and not reported here too.)
_REFERENCED = {("stop_times", "trip_id"): "trips", ("stop_times", "stop_id"): "stops"}
# Columns named like IDs that gtfs-validator reads as text, not as IDs.
_NOT_IDS = frozenset({("translations", "record_id"), ("translations", "record_sub_id")})


def id_columns(table: Table) -> list[str]:
    """The ID columns of ``table`` (gtfs-validator's ID type): names ending in _id, and
    parent_station."""
    return [
        f.name
        for f in table.fields
        if f.kind is Kind.TEXT
        and (f.name.endswith("_id") or f.name == "parent_station")
        and (table.name, f.name) not in _NOT_IDS
    ]


def _outside(column: str, allowed: frozenset[int]) -> str:
    """A test that ``column`` holds an integer not in ``allowed``, as range comparisons
    (which SQLite runs faster than NOT IN); NULL passes."""
    lo, hi = min(allowed), max(allowed)
    holes = sorted(set(range(lo, hi + 1)) - allowed)
    inside = f" OR {column} IN ({', '.join(map(str, holes))})" if holes else ""
    return f"({column} < {lo} OR {column} > {hi}{inside})"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _printable(value: object) -> bool:
    return not isinstance(value, str) or all(" " <= ch <= "~" for ch in value)


def check_cells(conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook) -> None:
    moded = bool(feeds) and feeds[0].mode is not None
    for table in TABLES:
        header = {c for f in feeds for c in f.columns.get(table.filename, ())}
        enums = {c: v for c, v in ENUMS.get(table.name, {}).items() if c in header}
        ids = [c for c in id_columns(table) if c in header]
        timepoint = table.name == "stop_times" and "timepoint" in header
        tests = [_outside(c, v) for c, v in enums.items()]
        for c in ids:
            parent = _REFERENCED.get((table.name, c))
            if parent is None:
                tests.append(f"{c} GLOB {_NOT_PRINTABLE}")
                continue
            sql = f"SELECT DISTINCT {c} FROM {parent} WHERE {c} GLOB {_NOT_PRINTABLE}"
            bad = [v for (v,) in conn.execute(sql)]
            if bad:
                tests.append(f"{c} IN ({', '.join(_quote(v) for v in bad)})")
        if timepoint:
            tests.append(
                "(timepoint IS NULL AND (arrival_time IS NOT NULL OR departure_time IS NOT NULL))"
            )
        if not tests:
            continue
        cols = [
            *enums,
            *ids,
            *(["timepoint", "arrival_time", "departure_time"] if timepoint else []),
        ]
        mode = "mode" if moded else "NULL"
        sql = (
            f"SELECT rowid, {mode}, {', '.join(cols)} FROM {table.name} "
            f"WHERE {' OR '.join(tests)} ORDER BY rowid"
        )
        with_timepoint = {f.mode for f in feeds if "timepoint" in f.columns.get(table.filename, ())}
        for rowid, md, *values in conn.execute(sql):
            row = dict(zip(cols, values, strict=True))
            _report(
                table,
                row,
                rowid & _ROW_MASK,
                md,
                enums,
                ids,
                timepoint and md in with_timepoint,
                book,
            )


def _report(
    table: Table,
    row: dict[str, object],
    csv_row: int,
    mode: str | None,
    enums: dict[str, frozenset[int]],
    ids: list[str],
    timepoint: bool,
    book: NoticeBook,
) -> None:
    file = table.filename
    for col, allowed in enums.items():
        value = row[col]
        if isinstance(value, int) and value not in allowed:
            book.add(Notice("unexpected_enum_value", file, csv_row, col, value, mode))
    for col in ids:
        value = row[col]
        if not _printable(value):
            assert isinstance(value, str)
            book.add(Notice("non_ascii_or_non_printable_char", file, csv_row, col, value, mode))
    if (
        timepoint
        and row["timepoint"] is None
        and (row["arrival_time"] is not None or row["departure_time"] is not None)
    ):
        book.add(Notice("missing_timepoint_value", file, csv_row, "timepoint", None, mode))
