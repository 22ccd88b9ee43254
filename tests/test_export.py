"""``interlock export``: every dataset as Parquet (typed) or CSV, switched in atomically.

The datasets are the demo's, built by the whole pipeline against the stand-ins; they are
read back with pyarrow and compared value by value (NULLs included) with sqlite3's rows.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import structlog

from interlock import secrets
from interlock.cli.demo import run_demo
from interlock.cli.main import main
from interlock.cli.schema import databases
from interlock.components.standins import build_zip_of_zips
from interlock.errors import ExportError
from interlock.kit.export import MANIFEST, arrow_type, export_dataset
from interlock.kit.tables import Database, Table, col

pytestmark = pytest.mark.timeout(60)

DATASETS = [
    "gtfs_schedule",
    "gtfs_realtime",
    "ptv_timetable",
    "datavic_station_patronage",
    "datavic_temporal_patronage",
]

#: A small dataset with every SQLite type, NULLs, and text that CSV must quote.
TINY = Database(
    "tiny",
    "A test dataset.",
    "tiny.sqlite",
    (
        Table(
            "things",
            "One thing a row.",
            (
                col("id", "INTEGER", "Key.", null=False),
                col("name", "TEXT", "A name."),
                col("weight", "REAL", "Kilograms.", "kg"),
                col("seen", "INTEGER", "When.", "epoch seconds (UTC)"),
                col("raw", "BLOB", "Bytes."),
            ),
        ),
    ),
    0,
)
TINY_ROWS = [
    (1, 'a "quoted", comma', 1.5, 1_700_000_000, b"\x00\x01"),
    (2, "line\nbreak", None, None, None),
    (3, None, -0.25, 0, b""),
]


@pytest.fixture(autouse=True)
def _forget_cli_logging() -> Any:
    """main() points logging at this test's captured stderr; the next test must not use it."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's data folder: every built-in dataset, published by real runs."""
    root = tmp_path_factory.mktemp("demo")
    before = secrets.known_secrets()
    try:
        assert run_demo(root) == 0
    finally:
        secrets.forget_all_but(before)  # the demo's credentials must not mask other tests
        structlog.reset_defaults()
    return root / "data"


def make_tiny(path: Path, rows: list[tuple[Any, ...]] = TINY_ROWS) -> Path:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE things (id INTEGER NOT NULL, name TEXT, weight REAL, seen INTEGER, raw BLOB)"
    )
    conn.executemany("INSERT INTO things VALUES (?,?,?,?,?)", rows)
    conn.commit()
    conn.close()
    return path


def sqlite_rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(f'SELECT * FROM "{table}"').fetchall()
    finally:
        conn.close()


def plain(value: Any) -> Any:
    """An Arrow value as sqlite3 gives it: timestamps back to epoch seconds."""
    return int(value.timestamp()) if isinstance(value, datetime) else value


def test_parquet_round_trips_every_column_of_every_dataset(demo_data: Path, tmp_path: Path) -> None:
    """Each table's file has the declared Arrow types and exactly sqlite3's values."""
    decls = databases()
    seen_types: set[str] = set()
    nulls = 0
    for name in DATASETS:
        result = export_dataset(demo_data / f"{name}.sqlite", decls[name], tmp_path, name=name)
        for table, count in result.tables.items():
            got = pq.read_table(tmp_path / name / f"{table}.parquet")
            decl = decls[name].table(table)
            assert got.schema.names == [c.name for c in decl.columns]
            assert [f.type for f in got.schema] == [arrow_type(c) for c in decl.columns]
            seen_types |= {str(f.type) for f in got.schema}
            back = [tuple(plain(v) for v in row.values()) for row in got.to_pylist()]
            want = sqlite_rows(demo_data / f"{name}.sqlite", table)
            assert back == want, (name, table)
            assert count == len(want)
            nulls += sum(v is None for row in want for v in row)
    assert {"int64", "double", "string", "timestamp[ms, tz=UTC]"} <= seen_types
    assert nulls > 0


def test_every_sqlite_type_and_null_round_trips(tmp_path: Path) -> None:
    """INTEGER, REAL, TEXT, BLOB and epoch seconds, NULLs among them, come back as stored."""
    db = make_tiny(tmp_path / "tiny.sqlite")
    export_dataset(db, TINY, tmp_path / "out")
    got = pq.read_table(tmp_path / "out" / "tiny" / "things.parquet")
    assert str(got.schema.field("seen").type) == "timestamp[ms, tz=UTC]"
    assert got.schema.field("raw").type == pa.binary()
    assert [tuple(plain(v) for v in r.values()) for r in got.to_pylist()] == TINY_ROWS


def test_export_files_are_readable_by_the_group_only(tmp_path: Path) -> None:
    """Whatever the umask, an export is at most 0750 and its files 0640, as datasets are."""
    db = make_tiny(tmp_path / "tiny.sqlite")
    old = os.umask(0)
    try:
        result = export_dataset(db, TINY, tmp_path / "out", "csv")
    finally:
        os.umask(old)
    assert result.folder.stat().st_mode & 0o777 == 0o750
    assert {p.stat().st_mode & 0o777 for p in result.folder.iterdir()} == {0o640}


def test_csv_has_a_header_and_quotes_what_needs_it(tmp_path: Path) -> None:
    """Commas, quotes and newlines survive a CSV reader; NULL is an empty field."""
    db = make_tiny(tmp_path / "tiny.sqlite", [(*r[:4], None) for r in TINY_ROWS])
    assert main(["export", "tiny", "--data-dir", str(tmp_path), "--format", "csv"]) == 0
    path = tmp_path / "export" / "tiny" / "things.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "name", "weight", "seen", "raw"]
    assert rows[1] == ["1", 'a "quoted", comma', "1.5", "1700000000", ""]
    assert rows[2] == ["2", "line\nbreak", "", "", ""]
    assert '"a ""quoted"", comma"' in path.read_text()
    assert db.is_file()


def test_a_value_that_does_not_fit_its_type_is_named(tmp_path: Path) -> None:
    """Text in an INTEGER column: ExportError naming table, column and value; no folder left."""
    db = make_tiny(tmp_path / "tiny.sqlite", [(1, "x", 1.0, "soon", None)])
    with pytest.raises(ExportError, match=r"'things' column 'seen'.*'soon'"):
        export_dataset(db, TINY, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_a_reader_holding_an_export_sees_one_whole_file_set(tmp_path: Path) -> None:
    """A reader that resolved the folder reads the old set to the end while a new one lands."""
    db = make_tiny(tmp_path / "tiny.sqlite")
    two = Database(
        "tiny", "", "tiny.sqlite", (*TINY.tables, Table("other", "", TINY.tables[0].columns)), 0
    )
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE other AS SELECT * FROM things")
    conn.commit()
    out = tmp_path / "out"
    export_dataset(db, two, out)
    reader = Path(os.path.realpath(out / "tiny"))  # what a reader opened
    assert pq.read_table(reader / "other.parquet").num_rows == 3

    conn.execute("INSERT INTO things SELECT id + 10, name, weight, seen, raw FROM things")
    conn.execute("INSERT INTO other SELECT id + 10, name, weight, seen, raw FROM other")
    conn.commit()
    conn.close()
    during: list[int] = []

    def halfway(table: str, rows: int) -> None:
        # Mid-export, the published name still shows the old set only.
        during.append(pq.read_table(out / "tiny" / f"{table}.parquet").num_rows)

    export_dataset(db, two, out, after_table=halfway)
    assert during == [3, 3]
    assert pq.read_table(reader / "things.parquet").num_rows == 3  # the old set, still whole
    assert json.loads((reader / MANIFEST).read_text())["tables"] == {"other": 3, "things": 3}
    assert pq.read_table(out / "tiny" / "things.parquet").num_rows == 6
    export_dataset(db, two, out)  # the third export drops the first set, keeps the previous
    assert not reader.exists()
    assert len([p for p in out.iterdir() if p.name.startswith(".tiny@")]) == 2


HIDE_PYARROW = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("pyarrow hidden by the test")
        return None
sys.meta_path.insert(0, Refuse())
from interlock.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path) -> None:
    """pyarrow unimportable: exit 2, the pip command named, no traceback; CSV still works."""
    make_tiny(tmp_path / "tiny.sqlite")
    args = [sys.executable, "-c", HIDE_PYARROW, "export", "tiny", "--data-dir", str(tmp_path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "pip install 'interlock[parquet]'" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run([*args, "--format", "csv"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_an_unknown_dataset_names_the_known_ones(
    demo_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo: exit 2, the known datasets listed."""
    assert main(["export", "gtfs_schedul", "--data-dir", str(demo_data)]) == 2
    assert "gtfs_schedule" in capsys.readouterr().err


def gtfs_with_export(tmp_path: Path, export: dict[str, Any]) -> dict[str, Any]:
    feed = tmp_path / "feed.zip"
    feed.write_bytes(build_zip_of_zips())
    return {
        "frequency": "daily",
        "retries": 0,
        "settings": {"source": {"path": str(feed)}},
        "export": export,
    }


async def test_the_export_setting_writes_parquet_after_each_publish(
    tmp_path: Path, make_config: Any, open_orch: Any
) -> None:
    """A publish is followed by its Parquet copy; the run's metrics say where."""
    config = make_config({"gtfs_schedule": gtfs_with_export(tmp_path, {"format": "parquet"})})
    orch = await open_orch(config)
    result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
    assert result.outcomes["gtfs_schedule"].status.value == "succeeded"
    stops = pq.read_table(tmp_path / "data" / "export" / "gtfs_schedule" / "stops.parquet")
    assert stops.num_rows == len(sqlite_rows(tmp_path / "data" / "gtfs_schedule.sqlite", "stops"))
    await orch.bus.flush()
    (hist,) = await orch.store.history(component="gtfs_schedule")
    assert hist["metrics"]["export"]["tables"]["stops"] == stops.num_rows


async def test_a_failed_export_never_fails_the_run(
    tmp_path: Path, make_config: Any, open_orch: Any
) -> None:
    """The export folder cannot be made: the run still succeeds, its metrics name the error."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the export folder should be")
    entry = gtfs_with_export(tmp_path, {"format": "csv", "dir": str(blocker)})
    orch = await open_orch(make_config({"gtfs_schedule": entry}))
    result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
    assert result.outcomes["gtfs_schedule"].status.value == "succeeded"
    assert (tmp_path / "data" / "gtfs_schedule.sqlite").is_file()
    await orch.bus.flush()
    (hist,) = await orch.store.history(component="gtfs_schedule")
    assert str(blocker) in hist["metrics"]["export"]["error"]


def test_an_export_setting_with_an_unknown_format_is_a_config_error(
    tmp_path: Path, make_config: Any
) -> None:
    """An export format of "xlsx" is refused by the config check, naming the allowed ones."""
    from interlock.errors import ConfigError

    with pytest.raises(ConfigError, match=r"(?s)export.*xlsx.*parquet"):
        make_config({"gtfs_schedule": gtfs_with_export(tmp_path, {"format": "xlsx"})})


def test_export_finds_a_configured_component_through_its_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config: the component's dataset in the config's data_dir, typed by its class."""
    doc = {
        "components": {"gtfs_schedule": gtfs_with_export(tmp_path, {"format": "csv"})},
        "runtime_settings": {"state_dir": str(tmp_path / "s"), "data_dir": str(tmp_path / "d")},
    }
    doc["components"]["gtfs_schedule"].pop("export")
    path = tmp_path / "orchestration.json"
    path.write_text(json.dumps(doc))
    assert main(["run", "--config", str(path), "--log-level", "error"]) == 0
    capsys.readouterr()
    assert main(["export", "gtfs_schedule", "--config", str(path), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["path"] == str(tmp_path / "d" / "export" / "gtfs_schedule")
    stops = pq.read_table(tmp_path / "d" / "export" / "gtfs_schedule" / "stops.parquet")
    assert written["tables"]["stops"] == stops.num_rows > 0
