"""Tests for loading real GTFS feeds into SQLite with components.gtfs.loader."""

from __future__ import annotations

import sqlite3
import threading
import zipfile
from pathlib import Path

import pytest

from interlock.components.gtfs_schedule.loader import FeedLoadResult, load_feed
from interlock.errors import WorkCancelledError

STATS_KEYS = {
    "records",
    "checked_cells",
    "null_cells",
    "keyed_rows",
    "duplicate_rows",
    "error_notices",
    "warning_notices",
}


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """The shared real-data directory, or a skip when this checkout lacks it."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path}")
    return path


def build_vic_zip(data_dir: Path, dest: Path) -> Path:
    """Build a Transport-Victoria-style zip of zips from vic-gtfs-partial folders 1 and 2."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as outer:
        for mode in ("1", "2"):
            inner = dest.parent / f"inner-{mode}.zip"
            with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
                for txt in sorted((data_dir / "vic-gtfs-partial" / mode).glob("*.txt")):
                    zf.write(txt, txt.name)
            outer.write(inner, f"{mode}/google_transit.zip")
            inner.unlink()
    return dest


def counts(result: FeedLoadResult) -> dict[str, int]:
    return {code: c["count"] for code, c in result.report["counts"].items()}  # type: ignore[union-attr]


def test_caltrain_loads_typed_tables_without_errors(data_dir: Path, tmp_path: Path) -> None:
    """Caltrain loads every file into typed tables and raises no ERROR notice."""
    db = tmp_path / "cal.db"
    result = load_feed(data_dir / "gtfs" / "caltrain-20160406.zip", db)
    assert result.report["error_count"] == 0
    assert result.record_counts["stop_times"] > 2000
    assert result.total_records == sum(result.record_counts.values())
    assert set(result.stats) == STATS_KEYS
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT typeof(stop_sequence), arrival_time, arrival_time_secs FROM stop_times "
            "WHERE trip_id = '23a' ORDER BY stop_sequence LIMIT 1"
        ).fetchone()
        assert row == ("integer", "07:33:00", 7 * 3600 + 33 * 60)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"stop_times_pk", "stop_times_stop_id", "trips_route_id"} <= names


def test_sample_feed_short_rows_are_invalid_row_length(data_dir: Path, tmp_path: Path) -> None:
    """The GTFS reference feed's 13 short stop_times rows are dropped as invalid_row_length."""
    result = load_feed(data_dir / "gtfs" / "sample-feed-1.zip", tmp_path / "s.db")
    assert counts(result)["invalid_row_length"] == 13
    first = next(n for n in result.report["notices"] if n["code"] == "invalid_row_length")  # type: ignore[union-attr]
    assert first == {
        "code": "invalid_row_length",
        "severity": "ERROR",
        "file": "stop_times.txt",
        "row": 17,
        "field": None,
        "value": 5,
    }


def test_bad_gtfs_reports_missing_files(data_dir: Path, tmp_path: Path) -> None:
    """A feed of only bad_*.txt files reports the five required files and the calendar."""
    result = load_feed(data_dir / "gtfs" / "bad-gtfs.zip", tmp_path / "b.db")
    c = counts(result)
    assert c["missing_required_file"] == 5
    assert c["missing_calendar_and_calendar_date_files"] == 1
    assert result.total_records == 0


def test_vic_zip_of_zips_gets_mode_column(data_dir: Path, tmp_path: Path) -> None:
    """A zip of per-mode zips loads each mode with a mode column, BOMs and route_type 400."""
    src = build_vic_zip(data_dir, tmp_path / "vic.zip")
    db = tmp_path / "vic.db"
    result = load_feed(src, db)
    assert result.modes_loaded == ["1", "2"]
    with sqlite3.connect(db) as conn:
        modes = dict(conn.execute("SELECT mode, count(*) FROM routes GROUP BY mode").fetchall())
        assert modes == {"1": 13, "2": 35}
        assert conn.execute(
            "SELECT count(*) FROM routes WHERE mode = '2' AND route_type = 400"
        ).fetchone() == (35,)
        # The BOM must not leak into the first column's name.
        assert conn.execute(
            "SELECT count(*) FROM calendar WHERE service_id IS NULL"
        ).fetchone() == (0,)
    assert result.stats["duplicate_rows"] == 267
    assert result.record_counts["trips"] == 9496 - 267
    assert not list(tmp_path.glob(".gtfs-inner-*"))


def test_vic_mode_selection_loads_only_chosen_modes(data_dir: Path, tmp_path: Path) -> None:
    """Passing modes=['2'] loads only the metro train folder."""
    src = build_vic_zip(data_dir, tmp_path / "vic.zip")
    result = load_feed(src, tmp_path / "vic.db", modes=["2"])
    assert result.modes_loaded == ["2"]
    assert result.record_counts["trips"] == 0
    assert result.record_counts["routes"] == 35


def test_existing_database_is_refused(data_dir: Path, tmp_path: Path) -> None:
    """load_feed refuses to overwrite an existing database file."""
    db = tmp_path / "x.db"
    db.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        load_feed(data_dir / "gtfs" / "caltrain-20160406.zip", db)
    assert db.read_bytes() == b"keep me"


def test_cancel_before_start_raises_and_leaves_nothing(data_dir: Path, tmp_path: Path) -> None:
    """An already-set cancel event raises WorkCancelledError and creates no database."""
    cancel = threading.Event()
    cancel.set()
    db = tmp_path / "c.db"
    with pytest.raises(WorkCancelledError):
        load_feed(data_dir / "gtfs" / "caltrain-20160406.zip", db, cancel=cancel)
    assert not db.exists()


def test_cancel_mid_load_removes_partial_database(data_dir: Path, tmp_path: Path) -> None:
    """Setting the event from the progress callback stops the load and removes the file."""
    cancel = threading.Event()
    seen: list[tuple[str, int]] = []

    def progress(table: str, rows: int) -> None:
        seen.append((table, rows))
        if table == "shapes":
            setter = threading.Thread(target=cancel.set)
            setter.start()
            setter.join()

    db = tmp_path / "c.db"
    with pytest.raises(WorkCancelledError):
        load_feed(data_dir / "gtfs" / "caltrain-20160406.zip", db, cancel=cancel, progress=progress)
    assert not db.exists()
    assert seen[-1][0] == "shapes"
