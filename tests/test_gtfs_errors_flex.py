"""MobilityData's ERROR rules on GTFS-Flex (location groups, booking rules, pickup and
drop-off windows), elevators and trip lengths: each on a feed that must raise it and a
near miss that must not, counted as the gtfs-guru oracle counts them (or, where
gtfs-guru departs from the Java gtfs-validator, as Java does, gtfs-guru's count kept)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gtfs_mutate import Case, check

pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

ST = (
    "trip_id,arrival_time,departure_time,stop_id,location_group_id,stop_sequence,"
    "start_pickup_drop_off_window,end_pickup_drop_off_window,pickup_type,drop_off_type,"
    "pickup_booking_rule_id,drop_off_booking_rule_id,shape_dist_traveled\n"
)
GROUPS = {
    "location_groups.txt": "location_group_id,location_group_name\nG1,Zone\n",
    "location_group_stops.txt": "location_group_id,stop_id\nG1,S1\nG1,S2\n",
}
BOOK = (
    "booking_rule_id,booking_type,prior_notice_duration_min,prior_notice_duration_max,"
    "prior_notice_last_day,prior_notice_last_time,prior_notice_start_day,"
    "prior_notice_start_time,prior_notice_service_id,message\n"
)
FLEX_ROW = "T1,,,,G1,{seq},08:00:00,09:00:00,2,2,,,{dist}"
JAVA_DIST = (
    "Java's StopTimesShapeDistTraveledPresenceValidator forbids a distance on a stop_time "
    "without a stop_id; gtfs-guru raises nothing"
)
JAVA_RIDERS = (
    "Java's FareProductDefaultRiderCategoriesValidator counts each default rider category "
    "for the first fare product naming it; gtfs-guru raises nothing"
)
JAVA_LEVEL = (
    "Java's MissingLevelIdValidator wants a level_id on each stop at an end of an elevator "
    "(pathway_mode 5); gtfs-guru raises nothing"
)


def flex(*rows: str, **extra: str | None) -> dict[str, str | None]:
    return {"stop_times.txt": ST + "".join(r + "\n" for r in rows), **GROUPS, **extra}


def booking(*rows: str) -> dict[str, str | None]:
    return {"booking_rules.txt": BOOK + "".join(r + "\n" for r in rows)}


def elevator(level: str) -> dict[str, str | None]:
    return {
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station,level_id\n"
        f"ST,Station,-37.1,144.1,1,,\nS1,One,-37.1,144.1,0,ST,{level}\nS2,Two,-37.2,144.2,0,ST,L1\n",
        "levels.txt": "level_id,level_index\nL1,0\n",
        "pathways.txt": "pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional\n"
        "P1,S1,S2,5,1\nP2,S2,S1,5,1\n",
    }


PRODUCTS = "fare_product_id,fare_product_name,rider_category_id,amount,currency\n"
RIDERS = "rider_category_id,rider_category_name,is_default_fare_category\n"


def riders(products: str, defaults: str) -> dict[str, str | None]:
    """Fare products (rows ``product:category``) and rider categories A, B, C, of which
    ``defaults`` are the default ones."""
    rows = "".join(f"{p},Fare,{c},2.50,AUD\n" for p, c in (r.split(":") for r in products.split()))
    cats = "".join(f"{c},Rider {c},{int(c in defaults)}\n" for c in "ABC")
    return {"fare_products.txt": PRODUCTS + rows, "rider_categories.txt": RIDERS + cats}


SHAPE = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n"
TRIPS = {"trips.txt": "route_id,service_id,trip_id,shape_id\nR1,C1,T1,SH\n"}


def shape(end_lat: str, end_lon: str, length: str) -> dict[str, str | None]:
    """SH from S1 to (end_lat, end_lon), ``length`` long; the base trip travels 1.5."""
    return {
        "shapes.txt": SHAPE + f"SH,-37.1,144.1,1,0\nSH,{end_lat},{end_lon},2,{length}\n",
        **TRIPS,
    }


CASES = [
    # Two stop_times in one zone: travel within it needs both; one alone is an ERROR.
    Case(
        "flex_two_records",
        flex(FLEX_ROW.format(seq=1, dist=""), FLEX_ROW.format(seq=2, dist="")),
        {"missing_stop_times_record": 0},
    ),
    Case(
        "flex_one_record", flex(FLEX_ROW.format(seq=1, dist="")), {"missing_stop_times_record": 1}
    ),
    Case(
        "flex_one_record_not_phoned",
        flex("T1,,,,G1,1,08:00:00,09:00:00,2,1,,,"),
        {"missing_stop_times_record": 0},
    ),
    Case(
        "flex_distance",
        flex(FLEX_ROW.format(seq=1, dist="3"), FLEX_ROW.format(seq=2, dist="")),
        {"forbidden_shape_dist_traveled": 1},
        {"forbidden_shape_dist_traveled": 0},
        JAVA_DIST,
    ),
    Case(
        "stop_distance_with_group_column",
        flex("T1,08:00:00,08:00:00,S1,,1,,,,,,,0", "T1,08:10:00,08:10:00,S2,,2,,,,,,,1.5"),
        {"forbidden_shape_dist_traveled": 0},
    ),
    Case(
        "group_and_booking_references",
        flex(
            "T1,,,,G1,1,08:00:00,09:00:00,2,2,B1,B1,",
            "T1,,,,G9,2,08:00:00,09:00:00,2,2,B1,B9,",
            **booking("B1,0,,,,,,,,Call us"),
        ),
        {"foreign_key_violation": 2},
    ),
    Case("elevator_with_levels", elevator("L1"), {"missing_level_id": 0}),
    Case(
        "elevator_without_level",
        elevator(""),
        {"missing_level_id": 1},
        {"missing_level_id": 0},
        JAVA_LEVEL,
    ),
    # The trip travels 1.5 along SH; a shorter shape ending far from S2 is an ERROR ...
    Case(
        "trip_past_shape_end",
        shape("-37.15", "144.15", "1.0"),
        {"trip_distance_exceeds_shape_distance": 1},
    ),
    # ... ending at S2 it is only a WARNING, and a long enough shape is fine.
    Case(
        "trip_past_shape_at_stop",
        shape("-37.2", "144.2", "1.0"),
        {"trip_distance_exceeds_shape_distance": 0},
    ),
    Case(
        "trip_within_shape",
        shape("-37.2", "144.2", "1.5"),
        {"trip_distance_exceeds_shape_distance": 0},
    ),
    Case(
        "two_default_riders",
        riders("F1:A F1:B F1:C", "AB"),
        {"fare_product_with_multiple_default_rider_categories": 1},
        {"fare_product_with_multiple_default_rider_categories": 0},
        JAVA_RIDERS,
    ),
    # A default category counts once, for the first product naming it: F2 holds one.
    Case(
        "default_rider_shared",
        riders("F1:A F1:C F2:A F2:B", "AB"),
        {"fare_product_with_multiple_default_rider_categories": 0},
    ),
    Case(
        "booking_rules_valid",
        booking("B1,0,,,,,,,,m", "B2,1,30,60,,,,,,", "B3,2,,,1,17:00:00,,,,"),
        {},
    ),
    Case(
        "real_time_with_notice",
        booking("B1,0,5,,,,,,,m"),
        {"forbidden_real_time_booking_field_value": 1},
    ),
    Case(
        "same_day_fields",
        booking("B1,1,5,,3,,,,,m", "B2,1,,,,,,,,"),
        {"forbidden_same_day_booking_field_value": 1, "missing_prior_notice_duration_min": 1},
    ),
    Case(
        "prior_day_fields",
        booking("B1,2,5,,3,17:00:00,,,,m", "B2,2,,,,,,,,", "B3,2,,,3,,,,,"),
        {
            "forbidden_prior_day_booking_field_value": 1,
            "missing_prior_notice_last_day": 1,
            "missing_prior_notice_last_time": 2,
        },
    ),
    Case(
        "prior_notice_ranges",
        booking(
            "B1,1,50,10,,,,,,m",
            "B2,1,5,10,,,3,,,",
            "B3,2,,,1,17:00:00,,08:00:00,,",
            "B4,2,,,5,17:00:00,3,08:00:00,,",
        ),
        {
            "invalid_prior_notice_duration_min": 1,
            "forbidden_prior_notice_start_day": 1,
            "missing_prior_notice_start_time": 1,
            "forbidden_prior_notice_start_time": 1,
            "prior_notice_last_day_after_start_day": 1,
        },
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_flex_rule_matches_the_reference(case: Case, tmp_path: Path) -> None:
    check(case, tmp_path)
