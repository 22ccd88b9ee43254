"""MobilityData's ERRORs on GTFS-Flex's locations.geojson and the rules that read it
with stop_times: each on a feed that must raise it and a near miss that must not,
compared with the gtfs-guru oracle code by code. gtfs-guru departs from the Java
gtfs-validator (GeoJsonFileLoader and its validators) in several places; there we
count as Java does and keep gtfs-guru's count with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.gtfs_mutate import Case, check

pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

Ring = list[list[float]]
SQ: Ring = [[144.0, -37.0], [144.1, -37.0], [144.1, -37.1], [144.0, -37.1], [144.0, -37.0]]
SQ2: Ring = [
    [144.05, -37.05],
    [144.15, -37.05],
    [144.15, -37.15],
    [144.05, -37.15],
    [144.05, -37.05],
]
FAR: Ring = [[145.0, -38.0], [145.1, -38.0], [145.1, -38.1], [145.0, -38.1], [145.0, -38.0]]
BOWTIE: Ring = [[144.0, -37.0], [144.1, -37.1], [144.1, -37.0], [144.0, -37.1], [144.0, -37.0]]
ST = (
    "trip_id,arrival_time,departure_time,stop_id,location_id,stop_sequence,"
    "start_pickup_drop_off_window,end_pickup_drop_off_window,pickup_type,drop_off_type\n"
)
USE_L1: dict[str, str | None] = {
    "stop_times.txt": ST + "T1,,,,L1,1,08:00:00,09:00:00,2,2\nT1,,,,L1,2,08:00:00,09:00:00,2,2\n"
}
MISSING = "missing_required_element"
FK = "foreign_key_violation"
JAVA_LOADER = (
    "Java's GeoJsonFileLoader names what is missing and then holds the file unparsable "
    "(no reference checks); gtfs-guru names nothing and checks references"
)
JAVA_RING = "JTS refuses a ring that is not closed (invalid_geometry); gtfs-guru accepts it"
JAVA_DUP = (
    "Java's Gson adapter reports a repeated key as geo_json_duplicated_element and keeps "
    "no feature; gtfs-guru calls the file malformed_json"
)
JAVA_OVERLAP = (
    "Java's OverlappingPickupDropOffZoneValidator pairs stop_times of a trip whose zones "
    "overlap (JTS overlaps); gtfs-guru raises nothing"
)
JAVA_POINTS = "Java checks every point of a zone for (0,0) and the poles; gtfs-guru does not"
JAVA_GEOMETRY = "Java reports a geometry type other than (Multi)Polygon; gtfs-guru does not"


def feature(fid: str | None, ring: Ring, kind: str = "Polygon", **drop: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "Feature",
        "id": fid,
        "properties": {},
        "geometry": {"type": kind, "coordinates": [ring]},
    }
    return {k: v for k, v in out.items() if not drop.get(k) and v is not None}


def geo(*features: dict[str, Any], root: str = "FeatureCollection") -> dict[str, str | None]:
    return {"locations.geojson": json.dumps({"type": root, "features": list(features)})}


def windows(second_location: str, second_start: str = "08:30:00") -> dict[str, str | None]:
    rows = (
        f"T1,,,,L1,1,08:00:00,09:00:00,2,2\nT1,,,,{second_location},2,{second_start},09:30:00,2,2\n"
    )
    return {"stop_times.txt": ST + rows}


CASES = [
    Case("valid_zone", {**geo(feature("L1", SQ)), **USE_L1}, {"malformed_json": 0, FK: 0}),
    Case("not_json", {"locations.geojson": "{not json", **USE_L1}, {"malformed_json": 1, FK: 0}),
    Case("root_not_object", {"locations.geojson": "[]", **USE_L1}, {"malformed_json": 1}),
    Case(
        "root_a_feature",
        {**geo(feature("L1", SQ), root="Feature"), **USE_L1},
        {"unsupported_geo_json_type": 1, FK: 0},
    ),
    Case(
        "root_without_type",
        {"locations.geojson": json.dumps({"features": [feature("L1", SQ)]}), **USE_L1},
        {MISSING: 1, FK: 0},
        {MISSING: 0, FK: 2},
        JAVA_LOADER,
    ),
    Case(
        "feature_without_id_and_properties",
        {**geo(feature(None, SQ, properties=True), feature("L2", FAR)), **USE_L1},
        {MISSING: 2, FK: 0},
        {MISSING: 0, FK: 2},
        JAVA_LOADER,
    ),
    Case(
        "feature_of_other_type",
        {**geo({**feature("L1", SQ), "type": "Thing"}), **USE_L1},
        {"unsupported_feature_type": 1},
    ),
    Case(
        "geometry_of_other_type",
        {**geo(feature("L1", SQ, "MultiLineString")), **USE_L1},
        {"unsupported_geometry_type": 1},
        {"unsupported_geometry_type": 0},
        JAVA_GEOMETRY,
    ),
    Case(
        "ring_not_closed",
        {**geo(feature("L1", SQ[:-1])), **USE_L1},
        {"invalid_geometry": 1},
        {"invalid_geometry": 0},
        JAVA_RING,
    ),
    Case("self_crossing_ring", {**geo(feature("L1", BOWTIE)), **USE_L1}, {"invalid_geometry": 1}),
    Case(
        "zone_id_twice",
        {**geo(feature("L1", SQ), feature("L1", FAR)), **USE_L1},
        {"duplicate_geo_json_key": 1},
    ),
    Case(
        "json_key_twice",
        {
            "locations.geojson": '{"type": "FeatureCollection", "type": "FeatureCollection", '
            f'"features": [{json.dumps(feature("L1", SQ))}]}}',
            **USE_L1,
        },
        {"geo_json_duplicated_element": 1, FK: 2, "malformed_json": 0},
        {"geo_json_duplicated_element": 0, FK: 0, "malformed_json": 1},
        JAVA_DUP,
    ),
    Case(
        "zone_id_is_a_stop_id",
        {**geo(feature("L1", SQ), feature("S1", FAR)), **USE_L1},
        {"duplicate_geography_id": 1},
    ),
    Case(
        "location_group_id_is_a_stop_id",
        {
            "location_groups.txt": "location_group_id,location_group_name\nS1,Group\n",
            "location_group_stops.txt": "location_group_id,stop_id\nS1,S2\n",
        },
        {"duplicate_geography_id": 1},
    ),
    Case("unknown_zone", {**geo(feature("L2", SQ)), **USE_L1}, {FK: 2}),
    Case("zones_without_file", USE_L1, {FK: 2}),
    Case(
        "overlapping_zones_and_windows",
        {**geo(feature("L1", SQ), feature("L2", SQ2)), **windows("L2")},
        {"overlapping_zone_and_pickup_drop_off_window": 1},
        {"overlapping_zone_and_pickup_drop_off_window": 0},
        JAVA_OVERLAP,
    ),
    # Near misses: zones apart, windows that only touch, one zone twice.
    Case(
        "zones_apart",
        {**geo(feature("L1", SQ), feature("L2", FAR)), **windows("L2")},
        {"overlapping_zone_and_pickup_drop_off_window": 0},
    ),
    Case(
        "windows_touching",
        {**geo(feature("L1", SQ), feature("L2", SQ2)), **windows("L2", "09:00:00")},
        {"overlapping_zone_and_pickup_drop_off_window": 0},
    ),
    Case(
        "same_zone_twice",
        {**geo(feature("L1", SQ)), **windows("L1")},
        {"overlapping_zone_and_pickup_drop_off_window": 0},
    ),
    Case(
        "zone_near_origin",
        {**geo(feature("L1", [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2], [0.1, 0.1]])), **USE_L1},
        {"point_near_origin": 4},
        {"point_near_origin": 0},
        JAVA_POINTS,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_geojson_rule_matches_the_reference(case: Case, tmp_path: Path) -> None:
    check(case, tmp_path)
