"""MobilityData's ERROR rules, each on a feed that must raise it and a near miss that
must not, counted as the gtfs-guru oracle counts them (or, where gtfs-guru departs
from the Java gtfs-validator, as Java does, with gtfs-guru's count recorded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gtfs_mutate import BASE, Case, check

pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

AGENCY = "agency_id,agency_name,agency_url,agency_timezone,agency_email\n"
STOPS = "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station,stop_url\n"
ROUTES = "route_id,agency_id,route_short_name,route_long_name,route_type\n"
CAL = "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
FREQ = "trip_id,start_time,end_time,headway_secs\n"
FEED_INFO = "feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date\n"
FARES = "fare_id,price,currency_type,payment_method,transfers\n"
SHAPES = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
JAVA_ZONE = (
    "Java's ZoneId.of takes fixed offsets (+10:00, UTC+10, Z) and not EST; gtfs-guru the reverse"
)


def agency(
    tz: str = "Australia/Melbourne", url: str = "http://a.example", email: str = ""
) -> dict[str, str | None]:
    return {"agency.txt": AGENCY + f"A,Agency,{url},{tz},{email}\n"}


def stops(*rows: str) -> dict[str, str | None]:
    """stops.txt with S1 and S2 (which the base stop_times use) and ``rows``."""
    base = "S1,One,-37.1,144.1,,,\nS2,Two,-37.2,144.2,,,\n"
    return {"stops.txt": STOPS + base + "".join(r + "\n" for r in rows)}


def routes(*rows: str) -> dict[str, str | None]:
    return {"routes.txt": ROUTES + "".join(r + "\n" for r in rows)}


CASES = [
    Case("bad_timezone", agency(tz="Mars/Base"), {"invalid_timezone": 1}),
    Case("lowercase_timezone", agency(tz="australia/melbourne"), {"invalid_timezone": 1}),
    Case("etc_timezone", agency(tz="Etc/GMT+10"), {"invalid_timezone": 0}),
    Case(
        "offset_timezone",
        agency(tz="+10:00"),
        {"invalid_timezone": 0},
        {"invalid_timezone": 1},
        JAVA_ZONE,
    ),
    Case(
        "utc_offset_timezone",
        agency(tz="UTC+10"),
        {"invalid_timezone": 0},
        {"invalid_timezone": 1},
        JAVA_ZONE,
    ),
    Case(
        "est_timezone",
        agency(tz="EST"),
        {"invalid_timezone": 1},
        {"invalid_timezone": 0},
        JAVA_ZONE,
    ),
    Case(
        "stop_timezone",
        {
            "stops.txt": BASE["stops.txt"]
            .replace("stop_lon\n", "stop_lon,stop_timezone\n")
            .replace("144.1\n", "144.1,Nowhere/City\n")
            .replace("144.2\n", "144.2,UTC\n")
        },
        {"invalid_timezone": 1},
    ),
    Case("url_without_scheme", agency(url="www.a.example"), {"invalid_url": 1}),
    Case("url_without_host", stops("S3,Three,-37.3,144.3,,,http://"), {"invalid_url": 1}),
    Case(
        "url_port_too_big",
        stops("S3,Three,-37.3,144.3,,,http://a.example:65536"),
        {"invalid_url": 1},
    ),
    Case(
        "url_port_max",
        stops("S3,Three,-37.3,144.3,,,http://a.example:65535/x?y=1"),
        {"invalid_url": 0},
    ),
    Case("url_space_in_host", agency(url="http://a b.example"), {"invalid_url": 1}),
    Case("url_other_scheme", agency(url="mailto:info@a.example"), {"invalid_url": 0}),
    Case("email_without_dot", agency(email="info@a"), {"invalid_email": 1}),
    Case("email_with_space", agency(email="in fo@a.example"), {"invalid_email": 1}),
    Case("email_fine", agency(email="info@a.example"), {"invalid_email": 0}),
    Case(
        "currency_lowercase",
        {"fare_attributes.txt": FARES + "F1,1.5,aud,0,0\n"},
        {"invalid_currency": 1},
    ),
    Case(
        "currency_unknown",
        {"fare_attributes.txt": FARES + "F1,1.5,BTC,0,0\n"},
        {"invalid_currency": 1},
    ),
    Case(
        "currency_withdrawn",
        {"fare_attributes.txt": FARES + "F1,1.5,HRK,0,0\n"},
        {"invalid_currency": 0},
    ),
    Case(
        "duplicated_column",
        {
            "routes.txt": "route_id,agency_id,route_short_name,route_short_name,route_long_name,"
            "route_type\nR1,A,1,1,,3\n"
        },
        {"duplicated_column": 1},
    ),
    Case(
        "duplicated_unknown_column",
        {
            "routes.txt": "route_id,agency_id,route_short_name,x,x,x,route_long_name,route_type\n"
            "R1,A,1,1,1,1,,3\n"
        },
        {"duplicated_column": 2, "unknown_column": 3},
    ),
    Case(
        "empty_column_name",
        {
            "routes.txt": "route_id,agency_id,route_short_name,,route_long_name,route_type,\n"
            "R1,A,1,1,,3,\n"
        },
        {"empty_column_name": 2, "unknown_column": 0},
    ),
    Case("route_without_names", routes("R1,A,,,3"), {"route_both_short_and_long_name_missing": 1}),
    Case(
        "route_long_name_only",
        routes("R1,A,,Long,3"),
        {"route_both_short_and_long_name_missing": 0},
    ),
    Case(
        "calendar_reversed",
        {"calendar.txt": CAL + "C1,1,1,1,1,1,0,0,20261231,20250101\n"},
        {"start_and_end_range_out_of_order": 1, "trip_coverage_not_active_for_next7_days": 0},
        oracle_differs={"trip_coverage_not_active_for_next7_days": 1},
        why="a reversed range has no service dates in Java's CalendarUtil (gtfs-guru: its "
        "start date), so no trips run and there is no coverage window to judge",
    ),
    Case(
        "calendar_one_day",
        {"calendar.txt": CAL + "C1,1,1,1,1,1,0,0,20251212,20251212\n"},
        {"start_and_end_range_out_of_order": 0},
    ),
    Case(
        "frequency_reversed",
        {"frequencies.txt": FREQ + "T1,10:00:00,09:00:00,600\n"},
        {"start_and_end_range_out_of_order": 1, "start_and_end_range_equal": 0},
    ),
    Case(
        "frequency_empty",
        {"frequencies.txt": FREQ + "T1,10:00:00,10:00:00,600\n"},
        {"start_and_end_range_out_of_order": 0, "start_and_end_range_equal": 1},
    ),
    Case(
        "frequency_one_second",
        {"frequencies.txt": FREQ + "T1,10:00:00,10:00:01,600\n"},
        {"start_and_end_range_out_of_order": 0, "start_and_end_range_equal": 0},
    ),
    Case(
        "feed_info_reversed",
        {"feed_info.txt": FEED_INFO + "P,http://p.example,en,20261231,20250101\n"},
        {"start_and_end_range_out_of_order": 1},
    ),
    Case(
        "feed_info_one_day",
        {"feed_info.txt": FEED_INFO + "P,http://p.example,en,20251212,20251212\n"},
        {"start_and_end_range_out_of_order": 0},
    ),
    Case("stop_near_origin", stops("S3,Three,0.5,-1.0,,,"), {"point_near_origin": 1}),
    Case("stop_off_origin", stops("S3,Three,1.01,0,,,"), {"point_near_origin": 0}),
    Case("stop_near_pole", stops("S3,Three,-89.0,144,,,"), {"point_near_pole": 1}),
    Case("stop_off_pole", stops("S3,Three,88.99,144,,,"), {"point_near_pole": 0}),
    Case(
        "shape_near_origin_and_pole",
        {"shapes.txt": SHAPES + "SH1,0.1,0.1,1\nSH1,-37,144,2\nSH1,89.5,1,3\n"},
        {"point_near_origin": 1, "point_near_pole": 1},
    ),
    Case(
        "station_with_parent",
        stops("P,Par,-37.1,144.1,1,Q,", "Q,Q,-37.1,144.1,1,,"),
        {"station_with_parent_station": 1},
    ),
    Case(
        "entrance_node_boarding_without_parent",
        stops("E,Ent,-37.1,144.1,2,,", "N,Node,,,3,,", "B,Board,,,4,,"),
        {"location_without_parent_station": 3},
    ),
    Case("stop_under_stop", stops("S3,Three,-37.3,144.3,0,S1,"), {"wrong_parent_location_type": 1}),
    Case(
        "stop_under_station",
        stops("S3,Three,-37.3,144.3,0,P,", "P,Par,-37.1,144.1,1,,"),
        {"wrong_parent_location_type": 0},
    ),
    Case(
        "boarding_area_under_station",
        stops("B,Board,,,4,P,", "P,Par,-37.1,144.1,1,,"),
        {"wrong_parent_location_type": 1},
    ),
    Case(
        "stops_without_location",
        stops("S3,Three,,,0,,", "S4,Four,-37.2,,,,", "N,Node,,,3,P,", "P,Par,-37.1,144.1,1,,"),
        {"stop_without_location": 2},
    ),
    Case(
        "stops_without_name",
        stops("S3,,-37.3,144.3,0,,", "N,,-37.1,144.1,3,P,", "P,,-37.1,144.1,1,,"),
        {"missing_stop_name": 2},
    ),
    Case(
        "agencies_in_three_zones",
        {
            "agency.txt": AGENCY
            + "A,Ag,http://a.example,UTC,\nB,Bg,http://b.example,Australia/Melbourne,\nC,Cg,http://c.example,Australia/Sydney,\n"
        },
        {"inconsistent_agency_timezone": 2},
    ),
    Case(
        "agencies_in_one_zone",
        {"agency.txt": AGENCY + "A,Ag,http://a.example,UTC,\nB,Bg,http://b.example,UTC,\n"},
        {"inconsistent_agency_timezone": 0, "missing_required_agency_id": 0},
    ),
    Case(
        "agencies_without_ids",
        {
            "agency.txt": AGENCY + "A,Ag,http://a.example,UTC,\n,Bg,http://b.example,UTC,\n",
            **routes("R1,A,1,,3", "R2,,2,,3"),
        },
        {"missing_required_agency_id": 2},
    ),
    Case(
        "one_agency_without_id",
        {"agency.txt": AGENCY + ",Ag,http://a.example,UTC,\n", **routes("R1,,1,,3")},
        {"missing_required_agency_id": 0},
    ),
]


ST = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"


def stop_times(*rows: str) -> dict[str, str | None]:
    return {"stop_times.txt": ST + "".join(r + "\n" for r in rows)}


FIRST, LAST = "T1,08:00:00,08:00:00,S1,1", "T1,08:10:00,08:10:00,S2,3"
ONLY = "stop_time_with_only_arrival_or_departure_time"
EDGE = "missing_trip_edge"
OUT_OF_ORDER = "start_and_end_range_out_of_order"
CASES += [
    Case(
        "arrival_after_departure",
        stop_times(FIRST, "T1,08:06:00,08:05:00,S2,2", LAST),
        {OUT_OF_ORDER: 1},
    ),
    Case(
        "arrival_at_departure",
        stop_times(FIRST, "T1,08:05:00,08:05:00,S2,2", LAST),
        {OUT_OF_ORDER: 0},
    ),
    Case(
        "arrival_after_departure_twice",
        stop_times(FIRST, "T1,08:06:00,08:05:00,S2,2", "T1,08:06:00,08:05:00,S2,2", LAST),
        {OUT_OF_ORDER: 2, "duplicate_key": 1},
    ),
    Case("only_arrival", stop_times(FIRST, "T1,08:05:00,,S2,2", LAST), {ONLY: 1, EDGE: 0}),
    Case("only_departure", stop_times(FIRST, "T1,,08:05:00,S2,2", LAST), {ONLY: 1, EDGE: 0}),
    Case("no_times_between", stop_times(FIRST, "T1,,,S2,2", LAST), {ONLY: 0, EDGE: 0}),
    Case("last_only_arrival", stop_times(FIRST, "T1,08:10:00,,S2,3"), {ONLY: 1, EDGE: 1}),
    Case("last_without_times", stop_times(FIRST, "T1,,,S2,3"), {EDGE: 2}),
    Case("first_without_times", stop_times("T1,,,S1,1", LAST), {EDGE: 2}),
    Case("one_stop_without_times", stop_times("T1,,,S1,1"), {EDGE: 4}),
    Case(
        "edges_by_stop_sequence_not_file_order",
        stop_times(LAST, "T1,,,S2,2", FIRST, "T2,,,S1,5", "T2,08:00:00,08:00:00,S2,9"),
        {EDGE: 2, "foreign_key_violation": 2},
    ),
]


FTR = (
    "from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,"
    "fare_transfer_type,fare_product_id\n"
)
TF = "timeframe_group_id,start_time,end_time,service_id\n"
TRANSFERS = (
    "from_stop_id,to_stop_id,from_route_id,to_route_id,from_trip_id,to_trip_id,"
    "transfer_type,min_transfer_time\n"
)
PATHWAYS = "pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional\n"
# S1 and S2 platforms of station P (S1 with a boarding area B), and an entrance E.
STATION = stops("E,Ent,-37.1,144.1,2,P,", "P,Par,-37.1,144.1,1,,", "B,Board,,,4,S1,")
STATION["stops.txt"] = (
    (STATION["stops.txt"] or "")
    .replace("S1,One,-37.1,144.1,,,", "S1,One,-37.1,144.1,0,P,")
    .replace("S2,Two,-37.2,144.2,,,", "S2,Two,-37.2,144.2,0,P,")
)
GATE = "fare_transfer_rule_duration_limit_type_without_duration_limit"
JAVA_FARES = "Java's FareTransferRuleValidator reports a limit type without a limit; gtfs-guru not"
STATION_S3 = {"stops.txt": (STATION["stops.txt"] or "") + "S3,Three,-37.3,144.3,0,P,\n"}


def ftr(row: str) -> dict[str, str | None]:
    return {"fare_transfer_rules.txt": FTR + row + "\n"}


CASES += [
    Case("ftr_limit_type_alone", ftr("L1,L2,,,1,0,"), {GATE: 1}, {GATE: 0}, JAVA_FARES),
    Case(
        "ftr_limit_alone",
        ftr("L1,L2,,600,,0,"),
        {"fare_transfer_rule_duration_limit_without_type": 1},
    ),
    Case(
        "ftr_limit_and_type",
        ftr("L1,L2,,600,1,0,"),
        {"fare_transfer_rule_duration_limit_without_type": 0, GATE: 0},
    ),
    Case("ftr_count_zero", ftr("L1,L1,0,,,0,"), {"fare_transfer_rule_invalid_transfer_count": 1}),
    Case(
        "ftr_count_below_minus_one",
        ftr("L1,L1,-2,,,0,"),
        {"fare_transfer_rule_invalid_transfer_count": 1},
    ),
    Case(
        "ftr_count_unlimited",
        ftr("L1,L1,-1,,,0,"),
        {"fare_transfer_rule_invalid_transfer_count": 0},
    ),
    Case(
        "ftr_count_between_legs",
        ftr("L1,L2,1,,,0,"),
        {"fare_transfer_rule_with_forbidden_transfer_count": 1},
    ),
    Case(
        "ftr_no_count_same_leg",
        ftr("L1,L1,,,,0,"),
        {"fare_transfer_rule_without_transfer_count": 1},
    ),
    Case("ftr_no_legs", ftr(",,,,,0,"), {"fare_transfer_rule_without_transfer_count": 0}),
    Case(
        "ftr_legs_and_product_known",
        {
            **ftr("L1,L2,,,,0,P1"),
            "fare_leg_rules.txt": "leg_group_id,fare_product_id\nL1,P1\nL2,P9\n",
            "fare_products.txt": "fare_product_id,amount,currency\nP1,2.5,AUD\n",
        },
        {"foreign_key_violation": 0},
    ),
    Case(
        "timeframe_start_only",
        {"timeframes.txt": TF + "G,10:00:00,,C1\n"},
        {"timeframe_only_start_or_end_time_specified": 1},
    ),
    Case(
        "timeframe_all_day",
        {"timeframes.txt": TF + "G,,,C1\n"},
        {"timeframe_only_start_or_end_time_specified": 0},
    ),
    Case(
        "timeframe_past_midnight",
        {"timeframes.txt": TF + "G,24:00:01,24:00:02,C1\n"},
        {"timeframe_start_or_end_time_greater_than_twenty_four_hours": 2},
    ),
    Case(
        "timeframe_to_midnight",
        {"timeframes.txt": TF + "G,10:00:00,24:00:00,C1\n"},
        {"timeframe_start_or_end_time_greater_than_twenty_four_hours": 0},
    ),
    Case(
        "transfer_from_entrance",
        {**STATION, "transfers.txt": TRANSFERS + "S2,E,,,,,0,\n"},
        {"transfer_with_invalid_stop_location_type": 1},
    ),
    Case(
        "transfer_from_station",
        {**STATION, "transfers.txt": TRANSFERS + "P,S2,,,,,0,\n"},
        {"transfer_with_invalid_stop_location_type": 0},
    ),
    Case(
        "transfer_trip_of_another_route",
        {**routes("R1,A,1,,3", "R2,A,2,,3"), "transfers.txt": TRANSFERS + "S1,S2,R2,R1,T1,T1,0,\n"},
        {"transfer_with_invalid_trip_and_route": 1},
    ),
    Case(
        "transfer_trip_not_at_stop",
        {**STATION_S3, "transfers.txt": TRANSFERS + "S3,S2,,,T1,,1,\n"},
        {"transfer_with_invalid_trip_and_stop": 1},
    ),
    # An entrance is the wrong type of stop, which is the only notice it gets.
    Case(
        "transfer_trip_at_entrance",
        {**STATION, "transfers.txt": TRANSFERS + "E,S2,,,T1,,1,\n"},
        {"transfer_with_invalid_trip_and_stop": 0, "transfer_with_invalid_stop_location_type": 1},
    ),
    Case(
        "transfer_trip_at_station",
        {**STATION, "transfers.txt": TRANSFERS + "P,S2,,,T1,T1,1,\n"},
        {"transfer_with_invalid_trip_and_stop": 0},
    ),
    Case(
        "exit_gate_both_ways",
        {**STATION, "pathways.txt": PATHWAYS + "W1,E,S2,7,1\nW2,S2,E,7,0\n"},
        {"bidirectional_exit_gate": 1},
    ),
    Case(
        "pathway_to_station",
        {**STATION, "pathways.txt": PATHWAYS + "W1,E,P,1,1\nW2,P,E,1,1\n"},
        {"pathway_to_wrong_location_type": 2},
    ),
    Case(
        "pathway_to_platform_with_boarding_area",
        {**STATION, "pathways.txt": PATHWAYS + "W1,E,S1,1,1\nW2,E,S2,1,1\n"},
        {"pathway_to_platform_with_boarding_areas": 1},
    ),
    Case(
        "stop_time_at_station_and_entrance",
        {
            **STATION,
            **stop_times(
                "T1,08:00:00,08:00:00,P,1", "T1,08:10:00,08:10:00,E,2", "T1,08:20:00,08:20:00,S1,3"
            ),
        },
        {"location_with_unexpected_stop_time": 2},
    ),
    Case(
        "frequencies_overlap",
        {
            "frequencies.txt": FREQ
            + "T1,08:00:00,12:00:00,600\nT1,09:00:00,10:00:00,600\nT1,10:30:00,11:00:00,600\n"
        },
        {"overlapping_frequency": 1},
    ),
    Case(
        "frequencies_touch",
        {"frequencies.txt": FREQ + "T1,10:00:00,11:00:00,600\nT1,08:00:00,10:00:00,600\n"},
        {"overlapping_frequency": 0},
    ),
]


FLEX = (
    "trip_id,arrival_time,departure_time,stop_id,location_id,stop_sequence,"
    "start_pickup_drop_off_window,end_pickup_drop_off_window,pickup_type,drop_off_type\n"
    "T1,08:00:00,08:00:00,S1,,1,,,,\nT1,08:10:00,08:10:00,S2,,2,,,,\n"
)


def flex(row: str) -> dict[str, str | None]:
    """A flexible-service stop_times row after the base trip's two fixed stops."""
    return {"stop_times.txt": FLEX + row + "\n"}


CASES += [
    Case(
        "flex_window_fine",
        flex("T1,,,S2,,3,10:00:00,11:00:00,2,1"),
        {
            "forbidden_arrival_or_departure_time": 0,
            "missing_pickup_or_drop_off_window": 0,
            "invalid_pickup_drop_off_window": 0,
            "forbidden_pickup_type": 0,
            "forbidden_drop_off_type": 0,
            "forbidden_geography_id": 0,
        },
    ),
    Case(
        "flex_stop_and_location",
        flex("T1,,,S2,L1,3,10:00:00,11:00:00,2,1"),
        # No locations.geojson: L1 is no zone (tests/test_gtfs_errors_geojson.py).
        {"forbidden_geography_id": 1, "foreign_key_violation": 1},
    ),
    Case(
        "flex_window_and_times",
        flex("T1,10:00:00,10:00:00,S2,,3,10:00:00,11:00:00,2,1"),
        {"forbidden_arrival_or_departure_time": 1},
    ),
    Case(
        "flex_half_window",
        flex("T1,,,S2,,3,10:00:00,,2,1"),
        {"missing_pickup_or_drop_off_window": 1, "invalid_pickup_drop_off_window": 0},
    ),
    Case(
        "flex_window_reversed",
        flex("T1,,,S2,,3,11:00:00,10:00:00,2,1"),
        {"invalid_pickup_drop_off_window": 1},
    ),
    Case(
        "flex_window_empty",
        flex("T1,,,S2,,3,10:00:00,10:00:00,2,1"),
        {"invalid_pickup_drop_off_window": 1},
    ),
    Case(
        "flex_regular_pickup",
        flex("T1,,,S2,,3,10:00:00,11:00:00,,0"),
        {"forbidden_pickup_type": 1, "forbidden_drop_off_type": 1},
    ),
    Case(
        "flex_coordinated_pickup",
        flex("T1,,,S2,,3,10:00:00,11:00:00,3,3"),
        {"forbidden_pickup_type": 1, "forbidden_drop_off_type": 0},
    ),
]


# Station P: platforms S1 and S2, entrance E, generic nodes N and N2.
IN_STATION = {
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
    "S1,One,-37.1,144.1,0,P\nS2,Two,-37.2,144.2,0,P\nP,Par,-37.1,144.1,1,\n"
    "E,Ent,-37.1,144.1,2,P\nN,Node,-37.1,144.1,3,P\nN2,Node2,-37.1,144.1,3,P\n"
}
UNREACHABLE = "pathway_unreachable_location"


def walks(*rows: str, extra_stops: str = "") -> dict[str, str | None]:
    return {
        "stops.txt": (IN_STATION["stops.txt"] or "") + extra_stops,
        "pathways.txt": PATHWAYS + "".join(r + "\n" for r in rows),
    }


CASES += [
    Case("pathways_one_way_and_missing", walks("W1,E,N,1,1", "W2,N,S1,1,0"), {UNREACHABLE: 3}),
    Case(
        "pathways_all_reachable",
        walks("W1,E,N,1,1", "W2,N,S1,1,1", "W3,N,S2,1,1", "W4,N,N2,1,1"),
        {UNREACHABLE: 0},
    ),
    Case(
        "pathways_exit_only",
        walks("W1,N,E,1,0", "W2,S1,N,1,0", "W3,S2,N,1,0", "W4,N2,N,1,0"),
        {UNREACHABLE: 4},
    ),
    Case(
        "pathways_to_boarding_areas",
        walks(
            "W1,E,N,1,1",
            "W2,N,B,1,1",
            "W3,N,S2,1,1",
            "W4,N,N2,1,1",
            extra_stops="B,Board,,,4,S1\nB2,Board2,,,4,S1\n",
        ),
        {UNREACHABLE: 1},
    ),
    Case(
        "pathways_elsewhere",
        walks(
            "W1,E,N,1,1",
            "W2,N,S1,1,1",
            "W3,N,S2,1,1",
            "W4,N,N2,1,1",
            extra_stops="S3,Three,-37.3,144.3,0,Q\nQ,Q,-37.3,144.3,1,\n",
        ),
        {UNREACHABLE: 0},
    ),
]


DIST = "decreasing_or_equal_stop_time_distance"
STD = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n"
T2 = "T2,09:00:00,09:00:00,S1,1,0\nT2,09:10:00,09:10:00,S2,2,4\n"


def dists(*rows: str) -> dict[str, str | None]:
    return {
        "trips.txt": "route_id,service_id,trip_id\nR1,C1,T1\nR1,C1,T2\n",
        "stop_times.txt": STD + "".join(r + "\n" for r in rows) + T2,
    }


CASES += [
    Case(
        "distance_decreasing",
        dists("T1,08:00:00,08:00:00,S1,1,5", "T1,08:10:00,08:10:00,S2,2,3"),
        {DIST: 1},
    ),
    Case(
        "distance_standing",
        dists("T1,08:00:00,08:00:00,S1,1,5", "T1,08:10:00,08:10:00,S2,2,5"),
        {DIST: 1},
    ),
    Case(
        "distance_across_a_gap",
        dists(
            "T1,08:00:00,08:00:00,S1,1,5",
            "T1,08:05:00,08:05:00,S2,2,",
            "T1,08:10:00,08:10:00,S1,3,4",
        ),
        {DIST: 0},
    ),
    # Rows out of stop_sequence order: the window query decides, by stop_sequence.
    Case(
        "distance_by_stop_sequence",
        dists(
            "T1,08:10:00,08:10:00,S2,3,5",
            "T1,08:00:00,08:00:00,S1,1,0",
            "T1,08:05:00,08:05:00,S2,2,6",
        ),
        {DIST: 1},
    ),
    Case(
        "distance_new_trip_starts_over",
        dists("T1,08:00:00,08:00:00,S1,1,5", "T1,08:10:00,08:10:00,S2,2,9"),
        {DIST: 0},
    ),
]


SHD = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n"
SHAPE_START = "A,-37,144,1,0\nA,-37.01,144,2,10\n"


def shape(*rows: str) -> dict[str, str | None]:
    return {"shapes.txt": SHD + SHAPE_START + "".join(r + "\n" for r in rows)}


CASES += [
    Case(
        "shape_goes_back",
        shape("A,-37.02,144,3,5", "A,-37.03,144,4,20"),
        {"decreasing_shape_distance": 1},
    ),
    Case(
        "shape_goes_back_by_sequence",
        {"shapes.txt": SHD + "A,-37.02,144,3,5\n" + SHAPE_START},
        {"decreasing_shape_distance": 1},
    ),
    Case(
        "shape_gap", shape("A,-37.02,144,3,", "A,-37.03,144,4,3"), {"decreasing_shape_distance": 0}
    ),
    Case(
        "shape_stands_while_moving",
        shape("A,-37.02,144,3,10"),
        {"equal_shape_distance_diff_coordinates": 1},
    ),
    Case(
        "shape_stands_nearly_still",
        shape("A,-37.01001,144,3,10"),
        {"equal_shape_distance_diff_coordinates": 1},
    ),
    Case(
        "shape_stands_still",
        shape("A,-37.01,144,3,10"),
        {"equal_shape_distance_diff_coordinates": 0},
    ),
    # Under 1.11 m apart is only gtfs-validator's WARNING (..._below_threshold).
    Case(
        "shape_stands_within_a_metre",
        shape("A,-37.010004,144,3,10"),
        {"equal_shape_distance_diff_coordinates": 0},
    ),
]


AMOUNT = "invalid_currency_amount"


def product(amount: str, currency: str) -> dict[str, str | None]:
    return {"fare_products.txt": f"fare_product_id,amount,currency\nP1,{amount},{currency}\n"}


CASES += [
    Case("amount_in_cents", product("2.50", "AUD"), {AMOUNT: 0}),
    Case("amount_one_decimal", product("2.5", "AUD"), {AMOUNT: 1}),
    Case("amount_whole", product("2", "AUD"), {AMOUNT: 1}),
    Case("amount_three_decimals", product("2.505", "AUD"), {AMOUNT: 1}),
    Case("amount_yen", product("150", "JPY"), {AMOUNT: 0}),
    Case("amount_yen_decimal", product("150.0", "JPY"), {AMOUNT: 1}),
    Case("amount_dinar", product("1.234", "KWD"), {AMOUNT: 0}),
    Case("amount_no_currency", product("1.5", "XXX"), {AMOUNT: 1}),
    Case("amount_negative", product("-2.50", "AUD"), {AMOUNT: 0, "number_out_of_range": 1}),
    Case(
        "replacement_character",
        {"stops.txt": BASE["stops.txt"].replace("One", "O\ufffdne").replace("Two", "\ufffd")},
        {"invalid_character": 2},
    ),
    Case(
        "replacement_character_in_quotes_and_a_url",
        {
            "agency.txt": BASE["agency.txt"].replace("http://a.example", "http://a.example/\ufffd"),
            "routes.txt": BASE["routes.txt"].replace("R1,A,1,", 'R1,A,"1\ufffd",'),
        },
        {"invalid_character": 2},
    ),
    Case(
        "replacement_character_and_a_reference",
        {
            "routes.txt": BASE["routes.txt"].replace("R1,A,1,", "R1,A,1\ufffd,"),
            "trips.txt": "route_id,service_id,trip_id\nR1,C1,T1\nR9,C1,T2\n",
        },
        {"invalid_character": 1},
    ),
]


NETWORKED = routes("R1,A,1,,3").get("routes.txt", "") or ""
NETWORKED = NETWORKED.replace("route_type\n", "route_type,network_id\n").replace(",3\n", ",3,N1\n")
ROUTE_NETWORKS = {"route_networks.txt": "network_id,route_id\nN1,R1\n"}
NETWORKS = {"networks.txt": "network_id,network_name\nN1,Net\n"}
TWICE = "route_networks_specified_in_more_than_one_file"

CASES += [
    Case(
        "timeframes_overlap",
        {"timeframes.txt": TF + "G,11:00:00,13:00:00,C1\nG,10:00:00,12:00:00,C1\n"},
        {"timeframe_overlap": 1},
    ),
    Case(
        "timeframes_touch",
        {"timeframes.txt": TF + "G,10:00:00,12:00:00,C1\nG,12:00:00,13:00:00,C1\n"},
        {"timeframe_overlap": 0},
    ),
    Case(
        "timeframes_of_two_groups",
        {"timeframes.txt": TF + "G,10:00:00,12:00:00,C1\nH,11:00:00,13:00:00,C1\n"},
        {"timeframe_overlap": 0},
    ),
    Case(
        "networks_in_three_files",
        {"routes.txt": NETWORKED, **ROUTE_NETWORKS, **NETWORKS},
        {TWICE: 2},
    ),
    Case("networks_in_two_files", {"routes.txt": NETWORKED, **NETWORKS}, {TWICE: 1}),
    Case("networks_in_routes_only", {"routes.txt": NETWORKED}, {TWICE: 0}),
]


TR = "table_name,field_name,language,translation,record_id,record_sub_id,field_value\n"
# Dates given: an empty recommended date is a WARNING (for Java, not gtfs-guru).
WITH_FEED_INFO = {"feed_info.txt": FEED_INFO + "P,http://p.example,en,20250101,20261231\n"}
TFK = "translation_foreign_key_violation"
TUV = "translation_unexpected_value"


def translations(*rows: str, feed_info: bool = True) -> dict[str, str | None]:
    out: dict[str, str | None] = {"translations.txt": TR + "".join(r + "\n" for r in rows)}
    return {**out, **(WITH_FEED_INFO if feed_info else {})}


CASES += [
    Case(
        "translation_needs_feed_info",
        translations("stops,stop_name,fr,Un,S1,,", feed_info=False),
        {"missing_required_file": 1, TFK: 0},
    ),
    Case("translation_by_value", translations("stops,stop_name,fr,Un,,,One"), {TFK: 0, TUV: 0}),
    Case("translation_of_a_missing_stop", translations("stops,stop_name,fr,Un,S9,,"), {TFK: 1}),
    Case(
        "translation_of_a_missing_route",
        translations("routes,route_long_name,fr,Un,R9,,"),
        {TFK: 1},
    ),
    Case("translation_of_an_agency", translations("agency,agency_name,fr,Un,A,,"), {TFK: 0}),
    Case(
        "translation_by_record_and_value", translations("stops,stop_name,fr,Un,S1,,One"), {TUV: 1}
    ),
    Case("translation_with_a_sub_id", translations("stops,stop_name,fr,Un,S1,X,"), {TUV: 1}),
    Case(
        "translation_of_a_stop_time",
        translations("stop_times,stop_headsign,fr,Un,T1,1,"),
        {TFK: 0, TUV: 0},
    ),
    Case(
        "translation_of_a_missing_stop_time",
        translations("stop_times,stop_headsign,fr,Un,T1,9,"),
        {TFK: 1},
    ),
]


ACCESS = "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station,stop_access\n"
CONTINUOUS = "route_id,agency_id,route_short_name,route_long_name,route_type,continuous_pickup\n"

CASES += [
    Case(
        "stop_access_misplaced",
        {
            "stops.txt": ACCESS
            + "S1,One,-37.1,144.1,0,P,1\nS2,Two,-37.2,144.2,0,,1\nP,Par,-37.1,144.1,1,,0\n"
        },
        {
            "stop_access_specified_for_incorrect_location": 1,
            "stop_access_specified_for_stop_with_no_parent_station": 1,
        },
    ),
    Case(
        "stop_access_on_platforms",
        {
            "stops.txt": ACCESS
            + "S1,One,-37.1,144.1,0,P,1\nS2,Two,-37.2,144.2,0,P,0\nP,Par,-37.1,144.1,1,,\n"
        },
        {
            "stop_access_specified_for_incorrect_location": 0,
            "stop_access_specified_for_stop_with_no_parent_station": 0,
        },
    ),
    Case(
        "continuous_pickup_with_a_window",
        {"routes.txt": CONTINUOUS + "R1,A,1,,3,0\n", **flex("T1,,,S2,,3,10:00:00,11:00:00,2,1")},
        {"forbidden_continuous_pickup_drop_off": 1},
    ),
    Case(
        "no_continuous_pickup_with_a_window",
        {"routes.txt": CONTINUOUS + "R1,A,1,,3,1\n", **flex("T1,,,S2,,3,10:00:00,11:00:00,2,1")},
        {"forbidden_continuous_pickup_drop_off": 0},
    ),
]


TIMED = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,timepoint\n"
TIMEPOINT = "stop_time_timepoint_without_times"


def timed(middle: str) -> dict[str, str | None]:
    return {
        "stop_times.txt": TIMED + "T1,08:00:00,08:00:00,S1,1,1\n"
        f"{middle}\nT1,08:20:00,08:20:00,S1,3,1\n"
    }


ACCESS_STATION = (
    ACCESS + "S1,One,-37.1,144.1,0,P,1\nS2,Two,-37.2,144.2,0,P,0\n"
    "P,Par,-37.1,144.1,1,,\nE,Ent,-37.1,144.1,2,P,\n"
)
OUTSIDE = "pathway_to_stop_with_access_outside_of_station_pathways"

CASES += [
    Case("timepoint_without_times", timed("T1,,,S2,2,1"), {TIMEPOINT: 2}),
    Case("timepoint_with_arrival_only", timed("T1,08:10:00,,S2,2,1"), {TIMEPOINT: 1, ONLY: 1}),
    Case("approximate_without_times", timed("T1,,,S2,2,0"), {TIMEPOINT: 0}),
    Case("timepoint_unset_without_times", timed("T1,,,S2,2,"), {TIMEPOINT: 0}),
    Case(
        "pathway_to_stop_reached_from_the_street",
        {"stops.txt": ACCESS_STATION, "pathways.txt": PATHWAYS + "W1,E,S1,1,1\nW2,S2,E,1,1\n"},
        {OUTSIDE: 1},
    ),
]


BLOCK = "block_trips_with_overlapping_stop_times"
WEEK = (
    CAL + "C1,1,1,1,1,1,0,0,20250101,20261231\nC2,0,0,0,0,0,1,1,20250101,20261231\n"
    "C3,1,0,0,0,0,0,0,20250101,20261231\n"
)


def block(*trips: tuple[str, str, str, str], dates: str = "") -> dict[str, str | None]:
    """Trips (id, service, first time, last time) of block B."""
    rows = "".join(f"R1,{svc},{t},B\n" for t, svc, _, _ in trips)
    times = "".join(f"{t},{a},{a},S1,1\n{t},{b},{b},S2,2\n" for t, _, a, b in trips)
    out: dict[str, str | None] = {
        "trips.txt": "route_id,service_id,trip_id,block_id\n" + rows,
        "stop_times.txt": ST + times,
        "calendar.txt": WEEK,
    }
    if dates:
        out["calendar_dates.txt"] = "service_id,date,exception_type\n" + dates
    return out


CASES += [
    Case(
        "block_overlap",
        block(("T1", "C1", "08:00:00", "09:00:00"), ("T2", "C1", "08:30:00", "09:30:00")),
        {BLOCK: 1},
    ),
    Case(
        "block_back_to_back",
        block(("T1", "C1", "08:00:00", "09:00:00"), ("T2", "C1", "09:00:00", "09:30:00")),
        {BLOCK: 0},
    ),
    Case(
        "block_on_other_days",
        block(("T1", "C1", "08:00:00", "09:00:00"), ("T2", "C2", "08:30:00", "09:30:00")),
        {BLOCK: 0},
    ),
    Case(
        "block_on_some_days",
        block(("T1", "C1", "08:00:00", "09:00:00"), ("T2", "C3", "08:30:00", "09:30:00")),
        {BLOCK: 1},
    ),
    Case(
        "block_on_an_added_day",
        block(
            ("T1", "C1", "08:00:00", "09:00:00"),
            ("T2", "C9", "08:30:00", "09:30:00"),
            dates="C9,20250104,1\nC9,20250106,1\n",
        ),
        {BLOCK: 1},
    ),
    Case(
        "block_on_a_removed_day",
        block(
            ("T1", "C3", "08:00:00", "09:00:00"),
            ("T2", "C9", "08:30:00", "09:30:00"),
            dates="C9,20250106,1\nC3,20250106,2\n",
        ),
        {BLOCK: 0},
    ),
    Case(
        "block_of_three",
        block(
            ("T1", "C1", "08:00:00", "12:00:00"),
            ("T2", "C1", "08:30:00", "09:00:00"),
            ("T3", "C1", "10:00:00", "11:00:00"),
        ),
        {BLOCK: 2},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_matches_the_reference(case: Case, tmp_path: Path) -> None:
    """Each mutation raises its rule (or, a near miss, does not) as gtfs-validator does."""
    check(case, tmp_path)
