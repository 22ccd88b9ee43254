"""Values read as leniently as MobilityData's gtfs-validator reads them, and no stricter.

Each case is a mutated feed checked against its expected counts and then against the
gtfs-guru oracle code by code; where gtfs-guru departs from the Java validator (the
reference the issue names), the case records gtfs-guru's count and why we differ.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from tests.gtfs_mutate import Case, check, ours, replace, write_feed

pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

ST = "stop_times.txt"
SECOND_STOP = "T1,08:10:00,08:10:00,S2,2,1.5"


def _stop(
    arr: str = "08:10:00", dep: str = "08:10:00", seq: str = "2", dist: str = "1.5"
) -> dict[str, str | None]:
    return replace(ST, SECOND_STOP, f"T1,{arr},{dep},S2,{seq},{dist}")


WS = "leading_or_trailing_whitespaces"
JAVA_TIME = (
    "GtfsTime's pattern (\\d{1,3}):(\\d\\d):(\\d\\d) refuses 1:2:3 and 1000:00:00; gtfs-guru not"
)
JAVA_INT = "Java's Integer.parseInt takes 32 bits; gtfs-guru 64"
JAVA_DOUBLE = "Java's Double.parseDouble refuses nan/inf and reads 1d, 0x1p3; gtfs-guru the reverse"

CASES = [
    # Univocity trims unquoted values silently: no notice, and the value is usable.
    Case(
        "unquoted_padding",
        {
            **replace(ST, SECOND_STOP, "T1,08:10:00 , 08:10:00,S2 ,2,1.5"),
            **replace("routes.txt", "3,FF0000", "3, FF0000"),
        },
        {WS: 0, "invalid_time": 0, "foreign_key_violation": 0, "invalid_color": 0},
    ),
    # A quoted padded value is trimmed with a WARNING, never an ERROR.
    Case(
        "quoted_padding",
        {
            **replace(ST, SECOND_STOP, 'T1,"08:10:00 ",08:10:00,"S2 ",2,1.5'),
            **replace("routes.txt", "3,FF0000", '3," FF0000"'),
            **replace("stops.txt", "S2,Two,", 'S2,"Two\t",'),
        },
        {WS: 4, "invalid_time": 0, "foreign_key_violation": 0, "invalid_color": 0},
    ),
    # Near miss: inner spaces, and U+00A0 (Java's trim() keeps it) are not padding.
    Case(
        "inner_space_and_nbsp",
        {
            "stops.txt": 'stop_id,stop_name,stop_lat,stop_lon\nS1,"\u00a0One",-37.1,144.1\n'
            'S2,"Stop  Two",-37.2,144.2\n'
        },
        {WS: 0},
    ),
    # csv reads the whole file once it holds a quote; unquoted values still trim silently.
    Case(
        "unquoted_padding_beside_quotes",
        {
            "stops.txt": 'stop_id,stop_name,stop_lat,stop_lon\nS1,"One",-37.1,144.1 \n'
            "S2, Two,-37.2,144.2\n"
        },
        {WS: 0, "invalid_float": 0},
    ),
    Case("hhh_time", _stop("100:00:00", "999:59:59"), {"invalid_time": 0}),
    Case(
        "four_digit_hour",
        _stop("1000:00:00", "08:10:00"),
        {"invalid_time": 1, "start_and_end_range_out_of_order": 0},
        {"invalid_time": 0, "start_and_end_range_out_of_order": 1},
        JAVA_TIME,
    ),
    Case("sixty_minutes", _stop("08:60:00", "08:10:00"), {"invalid_time": 1}),
    Case(
        "single_digit_minute",
        _stop("1:2:3", "08:10:00"),
        {"invalid_time": 1, "stop_time_with_arrival_before_previous_departure_time": 0},
        {"invalid_time": 0, "stop_time_with_arrival_before_previous_departure_time": 1},
        JAVA_TIME,
    ),
    Case("huge_integer", _stop(seq="99999999999999999999"), {"invalid_integer": 1}),
    Case("int32_max", _stop(seq="2147483647"), {"invalid_integer": 0}),
    Case(
        "int32_past",
        _stop(seq="2147483648"),
        {"invalid_integer": 1},
        {"invalid_integer": 0},
        JAVA_INT,
    ),
    Case("arabic_indic_digit", _stop(seq="\u0663"), {"invalid_integer": 1}),
    Case("arabic_indic_float", _stop(dist="\u0663"), {"invalid_float": 1}),
    Case("lower_nan", _stop(dist="nan"), {"invalid_float": 1}, {"invalid_float": 0}, JAVA_DOUBLE),
    Case("lower_inf", _stop(dist="inf"), {"invalid_float": 1}, {"invalid_float": 0}, JAVA_DOUBLE),
    Case("java_nan", _stop(dist="NaN"), {"invalid_float": 0, "number_out_of_range": 0}),
    Case("java_infinity", _stop(dist="Infinity"), {"invalid_float": 0, "number_out_of_range": 0}),
    Case(
        "negative_infinity", _stop(dist="-Infinity"), {"invalid_float": 0, "number_out_of_range": 1}
    ),
    Case("java_suffix", _stop(dist="1d"), {"invalid_float": 0}, {"invalid_float": 1}, JAVA_DOUBLE),
    Case("java_hex", _stop(dist="0x1p3"), {"invalid_float": 0}, {"invalid_float": 1}, JAVA_DOUBLE),
    Case("underscore", _stop(dist="1_0"), {"invalid_float": 1}),
    Case(
        "new_line_in_value",
        {
            "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,One,-37.1,144.1\n"
            'S2,"Two\nLines",-37.2,144.2\n'
        },
        {"new_line_in_value": 1},
    ),
    Case(
        "escaped_new_line",
        {
            "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,One,-37.1,144.1\n"
            'S2,"Two\\nLines",-37.2,144.2\n'
        },
        {"new_line_in_value": 0},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_mutation_matches_the_reference(case: Case, tmp_path: Path) -> None:
    """Each mutation gives its counts, and gtfs-guru's except where it departs from Java."""
    check(case, tmp_path)


def test_trimmed_values_load_trimmed(tmp_path: Path) -> None:
    """Padded values load trimmed and typed, quoted or not: the row joins its stop."""
    for name, line in (
        ("bare", "T1,08:10:00 , 08:10:00,S2 ,2,1.5 "),
        ("quoted", 'T1," 08:10:00","08:10:00 ","S2\t",2," 1.5"'),
    ):
        feed = write_feed(tmp_path, replace(ST, SECOND_STOP, line), name)
        _, result = ours(feed, tmp_path)
        assert result.report["error_count"] == 0
        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            row = conn.execute(
                "SELECT arrival_time, arrival_time_secs, departure_time, stop_id, "
                "shape_dist_traveled FROM stop_times JOIN stops USING (stop_id) "
                "WHERE stop_sequence = 2"
            ).fetchone()
        assert row == ("08:10:00", 8 * 3600 + 600, "08:10:00", "S2", 1.5)


def test_hhh_times_keep_their_seconds_and_order_check(tmp_path: Path) -> None:
    """A 100+ hour time loads with its seconds, and the order check still compares it."""
    lines = "T1,100:00:00,999:59:59,S2,2,1.5\nT1,999:00:00,999:00:00,S1,3,2"
    feed = write_feed(tmp_path, replace(ST, SECOND_STOP, lines), "hhh")
    counts, _ = ours(feed, tmp_path)
    assert counts.get("stop_time_with_arrival_before_previous_departure_time") == 1
    with sqlite3.connect(tmp_path / "hhh.db") as conn:
        got = conn.execute(
            "SELECT departure_time, departure_time_secs FROM stop_times WHERE stop_sequence = 2"
        ).fetchone()
    assert got == ("999:59:59", 999 * 3600 + 59 * 60 + 59)


def test_java_floats_load_as_java_reads_them(tmp_path: Path) -> None:
    """1d, 0x1p3 and Infinity load as Java's Double.parseDouble reads them; NaN as NULL."""
    for name, dist, want in (
        ("d", "1d", 1.0),
        ("hex", "0x1p3", 8.0),
        ("inf", "Infinity", math.inf),
        ("nan", "NaN", None),
    ):
        feed = write_feed(tmp_path, _stop(dist=dist), name)
        ours(feed, tmp_path)
        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            got = conn.execute(
                "SELECT shape_dist_traveled FROM stop_times WHERE stop_sequence = 2"
            ).fetchone()
        assert got == (want,)
