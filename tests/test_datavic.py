"""The Data Vic patronage components and their CKAN stand-in: cleaning the real files'
quirks, change detection, the GTFS join, and malformed inputs that must publish nothing."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from interlock.components.datavic.ckan import select
from interlock.components.datavic.csvclean import number, read_table
from interlock.components.datavic.dataset import gtfs_stop_index
from interlock.components.standins import GtfsScheduleSource, StandinServer
from interlock.components.standins.datavic import DatavicSource
from interlock.config.loader import parse_config
from interlock.errors import FetchError

pytestmark = pytest.mark.timeout(60)

CKAN = "/ckan/api/3/action/"
STATION = "annual-metropolitan-train-station-patronage-station-entries"
TEMPORAL = "monthly-average-patronage-by-day-type-and-by-mode"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234,550", 1234550),
        (" 50 ", 50),
        ("12.5", 12.5),
        ("-1,000", -1000),
        ("", None),
        ("-", None),
    ],
)
def test_numbers_lose_their_thousands_separators(text: str, expected: Any) -> None:
    """Quoted numbers with thousands separators become numbers; blanks become NULL."""
    assert number(text) == expected


@pytest.mark.parametrize("text", ["12a", "1,23", "1,2345", "one"])
def test_bad_numbers_are_refused(text: str) -> None:
    """Anything that is not a number (or a misplaced separator) is an error, not a guess."""
    with pytest.raises(ValueError, match="not a number"):
        number(text)


def test_bom_trailing_columns_and_junk_rows_are_cleaned(tmp_path: Path) -> None:
    """A BOM, empty trailing columns, blank rows and a footnote leave only the data rows."""
    path = tmp_path / "x.csv"
    path.write_bytes(
        b'\xef\xbb\xbfYear,Month,Metropolitan train,,\r\n2024,1,"16,809,932",,\r\n'
        b',,,,\r\n\r\n"Source: DTP",,,,\r\n'
    )
    table = read_table(path, label="x")
    assert table.header == ["year", "month", "metropolitan_train"]
    assert table.rows == [(2, ["2024", "1", "16,809,932"])] and table.junk_rows == 3


def test_html_page_is_not_read_as_csv(tmp_path: Path) -> None:
    """A portal's HTML error page is named as such."""
    path = tmp_path / "x.csv"
    path.write_bytes(b"\n<!DOCTYPE html><html><body>Maintenance</body></html>")
    with pytest.raises(FetchError, match="is an HTML page, not CSV"):
        read_table(path, label="resource 'x'")


def test_resources_latest_all_and_by_name() -> None:
    """'latest' is the newest CSV, 'all' every CSV, a list names them (or says which exist)."""
    package = {
        "resources": [
            {"name": "a", "format": "CSV", "url": "http://h/a.csv", "created": "2023-01-01"},
            {"name": "b", "format": "CSV", "url": "http://h/b.csv", "created": "2024-01-01"},
            {"name": "dict", "format": "PDF", "url": "http://h/d.pdf", "created": "2025-01-01"},
        ]
    }
    assert [r["name"] for r in select(package, "latest", "d")] == ["b"]
    assert [r["name"] for r in select(package, "all", "d")] == ["a", "b"]
    assert [r["name"] for r in select(package, ["a"], "d")] == ["a"]
    with pytest.raises(FetchError, match=r"no resource\(s\) \['c'\]; its resources: 'a', 'b'"):
        select(package, ["c"], "d")


def test_real_gtfs_stop_urls_give_the_ptv_station_join(tmp_path: Path, shared_data: Path) -> None:
    """In Transport Victoria's real stops.txt, PTV stop 1071 is Flinders Street (vic:rail:FSS)."""
    db = tmp_path / "gtfs.sqlite"
    with open(shared_data / "vic-gtfs-partial" / "2" / "stops.txt", encoding="utf-8-sig") as f:
        stops = list(csv.DictReader(f))
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE stops (stop_id TEXT, stop_url TEXT, parent_station TEXT)")
    conn.executemany(
        "INSERT INTO stops VALUES (?,?,?)",
        [(s["stop_id"], s["stop_url"], s["parent_station"]) for s in stops],
    )
    conn.commit()
    conn.close()
    index = gtfs_stop_index(db)
    assert index is not None
    ids, by_ptv = index
    assert by_ptv["1071"] == "vic:rail:FSS" and "11212" in ids


def make(tmp_path: Path, server: StandinServer, comps: dict[str, Any], **rules: Any) -> Any:
    components: dict[str, Any] = {}
    for name, spec in comps.items():
        if spec is None:
            src = {"ckan": {"base_url": server.url(CKAN), "dataset": "gtfs-schedule"}}
            settings = {"source": src, "allow_private_addresses": True}  # stand-ins: 127.0.0.1
            components[name] = {"frequency": "daily", "retries": 0, "settings": settings}
            continue
        dataset, resources = spec
        settings = {
            "ckan_url": server.url(CKAN),
            "dataset": dataset,
            "resources": resources,
            "allow_private_addresses": True,
        }
        deps = ["gtfs_schedule"] if "gtfs_schedule" in comps and "station" in name else []
        components[name] = {
            "frequency": "weekly",
            "retries": 0,
            "dependencies": deps,
            "skip_when_upstream_unchanged": False,
            "settings": settings,
        }
    doc = {
        "components": components,
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
        "data_quality": {
            "quarantine_failed_data": True,
            "default_rules": {
                "record_count_min": 10,
                "null_percentage_max": 5,
                "duplicate_percentage_max": 1,
                "schema_validation": True,
            }
            | rules,
        },
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def run(orch: Any, *names: str) -> dict[str, tuple[str, str | None]]:
    result = await asyncio.wait_for(orch.scheduler.run_once(list(names) or None), 30)
    return {n: (s.status.value, s.reason) for n, s in result.outcomes.items()}


async def test_station_years_with_header_variants_publish_and_join_gtfs(tmp_path, open_orch):
    """Every year's file (three header layouts) becomes one typed table joined to GTFS stops."""
    sources = [GtfsScheduleSource(), DatavicSource("station")]
    async with StandinServer(sources) as server:
        comps = {"gtfs_schedule": None, "datavic_station_patronage": (STATION, "all")}
        orch = await open_orch(make(tmp_path, server, comps))
        outcomes = await run(orch)
        await orch.bus.flush()
        (hist,) = await orch.store.history(component="datavic_station_patronage")
    assert outcomes["datavic_station_patronage"] == ("succeeded", None)
    db = tmp_path / "data" / "datavic_station_patronage.sqlite"
    years = rows(db, "SELECT fin_year, fin_year_start, count(*) FROM station_patronage GROUP BY 1")
    assert years == [("FY21-22", 2021, 33), ("FY22-23", 2022, 33), ("FY23-24", 2023, 33)]
    (fss,) = rows(
        db,
        "SELECT stop_name, pax_annual, pax_norm_weekday, stop_lat, gtfs_stop_id, gtfs_join "
        "FROM station_patronage WHERE stop_id = '1001' AND fin_year = 'FY23-24'",
    )
    assert fss[0] == "Flinders Street" and fss[1] == 18_540_000 and fss[2] == 63_050
    assert isinstance(fss[3], float) and fss[4:] == ("vic:rail:FSS", "stop_url")
    join = hist["quality"]["gtfs_join"]
    assert join["matched"] == 31 and join["stations"] == 33 and join["rate_percent"] == 93.94
    assert join["unmatched_examples"] == ["1074", "1186"]
    assert hist["quality"]["junk_rows_skipped"] == 3 * 4
    assert hist["quality"]["values_not_rounded_to_50"] == 0
    assert rows(db, "SELECT count(*) FROM resources") == [(3,)]


async def test_unchanged_metadata_touched_file_and_new_month(tmp_path, open_orch):
    """Same CKAN metadata skips the download; a touched file gets 304; a new month publishes."""
    source = DatavicSource("temporal")
    async with StandinServer([source]) as server:
        name = "datavic_temporal_patronage"
        orch = await open_orch(make(tmp_path, server, {name: (TEMPORAL, "latest")}))
        assert (await run(orch))[name] == ("succeeded", None)
        db = tmp_path / "data" / f"{name}.sqlite"
        first = rows(db, "SELECT count(*), max(year * 100 + month) FROM daily_average_patronage")
        status, reason = (await run(orch, name))[name]
        assert status == "unchanged" and reason.startswith("CKAN metadata unchanged")
        source.touch()
        status, reason = (await run(orch, name))[name]
        assert (status, reason) == (
            "unchanged",
            "payload SHA-256 unchanged since the last publish (decided by file_hash)",
        )
        csvs = [r for r in server.requests if r.path.endswith(".csv")]
        assert [r.status for r in csvs] == [200, 304]
        source.publish(2)
        assert (await run(orch, name))[name] == ("succeeded", None)
    after = rows(db, "SELECT count(*), max(year * 100 + month) FROM daily_average_patronage")
    assert first[0][1] == 202312 and after[0][1] == 202401 and after[0][0] > first[0][0]
    assert rows(db, "SELECT pax_daily FROM daily_average_patronage WHERE pax_daily % 50 != 0") == []


WRONG_COLUMNS = b"\xef\xbb\xbfWhen,What,How many\r\n2024,x,1\r\n"
JUNK_ONLY = (
    b"\xef\xbb\xbfYear,Month,Month_name,Day_of_week,Day_type,Mode,Pax_daily\r\n"
    b",,,,,,\r\n,,,,,,\r\nNote: nothing this month,,,,,,\r\n"
)


@pytest.mark.parametrize(
    ("breakage", "reason_part", "quarantined"),
    [
        ("wrong_columns", "lacks the required column(s) year, month", True),
        ("junk_only", "no data rows in 'Monthly average patronage", True),
        ("html", "is an HTML page, not CSV", True),
        ("forbidden", "answered 403 Forbidden", False),
        ("ckan_html", "did not return JSON", False),
    ],
)
async def test_malformed_input_publishes_nothing(
    tmp_path, open_orch, breakage, reason_part, quarantined
):
    """Wrong columns, junk rows only, an HTML page or a 403 fail clearly; old data stays."""
    source = DatavicSource("temporal")
    async with StandinServer([source]) as server:
        name = "datavic_temporal_patronage"
        orch = await open_orch(make(tmp_path, server, {name: (TEMPORAL, "latest")}))
        await run(orch)
        db = tmp_path / "data" / f"{name}.sqlite"
        before = digest(db)
        if breakage == "wrong_columns":
            source.publish_bytes(WRONG_COLUMNS)
        elif breakage == "junk_only":
            source.publish_bytes(JUNK_ONLY)
        elif breakage == "html":
            source.touch()
            server.faults.set("/datavic/", "wrong_content_type", times=None)
        elif breakage == "forbidden":
            source.touch()
            source.forbidden = True
        else:
            server.faults.set(CKAN, "wrong_content_type", times=None)
        status, reason = (await run(orch, name))[name]
    assert status == "failed" and reason_part in (reason or ""), reason
    assert digest(db) == before
    folder = tmp_path / "data" / "quarantine" / name
    assert folder.exists() == quarantined
    if quarantined:
        (entry,) = folder.iterdir()
        report = json.loads((entry / "report.json").read_text())
        assert reason_part in report["reason"]


async def test_quality_rule_failure_quarantines_and_keeps_live_data(tmp_path, open_orch):
    """Rows that fail the rules (a bad number) are quarantined with the report naming them."""
    source = DatavicSource("temporal")
    async with StandinServer([source]) as server:
        name = "datavic_temporal_patronage"
        orch = await open_orch(make(tmp_path, server, {name: (TEMPORAL, "latest")}))
        await run(orch)
        good = source.resource_names
        rows_ = [f'2024,1,January,Monday,Normal Weekday,Mode{i},"1,{i:03d}"' for i in range(20)]
        rows_.append("2024,1,January,Monday,Normal Weekday,Tram,12a")
        header = "Year,Month,Month_name,Day_of_week,Day_type,Mode,Pax_daily"
        source.publish_bytes("\r\n".join([header, *rows_]).encode())
        status, reason = (await run(orch, name))[name]
    assert good == ["Monthly average patronage by day type and by mode"]
    assert status == "failed" and "schema_validation: measured 1" in reason
    assert "bad_number" in reason
