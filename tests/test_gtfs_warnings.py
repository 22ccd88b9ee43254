"""WARNING and INFO notices, one mutation each way, counted as the gtfs-guru oracle counts.

Each case changes BASE (tests/gtfs_mutate.py) so that one notice must be raised, or
nearly so that it must not; the differential check then compares every implemented
code with gtfs-guru's count. Where gtfs-guru departs from MobilityData's Java
validator the case records it (``oracle_differs``) and we follow Java.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from interlock.components.gtfs_schedule.loader import load_feed
from interlock.components.gtfs_schedule.warnings_rows import not_mixed_case
from tests.gtfs_mutate import BASE, ORACLE_DATE, Case, check, replace, write_feed

pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

MIXED = "mixed_case_recommended_field"
STOPS = "stop_id,stop_name,stop_lat,stop_lon\n"
ROUTES = "route_id,agency_id,route_short_name,route_long_name,route_type,route_desc\n"
FEED_INFO = "feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date,"
CAL = "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"

# Values gtfs-guru judges, and whether it flags them as lacking Mixed Case.
MIXED_VALUES: dict[str, bool] = {
    "lift": True,
    "MCE DP1": True,
    "MCE": False,
    "Mce": False,
    "abc Street": False,
    "123": False,
    "A": False,
    "ab": True,
    "a b": False,
    "a bc": False,
    "ÉCOLE": False,
    "école": True,
    "AB-CD": True,
    "Ab-cd": False,
    "dp1": True,
    "DP1": False,
    "AB cd": True,
    "ab Cd": False,
    "ab1cd": True,
    "AB1CD": True,
    "o'neil st": True,
    "日本": False,
    "ab 日本": True,
    "LIFT 2": False,
    "ABC DEF Gh": False,
    "X Y Z": False,
}


def stops(*rows: str) -> dict[str, str | None]:
    return {"stops.txt": BASE["stops.txt"] + "".join(r + "\n" for r in rows)}


def routes(*rows: str) -> dict[str, str | None]:
    return {"routes.txt": ROUTES + "R1,A,1,,3,\n" + "".join(r + "\n" for r in rows)}


def feed_info(row: str, extra: str = "feed_version,feed_contact_email") -> dict[str, str | None]:
    return {"feed_info.txt": FEED_INFO + extra + "\n" + row + "\n"}


GOOD_INFO = "P,http://p.example,en,20250101,20261231,1,a@p.example"

CASES: list[Case] = [
    Case(
        "mixed_case_values",
        stops(*(f"M{i},{v},-37.1,144.1" for i, v in enumerate(MIXED_VALUES))),
        {MIXED: sum(MIXED_VALUES.values())},
    ),
    Case(
        "mixed_case_in_every_field",
        {
            "agency.txt": BASE["agency.txt"].replace("Agency", "BIG AGENCY"),
            "routes.txt": ROUTES + "R1,A,BIG ONE,LONG NAME,3,DESC HERE\n",
            "trips.txt": "route_id,service_id,trip_id,trip_headsign,trip_short_name\n"
            "R1,C1,T1,TO TOWN,EXP RESS\n",
            "levels.txt": "level_id,level_index,level_name\nL1,0,GROUND FLOOR\n",
        },
        {MIXED: 7},
    ),
    Case("mixed_case_near_miss", stops("S3,Main St,-37.3,144.3", "S4,MCE,-37.4,144.4"), {MIXED: 0}),
    Case(
        "enum_out_of_range",
        {
            **routes("R2,A,2,,400,", "R3,A,3,,12,"),
            "trips.txt": "route_id,service_id,trip_id,direction_id\nR1,C1,T1,2\n",
            "stop_times.txt": BASE["stop_times.txt"]
            .replace("shape_dist_traveled\n", "shape_dist_traveled,pickup_type,timepoint\n")
            .replace(",0\n", ",0,4,1\n")
            .replace(",1.5\n", ",1.5,3,2\n"),
        },
        {"unexpected_enum_value": 4},
    ),
    Case(
        "enum_in_range",
        {**routes("R2,A,2,,7,", "R3,A,3,,11,"), **stops("S3,Three,-37.3,144.3")},
        {"unexpected_enum_value": 0},
    ),
    Case(
        "route_names",
        routes(
            "R2,A,ShortNameIsLong,,3,",
            "R3,A,Ab,Ab - Town,3,",
            "R4,A,Ab,Ab(Town),3,",
            "R5,A,Ab,ab,3,",
            "R6,A,Ab,Abbey Road,3,",
            "R7,A,Ab,Town,3,ab",
            "R8,A,Cd,Town,3,town",
            "R9,A,Cd,Town,3,Other",
        ),
        {
            "route_short_name_too_long": 1,
            "route_long_name_contains_short_name": 3,
            "same_name_and_description_for_route": 2,
        },
    ),
    Case("short_name_of_twelve", routes("R2,A,TwelveLetter,,3,"), {"route_short_name_too_long": 0}),
    Case(
        "stop_desc_as_name",
        {
            "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,stop_desc\nS1,One,-37.1,144.1,ONE\n"
            "S2,Two,-37.2,144.2,Two stop\n"
        },
        {"same_name_and_description_for_stop": 1},
    ),
    Case(
        "platform_codes",
        {
            "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,platform_code,location_type,"
            "parent_station\nS1,One,-37.1,144.1,1,,\nS2,Two,-37.2,144.2,2,0,ST\n"
            "ST,Station,-37.2,144.2,,1,\nS3,Three,-37.3,144.3,,0,\n"
        },
        {"platform_without_parent_station": 1},
    ),
    Case(
        "one_agency_no_ids",
        {
            "agency.txt": BASE["agency.txt"].replace("\nA,", "\n,"),
            "routes.txt": ROUTES + "R1,,1,,3,\n",
            "fare_attributes.txt": "fare_id,price,currency_type,payment_method,transfers\n"
            "F1,1.0,AUD,0,0\n",
        },
        {"missing_recommended_field": 3, "missing_required_agency_id": 0},
    ),
    Case(
        "feed_info_without_recommended",
        {"feed_info.txt": FEED_INFO.rstrip(",") + "\nP,http://p.example,en,,\n"},
        {"missing_recommended_field": 3, "missing_feed_contact_email_and_url": 1},
        oracle_differs={"missing_recommended_field": 1},
        why="Java's RowParser.asString flags an empty recommended value as well as an absent "
        "column (CsvRow.asString gives null for both); gtfs-guru flags absent columns only",
    ),
    Case(
        "feed_info_complete",
        feed_info(GOOD_INFO),
        {"missing_recommended_field": 0, "missing_feed_contact_email_and_url": 0},
    ),
    Case(
        "feed_info_one_date",
        feed_info("P,http://p.example,en,20250101,,1,a@p.example"),
        {"missing_feed_info_date": 1, "missing_recommended_field": 1},
        oracle_differs={"missing_recommended_field": 0},
        why="Java flags the empty recommended feed_end_date; gtfs-guru only absent columns",
    ),
    Case(
        "feed_expires_within_a_week",
        feed_info("P,http://p.example,en,20250101,20251218,1,a@p.example"),
        {"feed_expiration_date7_days": 1, "feed_expiration_date30_days": 0},
    ),
    Case(
        "feed_expires_on_the_seventh_day",
        feed_info("P,http://p.example,en,20250101,20251219,1,a@p.example"),
        {"feed_expiration_date7_days": 1, "feed_expiration_date30_days": 0},
    ),
    Case(
        "feed_expires_on_the_eighth_day",
        feed_info("P,http://p.example,en,20250101,20251220,1,a@p.example"),
        {"feed_expiration_date7_days": 0, "feed_expiration_date30_days": 1},
    ),
    Case(
        "feed_expires_after_thirty_days",
        feed_info("P,http://p.example,en,20250101,20260112,1,a@p.example"),
        {"feed_expiration_date7_days": 0, "feed_expiration_date30_days": 0},
    ),
    Case(
        "calendar_expired",
        {
            "calendar.txt": CAL + "C1,1,1,1,1,1,0,0,20250101,20261231\n"
            "C2,1,1,1,1,1,1,1,20240101,20251211\n",
            "calendar_dates.txt": "service_id,date,exception_type\nC2,20251220,2\n",
        },
        {"expired_calendar": 1, "trip_coverage_not_active_for_next7_days": 0},
    ),
    Case(
        "calendar_kept_alive_by_a_date",
        {
            "calendar.txt": CAL + "C1,1,1,1,1,1,0,0,20250101,20261231\n"
            "C2,1,1,1,1,1,1,1,20240101,20251211\n",
            "calendar_dates.txt": "service_id,date,exception_type\nC2,20251212,1\n",
        },
        {"expired_calendar": 0},
    ),
    Case(
        "trips_end_within_a_week",
        replace("calendar.txt", "20261231", "20251218"),
        {"trip_coverage_not_active_for_next7_days": 1},
    ),
    Case(
        "trips_start_tomorrow",
        replace("calendar.txt", "20250101", "20251213"),
        {"trip_coverage_not_active_for_next7_days": 1, "expired_calendar": 0},
    ),
    Case(
        "trips_cover_the_week",
        replace("calendar.txt", "20261231", "20251219"),
        {"trip_coverage_not_active_for_next7_days": 0},
    ),
    Case(
        "frequent_trips_dominate",
        {
            "calendar.txt": CAL + "C1,1,1,1,1,1,1,1,20250101,20261231\n"
            "C2,1,1,1,1,1,1,1,20251101,20251214\n",
            "trips.txt": "route_id,service_id,trip_id\nR1,C1,T1\nR1,C2,T2\n",
            "stop_times.txt": BASE["stop_times.txt"]
            + "T2,08:00:00,08:00:00,S1,1,0\nT2,08:10:00,08:10:00,S2,2,1.5\n",
            "frequencies.txt": "trip_id,start_time,end_time,headway_secs\n"
            "T2,06:00:00,22:00:00,600\n",
        },
        {"trip_coverage_not_active_for_next7_days": 1},
    ),
]

PATHWAY_STOPS = (
    "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
    "S1,One,-37.1,144.1,0,ST\nS2,Two,-37.2,144.2,0,ST\nST,Station,-37.1,144.1,1,\n"
    "E1,Gate,-37.1,144.1,2,ST\nN1,,,,3,ST\nN2,,,,3,ST\nN3,,,,3,ST\n"
)
PATHWAYS = "pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional\n"

CASES += [
    Case(
        "trips_without_enough_stop_times",
        {
            "trips.txt": "route_id,service_id,trip_id\nR1,C1,T1\nR1,C1,T2\nR1,C1,T3\n",
            "stop_times.txt": BASE["stop_times.txt"] + "T3,08:00:00,08:00:00,S1,1,0\n",
        },
        {"unused_trip": 1, "unusable_trip": 2},
    ),
    Case("trips_of_two_stops", {}, {"unused_trip": 0, "unusable_trip": 0}),
    Case(
        "stops_without_stop_times",
        {
            "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
            "S1,One,-37.1,144.1,,\nS2,Two,-37.2,144.2,,\nS3,Three,-37.3,144.3,0,\n"
            "ST,Station,-37.3,144.3,1,\nS4,Four,-37.3,144.3,0,ST\nE1,Gate,-37.3,144.3,2,ST\n",
        },
        {"stop_without_stop_time": 2},
    ),
    Case(
        "stop_served_through_a_group",
        {
            **stops("S3,Three,-37.3,144.3", "S4,Four,-37.4,144.4"),
            "location_groups.txt": "location_group_id,location_group_name\nG1,Zone\nG2,Other\n",
            "location_group_stops.txt": "location_group_id,stop_id\nG1,S3\nG2,S4\n",
            "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,location_group_id,"
            "stop_sequence,start_pickup_drop_off_window,end_pickup_drop_off_window\n"
            "T1,08:00:00,08:00:00,S1,,1,,\nT1,08:10:00,08:10:00,S2,,2,,\n"
            "T1,,,,G1,3,08:20:00,09:00:00\n",
        },
        {"stop_without_stop_time": 1},
    ),
    Case(
        "shapes_used_and_not",
        {
            "shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
            "SH1,-37.1,144.1,1\nSH1,-37.2,144.2,2\nSH2,-37.1,144.1,1\nSH2,-37.2,144.2,2\n",
            "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,C1,T1,SH1\n",
        },
        {"unused_shape": 1},
    ),
    Case(
        "duplicate_route_names",
        {
            "routes.txt": ROUTES + "R1,A,1,,3,\nR2,A,1,,3,\nR3,A,1,,3,\nR4,A,1,,2,\n"
            "R5,A,1,Long,3,\nR6,A,1,Long,3,\nR7,A,,Long,3,\nR8,A,2,,3,\n",
        },
        {"duplicate_route_name": 3},
    ),
    Case(
        "feed_info_twice",
        {
            "feed_info.txt": FEED_INFO
            + "feed_version,feed_contact_email\n"
            + GOOD_INFO
            + "\n"
            + GOOD_INFO
            + "\n"
        },
        {"more_than_one_entity": 1},
    ),
    Case("feed_info_once", feed_info(GOOD_INFO), {"more_than_one_entity": 0}),
    Case(
        "dangling_generic_nodes",
        {
            "stops.txt": PATHWAY_STOPS,
            "pathways.txt": PATHWAYS + "P1,E1,N1,1,1\nP2,N1,S1,1,1\nP3,E1,N2,1,1\n"
            "P4,N2,E1,1,1\nP5,N3,N3,1,1\nP6,E1,S2,1,1\n",
        },
        {"pathway_dangling_generic_node": 2},
    ),
]

COLOURS = "route_id,agency_id,route_short_name,route_long_name,route_type,route_color,"
URLS = "route_id,agency_id,route_short_name,route_long_name,route_type,route_url\n"
LANG_AGENCY = "agency_id,agency_name,agency_url,agency_timezone,agency_lang\n"
TRANSFERS = "from_stop_id,to_stop_id,transfer_type\n"


def agencies(*langs: str) -> str:
    rows = (
        f"A{i},Ag{i},http://a{i}.example,Australia/Melbourne,{lang}" for i, lang in enumerate(langs)
    )
    return LANG_AGENCY + "".join(r + "\n" for r in rows)


def lang_feed(feed_lang: str, *langs: str) -> dict[str, str | None]:
    return {
        "agency.txt": agencies(*langs),
        "routes.txt": ROUTES + "R1,A0,1,,3,\n",
        **feed_info(f"P,http://p.example,{feed_lang},20250101,20261231,1,a@p.example"),
    }


CASES += [
    Case(
        "route_colours",
        {
            "routes.txt": COLOURS + "route_text_color\nR1,A,1,,3,FF0000,FF0000\n"
            "R2,A,2,,3,FFFFFF,B8B8B8\nR3,A,3,,3,FFFFFF,B7B7B7\nR4,A,4,,3,FFFF00,FFFFFF\n"
            "R5,A,5,,3,FF0000,\nR6,A,6,,3,000000,FFFFFF\n",
        },
        {"route_color_contrast": 3},
    ),
    Case(
        "shared_urls",
        {
            "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n"
            "A,Agency,http://a.example,Australia/Melbourne\nB,Bgency,http://b.example,"
            "Australia/Melbourne\n",
            "routes.txt": URLS + "R1,A,1,,3,http://b.example\nR2,B,2,,3,http://b.example\n"
            "R3,A,3,,3,http://r.example\nR4,A,4,,3,http://r.example\nR5,A,5,,3,\n",
            "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,stop_url\n"
            "S1,One,-37.1,144.1,http://b.example\nS2,Two,-37.2,144.2,http://r.example\n"
            "S3,Three,-37.2,144.2,http://s.example\n",
        },
        {
            "same_route_and_agency_url": 2,
            "same_stop_and_agency_url": 1,
            "same_stop_and_route_url": 4,
        },
    ),
    Case(
        "services_on_no_day",
        {
            "calendar.txt": CAL + "C1,1,1,1,1,1,0,0,20250101,20261231\n"
            "C2,0,0,0,0,0,0,0,20250101,20261231\nC3,0,0,0,0,0,0,0,20250101,20261231\n"
            "C4,0,0,0,0,0,0,1,20250106,20250110\n",
            "calendar_dates.txt": "service_id,date,exception_type\nC3,20251220,1\n",
        },
        {"service_has_no_active_day_of_the_week": 2, "service_never_active": 1},
    ),
    Case(
        "single_point_shapes",
        {
            "shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
            "SH1,-37.1,144.1,1\nSH2,-37.1,144.1,1\nSH2,-37.2,144.2,2\n",
            "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,C1,T1,SH2\nR1,C1,T2,SH1\n",
            "stop_times.txt": BASE["stop_times.txt"]
            + "T2,08:00:00,08:00:00,S1,1,0\nT2,08:10:00,08:10:00,S2,2,1.5\n",
        },
        {"single_shape_point": 1},
    ),
    Case(
        "long_transfers",
        {
            "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
            "S1,One,-37.1,144.1,,\nS2,Two,-37.2,144.2,,\nS3,Three,-37.15,144.15,,\n"
            "S4,Four,-37.1001,144.1001,,\nST,Station,-37.1,144.1,1,\nS5,Five,,,0,ST\n",
            "transfers.txt": TRANSFERS + "S1,S2,0\nS1,S3,0\nS1,S4,0\nS5,S2,0\n",
        },
        {"transfer_distance_too_large": 2, "transfer_distance_above_2_km": 1},
    ),
    Case(
        "agency_languages",
        lang_feed("EN", "", "en", "EN", "en-AU", "fr"),
        {"inconsistent_agency_lang": 2, "feed_info_lang_and_agency_lang_mismatch": 2},
    ),
    Case(
        "multilingual_feed",
        lang_feed("mul", "en", "de"),
        {"inconsistent_agency_lang": 1, "feed_info_lang_and_agency_lang_mismatch": 0},
    ),
    Case(
        "one_language",
        lang_feed("en", "en", "EN"),
        {"inconsistent_agency_lang": 0, "feed_info_lang_and_agency_lang_mismatch": 0},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_warning_matches_the_reference(case: Case, tmp_path: Path) -> None:
    check(case, tmp_path)


def test_mixed_case_judgement() -> None:
    """The Mixed Case judgement, value by value as gtfs-guru judges them."""
    assert {v: not_mixed_case(v) for v in MIXED_VALUES} == MIXED_VALUES


def test_today_defaults_to_the_feeds_day(tmp_path: Path) -> None:
    """Without ``today`` the expiry notices judge by the feed's local today: a feed ending
    today expires within a week; one ending in 2099 does not."""
    today = date.today()
    end = f"{today:%Y%m%d}"
    files = feed_info(f"P,http://p.example,en,20000101,{end},1,a@p.example")
    files["agency.txt"] = BASE["agency.txt"].replace("Australia/Melbourne", "UTC")
    result = load_feed(write_feed(tmp_path, files, "soon"), tmp_path / "soon.db")
    counts = result.report["counts"]
    assert isinstance(counts, dict)
    assert counts["feed_expiration_date7_days"]["count"] == 1
    files = feed_info("P,http://p.example,en,20000101,20991231,1,a@p.example")
    result = load_feed(write_feed(tmp_path, files, "late"), tmp_path / "late.db")
    assert "feed_expiration_date7_days" not in result.report["counts"]  # type: ignore[operator]
    when = date.fromisoformat(ORACLE_DATE)
    result = load_feed(write_feed(tmp_path, files, "given"), tmp_path / "given.db", today=when)
    assert "feed_expiration_date7_days" not in result.report["counts"]  # type: ignore[operator]
