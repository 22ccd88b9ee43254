"""gtfs-validator's stop_time_with_arrival_before_previous_departure_time check.

Feeds nearly always list each trip's stop_times together and by ascending
stop_sequence; then the check is a few comparisons per row while the rows stream
past, and one pass over the primary-key index afterwards confirms that the file was
in that order. Otherwise a window query over the loaded table does the check.
"""

from __future__ import annotations

import sqlite3

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.validate import ROWID_BITS

CODE = "stop_time_with_arrival_before_previous_departure_time"
# Checked on the same walk: a stop's shape_dist_traveled not above the previous stop's
# (when both have one).
DIST_CODE = "decreasing_or_equal_stop_time_distance"
# Departure seconds (< 2**22, i.e. 1165 h: times go up to 999:59:59) are packed under
# stop_sequence so one MAX() window finds the departure of the latest earlier stop that
# has one.
_DEP_BITS = 22
# Rows outside this stop_sequence range (or without a trip) take no part in the check;
# stop_sequence is a 32-bit integer, as in gtfs-validator, so this spares every row.
MAX_SEQUENCE = (1 << 40) - 1
_ROW_MASK = (1 << ROWID_BITS) - 1

_Found = tuple[int, str, str | None]  # (csv_row, arrival_time, mode)


class OrderTracker:
    """The streaming half: per-file state that generated converter code reads and saves."""

    def __init__(self, examples: int) -> None:
        self._examples = examples
        self.ordered = True
        self.runs = 0
        self.count = 0
        self.found: list[_Found] = []
        self.dist_count = 0
        self.dist_found: list[tuple[int, float, str | None]] = []
        self._mode: str | None = None
        self._state: tuple[object, ...] = ()
        self._file: tuple[bool, int, int, int, int, int] = (True, 0, 0, 0, 0, 0)

    def begin_file(self, mode: str | None) -> None:
        """Start a stop_times file: its trips are new runs whatever came before."""
        self._mode = mode
        self._state = (None, 0, None, None)
        self._file = (
            self.ordered,
            self.runs,
            self.count,
            len(self.found),
            self.dist_count,
            len(self.dist_found),
        )

    def abandon_file(self) -> None:
        """Forget the current file (its rows were removed after a csv_parsing_failed)."""
        self.ordered, self.runs, self.count, kept, self.dist_count, dist_kept = self._file
        del self.found[kept:]
        del self.dist_found[dist_kept:]

    def absorb(
        self,
        runs: int,
        ordered: bool,
        count: int,
        found: list[tuple[int, str]],
        dist_count: int = 0,
        dist_found: list[tuple[int, float]] | None = None,
    ) -> None:
        """Count the stream results of a file whose rows were tracked elsewhere (by the
        workers of a parallel load), after :meth:`begin_file`."""
        self.runs += runs
        self.ordered = self.ordered and ordered
        self.count += count
        room = max(0, self._examples - len(self.found))
        self.found.extend((row, arrival, self._mode) for row, arrival in found[:room])
        self.dist_count += dist_count
        room = max(0, self._examples - len(self.dist_found))
        self.dist_found.extend((row, d, self._mode) for row, d in (dist_found or [])[:room])

    def hit(self, row: int, arrival: str) -> None:
        self.count += 1
        if len(self.found) < self._examples:
            self.found.append((row, arrival, self._mode))

    def dist_hit(self, row: int, dist: float) -> None:
        self.dist_count += 1
        if len(self.dist_found) < self._examples:
            self.dist_found.append((row, dist, self._mode))

    def source(self, variables: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
        """Converter lines: before the row loop, per kept row, and after the loop."""
        trip, seq = variables["trip_id"], variables["stop_sequence"]
        arr = variables.get("arrival_time_secs", "None")
        arr_text = variables.get("arrival_time", "None")
        dep = variables.get("departure_time_secs", "None")
        dist = variables.get("shape_dist_traveled", "None")
        before = [
            "o_trip, o_seq, o_dep, o_dist = order._state",
            "dist_hit = order.dist_hit",
            "o_runs = order.runs",
            "o_ordered = order.ordered",
            "hit = order.hit",
        ]
        row = [
            f"if {trip} is not None and {seq} is not None and 0 <= {seq} <= {MAX_SEQUENCE}:",
            f"    if {trip} != o_trip:",
            f"        o_trip = {trip}",
            "        o_runs += 1",
            "        o_dep = o_dist = None",
            f"    elif {seq} <= o_seq:",
            "        o_ordered = False",
            f"    o_seq = {seq}",
            f"    if {arr} is not None and o_dep is not None and {arr} < o_dep:",
            f"        hit(rowno, {arr_text})",
            f"    if {dep} is not None:",
            f"        o_dep = {dep}",
            f"    if {dist} is not None and o_dist is not None and {dist} <= o_dist:",
            f"        dist_hit(rowno, {dist})",
            f"    o_dist = {dist}",
        ]
        after = [
            "order._state = (o_trip, o_seq, o_dep, o_dist)",
            "order.runs = o_runs",
            "order.ordered = o_ordered",
        ]
        return before, row, after

    def check(self, conn: sqlite3.Connection, moded: bool, book: NoticeBook) -> None:
        """Report the check's notices, from the stream when the file order allowed it.

        Runs after duplicate keys are dropped and the primary-key index is built.
        """
        if self.ordered and self.runs == _trips(conn, moded):
            # Every trip was one run of ascending stop_sequence: the stream saw each
            # trip exactly as the window query would walk it, in rowid order.
            book.add_counted(
                [Notice(CODE, "stop_times.txt", r, "arrival_time", a, m) for r, a, m in self.found],
                self.count,
            )
            field = "shape_dist_traveled"
            book.add_counted(
                [
                    Notice(DIST_CODE, "stop_times.txt", r, field, d, m)
                    for r, d, m in self.dist_found
                ],
                self.dist_count,
            )
        else:
            check_stop_time_order(conn, moded, book)
            check_stop_time_distance(conn, moded, book)


def _trips(conn: sqlite3.Connection, moded: bool) -> int:
    """Distinct trips among the rows the check covers (a scan of the key index)."""
    cols = "mode, trip_id" if moded else "trip_id"
    sql = (
        f"SELECT count(*) FROM (SELECT DISTINCT {cols} FROM stop_times "
        f"WHERE trip_id IS NOT NULL AND stop_sequence BETWEEN 0 AND {MAX_SEQUENCE})"
    )
    n: int = conn.execute(sql).fetchone()[0]
    return n


def check_stop_time_order(conn: sqlite3.Connection, moded: bool, book: NoticeBook) -> None:
    """The check as a window query, walking each trip by stop_sequence as gtfs-validator does."""
    part = "mode, trip_id" if moded else "trip_id"
    mode_col = "mode" if moded else "NULL"
    sql = f"""
        SELECT rowid, m, arrival_time FROM (
            SELECT rowid, {mode_col} AS m, arrival_time, arrival_time_secs AS a,
                   MAX(CASE WHEN departure_time_secs IS NOT NULL
                            THEN (stop_sequence << {_DEP_BITS}) | departure_time_secs END)
                   OVER (PARTITION BY {part} ORDER BY stop_sequence
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS p
            FROM stop_times
            WHERE trip_id IS NOT NULL AND stop_sequence BETWEEN 0 AND {MAX_SEQUENCE}
        )
        WHERE a IS NOT NULL AND p IS NOT NULL AND a < (p & {(1 << _DEP_BITS) - 1})
        ORDER BY rowid
    """
    for rowid, mode, arrival in conn.execute(sql):
        book.add(Notice(CODE, "stop_times.txt", rowid & _ROW_MASK, "arrival_time", arrival, mode))


def check_stop_time_distance(conn: sqlite3.Connection, moded: bool, book: NoticeBook) -> None:
    """decreasing_or_equal_stop_time_distance as a window query: each stop whose
    shape_dist_traveled is not above the previous stop's (by stop_sequence)."""
    part = "mode, trip_id" if moded else "trip_id"
    mode_col = "mode" if moded else "NULL"
    sql = f"""
        SELECT rowid, m, d FROM (
            SELECT rowid, {mode_col} AS m, shape_dist_traveled AS d,
                   lag(shape_dist_traveled) OVER (PARTITION BY {part} ORDER BY stop_sequence) AS p
            FROM stop_times
            WHERE trip_id IS NOT NULL AND stop_sequence BETWEEN 0 AND {MAX_SEQUENCE}
        )
        WHERE d IS NOT NULL AND p IS NOT NULL AND d <= p
        ORDER BY rowid
    """
    for rowid, mode, dist in conn.execute(sql):
        row = rowid & _ROW_MASK
        book.add(Notice(DIST_CODE, "stop_times.txt", row, "shape_dist_traveled", dist, mode))
