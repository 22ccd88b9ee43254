"""``interlock query``: one read-only statement over every dataset, attached by name.

The datasets are real: the sample zip of zips loaded by the GTFS loader, and a station
patronage snapshot built (and joined to those stops) by the Data Vic builder.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import structlog

from interlock.cli.main import main
from interlock.components.datavic.dataset import build
from interlock.components.datavic.parsers import STATION_COLUMNS, Parsed
from tests.test_dataset_schema import build_gtfs


@pytest.fixture(autouse=True)
def _forget_cli_logging() -> Iterator[None]:
    """main() points logging at this test's captured stderr; the next test must not use it."""
    yield
    structlog.reset_defaults()


JOIN = (
    "SELECT p.stop_name, p.pax_annual, s.stop_name AS gtfs_name "
    "FROM datavic_station_patronage.station_patronage p "
    "JOIN gtfs_schedule.stops s ON s.stop_id = p.gtfs_stop_id "
    "ORDER BY p.pax_annual DESC"
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding a gtfs_schedule and a datavic_station_patronage dataset."""
    data = tmp_path_factory.mktemp("data")
    gtfs = build_gtfs(data / "gtfs_schedule.sqlite")
    parsed = Parsed(table="station_patronage", columns=STATION_COLUMNS, key=("fin_year", "stop_id"))
    for stop_id, name, pax in (("20001", "Southern Cross", 900), ("20003", "Flagstaff", 400)):
        parsed.rows.append(("FY23-24", 2023, stop_id, name, None, None, pax, *[None] * 10, "r"))
    parsed.rows.append(("FY23-24", 2023, "99999", "Nowhere", None, None, 5, *[None] * 10, "r"))
    build(
        data / "datavic_station_patronage.sqlite",
        parsed,
        [],
        {},
        gtfs=gtfs,
        join=True,
        cancel=threading.Event(),
    )
    (data / "gtfs_schedule.zip").unlink()
    return data


def _digests(data: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data.iterdir())}


def test_a_query_joins_two_datasets_as_csv(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Patronage joined to GTFS stops in one statement, as CSV with a header row."""
    assert main(["query", JOIN, "--data-dir", str(data_dir), "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["stop_name", "pax_annual", "gtfs_name"]
    assert [r[:2] for r in rows[1:]] == [["Southern Cross", "900"], ["Flagstaff", "400"]]
    assert all(r[2] for r in rows[1:])


def test_a_query_streams_json_objects_and_honours_the_limit(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json gives one object per row, typed as stored; --limit stops early."""
    assert main(["query", JOIN, "--data-dir", str(data_dir), "--json", "--limit", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1
    assert rows[0]["stop_name"] == "Southern Cross" and rows[0]["pax_annual"] == 900


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM gtfs_schedule.stops",
        "UPDATE stops SET stop_name = 'x'",
        "CREATE TEMP TABLE t AS SELECT 1",
        "ATTACH DATABASE '/tmp/x.sqlite' AS x",
        "PRAGMA gtfs_schedule.user_version = 7",
        "DROP TABLE gtfs_schedule.stops",
    ],
)
def test_a_write_is_refused_and_nothing_changes(
    data_dir: Path, capsys: pytest.CaptureFixture[str], sql: str
) -> None:
    """Writes, ATTACH and PRAGMA writes exit 2 with a read-only message; the files are unchanged."""
    before = _digests(data_dir)
    assert main(["query", sql, "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "read-only" in err and "Traceback" not in err
    assert _digests(data_dir) == before


def test_bad_sql_is_a_clear_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A syntax error exits 2 quoting the statement, with no traceback."""
    assert main(["query", "SELEC stop_id FROM stops", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "'SELEC stop_id FROM stops'" in err and "Traceback" not in err


def test_schema_pragmas_may_be_read(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Describing a table and reading a version are reads, and allowed."""
    args = ["--data-dir", str(data_dir), "--csv"]
    assert main(["query", "PRAGMA gtfs_schedule.user_version", *args]) == 0
    assert capsys.readouterr().out.splitlines() == ["user_version", "1"]
    assert main(["query", "PRAGMA table_info(station_patronage)", *args]) == 0
    assert "gtfs_stop_id" in capsys.readouterr().out


def test_an_empty_data_dir_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No datasets to attach: exit 2 naming the directory."""
    assert main(["query", "SELECT 1", "--data-dir", str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err


def _example(db: str, view: str) -> str:
    from interlock.cli.schema import databases

    return next(v.example for v in databases()[db].views if v.name == view)


def test_the_departures_example_gives_the_timetable(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented departures query lists the day's first departures from the platform."""
    sql = _example("gtfs_schedule", "departures")
    assert main(["query", sql, "--data-dir", str(data_dir), "--csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "departure_local,route_short_name,trip_headsign",
        "2026-01-26 09:00:00,Ballarat,Ballarat",
        "2026-01-26 09:00:00,Geelong,Geelong",
        "2026-01-26 13:00:00,Ballarat,Ballarat",
    ]


def test_departures_follow_the_calendar_and_pass_midnight(data_dir: Path) -> None:
    """A removed date has no departures of its service; a 24:04 departure falls on the next day."""
    conn = sqlite3.connect(f"{(data_dir / 'gtfs_schedule.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        removed = conn.execute(
            "SELECT mode, service_id, date FROM calendar_dates WHERE exception_type = 2 LIMIT 1"
        ).fetchone()
        runs = conn.execute(
            "SELECT count(*) FROM service_days WHERE mode = ? AND service_id = ? AND date = ?",
            removed,
        ).fetchone()
        assert runs == (0,)
        late = conn.execute(
            "SELECT service_date, departure_time, departure_secs, departure_local FROM departures "
            "WHERE departure_secs >= 86400 ORDER BY service_date LIMIT 1"
        ).fetchone()
        day = late[0]
        assert late[2] == 86400 + 4 * 60 and late[1] == "24:04:00"
        next_day = (date(int(day[:4]), int(day[4:6]), int(day[6:])) + timedelta(days=1)).isoformat()
        assert late[3] == f"{next_day} 00:04:00"
    finally:
        conn.close()


def test_the_station_patronage_example_joins_gtfs_stations(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented patronage view query gives each station its GTFS station, or none."""
    sql = _example("datavic_station_patronage", "station_patronage_stops")
    assert main(["query", sql, "--data-dir", str(data_dir), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["stop_name"], r["pax_annual"], r["gtfs_stop_id"]) for r in rows] == [
        ("Southern Cross", 900, "20001"),
        ("Flagstaff", 400, "20003"),
        ("Nowhere", 5, None),
    ]
    assert (
        rows[0]["gtfs_stop_name"] == "Southern Cross Station" and rows[2]["gtfs_stop_name"] is None
    )


def test_the_config_names_the_datasets(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --config, the config's components in its data_dir are attached by their names."""
    entry = {"class": "tests.testcomponents:Publishes", "frequency": "1h"}
    config = tmp_path / "orchestration.json"
    config.write_text(
        json.dumps(
            {
                "components": {"gtfs_schedule": entry, "unbuilt": entry},
                "runtime_settings": {
                    "state_dir": str(tmp_path / "state"),
                    "data_dir": str(data_dir),
                },
            }
        )
    )
    assert main(["query", "PRAGMA database_list", "--config", str(config), "--csv"]) == 0
    names = [line.split(",")[1] for line in capsys.readouterr().out.splitlines()[1:]]
    assert names == ["main", "gtfs_schedule"]  # not the patronage file, nor the unbuilt one
