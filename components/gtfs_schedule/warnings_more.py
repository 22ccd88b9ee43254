"""Further gtfs-validator WARNINGs and INFOs over small tables: attributions without a
role, duplicate fare media, ferry trips without bike information, pathway loops,
translations of tables the feed lacks, unused stations, and in-seat transfers away
from the ends of their trips.

Each is one query over a small table; the in-seat transfer check looks up the two
ends of each such transfer's trips through the stop_times key index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.rules import modes_parsed
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

_ROW_MASK = (1 << ROWID_BITS) - 1
_FERRY = 4
_IN_SEAT = (4, 5)


class _Ctx:
    def __init__(
        self, conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
    ) -> None:
        self.conn, self.feeds, self.book = conn, feeds, book
        self.moded = bool(feeds) and feeds[0].mode is not None

    def mode(self, alias: str) -> str:
        return f"{alias}.mode" if self.moded else "NULL"

    def same(self, a: str, b: str) -> str:
        return f"{a}.mode IS {b}.mode AND " if self.moded else ""

    def report(self, code: str, table: str, field: str, sql: str, *tables: str) -> None:
        """A notice per (rowid, mode, value) of ``sql`` for the modes ``tables`` parsed in."""
        modes = modes_parsed(self.book, self.feeds, tables or (table,))
        if not modes:
            return
        for rowid, mode, value in self.conn.execute(sql):
            if mode in modes:
                self.book.add(Notice(code, f"{table}.txt", rowid & _ROW_MASK, field, value, mode))


def _attributions(ctx: _Ctx) -> None:
    roles = " OR ".join(
        f"coalesce({r}, 0) = 1" for r in ("is_producer", "is_operator", "is_authority")
    )
    sql = (
        f"SELECT rowid, {ctx.mode('attributions')}, attribution_id FROM attributions "
        f"WHERE NOT ({roles}) ORDER BY rowid"
    )
    ctx.report("attribution_without_role", "attributions", "is_producer", sql)


def _fare_media(ctx: _Ctx) -> None:
    m = "mode, " if ctx.moded else ""
    sql = f"""
        SELECT rowid, {ctx.mode("fare_media")}, fare_media_id FROM fare_media
        WHERE rowid NOT IN (SELECT min(rowid) FROM fare_media
                            GROUP BY {m}fare_media_name, fare_media_type)
        ORDER BY rowid
    """
    ctx.report("duplicate_fare_media", "fare_media", "fare_media_name", sql)


def _bikes(ctx: _Ctx) -> None:
    """missing_bike_allowance: a ferry trip whose bikes_allowed is empty or 0 (no
    information)."""
    sql = f"""
        SELECT t.rowid, {ctx.mode("t")}, t.trip_id FROM trips t
        JOIN routes r ON {ctx.same("r", "t")}r.route_id = t.route_id
        WHERE r.route_type = {_FERRY} AND coalesce(t.bikes_allowed, 0) = 0
        ORDER BY t.rowid
    """
    ctx.report("missing_bike_allowance", "trips", "bikes_allowed", sql, "trips", "routes")


def _pathway_loops(ctx: _Ctx) -> None:
    sql = (
        f"SELECT rowid, {ctx.mode('pathways')}, pathway_id FROM pathways "
        "WHERE from_stop_id = to_stop_id ORDER BY rowid"
    )
    ctx.report("pathway_loop", "pathways", "to_stop_id", sql)


def _translation_tables(ctx: _Ctx) -> None:
    """translation_unknown_table_name: a table_name that names no file the feed holds."""
    for feed in ctx.feeds:
        if feed.mode not in modes_parsed(ctx.book, [feed], ("translations",)):
            continue
        where = "WHERE mode IS ?" if ctx.moded else ""
        sql = f"SELECT rowid, table_name FROM translations {where} ORDER BY rowid"
        for rowid, table in ctx.conn.execute(sql, (feed.mode,) if ctx.moded else ()):
            if table is not None and f"{table}.txt" not in feed.present:
                notice = Notice(
                    "translation_unknown_table_name",
                    "translations.txt",
                    rowid & _ROW_MASK,
                    "table_name",
                    table,
                    feed.mode,
                )
                ctx.book.add(notice)


def _stations(ctx: _Ctx) -> None:
    """unused_station (INFO): a station that no stop or platform has as parent."""
    sql = f"""
        SELECT s.rowid, {ctx.mode("s")}, s.stop_id FROM stops s WHERE s.location_type = 1
          AND NOT EXISTS (SELECT 1 FROM stops c WHERE {ctx.same("c", "s")}
                          c.parent_station = s.stop_id AND coalesce(c.location_type, 0) = 0)
        ORDER BY s.rowid
    """
    ctx.report("unused_station", "stops", "stop_id", sql)


def _in_seat(ctx: _Ctx) -> None:
    """transfer_with_suspicious_mid_trip_in_seat: an in-seat transfer whose from_stop_id
    is not its from_trip_id's last stop, or whose to_stop_id is not its to_trip_id's
    first (one notice for each)."""
    same = ctx.same("s", "t")
    sql = f"""
        SELECT t.rowid, {ctx.mode("t")}, t.from_stop_id, t.to_stop_id,
            (SELECT s.stop_id FROM stop_times s WHERE {same}s.trip_id = t.from_trip_id
             ORDER BY s.stop_sequence DESC LIMIT 1),
            (SELECT s.stop_id FROM stop_times s WHERE {same}s.trip_id = t.to_trip_id
             ORDER BY s.stop_sequence LIMIT 1),
            t.from_trip_id IS NOT NULL AND t.from_stop_id IS NOT NULL,
            t.to_trip_id IS NOT NULL AND t.to_stop_id IS NOT NULL
        FROM transfers t WHERE t.transfer_type IN {_IN_SEAT} ORDER BY t.rowid
    """
    modes = modes_parsed(ctx.book, ctx.feeds, ("transfers", "stop_times"))
    if not modes:
        return
    code = "transfer_with_suspicious_mid_trip_in_seat"
    for rowid, mode, from_stop, to_stop, last, first, check_from, check_to in ctx.conn.execute(sql):
        if mode not in modes:
            continue
        row = rowid & _ROW_MASK
        if check_from and last is not None and last != from_stop:
            ctx.book.add(Notice(code, "transfers.txt", row, "from_stop_id", from_stop, mode))
        if check_to and first is not None and first != to_stop:
            ctx.book.add(Notice(code, "transfers.txt", row, "to_stop_id", to_stop, mode))


def check_more_warnings(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """Every WARNING and INFO of this module."""
    ctx = _Ctx(conn, feeds, book)
    for check in (
        _attributions,
        _fare_media,
        _bikes,
        _pathway_loops,
        _translation_tables,
        _stations,
        _in_seat,
    ):
        check(ctx)
