"""More WARNINGs and INFOs (attributions, fare media, ferries, pathways, translations,
stations, in-seat transfers, shape points at one distance), one mutation each way,
counted as the gtfs-guru oracle counts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gtfs_mutate import BASE, Case, check

pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

ATTRIBUTIONS = "attribution_id,organization_name,is_producer,is_operator,is_authority\n"
STATION_STOPS = "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
PATHWAYS = "pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional\n"
TRANSLATIONS = "table_name,field_name,language,translation,record_id,record_sub_id,field_value\n"
FEED_INFO = {
    "feed_info.txt": "feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,"
    "feed_end_date,feed_version,feed_contact_email\n"
    "P,http://p.example,en,20250101,20261231,1,a@p.example\n"
}
SHAPES = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n"
TWO_TRIPS = {
    "trips.txt": "route_id,service_id,trip_id\nR1,C1,T1\nR1,C1,T2\n",
    "stop_times.txt": BASE["stop_times.txt"]
    + "T2,09:00:00,09:00:00,S1,1,0\nT2,09:10:00,09:10:00,S2,2,1.5\n",
}
IN_SEAT = "from_stop_id,to_stop_id,transfer_type,from_trip_id,to_trip_id\n"


def shaped(points: str) -> dict[str, str | None]:
    return {
        "shapes.txt": SHAPES + points,
        "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,C1,T1,SH\n",
    }


CASES = [
    Case(
        "attributions_roles",
        {"attributions.txt": ATTRIBUTIONS + "X,Org,0,0,\nY,Org2,1,,\nZ,Org3,,,1\n"},
        {"attribution_without_role": 1},
    ),
    Case(
        "fare_media_twice",
        {
            "fare_media.txt": "fare_media_id,fare_media_name,fare_media_type\n"
            "M1,Card,2\nM2,Card,2\nM3,Card,1\nM4,Other,2\n"
        },
        {"duplicate_fare_media": 1},
    ),
    Case(
        "ferry_bikes",
        {
            "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\n"
            "R1,A,1,,4\nR2,A,2,,3\n",
            "trips.txt": "route_id,service_id,trip_id,bikes_allowed\n"
            "R1,C1,T1,\nR2,C1,T2,\nR1,C1,T3,1\nR1,C1,T4,0\nR1,C1,T5,2\n",
            "stop_times.txt": BASE["stop_times.txt"]
            + "".join(
                f"T{t},08:00:00,08:00:00,S1,1,0\nT{t},08:10:00,08:10:00,S2,2,1.5\n"
                for t in range(2, 6)
            ),
        },
        {"missing_bike_allowance": 2},
    ),
    Case(
        "pathway_to_itself",
        {
            "stops.txt": STATION_STOPS + "S1,One,-37.1,144.1,0,ST\nS2,Two,-37.2,144.2,,\n"
            "ST,Station,-37.1,144.1,1,\nE1,Gate,-37.1,144.1,2,ST\n",
            "pathways.txt": PATHWAYS + "P1,E1,S1,1,1\nP2,S1,S1,1,1\n",
        },
        {"pathway_loop": 1},
    ),
    Case(
        "translations_of_absent_tables",
        {
            "translations.txt": TRANSLATIONS
            + "calendar,x,fr,Un,C1,,\nlevels,level_name,fr,Un,L1,,\n"
            "STOPS,stop_name,fr,Un,S1,,\nstops,stop_name,fr,Un,S1,,\nbogus,x,fr,Un,S1,,\n",
            **FEED_INFO,
        },
        {"translation_unknown_table_name": 3},
    ),
    Case(
        "stations_used_and_not",
        {
            "stops.txt": STATION_STOPS + "S1,One,-37.1,144.1,0,ST3\nS2,Two,-37.2,144.2,,\n"
            "ST,Station,-37.1,144.1,1,\nST2,Station2,-37.1,144.1,1,\nE1,Gate,-37.1,144.1,2,ST2\n"
            "ST3,Station3,-37.1,144.1,1,\n",
        },
        {"unused_station": 2},
    ),
    Case(
        "in_seat_mid_trip",
        {**TWO_TRIPS, "transfers.txt": IN_SEAT + "S1,S2,4,T1,T2\nS2,S1,5,T1,T2\n"},
        {"transfer_with_suspicious_mid_trip_in_seat": 2},
    ),
    Case(
        "in_seat_at_trip_ends",
        {**TWO_TRIPS, "transfers.txt": IN_SEAT + "S2,S1,4,T1,T2\nS1,S2,1,T1,T2\n"},
        {"transfer_with_suspicious_mid_trip_in_seat": 0},
    ),
    Case(
        "shape_points_at_one_distance",
        shaped(
            "SH,-37.1,144.1,1,0\nSH,-37.1,144.1,2,0\nSH,-37.100005,144.1,3,0\n"
            "SH,-37.2,144.2,4,5\nSH,-37.3,144.3,5,5\n"
        ),
        {
            "equal_shape_distance_same_coordinates": 1,
            "equal_shape_distance_diff_coordinates_distance_below_threshold": 1,
            "equal_shape_distance_diff_coordinates": 1,
        },
    ),
]

CAL = "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
INFO_HEAD = (
    "feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date,"
    "feed_version,feed_contact_email\n"
)


def window(calendar: str, feed: tuple[str, str] | None = None) -> dict[str, str | None]:
    """BASE's trip on C1, with ``calendar`` rows and feed_info dates (start, end)."""
    files: dict[str, str | None] = {"calendar.txt": CAL + calendar}
    if feed is not None:
        files["feed_info.txt"] = (
            INFO_HEAD + f"P,http://p.example,en,{feed[0]},{feed[1]},1,a@p.example\n"
        )
    return files


EVERY_DAY = "C1,1,1,1,1,1,1,1,"
CASES += [
    Case(
        "service_two_years_on",
        window(EVERY_DAY + "20250101,20271212\n"),
        {"service_extends_far_in_the_future": 0},
    ),
    Case(
        "service_past_two_years",
        window(
            EVERY_DAY + "20250101,20261231\nC2,1,1,1,1,1,1,1,20250101,20271213\n"
            "C3,0,0,0,0,0,0,0,20250101,20291231\n"
        ),
        {"service_extends_far_in_the_future": 1},
    ),
    Case(
        "calendar_from_tomorrow", window(EVERY_DAY + "20251213,20261231\n"), {"future_calendar": 1}
    ),
    Case(
        "calendar_from_today",
        window(EVERY_DAY + "20251212,20261231\nC2,1,1,1,1,1,1,1,20240101,20240201\n"),
        {"future_calendar": 0},
    ),
    Case(
        "feed_from_tomorrow",
        window(EVERY_DAY + "20250101,20261231\n", ("20251213", "20261231")),
        {"future_feed": 1, "service_window_outside_feed_period": 1},
    ),
    Case(
        "feed_two_weeks_beyond",
        window(EVERY_DAY + "20250101,20261231\n", ("20250101", "20270114")),
        {"feed_valid_beyond_total_service_window": 0},
    ),
    Case(
        "feed_beyond_its_trips",
        window(
            EVERY_DAY + "20250101,20261231\nC2,1,1,1,1,1,1,1,20250101,20271231\n",
            ("20241201", "20271231"),
        ),
        {"feed_valid_beyond_total_service_window": 1, "service_window_outside_feed_period": 0},
    ),
    Case(
        "trips_outside_the_feed",
        window(
            EVERY_DAY + "20250101,20261231\nC2,1,1,1,1,1,1,1,20240101,20261231\n",
            ("20250102", "20261230"),
        ),
        {"service_window_outside_feed_period": 1, "future_feed": 0},
    ),
]

DATES = "service_id,date,exception_type\n"
CASES += [
    Case(
        "gaps_in_service",
        {
            "calendar.txt": CAL + "C1,0,0,0,0,0,0,0,20250101,20261231\n"
            "C3,1,1,1,1,1,1,1,20250101,20261231\n",
            "calendar_dates.txt": DATES + "C1,20250101,1\nC1,20250201,1\nC1,20250301,1\n"
            "C2,20250101,1\nC2,20250401,1\n"
            + "".join(f"C3,202502{d:02d},2\n" for d in range(1, 15)),
        },
        {"big_gap_in_service": 3},
    ),
    Case(
        "thirteen_days_off",
        {
            "calendar.txt": CAL + "C1,0,0,0,0,0,0,0,20250101,20261231\n",
            "calendar_dates.txt": DATES + "C1,20250101,1\nC1,20250115,1\nC1,20250116,1\n",
        },
        {"big_gap_in_service": 0},
    ),
]

BLOCK_TIMES = BASE["stop_times.txt"] + "".join(
    f"T{t},{9 + t}:00:00,{9 + t}:00:00,S1,1,0\nT{t},{9 + t}:10:00,{9 + t}:10:00,S2,2,1.5\n"
    for t in range(2, 6)
)
CASES += [
    Case(
        "blocks_of_mixed_modes",
        {
            "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\n"
            "R1,A,1,,3\nR2,A,2,,0\nR3,A,3,,3\n",
            "trips.txt": "route_id,service_id,trip_id,block_id\nR1,C1,T1,B1\nR2,C1,T2,B1\n"
            "R3,C1,T3,B1\nR1,C1,T4,B2\nR3,C1,T5,B2\n",
            "stop_times.txt": BLOCK_TIMES,
        },
        {"inconsistent_route_type_for_block_id": 1},
    ),
]

TIMEPOINTS = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,timepoint\n"
CASES += [
    Case(
        "ids_outside_ascii",
        {
            "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,zone_id,stop_code,parent_station\n"
            "S1,One,-37.1,144.1,zé,é1,\nS2é,Two,-37.2,144.2,,,\nS3,Three,-37.3,144.3,,,STé\n"
            "STé,Station,-37.3,144.3,,,\n",
            "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
            "T1,08:00:00,08:00:00,S1,1\nT1,08:10:00,08:10:00,S2é,2\n",
            "trips.txt": "route_id,service_id,trip_id,block_id\nR1,C1,T1,b\tx\n",
            "translations.txt": TRANSLATIONS + "stops,stop_name,fr,Un,S1é,,\n",
            **FEED_INFO,
        },
        {"non_ascii_or_non_printable_char": 6},
    ),
    Case(
        "timepoints_missing",
        {
            "stop_times.txt": TIMEPOINTS + "T1,08:00:00,08:00:00,S1,1,\nT1,,,S2,2,\n"
            "T1,08:20:00,08:20:00,S2,3,1\nT1,08:30:00,,S1,4,\n"
        },
        {"missing_timepoint_value": 2},
    ),
    Case("no_timepoint_column", {}, {"missing_timepoint_value": 0}),
]


def dist_times(trip: str, first: str, second: str) -> str:
    return f"{trip},08:00:00,08:00:00,S1,1,{first}\n{trip},08:10:00,08:10:00,S2,2,{second}\n"


CASES += [
    Case(
        "distances_on_stop_times_only",
        {
            "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,"
            "shape_dist_traveled\n"
            + dist_times("T1", "0", "")
            + dist_times("T2", "", "")
            + dist_times("T3", "", "2")
            + dist_times("T4", "1", "2")
            + dist_times("T5", "1", "2"),
            "shapes.txt": SHAPES + "SH,-37.1,144.1,1,\nSH,-37.2,144.2,2,\nSZ,-37.1,144.1,1,0\n"
            "SZ,-37.2,144.2,2,0\nSD,-37.1,144.1,1,0\nSD,-37.2,144.2,2,5\n",
            "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,C1,T1,SH\nR1,C1,T2,SH\n"
            "R1,C1,T3,SH\nR1,C1,T4,SZ\nR1,C1,T5,SD\n",
        },
        {"trip_with_shape_dist_traveled_but_no_shape_distances": 2},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_more_warnings_match_the_reference(case: Case, tmp_path: Path) -> None:
    check(case, tmp_path)
