"""``interlock query``: one read-only statement over every dataset, attached by name.

The datasets are real: the sample zip of zips loaded by the GTFS loader, and a station
patronage snapshot built (and joined to those stops) by the Data Vic builder.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from pathlib import Path

import pytest

from interlock.cli.main import main
from interlock.components.datavic.dataset import build
from interlock.components.datavic.parsers import STATION_COLUMNS, Parsed
from tests.test_dataset_schema import build_gtfs

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
