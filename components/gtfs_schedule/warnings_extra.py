"""More of gtfs-validator's WARNINGs and INFOs over the small tables: route colour
contrast, URLs shared between agencies, routes and stops, services active on no day,
single-point shapes, long transfers and agency languages.

All read small tables (agency, routes, stops, calendar, transfers) or the shapes key
index; none reads stop_times.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.rules import modes_parsed
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

_ROW_MASK = (1 << ROWID_BITS) - 1
# Java's S2 earth radius, which gtfs-validator's transfer distances use.
_EARTH_KM = 6371.01
_TRANSFER_INFO_KM, _TRANSFER_WARNING_KM = 2.0, 10.0
# Route colour and text colour closer than this in Rec. 601 luma are hard to read.
_MIN_LUMA_DIFFERENCE = 72
_DAYS = "monday, tuesday, wednesday, thursday, friday, saturday, sunday"


def luma(color: str) -> int | None:
    """Rec. 601 luma of an RRGGBB colour, truncated as gtfs-validator's GtfsColor does."""
    try:
        rgb = int(color, 16)
    except ValueError:
        return None
    if len(color) != 6:
        return None
    r, g, b = rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF
    return int(0.30 * r + 0.59 * g + 0.11 * b)


def km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2
    a += math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


class _Ctx:
    def __init__(
        self, conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
    ) -> None:
        self.conn, self.feeds, self.book = conn, feeds, book
        self.moded = bool(feeds) and feeds[0].mode is not None
        self.mode = "mode" if self.moded else "NULL"

    def same(self, a: str, b: str) -> str:
        return f"{a}.mode IS {b}.mode AND " if self.moded else ""

    def modes(self, *tables: str) -> set[str | None]:
        return modes_parsed(self.book, self.feeds, tables)

    def report(self, code: str, table: str, field: str, sql: str, *tables: str) -> None:
        """A notice per (rowid, mode, value) of ``sql`` for the modes ``tables`` parsed in."""
        modes = self.modes(*(tables or (table,)))
        if not modes:
            return
        for rowid, mode, value in self.conn.execute(sql):
            if mode in modes:
                self.book.add(Notice(code, f"{table}.txt", rowid & _ROW_MASK, field, value, mode))


def _colors(ctx: _Ctx) -> None:
    modes = ctx.modes("routes")
    sql = (
        f"SELECT rowid, {ctx.mode}, route_id, route_color, route_text_color FROM routes "
        "WHERE route_color IS NOT NULL AND route_text_color IS NOT NULL ORDER BY rowid"
    )
    for rowid, mode, route, color, text in ctx.conn.execute(sql):
        a, b = luma(color), luma(text)
        if mode in modes and a is not None and b is not None and abs(a - b) < _MIN_LUMA_DIFFERENCE:
            notice = Notice(
                "route_color_contrast",
                "routes.txt",
                rowid & _ROW_MASK,
                "route_text_color",
                route,
                mode,
            )
            ctx.book.add(notice)


def _urls(ctx: _Ctx) -> None:
    """One notice per pair of a route or stop and an agency or route with its URL."""
    m = "t.mode" if ctx.moded else "NULL"
    pairs = (
        ("same_route_and_agency_url", "routes", "route_url", "agency", "agency_url"),
        ("same_stop_and_agency_url", "stops", "stop_url", "agency", "agency_url"),
        ("same_stop_and_route_url", "stops", "stop_url", "routes", "route_url"),
    )
    for code, table, field, other, other_field in pairs:
        sql = (
            f"SELECT t.rowid, {m}, t.{table.rstrip('s')}_id "
            f"FROM {table} t JOIN {other} o ON {ctx.same('o', 't')}o.{other_field} = t.{field} "
            f"WHERE t.{field} IS NOT NULL ORDER BY t.rowid, o.rowid"
        )
        ctx.report(code, table, field, sql, table, other)


def _services(ctx: _Ctx) -> None:
    """service_has_no_active_day_of_the_week: a calendar row with every day 0;
    service_never_active: such a row whose service calendar_dates adds no date to."""
    none = f"0 = ({_DAYS.replace(', ', ' + ')})"
    sql = f"SELECT rowid, {ctx.mode}, service_id FROM calendar WHERE {none} ORDER BY rowid"
    code = "service_has_no_active_day_of_the_week"
    ctx.report(code, "calendar", "service_id", sql)
    modes = ctx.modes("calendar")
    modes_dates = {
        f.mode
        for f in ctx.feeds
        if "calendar_dates.txt" not in f.present or ctx.book.parsed_ok(f.mode, "calendar_dates.txt")
    }
    sql = (
        f"SELECT rowid, {ctx.mode}, service_id FROM calendar c WHERE {none} AND NOT EXISTS "
        f"(SELECT 1 FROM calendar_dates d WHERE {ctx.same('d', 'c')}d.service_id = c.service_id "
        "AND d.exception_type = 1) ORDER BY rowid"
    )
    for rowid, mode, service in ctx.conn.execute(sql):
        if mode in modes & modes_dates:
            notice = Notice(
                "service_never_active",
                "calendar.txt",
                rowid & _ROW_MASK,
                "service_id",
                service,
                mode,
            )
            ctx.book.add(notice)


def _single_points(ctx: _Ctx) -> None:
    m = "mode, " if ctx.moded else ""
    sql = (
        f"SELECT min(rowid), {ctx.mode}, shape_id FROM shapes WHERE shape_id IS NOT NULL "
        f"GROUP BY {m}shape_id HAVING count(*) = 1 ORDER BY min(rowid)"
    )
    ctx.report("single_shape_point", "shapes", "shape_id", sql)


def _transfers(ctx: _Ctx) -> None:
    """transfer_distance_above_2_km (INFO) and transfer_distance_too_large (over 10 km)
    between a transfer's stops, a stop without a position taking its parent's."""
    modes = ctx.modes("transfers", "stops")
    if not modes:
        return

    def at(alias: str, field: str) -> str:
        parent = (
            f"(SELECT p.{field} FROM stops p WHERE {ctx.same('p', alias)}"
            f"p.stop_id = {alias}.parent_station)"
        )
        return f"coalesce({alias}.{field}, {parent})"

    sql = f"""
        SELECT t.rowid, {"t.mode" if ctx.moded else "NULL"}, t.from_stop_id,
               {at("a", "stop_lat")}, {at("a", "stop_lon")},
               {at("b", "stop_lat")}, {at("b", "stop_lon")}
        FROM transfers t
        JOIN stops a ON {ctx.same("a", "t")}a.stop_id = t.from_stop_id
        JOIN stops b ON {ctx.same("b", "t")}b.stop_id = t.to_stop_id
        ORDER BY t.rowid
    """
    for rowid, mode, stop, lat1, lon1, lat2, lon2 in ctx.conn.execute(sql):
        if mode not in modes or None in (lat1, lon1, lat2, lon2):
            continue
        far = km(lat1, lon1, lat2, lon2)
        if far > _TRANSFER_WARNING_KM:
            code = "transfer_distance_too_large"
        elif far > _TRANSFER_INFO_KM:
            code = "transfer_distance_above_2_km"
        else:
            continue
        ctx.book.add(Notice(code, "transfers.txt", rowid & _ROW_MASK, "to_stop_id", stop, mode))


def _languages(ctx: _Ctx) -> None:
    """inconsistent_agency_lang (an agency_lang other than the first one given) and
    feed_info_lang_and_agency_lang_mismatch (other than feed_lang, unless "mul")."""
    for mode in sorted(ctx.modes("agency"), key=str):
        where = "mode IS ? AND " if ctx.moded else ""
        args = (mode,) if ctx.moded else ()
        sql = (
            f"SELECT rowid, agency_id, lower(agency_lang) FROM agency "
            f"WHERE {where}agency_lang IS NOT NULL ORDER BY rowid"
        )
        agencies = ctx.conn.execute(sql, args).fetchall()
        for rowid, _, lang in agencies[1:]:
            if lang != agencies[0][2]:
                notice = Notice(
                    "inconsistent_agency_lang",
                    "agency.txt",
                    rowid & _ROW_MASK,
                    "agency_lang",
                    lang,
                    mode,
                )
                ctx.book.add(notice)
        if mode not in ctx.modes("feed_info"):
            continue
        sql = f"SELECT lower(feed_lang) FROM feed_info {'WHERE mode IS ?' if ctx.moded else ''}"
        row = ctx.conn.execute(sql + " ORDER BY rowid", args).fetchone()
        if row is None or row[0] is None or row[0] == "mul":
            continue
        for rowid, _, lang in agencies:
            if lang != row[0]:
                notice = Notice(
                    "feed_info_lang_and_agency_lang_mismatch",
                    "agency.txt",
                    rowid & _ROW_MASK,
                    "agency_lang",
                    lang,
                    mode,
                )
                ctx.book.add(notice)


def check_extra_warnings(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """Every WARNING and INFO of this module."""
    ctx = _Ctx(conn, feeds, book)
    for check in (_colors, _urls, _services, _single_points, _transfers, _languages):
        check(ctx)
