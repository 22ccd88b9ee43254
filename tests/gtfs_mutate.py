"""Small valid GTFS feeds, one mutation at a time, counted by us and by the gtfs-guru oracle.

A case changes a file or two of :data:`BASE` and says which notice counts it must give;
the differential check then wants every code we implement counted as the oracle
counts it, except where a case records that the oracle departs from MobilityData's
Java gtfs-validator (which we follow).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from interlock.components.gtfs_schedule.loader import FeedLoadResult, load_feed
from interlock.components.gtfs_schedule.notices import SEVERITIES

ORACLE_DATE = "2025-12-12"

BASE: dict[str, str] = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n"
    "A,Agency,http://a.example,Australia/Melbourne\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,One,-37.1,144.1\nS2,Two,-37.2,144.2\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type,route_color\n"
    "R1,A,1,,3,FF0000\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,C1,T1\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,"
    "shape_dist_traveled\nT1,08:00:00,08:00:00,S1,1,0\nT1,08:10:00,08:10:00,S2,2,1.5\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
    "start_date,end_date\nC1,1,1,1,1,1,0,0,20250101,20261231\n",
}


@dataclass(frozen=True)
class Case:
    """One mutation of :data:`BASE` and the counts it must give (0: must not raise)."""

    name: str
    files: dict[str, str | None]
    expect: dict[str, int]
    # code -> gtfs-guru's count where it departs from the Java validator; for such a
    # code ``expect`` holds the Java validator's count (every such code must be in it).
    oracle_differs: dict[str, int] = field(default_factory=dict)
    why: str = ""


def replace(name: str, old: str, new: str) -> dict[str, str | None]:
    """BASE's ``name`` with ``old`` replaced once by ``new``."""
    assert BASE[name].count(old) == 1, (name, old)
    return {name: BASE[name].replace(old, new)}


def write_feed(tmp: Path, files: dict[str, str | None], stem: str = "feed") -> Path:
    merged: dict[str, str | None] = {**BASE, **files}
    path = tmp / f"{stem}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in merged.items():
            if body is not None:
                zf.writestr(name, body)
    return path


def ours(feed: Path, tmp: Path) -> tuple[dict[str, int], FeedLoadResult]:
    result = load_feed(feed, tmp / f"{feed.stem}.db", today=date.fromisoformat(ORACLE_DATE))
    counts = result.report["counts"]
    assert isinstance(counts, dict)
    return {code: c["count"] for code, c in counts.items()}, result


def oracle(feed: Path, tmp: Path) -> dict[str, int]:
    """Every code gtfs-guru reports on ``feed`` and its count."""
    import gtfs_guru  # the test extra; callers importorskip it first

    out = tmp / f"{feed.stem}-oracle.json"
    gtfs_guru.validate(str(feed), date=ORACLE_DATE).save_json(str(out))
    return {n["code"]: n["totalNotices"] for n in json.loads(out.read_text())["notices"]}


def check(case: Case, tmp: Path) -> FeedLoadResult:
    """Assert the case's own counts, then agreement with the oracle code by code."""
    feed = write_feed(tmp, case.files, case.name)
    mine, result = ours(feed, tmp)
    got = {code: mine.get(code, 0) for code in case.expect}
    assert got == case.expect, f"{case.name}: our counts"
    everything = oracle(feed, tmp)
    theirs = {c: n for c, n in everything.items() if c in SEVERITIES}
    for code, count in case.oracle_differs.items():
        # The recorded difference still holds (else the case should drop it) ...
        assert everything.get(code, 0) == count, f"{case.name}: gtfs-guru's {code} changed"
        # ... and for that code the Java validator's count, which we give, stands.
        theirs[code] = case.expect[code]
    theirs = {c: n for c, n in theirs.items() if n}
    why = case.why or "no known difference"
    assert mine == theirs, f"{case.name} ({why}): ours {mine}, gtfs-guru {everything}"
    return result
