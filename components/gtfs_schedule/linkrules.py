"""gtfs-validator's rules on rows of the smaller tables that look at other rows: fare
transfer rules, timeframes, transfers, pathways, frequencies, and stop_times rows that
name a stop which is not one. Each is SQL over the loaded feed (see :mod:`.rules`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.rules import RowRule, keyed, modes_parsed, same
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

_ROW_MASK = (1 << ROWID_BITS) - 1
_SAME_LEGS = "from_leg_group_id = to_leg_group_id"
_DAY = 24 * 3600


def _stop(table: str, field: str, cond: str) -> str:
    """A predicate on the stop that ``table.field`` names, as ``p`` (same mode)."""
    return (
        f"EXISTS (SELECT 1 FROM stops p WHERE p.stop_id = {table}.{field} "
        f"AND {same('p')} AND {cond})"
    )


def _trip_misses_stop(side: str) -> str:
    """transfers' ``side`` trip exists and calls neither at its stop (a stop or station:
    other types are another notice) nor, for a station, at any stop of the station."""
    trip, stop = f"transfers.{side}_trip_id", f"transfers.{side}_stop_id"
    return (
        f"{trip} IS NOT NULL AND {stop} IS NOT NULL "
        f"AND EXISTS (SELECT 1 FROM trips t WHERE t.trip_id = {trip} AND {same('t')}) "
        f"AND EXISTS (SELECT 1 FROM stops p WHERE p.stop_id = {stop} AND {same('p')} "
        "AND coalesce(p.location_type, 0) IN (0, 1)) "
        f"AND NOT EXISTS (SELECT 1 FROM stop_times st WHERE st.trip_id = {trip} AND {same('st')} "
        f"AND (st.stop_id = {stop} OR st.stop_id IN (SELECT c.stop_id FROM stops c "
        f"WHERE c.parent_station = {stop} AND {same('c')})))"
    )


def _transfer_rules(side: str) -> tuple[RowRule, ...]:
    stop, trip, route = f"{side}_stop_id", f"{side}_trip_id", f"{side}_route_id"
    return (
        RowRule(
            "transfer_with_invalid_stop_location_type",
            "transfers",
            stop,
            _stop("transfers", stop, "coalesce(p.location_type, 0) NOT IN (0, 1)"),
            stop,
            ("stops",),
        ),
        RowRule(
            "transfer_with_invalid_trip_and_route",
            "transfers",
            trip,
            f"{trip} IS NOT NULL AND {route} IS NOT NULL AND EXISTS (SELECT 1 FROM trips t "
            f"WHERE t.trip_id = transfers.{trip} AND {same('t')} "
            f"AND t.route_id IS NOT transfers.{route})",
            trip,
            ("trips",),
        ),
        RowRule(
            "transfer_with_invalid_trip_and_stop",
            "transfers",
            trip,
            _trip_misses_stop(side),
            trip,
            ("trips", "stops", "stop_times"),
        ),
    )


def _pathway_rules(end: str) -> tuple[RowRule, ...]:
    field = f"{end}_stop_id"
    platform_with_boarding = (
        "coalesce(p.location_type, 0) = 0 AND EXISTS (SELECT 1 FROM stops b "
        f"WHERE b.parent_station = p.stop_id AND b.location_type = 4 AND {same('b')})"
    )
    return (
        RowRule(
            "pathway_to_stop_with_access_outside_of_station_pathways",
            "pathways",
            field,
            _stop("pathways", field, "p.stop_access = 1"),
            "pathway_id",
            ("stops",),
        ),
        RowRule(
            "pathway_to_wrong_location_type",
            "pathways",
            field,
            _stop("pathways", field, "p.location_type = 1"),
            "pathway_id",
            ("stops",),
        ),
        RowRule(
            "pathway_to_platform_with_boarding_areas",
            "pathways",
            field,
            _stop("pathways", field, platform_with_boarding),
            "pathway_id",
            ("stops",),
        ),
    )


LINK_RULES: tuple[RowRule, ...] = (
    RowRule(
        "fare_transfer_rule_duration_limit_type_without_duration_limit",
        "fare_transfer_rules",
        "duration_limit_type",
        "duration_limit_type IS NOT NULL AND duration_limit IS NULL",
        "duration_limit_type",
    ),
    RowRule(
        "fare_transfer_rule_duration_limit_without_type",
        "fare_transfer_rules",
        "duration_limit",
        "duration_limit IS NOT NULL AND duration_limit_type IS NULL",
        "duration_limit",
    ),
    RowRule(
        "fare_transfer_rule_invalid_transfer_count",
        "fare_transfer_rules",
        "transfer_count",
        f"{_SAME_LEGS} AND (transfer_count = 0 OR transfer_count < -1)",
        "transfer_count",
    ),
    RowRule(
        "fare_transfer_rule_with_forbidden_transfer_count",
        "fare_transfer_rules",
        "transfer_count",
        f"transfer_count IS NOT NULL AND NOT coalesce({_SAME_LEGS}, 0)",
        "transfer_count",
    ),
    RowRule(
        "fare_transfer_rule_without_transfer_count",
        "fare_transfer_rules",
        "transfer_count",
        f"{_SAME_LEGS} AND transfer_count IS NULL",
        "from_leg_group_id",
    ),
    RowRule(
        "timeframe_only_start_or_end_time_specified",
        "timeframes",
        "start_time",
        "(start_time IS NULL) != (end_time IS NULL)",
        "timeframe_group_id",
    ),
    RowRule(
        "timeframe_start_or_end_time_greater_than_twenty_four_hours",
        "timeframes",
        "start_time",
        f"start_time_secs > {_DAY}",
        "start_time",
    ),
    RowRule(
        "timeframe_start_or_end_time_greater_than_twenty_four_hours",
        "timeframes",
        "end_time",
        f"end_time_secs > {_DAY}",
        "end_time",
    ),
    *_transfer_rules("from"),
    *_transfer_rules("to"),
    RowRule(
        "bidirectional_exit_gate",
        "pathways",
        "pathway_mode",
        "pathway_mode = 7 AND is_bidirectional = 1",
        "pathway_id",
    ),
    *_pathway_rules("from"),
    *_pathway_rules("to"),
    RowRule(
        "stop_access_specified_for_incorrect_location",
        "stops",
        "stop_access",
        "stop_access IS NOT NULL AND coalesce(location_type, 0) != 0",
        "stop_id",
    ),
    RowRule(
        "stop_access_specified_for_stop_with_no_parent_station",
        "stops",
        "stop_access",
        "stop_access IS NOT NULL AND coalesce(location_type, 0) = 0 AND parent_station IS NULL",
        "stop_id",
    ),
    RowRule(
        "forbidden_continuous_pickup_drop_off",
        "stop_times",
        "start_pickup_drop_off_window",
        "(start_pickup_drop_off_window IS NOT NULL OR end_pickup_drop_off_window IS NOT NULL) "
        "AND EXISTS (SELECT 1 FROM trips t JOIN routes r ON r.route_id = t.route_id "
        f"AND {same('r')} WHERE t.trip_id = stop_times.trip_id AND {same('t')} "
        "AND (r.continuous_pickup IN (0, 2, 3) OR r.continuous_drop_off IN (0, 2, 3)))",
        "trip_id",
        ("trips", "routes"),
        ("start_pickup_drop_off_window", "end_pickup_drop_off_window"),
    ),
    RowRule(
        "location_with_unexpected_stop_time",
        "stop_times",
        "stop_id",
        # Driven from the few stops that are not stops, through stop_times' stop_id
        # index: a lookup per stop_times row would cost a fifth of a load.
        f"({keyed('stop_id')}) IN (SELECT {keyed('p.stop_id')} FROM stops p WHERE "
        "coalesce(p.location_type, 0) != 0)",
        "stop_id",
        ("stops",),
    ),
)


# The tables a translation's record_id (and, for stop_times, record_sub_id) names a
# row of, by their keys.
_TRANSLATED = {
    "agency": "agency_id",
    "stops": "stop_id",
    "routes": "route_id",
    "trips": "trip_id",
    "pathways": "pathway_id",
    "levels": "level_id",
    "attributions": "attribution_id",
}


def _translation_rules() -> tuple[RowRule, ...]:
    code = "translation_foreign_key_violation"
    record = "translations.record_id"
    rules = [
        RowRule(
            "translation_unexpected_value",
            "translations",
            "record_id",
            "record_id IS NOT NULL AND field_value IS NOT NULL",
            "record_id",
        ),
        RowRule(
            "translation_unexpected_value",
            "translations",
            "record_sub_id",
            "record_sub_id IS NOT NULL AND table_name IS NOT 'stop_times'",
            "record_sub_id",
        ),
        RowRule(
            code,
            "translations",
            "record_id",
            "table_name = 'stop_times' AND record_id IS NOT NULL AND record_sub_id IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM stop_times p WHERE p.trip_id = {record} "
            f"AND {same('p')} AND p.stop_sequence = CAST(translations.record_sub_id AS INTEGER))",
            "record_id",
            ("stop_times",),
        ),
    ]
    for table, key in _TRANSLATED.items():
        rules.append(
            RowRule(
                code,
                "translations",
                "record_id",
                f"table_name = '{table}' AND record_id IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {table} p WHERE p.{key} = {record} AND {same('p')})",
                "record_id",
                (table,),
            )
        )
    return tuple(rules)


TRANSLATION_RULES = _translation_rules()


def check_frequencies(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """overlapping_frequency: a trip's frequency (by start time) starting before the
    previous one ends."""
    modes = modes_parsed(book, feeds, ("frequencies",))
    if not modes:
        return
    moded = feeds[0].mode is not None
    part = "mode, trip_id" if moded else "trip_id"
    sql = f"""
        SELECT rowid, m, start_time FROM (
            SELECT rowid, {"mode" if moded else "NULL"} AS m, start_time, start_time_secs AS s,
                   lag(end_time_secs) OVER (PARTITION BY {part}
                                            ORDER BY start_time_secs, rowid) AS previous_end
            FROM frequencies WHERE trip_id IS NOT NULL AND start_time_secs IS NOT NULL)
        WHERE previous_end > s ORDER BY rowid
    """
    for rowid, mode, start in conn.execute(sql):
        if mode in modes:
            book.add(
                Notice(
                    "overlapping_frequency",
                    "frequencies.txt",
                    rowid & _ROW_MASK,
                    "start_time",
                    start,
                    mode,
                )
            )


def check_timeframes(
    conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook
) -> None:
    """timeframe_overlap: a timeframe (by start time) starting before the previous one
    of its group and service ends."""
    modes = modes_parsed(book, feeds, ("timeframes",))
    if not modes:
        return
    moded = feeds[0].mode is not None
    part = ("mode, " if moded else "") + "timeframe_group_id, service_id"
    sql = f"""
        SELECT rowid, m, start_time FROM (
            SELECT rowid, {"mode" if moded else "NULL"} AS m, start_time, start_time_secs AS s,
                   lag(end_time_secs) OVER (PARTITION BY {part}
                                            ORDER BY start_time_secs, rowid) AS previous_end
            FROM timeframes WHERE start_time_secs IS NOT NULL AND end_time_secs IS NOT NULL)
        WHERE previous_end > s ORDER BY rowid
    """
    for rowid, mode, start in conn.execute(sql):
        if mode in modes:
            row = rowid & _ROW_MASK
            book.add(Notice("timeframe_overlap", "timeframes.txt", row, "start_time", start, mode))


def check_route_networks(feeds: Sequence[FeedFiles], book: NoticeBook) -> None:
    """route_networks_specified_in_more_than_one_file: routes.txt has a network_id
    column and the feed also has route_networks.txt or networks.txt (one notice each)."""
    code = "route_networks_specified_in_more_than_one_file"
    for feed in feeds:
        if "network_id" in feed.columns.get("routes.txt", ()):
            for other in ("route_networks.txt", "networks.txt"):
                if other in feed.present:
                    book.add(Notice(code, "routes.txt", None, "network_id", other, feed.mode))
