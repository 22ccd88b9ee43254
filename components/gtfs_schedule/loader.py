"""Loads a GTFS schedule zip (flat, or Transport Victoria's zip of per-mode zips) into
a new SQLite file, validating as it streams; :func:`load_feed` is the entry point.

The members load through :mod:`.members`; the checks that need every row (keys,
references, stop order) run here once the load is committed.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from interlock.components.gtfs_schedule.blocks import check_blocks
from interlock.components.gtfs_schedule.flexrules import (
    BOOKING_RULES,
    FLEX_RULES,
    check_default_rider_categories,
    check_stop_times_records,
    check_trip_distances,
)
from interlock.components.gtfs_schedule.geojson import Locations
from interlock.components.gtfs_schedule.georules import check_locations, read_locations
from interlock.components.gtfs_schedule.layout import (
    check_subfolders,
    flat_prefix,
    inner_zips,
    mode_key,
)
from interlock.components.gtfs_schedule.linkrules import (
    LINK_RULES,
    TRANSLATION_RULES,
    check_frequencies,
    check_route_networks,
    check_timeframes,
)
from interlock.components.gtfs_schedule.members import FeedLoader, Progress, Tally, check_cancel
from interlock.components.gtfs_schedule.notices import NoticeBook
from interlock.components.gtfs_schedule.parallel import Tuning
from interlock.components.gtfs_schedule.pathways import check_pathways
from interlock.components.gtfs_schedule.rules import ROW_RULES, check_rows, check_trip_edges
from interlock.components.gtfs_schedule.schema import create_table_sql
from interlock.components.gtfs_schedule.shapes import check_shapes
from interlock.components.gtfs_schedule.spec import TABLES
from interlock.components.gtfs_schedule.validate import (
    FeedFiles,
    build_clean_keys,
    build_indexes,
    build_primary_keys,
    check_foreign_keys,
)
from interlock.components.gtfs_schedule.warnings_calendar import check_calendar_warnings
from interlock.components.gtfs_schedule.warnings_cells import check_cells
from interlock.components.gtfs_schedule.warnings_extra import check_extra_warnings
from interlock.components.gtfs_schedule.warnings_links import check_link_warnings
from interlock.components.gtfs_schedule.warnings_more import check_more_warnings
from interlock.components.gtfs_schedule.warnings_rows import check_row_warnings
from interlock.components.gtfs_schedule.warnings_shapes import check_shape_matching
from interlock.components.gtfs_schedule.zipsafe import Budget, SafeZip, ZipLimits
from interlock.errors import ValidationFailedError, WorkCancelledError


@dataclass(frozen=True, slots=True)
class FeedLoadResult:
    """What a load produced: per-table counts, the quality report and rule inputs."""

    record_counts: dict[str, int]
    total_records: int
    report: dict[str, object]
    stats: dict[str, int]
    modes_loaded: list[str]


def _open_db(db_path: Path, moded: bool) -> sqlite3.Connection:
    # "x" mode: refuse to clobber a database someone else may be serving.
    db_path.open("xb").close()
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    # A small page cache: the load appends pages and every later pass is sequential, so
    # a bigger cache buys nothing measurable. It also caps each index build's in-memory
    # sort (cache_size bytes; bigger sorts spill to temp files), and with threads=0 no
    # helper threads sort in parallel, so peak memory is the same whatever the feed size.
    pragmas = ("journal_mode=OFF", "synchronous=OFF", "cache_size=-4096", "threads=0")
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("BEGIN")
    for table in TABLES:
        conn.execute(create_table_sql(table, moded))
    return conn


@contextmanager
def _progress_guard(conn: sqlite3.Connection, cancel: threading.Event | None) -> Iterator[None]:
    """Let a set cancel event interrupt long SQL statements (index builds, checks)."""
    if cancel is not None:
        conn.set_progress_handler(lambda: 1 if cancel.is_set() else 0, 100_000)
    try:
        yield
    except sqlite3.OperationalError as exc:
        if cancel is not None and cancel.is_set():
            raise WorkCancelledError("GTFS load cancelled during post-load checks") from exc
        raise
    finally:
        conn.set_progress_handler(None, 0)


def load_feed(
    zip_path: Path,
    db_path: Path,
    *,
    modes: Sequence[str] | None = None,
    limits: ZipLimits = ZipLimits(),  # noqa: B008 - immutable frozen dataclass
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    tuning: Tuning = Tuning(),  # noqa: B008 - immutable frozen dataclass
    today: date | None = None,
) -> FeedLoadResult:
    """Validate ``zip_path`` and load it into the new SQLite file ``db_path``.

    Raises UnsafeArchiveError for unsafe or unreadable zips, WorkCancelledError when
    ``cancel`` is set; on any failure ``db_path`` is removed. Feed-level problems are
    not raised: they are notices in the result's report for the caller's rules.

    Every spec table is created (empty when its file is absent); only spec columns
    load (others are unknown_column notices), each TIME column gains ``<name>_secs``.
    As in gtfs-validator, a row whose value does not parse, or whose length differs
    from the header's, is dropped; a missing required value loads as NULL and an out
    of range value loads as is. Duplicate-key rows after the first are dropped.

    ``tuning`` decides which members load through worker processes (the result is
    the same either way, only faster); ``Tuning(workers=0)`` keeps the load in-process.
    ``today`` is the date the expiry WARNINGs judge by (default: today in the zone of
    the feed's first agency).
    """
    check_cancel(cancel)
    if db_path.exists():
        raise FileExistsError(
            f"database {str(db_path)!r} already exists; load_feed needs a new path"
        )
    budget = Budget(limits)
    book = NoticeBook()
    tally = Tally()
    conn: sqlite3.Connection | None = None
    loader: FeedLoader | None = None
    try:
        with SafeZip(zip_path, budget) as outer:
            inner = inner_zips(outer)
            moded = bool(inner)
            conn = _open_db(db_path, moded)
            loader = FeedLoader(conn, book, tally, cancel, progress, tuning, db_path.parent)
            feeds: list[FeedFiles] = []
            locations: dict[str | None, Locations] = {}  # each feed's locations.geojson
            wanted = sorted(inner, key=mode_key)
            if modes is not None:
                unknown = sorted(set(modes) - set(inner))
                if unknown:
                    raise ValidationFailedError(
                        f"modes {unknown!r} are not in {zip_path.name!r}; it holds {wanted!r}"
                    )
                wanted = [m for m in wanted if m in set(modes)]
            if not moded:
                check_subfolders(outer, None, book)
                feeds.append(loader.load(outer, flat_prefix(outer), None, 0))
                if (found := read_locations(outer, flat_prefix(outer), None, book)) is not None:
                    locations[None] = found
            with tempfile.TemporaryDirectory(prefix=".gtfs-inner-", dir=db_path.parent) as tmp:
                for ordinal, mode in enumerate(wanted):
                    check_cancel(cancel)
                    dest = Path(tmp) / f"{mode}.zip"
                    outer.extract_to(inner[mode], dest)
                    label = f"{zip_path.name}:{inner[mode].filename}"
                    with SafeZip(dest, budget, label=label) as zf:
                        check_subfolders(zf, mode, book)
                        feeds.append(loader.load(zf, flat_prefix(zf), mode, ordinal))
                        if (found := read_locations(zf, flat_prefix(zf), mode, book)) is not None:
                            locations[mode] = found
                    dest.unlink()
            loader.close()
        check_cancel(cancel)
        conn.execute("COMMIT")
        # Post-load statements may fail (a unique index over duplicates) and need a
        # rollback journal to fail cleanly; DELETE mode also keeps the result in one
        # file so the caller can rename it. New index pages are not journalled.
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("BEGIN")
        with _progress_guard(conn, cancel):
            # Indexes before the reference checks, which then read them instead of
            # sorting or scanning the tables again; duplicates are dropped only after
            # the checks (which see every row), under a plain key index meanwhile.
            dirty = build_clean_keys(conn, moded)
            build_indexes(conn, moded)
            check_foreign_keys(conn, feeds, book)
            check_locations(conn, feeds, book, locations)
            check_rows(
                conn,
                feeds,
                book,
                ROW_RULES + LINK_RULES + TRANSLATION_RULES + FLEX_RULES + BOOKING_RULES,
            )
            check_frequencies(conn, feeds, book)
            check_timeframes(conn, feeds, book)
            check_route_networks(feeds, book)
            check_pathways(conn, feeds, book)
            keyed, dups = build_primary_keys(conn, moded, book, dirty)
            check_trip_edges(conn, feeds, book)
            check_stop_times_records(conn, feeds, book)
            check_trip_distances(conn, feeds, book)
            check_default_rider_categories(conn, feeds, book)
            check_shapes(conn, feeds, book)
            check_blocks(conn, feeds, book)
            check_row_warnings(conn, feeds, book)
            check_cells(conn, feeds, book)
            check_calendar_warnings(conn, feeds, book, today)
            check_link_warnings(conn, feeds, book)
            check_extra_warnings(conn, feeds, book)
            check_shape_matching(conn, feeds, book)
            check_more_warnings(conn, feeds, book)
            loader.order.check(conn, moded, book)
            conn.execute("COMMIT")
        counts = {
            name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in loader.counts
        }
        conn.close()
        conn = None
    except BaseException:
        if loader is not None:
            loader.close()
        if conn is not None:
            conn.close()
        with suppress(FileNotFoundError):
            db_path.unlink()
        raise
    report = book.report()
    stats = {
        "records": sum(counts.values()),
        "checked_cells": tally.checked,
        "null_cells": tally.nulls,
        "keyed_rows": keyed,
        "duplicate_rows": dups,
        "error_notices": book.total("ERROR"),
        "warning_notices": book.total("WARNING"),
    }
    return FeedLoadResult(
        record_counts=counts,
        total_records=stats["records"],
        report=report,
        stats=stats,
        modes_loaded=list(wanted),
    )
