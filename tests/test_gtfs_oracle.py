"""Differential tests: our notice counts must equal the gtfs-guru oracle's, code by code."""

from __future__ import annotations

import json
import zipfile
from datetime import date
from pathlib import Path

import pytest

from interlock.components.gtfs_schedule.loader import load_feed
from interlock.components.gtfs_schedule.notices import SEVERITIES

gtfs_guru = pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

# A small feed with one or two of each row-level problem, in files that otherwise
# parse, so the oracle's skip rules for unparsable tables come into play too.
CRAFTED: dict[str, str] = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Ag,http://a.example,UTC\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,One,1.0,2.0\n\nS2,Two,abc,2.0\n"
    "S3,Three,95,2\nS1,Dup,1,2\nS4,Four,1,2,extra\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type,route_color\n"
    "R1,A,1,,3,GGGGGG\nR2,B,2,,3,FFFFFF\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,C1,T1\n,C1,T4\nR1,C1,T5\nR1,C1,T2\nR1,C1,T3\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,"
    "shape_dist_traveled\nT1,08:00:00,08:00:00,S1,1,\nT1,07:59:00,08:01:00,S2,2,\n"
    "T1,,,S3,3,\nT1,07:00:00,07:00:00,S9,4,\nT1,8:00,25:61:00,S1,5,\n"
    "T2,08:00:00,08:00:00,S1,1,\nT2,08:00:00,08:00:00,S1,1,\nT5,08:00:00,08:00:00,S1,1,\n"
    "T5,08:10:00,08:10:00,S2,3,\nT5,07:10:00,07:10:00,S2,2,\nT3,08:00:00,08:00:00,S1,1,-2\n"
    "T3,07:00:00,07:00:00,S1,2,x\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
    "start_date,end_date\nC1,1,1,1,1,1,0,0,20250101,20261301\n"
    "C2,1,1,1,1,1,0,0,2025-01-01,20261231\n",
    "calendar_dates.txt": "",
}


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """The shared real-data directory, or a skip when this checkout lacks it."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path}")
    return path


def oracle_counts(feed: Path, tmp: Path) -> dict[str, tuple[str, int]]:
    """code -> (severity, count) from gtfs-guru, for the codes we implement."""
    out = tmp / f"{feed.stem}-oracle.json"
    gtfs_guru.validate(str(feed), date="2025-12-12").save_json(str(out))
    notices = json.loads(out.read_text())["notices"]
    return {
        n["code"]: (n["severity"], n["totalNotices"]) for n in notices if n["code"] in SEVERITIES
    }


def our_counts(feed: Path, tmp: Path, modes: list[str] | None = None) -> dict[str, tuple[str, int]]:
    """code -> (severity, count) from load_feed."""
    db = tmp / f"{feed.stem}-{'-'.join(modes or [])}.db"
    # The date the oracle is given, so that expiry notices judge by the same day.
    result = load_feed(feed, db, modes=modes, today=date(2025, 12, 12))
    counts = result.report["counts"]
    assert isinstance(counts, dict)
    return {code: (c["severity"], c["count"]) for code, c in counts.items()}


def build_mode_zips(data_dir: Path, tmp: Path) -> tuple[Path, dict[str, Path]]:
    """The per-mode inner zips of vic-gtfs-partial 1 and 2, and a zip of zips holding them."""
    inner: dict[str, Path] = {}
    for mode in ("1", "2"):
        inner[mode] = tmp / f"vic-mode-{mode}.zip"
        with zipfile.ZipFile(inner[mode], "w", zipfile.ZIP_DEFLATED) as zf:
            for txt in sorted((data_dir / "vic-gtfs-partial" / mode).glob("*.txt")):
                zf.write(txt, txt.name)
    outer = tmp / "vic.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as zf:
        for mode, path in inner.items():
            zf.write(path, f"{mode}/google_transit.zip")
    return outer, inner


@pytest.mark.parametrize("name", ["caltrain-20160406.zip", "sample-feed-1.zip", "bad-gtfs.zip"])
def test_shared_feed_matches_oracle(data_dir: Path, tmp_path: Path, name: str) -> None:
    """Every implemented code has the oracle's count and severity on a shared feed."""
    feed = data_dir / "gtfs" / name
    assert our_counts(feed, tmp_path) == oracle_counts(feed, tmp_path)


def test_known_oracle_figures(data_dir: Path, tmp_path: Path) -> None:
    """The figures the data README quotes hold for our loader too."""
    gtfs = data_dir / "gtfs"
    assert our_counts(gtfs / "bad-gtfs.zip", tmp_path)["missing_required_file"] == ("ERROR", 5)
    sample = our_counts(gtfs / "sample-feed-1.zip", tmp_path)
    assert sample["invalid_row_length"] == ("ERROR", 13)
    caltrain = our_counts(gtfs / "caltrain-20160406.zip", tmp_path)
    assert not [code for code, (sev, _) in caltrain.items() if sev == "ERROR"]


def all_oracle_codes(feed: Path, tmp: Path) -> dict[str, str]:
    """Every code gtfs-guru raises on ``feed`` and its severity."""
    out = tmp / f"{feed.stem}-all.json"
    gtfs_guru.validate(str(feed), date="2025-12-12").save_json(str(out))
    return {n["code"]: n["severity"] for n in json.loads(out.read_text())["notices"]}


def test_every_shared_feed_warning_is_implemented(data_dir: Path, tmp_path: Path) -> None:
    """Each WARNING and INFO gtfs-guru raises on a shared feed is a code we implement
    (and so, by the tests above, count as it does)."""
    _, inner = build_mode_zips(data_dir, tmp_path)
    feeds = [data_dir / "gtfs" / n for n in ("caltrain-20160406.zip", "sample-feed-1.zip")]
    for feed in [*feeds, data_dir / "gtfs" / "bad-gtfs.zip", *inner.values()]:
        raised = all_oracle_codes(feed, tmp_path)
        missing = sorted(c for c, sev in raised.items() if sev != "ERROR" and c not in SEVERITIES)
        assert not missing, f"{feed.name}: {missing}"


def test_known_warning_figures(data_dir: Path, tmp_path: Path) -> None:
    """WARNING figures of the shared feeds, as gtfs-guru gives them on 2025-12-12."""
    caltrain = our_counts(data_dir / "gtfs" / "caltrain-20160406.zip", tmp_path)
    assert caltrain["stops_match_shape_out_of_order"] == ("WARNING", 2)
    assert caltrain["mixed_case_recommended_field"] == ("WARNING", 218)
    assert caltrain["expired_calendar"] == ("WARNING", 3)
    outer, _ = build_mode_zips(data_dir, tmp_path)
    vic = our_counts(outer, tmp_path)
    assert vic["pathway_dangling_generic_node"] == ("WARNING", 9 + 158)
    assert vic["unexpected_enum_value"] == ("WARNING", 35)


def test_vic_pathways_are_checked(data_dir: Path, tmp_path: Path) -> None:
    """Victoria's real stations carry the 85 unreachable pathway locations gtfs-guru finds
    (10 in regional train, 75 in metro train), as ERRORs."""
    outer, _ = build_mode_zips(data_dir, tmp_path)
    found = our_counts(outer, tmp_path)
    assert found["pathway_unreachable_location"] == ("ERROR", 85)


@pytest.mark.parametrize("mode", ["1", "2"])
def test_vic_mode_matches_oracle(data_dir: Path, tmp_path: Path, mode: str) -> None:
    """Each mode of a zip of zips counts what the oracle counts on that mode's own zip."""
    outer, inner = build_mode_zips(data_dir, tmp_path)
    assert our_counts(outer, tmp_path, [mode]) == oracle_counts(inner[mode], tmp_path)


def test_crafted_feed_matches_oracle(tmp_path: Path) -> None:
    """A feed with one of each row-level problem matches the oracle code by code."""
    feed = tmp_path / "crafted.zip"
    with zipfile.ZipFile(feed, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in CRAFTED.items():
            zf.writestr(name, body)
    assert our_counts(feed, tmp_path) == oracle_counts(feed, tmp_path)
