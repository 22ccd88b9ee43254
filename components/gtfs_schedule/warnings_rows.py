"""gtfs-validator's WARNINGs and INFOs about single rows of the small tables.

Each check reads one small table (agency, stops, routes, trips, levels, fare
attributes) row by row in rowid order, so the notices come in CSV row order and
memory stays flat; stop_times is not read (warnings_cells.py checks its values).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.rules import modes_parsed
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

_ROW_MASK = (1 << ROWID_BITS) - 1
_MAX_SHORT_NAME = 12
# What may follow a route_short_name at the start of its route_long_name.
_AFTER_SHORT = re.compile(r"\s?[\s\-()]")
# Words of a customer-facing text: runs of letters (an apostrophe does not split one).
_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]*)*")

# Customer-facing text fields gtfs-validator wants in Mixed Case.
MIXED_CASE: dict[str, tuple[str, ...]] = {
    "agency": ("agency_name",),
    "stops": ("stop_name",),
    "routes": ("route_short_name", "route_long_name", "route_desc"),
    "trips": ("trip_headsign", "trip_short_name"),
    "levels": ("level_name",),
}

_R = range
# Integer enums and their values, as gtfs-validator's generated enums hold them.
ENUMS: dict[str, dict[str, frozenset[int]]] = {
    "stops": {
        "location_type": frozenset(_R(5)),
        "wheelchair_boarding": frozenset(_R(3)),
        "stop_access": frozenset(_R(2)),
    },
    "routes": {
        "route_type": frozenset((*_R(8), 11, 12)),
        "continuous_pickup": frozenset(_R(4)),
        "continuous_drop_off": frozenset(_R(4)),
    },
    "trips": {
        "direction_id": frozenset(_R(2)),
        "wheelchair_accessible": frozenset(_R(3)),
        "bikes_allowed": frozenset(_R(3)),
    },
    "stop_times": {
        "pickup_type": frozenset(_R(4)),
        "drop_off_type": frozenset(_R(4)),
        "continuous_pickup": frozenset(_R(4)),
        "continuous_drop_off": frozenset(_R(4)),
        "timepoint": frozenset(_R(2)),
    },
    "calendar": {
        day: frozenset(_R(2))
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    },
    "calendar_dates": {"exception_type": frozenset((1, 2))},
    "fare_attributes": {"payment_method": frozenset(_R(2)), "transfers": frozenset(_R(3))},
    "transfers": {"transfer_type": frozenset(_R(6))},
    "pathways": {"pathway_mode": frozenset(_R(1, 8)), "is_bidirectional": frozenset(_R(2))},
    "frequencies": {"exact_times": frozenset(_R(2))},
    "attributions": {
        "is_producer": frozenset(_R(2)),
        "is_operator": frozenset(_R(2)),
        "is_authority": frozenset(_R(2)),
    },
    "fare_media": {"fare_media_type": frozenset(_R(5))},
    "fare_transfer_rules": {
        "duration_limit_type": frozenset(_R(4)),
        "fare_transfer_type": frozenset(_R(3)),
    },
}


def not_mixed_case(value: str) -> bool:
    """Whether ``value`` lacks Mixed Case as gtfs-validator judges it: one word all in
    lower case ("lift"), or several words none of which mixes cases ("MCE DP1",
    "AB cd"). One upper-case word is an acronym ("MCE"); one-letter words pass.

    Matched against the gtfs-guru oracle value by value (tests/test_gtfs_warnings.py).
    """
    words = _WORDS.findall(value)
    if not words:
        return False
    if len(words) == 1:
        word = words[0]
        return len(word) > 1 and word == word.lower() and word != word.upper()
    return all(len(w) > 1 and (w == w.lower() or w == w.upper()) for w in words)


def long_name_has_short(short: str, long: str) -> bool:
    """route_long_name starts with route_short_name, then ends or goes on with a space,
    dash or parenthesis (gtfs-validator's RouteNameValidator)."""
    if not long.lower().startswith(short.lower()):
        return False
    rest = long[len(short) :]
    return not rest or _AFTER_SHORT.match(rest) is not None


class _Emit:
    """Adds notices per code in CSV row order, for the modes a check runs for."""

    def __init__(self, book: NoticeBook, file: str, modes: set[str | None] | None) -> None:
        self.book, self.file, self.modes = book, file, modes

    def __call__(self, code: str, rowid: int, mode: str | None, field: str, value: object) -> None:
        if self.modes is None or mode in self.modes:
            shown = value if value is None or isinstance(value, int | float | str) else str(value)
            self.book.add(Notice(code, self.file, rowid & _ROW_MASK, field, shown, mode))


def _rows(
    conn: sqlite3.Connection, table: str, cols: Sequence[str], moded: bool, where: str = ""
) -> Iterator[tuple[object, ...]]:
    mode = "mode" if moded else "NULL"
    sql = f"SELECT rowid, {mode}, {', '.join(cols)} FROM {table} {where} ORDER BY rowid"
    yield from conn.execute(sql)


def _check_routes(conn: sqlite3.Connection, emit: _Emit, moded: bool) -> None:
    cols = ("route_id", "route_short_name", "route_long_name", "route_desc")
    for rowid, mode, route, short, long, desc in _rows(conn, "routes", cols, moded):
        assert isinstance(rowid, int)
        m = mode if isinstance(mode, str) else None
        if isinstance(short, str) and len(short) > _MAX_SHORT_NAME:
            emit("route_short_name_too_long", rowid, m, "route_short_name", short)
        if isinstance(short, str) and isinstance(long, str) and long_name_has_short(short, long):
            emit("route_long_name_contains_short_name", rowid, m, "route_long_name", long)
        if isinstance(desc, str):
            for name, field in ((short, "route_short_name"), (long, "route_long_name")):
                if isinstance(name, str) and name.lower() == desc.lower():
                    emit("same_name_and_description_for_route", rowid, m, field, route)
                    break


def _check_stops(conn: sqlite3.Connection, emit: _Emit, moded: bool) -> None:
    cols = ("stop_id", "stop_name", "stop_desc")
    where = "WHERE stop_name IS NOT NULL AND stop_desc IS NOT NULL"
    for rowid, mode, stop, name, desc in _rows(conn, "stops", cols, moded, where):
        assert isinstance(rowid, int) and isinstance(name, str) and isinstance(desc, str)
        if name.lower() == desc.lower():
            m = mode if isinstance(mode, str) else None
            emit("same_name_and_description_for_stop", rowid, m, "stop_desc", stop)


def _check_platforms(conn: sqlite3.Connection, emit: _Emit, moded: bool) -> None:
    where = (
        "WHERE platform_code IS NOT NULL AND coalesce(location_type, 0) = 0 "
        "AND parent_station IS NULL"
    )
    for rowid, mode, stop in _rows(conn, "stops", ("stop_id",), moded, where):
        assert isinstance(rowid, int)
        emit(
            "platform_without_parent_station",
            rowid,
            mode if isinstance(mode, str) else None,
            "parent_station",
            stop,
        )


def _check_agency_ids(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook, moded: bool
) -> None:
    """missing_recommended_field: the agency, routes and fare attributes without
    agency_id in a feed of one agency (with several it is the ERROR
    missing_required_agency_id)."""
    one = {
        mode
        for mode in modes_parsed(book, feeds, ("agency",))
        if conn.execute(
            f"SELECT count(*) FROM agency {'WHERE mode IS ?' if moded else ''}",
            (mode,) if moded else (),
        ).fetchone()[0]
        == 1
    }
    for table in ("agency", "routes", "fare_attributes"):
        modes = one & modes_parsed(book, feeds, (table,))
        emit = _Emit(book, f"{table}.txt", modes)
        for rowid, mode, _ in _rows(conn, table, ("1",), moded, "WHERE agency_id IS NULL"):
            assert isinstance(rowid, int)
            emit(
                "missing_recommended_field",
                rowid,
                mode if isinstance(mode, str) else None,
                "agency_id",
                None,
            )


def check_feed_info_fields(conn: sqlite3.Connection, book: NoticeBook, moded: bool) -> None:
    """missing_recommended_field for feed_info's recommended dates and version, and
    missing_feed_contact_email_and_url, per row."""
    cols = (
        "feed_start_date",
        "feed_end_date",
        "feed_version",
        "feed_contact_email",
        "feed_contact_url",
    )
    emit = _Emit(book, "feed_info.txt", None)
    for rowid, mode, *values in _rows(conn, "feed_info", cols, moded):
        assert isinstance(rowid, int)
        m = mode if isinstance(mode, str) else None
        for field, value in zip(cols[:3], values[:3], strict=True):
            if value is None:
                emit("missing_recommended_field", rowid, m, field, None)
        if values[3] is None and values[4] is None:
            emit("missing_feed_contact_email_and_url", rowid, m, "feed_contact_email", None)


def check_mixed_case(conn: sqlite3.Connection, book: NoticeBook, moded: bool) -> None:
    """mixed_case_recommended_field, as gtfs-validator's parser raises it: every loaded row."""
    for table, fields in MIXED_CASE.items():
        emit = _Emit(book, f"{table}.txt", None)
        seen: dict[str, bool] = {}  # headsigns repeat: judge each text once
        for rowid, mode, *values in _rows(conn, table, fields, moded):
            assert isinstance(rowid, int)
            for field, value in zip(fields, values, strict=True):
                if not isinstance(value, str):
                    continue
                bad = seen.get(value)
                if bad is None:
                    bad = seen[value] = not_mixed_case(value)
                    if len(seen) > 10_000:
                        seen.clear()
                if bad:
                    m = mode if isinstance(mode, str) else None
                    emit("mixed_case_recommended_field", rowid, m, field, value)


Check = Callable[[sqlite3.Connection, _Emit, bool], None]
_ENTITY_CHECKS: tuple[tuple[str, Check], ...] = (
    ("routes", _check_routes),
    ("stops", _check_stops),
    ("stops", _check_platforms),
)


def check_row_warnings(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """Every WARNING and INFO of this module, for the feeds (modes) loaded."""
    moded = bool(feeds) and feeds[0].mode is not None
    check_mixed_case(conn, book, moded)
    check_feed_info_fields(conn, book, moded)
    for table, check in _ENTITY_CHECKS:
        modes = modes_parsed(book, feeds, (table,))
        if modes:
            check(conn, _Emit(book, f"{table}.txt", modes), moded)
    _check_agency_ids(conn, feeds, book, moded)
