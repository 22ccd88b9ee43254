"""The GTFS spec tables after the fares: timeframes, rider categories and GTFS-Flex's
location groups and booking rules (kept apart from :mod:`.spec`, which lists the rest,
so each stays short).
"""

from __future__ import annotations

from interlock.components.gtfs_schedule.schema import Field, ForeignKey, Kind, Table

_I, _T = Kind.INTEGER, Kind.TIME


def _f(name: str, kind: Kind = Kind.TEXT, *, req: bool = False) -> Field:
    return Field(name, kind, req)


LATE_TABLES: tuple[Table, ...] = (
    Table(
        "timeframes",
        (
            _f("timeframe_group_id", req=True),
            _f("start_time", _T),
            _f("end_time", _T),
            _f("service_id", req=True),
        ),
    ),
    Table(
        "rider_categories",
        (
            _f("rider_category_id", req=True),
            _f("rider_category_name", req=True),
            _f("is_default_fare_category", _I, req=True),
            _f("eligibility_url", Kind.URL),
        ),
        primary_key=("rider_category_id",),
    ),
    Table(
        "location_groups",
        (_f("location_group_id", req=True), _f("location_group_name")),
        primary_key=("location_group_id",),
    ),
    Table(
        "location_group_stops",
        (_f("location_group_id", req=True), _f("stop_id", req=True)),
        foreign_keys=(
            ForeignKey("location_group_id", "location_groups", "location_group_id"),
            ForeignKey("stop_id", "stops", "stop_id"),
        ),
    ),
    Table(
        "booking_rules",
        (
            _f("booking_rule_id", req=True),
            _f("booking_type", _I, req=True),
            _f("prior_notice_duration_min", _I),
            _f("prior_notice_duration_max", _I),
            _f("prior_notice_last_day", _I),
            _f("prior_notice_last_time", _T),
            _f("prior_notice_start_day", _I),
            _f("prior_notice_start_time", _T),
            _f("prior_notice_service_id"),
            _f("message"),
            _f("pickup_message"),
            _f("drop_off_message"),
            _f("phone_number"),
            _f("info_url", Kind.URL),
            _f("booking_url", Kind.URL),
        ),
        primary_key=("booking_rule_id",),
    ),
)
