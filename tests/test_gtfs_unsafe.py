"""Tests that hostile or broken GTFS payloads fail cleanly or become notices."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from interlock.components.gtfs_schedule.loader import FeedLoadResult, load_feed
from interlock.components.gtfs_schedule.zipsafe import ZipLimits
from interlock.errors import UnsafeArchiveError

AGENCY = "agency_id,agency_name,agency_url,agency_timezone\nA,Ag,http://a.example,UTC\n"
STOPS = "stop_id,stop_name,stop_lat,stop_lon\nS1,One,1.0,2.0\nS2,Two,1.5,2.5\n"
ROUTES = "route_id,agency_id,route_short_name,route_type\nR1,A,1,700\n"
TRIPS = "route_id,service_id,trip_id\nR1,C1,T1\n"
STOP_TIMES = (
    "trip_id,arrival_time,departure_time,stop_id,stop_sequence\r\n"
    "T1,08:00:00,08:00:00,S1,1\r\nT1,08:10:00,08:10:00,S2,2\r\n"
)
CALENDAR = (
    "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
    "C1,1,1,1,1,1,0,0,20250101,20251231\n"
)
GOOD: dict[str, str | bytes] = {
    "agency.txt": AGENCY,
    "stops.txt": STOPS,
    "routes.txt": ROUTES,
    "trips.txt": TRIPS,
    "stop_times.txt": STOP_TIMES,
    "calendar.txt": CALENDAR,
}


def make_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    """Write ``members`` (name -> text or bytes) into a deflated zip at ``path``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return path


def counts(result: FeedLoadResult) -> dict[str, int]:
    return {code: c["count"] for code, c in result.report["counts"].items()}  # type: ignore[union-attr]


def test_clean_synthetic_feed_has_no_errors(tmp_path: Path) -> None:
    """The synthetic baseline feed used below loads with zero errors."""
    result = load_feed(make_zip(tmp_path / "f.zip", GOOD), tmp_path / "f.db")
    assert result.report["error_count"] == 0
    assert result.record_counts["stop_times"] == 2


def test_not_a_zip_is_unsafe(tmp_path: Path) -> None:
    """A payload of binary junk is refused as not a zip, and no database is left behind."""
    src = tmp_path / "junk.zip"
    src.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UnsafeArchiveError, match="not a readable zip"):
        load_feed(src, tmp_path / "f.db")
    assert not (tmp_path / "f.db").exists()


def test_empty_payload_is_unsafe(tmp_path: Path) -> None:
    """A zero-byte payload is refused as not a zip."""
    src = tmp_path / "empty.zip"
    src.write_bytes(b"")
    with pytest.raises(UnsafeArchiveError, match="not a readable zip"):
        load_feed(src, tmp_path / "f.db")


def test_truncated_zip_is_unsafe(tmp_path: Path) -> None:
    """A zip cut short (no central directory) is refused."""
    whole = make_zip(tmp_path / "f.zip", GOOD).read_bytes()
    src = tmp_path / "cut.zip"
    src.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UnsafeArchiveError):
        load_feed(src, tmp_path / "f.db")


def test_corrupt_member_is_unsafe(tmp_path: Path) -> None:
    """A stored member whose bytes were altered fails its CRC and names the member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, body in GOOD.items():
            zf.writestr(name, body)
    raw = bytearray(buf.getvalue())
    at = raw.index(b"T1,08:10:00")
    raw[at : at + 2] = b"X9"
    src = tmp_path / "crc.zip"
    src.write_bytes(bytes(raw))
    with pytest.raises(UnsafeArchiveError, match=r"stop_times\.txt"):
        load_feed(src, tmp_path / "f.db")
    assert not (tmp_path / "f.db").exists()


def test_zip_bomb_ratio_is_unsafe(tmp_path: Path) -> None:
    """A highly compressible member over the ratio limit is refused while inflating."""
    members = dict(GOOD)
    members["shapes.txt"] = (
        "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n" + "S,1,1,1\n" * 200_000
    )
    src = make_zip(tmp_path / "bomb.zip", members)
    limits = ZipLimits(max_ratio=20, ratio_min_bytes=64 * 1024)
    with pytest.raises(UnsafeArchiveError, match=r"'shapes.txt' has compression ratio"):
        load_feed(src, tmp_path / "f.db", limits=limits)


def test_total_uncompressed_limit_is_unsafe(tmp_path: Path) -> None:
    """The total inflated bytes are capped across the payload."""
    src = make_zip(tmp_path / "f.zip", GOOD)
    with pytest.raises(UnsafeArchiveError, match="max_total_bytes"):
        load_feed(src, tmp_path / "f.db", limits=ZipLimits(max_total_bytes=200))


def test_too_many_members_is_unsafe(tmp_path: Path) -> None:
    """More members than max_members is refused before anything is read."""
    src = make_zip(tmp_path / "f.zip", GOOD)
    with pytest.raises(UnsafeArchiveError, match="max_members 3"):
        load_feed(src, tmp_path / "f.db", limits=ZipLimits(max_members=3))


@pytest.mark.parametrize(
    "name", ["../evil.txt", "/etc/evil.txt", "a\\..\\evil.txt", "x/../../e.txt"]
)
def test_zip_slip_names_are_unsafe(tmp_path: Path, name: str) -> None:
    """Absolute, climbing or backslashed member names are refused as zip-slip."""
    members = dict(GOOD)
    members[name] = "x"
    src = make_zip(tmp_path / "slip.zip", members)
    with pytest.raises(UnsafeArchiveError, match="zip-slip"):
        load_feed(src, tmp_path / "f.db")


def test_nesting_too_deep_is_unsafe(tmp_path: Path) -> None:
    """A per-mode zip that itself holds a zip is refused."""
    innermost = make_zip(tmp_path / "in.zip", GOOD).read_bytes()
    inner = make_zip(tmp_path / "mid.zip", {**GOOD, "deeper.zip": innermost}).read_bytes()
    src = make_zip(tmp_path / "outer.zip", {"1/google_transit.zip": inner})
    with pytest.raises(UnsafeArchiveError, match="nesting deeper"):
        load_feed(src, tmp_path / "f.db")
    assert not list(tmp_path.glob(".gtfs-inner-*"))


def test_missing_required_column_skips_the_file(tmp_path: Path) -> None:
    """stops.txt without stop_id raises missing_required_column and loads no stops."""
    members = dict(GOOD)
    members["stops.txt"] = "stop_name,stop_lat,stop_lon\nOne,1,2\n"
    result = load_feed(make_zip(tmp_path / "f.zip", members), tmp_path / "f.db")
    assert counts(result)["missing_required_column"] == 1
    assert result.record_counts["stops"] == 0


def test_binary_junk_member_is_csv_parsing_failed(tmp_path: Path) -> None:
    """A member of binary junk becomes csv_parsing_failed and its table stays empty."""
    members = dict(GOOD)
    members["stops.txt"] = b"stop_id,stop_name\nS1,One\n" + b"\x00\xff\xfe" * 50
    result = load_feed(make_zip(tmp_path / "f.zip", members), tmp_path / "f.db")
    assert counts(result)["csv_parsing_failed"] == 1
    assert result.record_counts["stops"] == 0


def test_empty_member_is_empty_file(tmp_path: Path) -> None:
    """A zero-byte calendar_dates.txt is an empty_file notice, not a crash."""
    members = {**GOOD, "calendar_dates.txt": ""}
    result = load_feed(make_zip(tmp_path / "f.zip", members), tmp_path / "f.db")
    assert counts(result)["empty_file"] == 1


def test_quoted_values_and_bom_in_a_single_folder(tmp_path: Path) -> None:
    """A flat feed inside one top folder with a BOM and quoted commas/newlines loads; the
    newline is gtfs-validator's new_line_in_value ERROR, and its row still loads."""
    members: dict[str, str | bytes] = {f"feed/{k}": v for k, v in GOOD.items()}
    members["feed/stops.txt"] = (
        '\ufeffstop_id,stop_name,stop_lat,stop_lon,extra\r\n"S1","One, Two\nThree",1,2,x\r\n'
        '"S2","Two",1,2,y\r\n'
    )
    result = load_feed(make_zip(tmp_path / "f.zip", members), tmp_path / "f.db")
    assert result.report["error_count"] == 1
    assert counts(result)["new_line_in_value"] == 1
    assert result.record_counts["stops"] == 2
    assert counts(result)["unknown_column"] == 1
