"""Stops matched to their trip's shape, as MobilityData's StopToShapeMatcher matches
them: each WARNING on a feed that must raise it and a near miss that must not,
counted as the gtfs-guru oracle counts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gtfs_mutate import Case, check

pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

STOPS = "stop_id,stop_name,stop_lat,stop_lon\n"
ROUTES = "route_id,agency_id,route_short_name,route_long_name,route_type,route_desc\n"

SHAPE_HEAD = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n"
# A straight shape 8.9 km east along latitude -37 (1 km of distance per 0.01125 degrees).
LINE = SHAPE_HEAD + "".join(
    f"SH,-37.0,{144 + i / 100:.2f},{i + 1},{i * 0.89:.2f}\n" for i in range(11)
)
ST_HEAD = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n"
TOO_FAR = "stop_too_far_from_shape"


def on_line(
    *stops: tuple[str, float, float], route_type: int = 3, stop_times: str | None = None
) -> dict[str, str | None]:
    """BASE with shape SH and trip T1 over ``stops`` (id, lat, lon) in that order."""
    rows = "".join(f"{s},Stop {s},{lat},{lon}\n" for s, lat, lon in stops)
    times = "".join(
        f"T1,08:{k:02d}:00,08:{k:02d}:00,{s},{k + 1},\n" for k, (s, _, _) in enumerate(stops)
    )
    files: dict[str, str | None] = {
        "shapes.txt": LINE,
        "stops.txt": STOPS + rows,
        "routes.txt": ROUTES + f"R1,A,1,,{route_type},\n",
        "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,C1,T1,SH\n",
        "stop_times.txt": ST_HEAD + times,
    }
    if stop_times is not None:
        files["stop_times.txt"] = stop_times
    return files


# A shape going back and forth 25 times between two points 1.1 km apart.
ZIGZAG = SHAPE_HEAD + "".join(
    f"ZZ,{-37.0 if i % 2 == 0 else -36.99},{144 + i / 1e6:.6f},{i + 1},\n" for i in range(50)
)

CASES = [
    Case(
        "stop_far_from_its_shape",
        on_line(("P1", -37.0, 144.0), ("P2", -37.05, 144.05), ("P3", -37.0, 144.1)),
        {TOO_FAR: 1, "stops_match_shape_out_of_order": 0},
    ),
    Case(
        "stops_near_their_shape",
        on_line(("P1", -37.0004, 144.0), ("P2", -36.9996, 144.05), ("P3", -37.0, 144.1)),
        {TOO_FAR: 0},
    ),
    Case(
        "rail_terminus_may_be_further",
        on_line(("P1", -37.003, 144.0), ("P2", -37.0, 144.05), ("P3", -37.0, 144.1), route_type=2),
        {TOO_FAR: 0},
    ),
    Case(
        "bus_terminus_may_not",
        on_line(("P1", -37.003, 144.0), ("P2", -37.0, 144.05), ("P3", -37.0, 144.1)),
        {TOO_FAR: 1},
    ),
    Case(
        "stops_out_of_shape_order",
        on_line(
            ("P1", -37.0, 144.0), ("P2", -37.0, 144.07), ("P3", -37.0, 144.03), ("P4", -37.0, 144.1)
        ),
        {"stops_match_shape_out_of_order": 1},
    ),
    Case(
        "far_stop_reported_once_per_shape",
        {
            **on_line(("P1", -37.0, 144.0), ("P2", -37.05, 144.05), ("P3", -37.0, 144.1)),
            "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,C1,T1,SH\nR1,C1,T2,SH\n"
            "R1,C1,T3,SH\n",
            "stop_times.txt": ST_HEAD + "T1,08:00:00,08:00:00,P1,1,\nT1,08:10:00,08:10:00,P2,2,\n"
            "T1,08:20:00,08:20:00,P3,3,\nT2,09:00:00,09:00:00,P1,1,\nT2,09:10:00,09:10:00,P2,2,\n"
            "T2,09:20:00,09:20:00,P3,3,\nT3,10:00:00,10:00:00,P2,1,\nT3,10:20:00,10:20:00,P3,2,\n",
        },
        {TOO_FAR: 1},
    ),
    Case(
        "user_distance_points_elsewhere",
        on_line(
            ("P1", -37.0, 144.0),
            ("P2", -37.0, 144.05),
            ("P3", -37.0, 144.1),
            stop_times=ST_HEAD + "T1,08:00:00,08:00:00,P1,1,0\n"
            "T1,08:10:00,08:10:00,P2,2,1.0\nT1,08:20:00,08:20:00,P3,3,8.9\n",
        ),
        {"stop_too_far_from_shape_using_user_distance": 1, TOO_FAR: 0},
    ),
    Case(
        "user_distance_agrees",
        on_line(
            ("P1", -37.0, 144.0),
            ("P2", -37.0, 144.05),
            ("P3", -37.0, 144.1),
            stop_times=ST_HEAD + "T1,08:00:00,08:00:00,P1,1,0\n"
            "T1,08:10:00,08:10:00,P2,2,4.45\nT1,08:20:00,08:20:00,P3,3,8.9\n",
        ),
        {"stop_too_far_from_shape_using_user_distance": 0},
    ),
    Case(
        "shape_passing_a_stop_many_times",
        {
            **on_line(("P1", -37.0, 144.0), ("P2", -36.995, 144.0), ("P3", -36.99, 144.0)),
            "shapes.txt": ZIGZAG,
            "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,C1,T1,ZZ\n",
        },
        {"stop_has_too_many_matches_for_shape": 3},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_shape_warning_matches_the_reference(case: Case, tmp_path: Path) -> None:
    check(case, tmp_path)
