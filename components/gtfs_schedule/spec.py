"""The GTFS schedule tables interlock knows: columns, types, keys and ranges.

Requiredness, primary keys and foreign keys follow MobilityData's gtfs-validator so
that the notices we raise count the same things its notices count.
"""

from __future__ import annotations

from interlock.components.gtfs_schedule.schema import Bound, Field, ForeignKey, Kind, Table
from interlock.components.gtfs_schedule.specflex import LATE_TABLES


def _f(name: str, kind: Kind = Kind.TEXT, *, req: bool = False, bound: Bound = Bound.NONE) -> Field:
    return Field(name, kind, req, bound)


_I, _F, _D, _T, _C = Kind.INTEGER, Kind.FLOAT, Kind.DATE, Kind.TIME, Kind.COLOR
_TZ, _URL, _MAIL, _CUR = Kind.TIMEZONE, Kind.URL, Kind.EMAIL, Kind.CURRENCY
_LANG = Kind.LANGUAGE
_NN, _POS = Bound.NON_NEGATIVE, Bound.POSITIVE
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

TABLES: tuple[Table, ...] = (
    Table(
        "agency",
        (
            _f("agency_id"),
            _f("agency_name", req=True),
            _f("agency_url", _URL, req=True),
            _f("agency_timezone", _TZ, req=True),
            _f("agency_lang", _LANG),
            _f("agency_phone"),
            _f("agency_fare_url", _URL),
            _f("agency_email", _MAIL),
        ),
        primary_key=("agency_id",),
        required_file=True,
    ),
    Table(
        "stops",
        (
            _f("stop_id", req=True),
            _f("stop_code"),
            _f("stop_name"),
            _f("tts_stop_name"),
            _f("stop_desc"),
            _f("stop_lat", Kind.LATITUDE),
            _f("stop_lon", Kind.LONGITUDE),
            _f("zone_id"),
            _f("stop_url", _URL),
            _f("location_type", _I),
            _f("parent_station"),
            _f("stop_timezone", _TZ),
            _f("wheelchair_boarding", _I),
            _f("level_id"),
            _f("platform_code"),
            _f("stop_access", _I),
        ),
        primary_key=("stop_id",),
        foreign_keys=(
            ForeignKey("parent_station", "stops", "stop_id"),
            ForeignKey("level_id", "levels", "level_id"),
        ),
        indexes=(("parent_station",),),
        required_file=True,
    ),
    Table(
        "routes",
        (
            _f("route_id", req=True),
            _f("agency_id"),
            _f("route_short_name"),
            _f("route_long_name"),
            _f("route_desc"),
            # Victoria uses Google's extended types (e.g. 400, 700); any integer loads.
            _f("route_type", _I, req=True),
            _f("route_url", _URL),
            _f("route_color", _C),
            _f("route_text_color", _C),
            _f("route_sort_order", _I, bound=_NN),
            _f("continuous_pickup", _I),
            _f("continuous_drop_off", _I),
            _f("network_id"),
        ),
        primary_key=("route_id",),
        foreign_keys=(ForeignKey("agency_id", "agency", "agency_id"),),
        required_file=True,
    ),
    Table(
        "trips",
        (
            _f("route_id", req=True),
            _f("service_id", req=True),
            _f("trip_id", req=True),
            _f("trip_headsign"),
            _f("trip_short_name"),
            _f("direction_id", _I),
            _f("block_id"),
            _f("shape_id"),
            _f("wheelchair_accessible", _I),
            _f("bikes_allowed", _I),
        ),
        primary_key=("trip_id",),
        foreign_keys=(
            ForeignKey("route_id", "routes", "route_id"),
            ForeignKey("shape_id", "shapes", "shape_id"),
        ),
        indexes=(("route_id",), ("service_id",), ("shape_id",)),
        required_file=True,
    ),
    Table(
        "stop_times",
        (
            _f("trip_id", req=True),
            _f("arrival_time", _T),
            _f("departure_time", _T),
            _f("stop_id"),
            _f("location_group_id"),
            _f("location_id"),
            _f("stop_sequence", _I, req=True, bound=_NN),
            _f("stop_headsign"),
            _f("start_pickup_drop_off_window", _T),
            _f("end_pickup_drop_off_window", _T),
            _f("pickup_type", _I),
            _f("drop_off_type", _I),
            _f("continuous_pickup", _I),
            _f("continuous_drop_off", _I),
            _f("shape_dist_traveled", _F, bound=_NN),
            _f("timepoint", _I),
            _f("pickup_booking_rule_id"),
            _f("drop_off_booking_rule_id"),
        ),
        primary_key=("trip_id", "stop_sequence"),
        foreign_keys=(
            ForeignKey("trip_id", "trips", "trip_id"),
            ForeignKey("stop_id", "stops", "stop_id"),
            ForeignKey("location_group_id", "location_groups", "location_group_id"),
            ForeignKey("pickup_booking_rule_id", "booking_rules", "booking_rule_id"),
            ForeignKey("drop_off_booking_rule_id", "booking_rules", "booking_rule_id"),
        ),
        indexes=(("stop_id",),),
        required_file=True,
    ),
    Table(
        "calendar",
        (
            _f("service_id", req=True),
            *(_f(day, _I, req=True) for day in _DAYS),
            _f("start_date", _D, req=True),
            _f("end_date", _D, req=True),
        ),
        primary_key=("service_id",),
    ),
    Table(
        "calendar_dates",
        (_f("service_id", req=True), _f("date", _D, req=True), _f("exception_type", _I, req=True)),
        primary_key=("service_id", "date"),
    ),
    Table(
        "fare_attributes",
        (
            _f("fare_id", req=True),
            _f("price", _F, req=True, bound=_NN),
            _f("currency_type", _CUR, req=True),
            _f("payment_method", _I, req=True),
            _f("transfers", _I),
            _f("agency_id"),
            _f("transfer_duration", _I, bound=_NN),
        ),
        primary_key=("fare_id",),
        foreign_keys=(ForeignKey("agency_id", "agency", "agency_id"),),
    ),
    Table(
        "fare_rules",
        (
            _f("fare_id", req=True),
            _f("route_id"),
            _f("origin_id"),
            _f("destination_id"),
            _f("contains_id"),
        ),
        foreign_keys=(
            ForeignKey("fare_id", "fare_attributes", "fare_id"),
            ForeignKey("route_id", "routes", "route_id"),
            ForeignKey("origin_id", "stops", "zone_id"),
            ForeignKey("destination_id", "stops", "zone_id"),
            ForeignKey("contains_id", "stops", "zone_id"),
        ),
    ),
    Table(
        "shapes",
        (
            _f("shape_id", req=True),
            _f("shape_pt_lat", Kind.LATITUDE, req=True),
            _f("shape_pt_lon", Kind.LONGITUDE, req=True),
            _f("shape_pt_sequence", _I, req=True, bound=_NN),
            _f("shape_dist_traveled", _F, bound=_NN),
        ),
        primary_key=("shape_id", "shape_pt_sequence"),
    ),
    Table(
        "frequencies",
        (
            _f("trip_id", req=True),
            _f("start_time", _T, req=True),
            _f("end_time", _T, req=True),
            _f("headway_secs", _I, req=True, bound=_POS),
            _f("exact_times", _I),
        ),
        primary_key=("trip_id", "start_time"),
        foreign_keys=(ForeignKey("trip_id", "trips", "trip_id"),),
    ),
    Table(
        "transfers",
        (
            _f("from_stop_id"),
            _f("to_stop_id"),
            _f("from_route_id"),
            _f("to_route_id"),
            _f("from_trip_id"),
            _f("to_trip_id"),
            _f("transfer_type", _I),
            _f("min_transfer_time", _I, bound=_NN),
        ),
        primary_key=(
            "from_stop_id",
            "to_stop_id",
            "from_trip_id",
            "to_trip_id",
            "from_route_id",
            "to_route_id",
        ),
        foreign_keys=(
            ForeignKey("from_stop_id", "stops", "stop_id"),
            ForeignKey("to_stop_id", "stops", "stop_id"),
            ForeignKey("from_route_id", "routes", "route_id"),
            ForeignKey("to_route_id", "routes", "route_id"),
            ForeignKey("from_trip_id", "trips", "trip_id"),
            ForeignKey("to_trip_id", "trips", "trip_id"),
        ),
    ),
    Table(
        "pathways",
        (
            _f("pathway_id", req=True),
            _f("from_stop_id", req=True),
            _f("to_stop_id", req=True),
            _f("pathway_mode", _I, req=True),
            _f("is_bidirectional", _I, req=True),
            _f("length", _F, bound=_NN),
            _f("traversal_time", _I, bound=_POS),
            _f("stair_count", _I),
            _f("max_slope", _F),
            _f("min_width", _F, bound=_POS),
            _f("signposted_as"),
            _f("reversed_signposted_as"),
        ),
        primary_key=("pathway_id",),
        foreign_keys=(
            ForeignKey("from_stop_id", "stops", "stop_id"),
            ForeignKey("to_stop_id", "stops", "stop_id"),
        ),
    ),
    Table(
        "levels",
        (_f("level_id", req=True), _f("level_index", _F, req=True), _f("level_name")),
        primary_key=("level_id",),
    ),
    Table(
        "feed_info",
        (
            _f("feed_publisher_name", req=True),
            _f("feed_publisher_url", _URL, req=True),
            _f("feed_lang", _LANG, req=True),
            _f("default_lang", _LANG),
            _f("feed_start_date", _D),
            _f("feed_end_date", _D),
            _f("feed_version"),
            _f("feed_contact_email", _MAIL),
            _f("feed_contact_url", _URL),
        ),
    ),
    Table(
        "translations",
        (
            _f("table_name", req=True),
            _f("field_name", req=True),
            _f("language", _LANG, req=True),
            _f("translation", req=True),
            _f("record_id"),
            _f("record_sub_id"),
            _f("field_value"),
        ),
    ),
    Table(
        "attributions",
        (
            _f("attribution_id"),
            _f("agency_id"),
            _f("route_id"),
            _f("trip_id"),
            _f("organization_name", req=True),
            _f("is_producer", _I),
            _f("is_operator", _I),
            _f("is_authority", _I),
            _f("attribution_url", _URL),
            _f("attribution_email", _MAIL),
            _f("attribution_phone"),
        ),
        foreign_keys=(
            ForeignKey("agency_id", "agency", "agency_id"),
            ForeignKey("route_id", "routes", "route_id"),
            ForeignKey("trip_id", "trips", "trip_id"),
        ),
    ),
    Table("areas", (_f("area_id", req=True), _f("area_name")), primary_key=("area_id",)),
    Table(
        "stop_areas",
        (_f("area_id", req=True), _f("stop_id", req=True)),
        primary_key=("area_id", "stop_id"),
        foreign_keys=(
            ForeignKey("area_id", "areas", "area_id"),
            ForeignKey("stop_id", "stops", "stop_id"),
        ),
    ),
    Table(
        "networks", (_f("network_id", req=True), _f("network_name")), primary_key=("network_id",)
    ),
    Table(
        "route_networks",
        (_f("network_id", req=True), _f("route_id", req=True)),
        primary_key=("route_id",),
        foreign_keys=(
            ForeignKey("network_id", "networks", "network_id"),
            ForeignKey("route_id", "routes", "route_id"),
        ),
    ),
    Table(
        "fare_media",
        (_f("fare_media_id", req=True), _f("fare_media_name"), _f("fare_media_type", _I, req=True)),
        primary_key=("fare_media_id",),
    ),
    Table(
        "fare_products",
        (
            _f("fare_product_id", req=True),
            _f("fare_product_name"),
            _f("rider_category_id"),
            _f("fare_media_id"),
            _f("amount", _F, req=True, bound=_NN),
            _f("currency", _CUR, req=True),
        ),
        foreign_keys=(ForeignKey("fare_media_id", "fare_media", "fare_media_id"),),
    ),
    Table(
        "fare_leg_rules",
        (
            _f("leg_group_id"),
            _f("network_id"),
            _f("from_area_id"),
            _f("to_area_id"),
            _f("from_timeframe_group_id"),
            _f("to_timeframe_group_id"),
            _f("fare_product_id", req=True),
            _f("rule_priority", _I, bound=_NN),
        ),
        foreign_keys=(
            ForeignKey("from_area_id", "areas", "area_id"),
            ForeignKey("to_area_id", "areas", "area_id"),
        ),
    ),
    Table(
        "fare_transfer_rules",
        (
            _f("from_leg_group_id"),
            _f("to_leg_group_id"),
            _f("transfer_count", _I),
            _f("duration_limit", _I, bound=_POS),
            _f("duration_limit_type", _I),
            _f("fare_transfer_type", _I, req=True),
            _f("fare_product_id"),
        ),
        foreign_keys=(
            ForeignKey("from_leg_group_id", "fare_leg_rules", "leg_group_id"),
            ForeignKey("to_leg_group_id", "fare_leg_rules", "leg_group_id"),
            ForeignKey("fare_product_id", "fare_products", "fare_product_id"),
        ),
    ),
)
TABLES += LATE_TABLES  # timeframes and GTFS-Flex's tables, in their own module

TABLES_BY_FILE: dict[str, Table] = {t.filename: t for t in TABLES}

# Only feed_info.txt is "recommended" in gtfs-validator's sense (missing_recommended_file).
RECOMMENDED_FILES: tuple[str, ...] = ("feed_info.txt",)

SERVICE_FILES: tuple[str, ...] = ("calendar.txt", "calendar_dates.txt")
