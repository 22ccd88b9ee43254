"""Duplicate keys must not leave the checks without indexes.

Victoria's real feed repeats 267 trips rows verbatim; the unique key index of trips
cannot be built until those rows are dropped, which happens after the checks (they
see every row, as gtfs-validator's do). Without an index in the meantime, rules that
look trips up per transfer scanned the whole table per row: 36 s on the two partial
mode folders.
"""

from __future__ import annotations

import sqlite3

import pytest

from interlock.components.gtfs_schedule.notices import NoticeBook
from interlock.components.gtfs_schedule.spec import TABLES
from interlock.components.gtfs_schedule.validate import (
    KEYED_TABLES,
    build_clean_keys,
    build_primary_keys,
)


def _feed(duplicate_trip: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    for table in TABLES:
        cols = ", ".join(f.name for f in table.fields)
        conn.execute(f"CREATE TABLE {table.name} ({cols})")
    rows = [("r1", "s1", "t1"), ("r1", "s1", "t2")]
    if duplicate_trip:
        rows.append(("r1", "s1", "t1"))
    conn.executemany("INSERT INTO trips (route_id, service_id, trip_id) VALUES (?, ?, ?)", rows)
    conn.executemany(
        "INSERT INTO stop_times (trip_id, stop_sequence, stop_id) VALUES (?, ?, ?)",
        [("t1", 1, "a"), ("t1", 2, "b"), ("t2", 1, "a")],
    )
    return conn


def _plan(conn: sqlite3.Connection, table: str, where: str) -> str:
    rows = conn.execute(f"EXPLAIN QUERY PLAN SELECT 1 FROM {table} WHERE {where}").fetchall()
    return " ".join(str(r[-1]) for r in rows)


@pytest.mark.parametrize("duplicate_trip", [False, True])
def test_every_keyed_table_is_indexed_on_its_key_before_the_checks(duplicate_trip: bool) -> None:
    """With or without duplicate trips, key lookups in the checks use an index."""
    conn = _feed(duplicate_trip)
    build_clean_keys(conn, moded=False)
    for table in KEYED_TABLES:
        first = table.primary_key[0]
        plan = _plan(conn, table.name, f"{first} = 'x'")
        assert "USING" in plan and "INDEX" in plan, (table.name, plan)


def test_after_the_checks_the_keys_are_unique_and_the_duplicate_named() -> None:
    """Dropping duplicates leaves one unique key index per keyed table, nothing temporary."""
    conn = _feed(duplicate_trip=True)
    book = NoticeBook()
    dirty = build_clean_keys(conn, moded=False)
    keyed, dups = build_primary_keys(conn, False, book, dirty)
    assert (keyed, dups) == (6, 1) and book.count("duplicate_key") == 1
    assert conn.execute("SELECT count(*) FROM trips").fetchone()[0] == 2
    indexes = {
        name: unique
        for t in KEYED_TABLES
        for _, name, unique, *_ in conn.execute(f"PRAGMA index_list({t.name})")
    }
    assert indexes == {f"{t.name}_pk": 1 for t in KEYED_TABLES}
