"""The parallel table load gives the serial load's tables, report and stats exactly."""

from __future__ import annotations

import sqlite3
import threading
import zipfile
from pathlib import Path

import psutil
import pytest

from interlock.components.gtfs_schedule.loader import FeedLoadResult, load_feed
from interlock.components.gtfs_schedule.parallel import Tuning
from interlock.components.gtfs_schedule.zipsafe import ZipLimits
from interlock.errors import UnsafeArchiveError, WorkCancelledError

SERIAL = Tuning(workers=0)
# Tiny chunks so that a few thousand rows make dozens of them.
PARALLEL = Tuning(workers=2, min_member_bytes=0, chunk_bytes=4096)

BASE = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Ag,http://a.example,UTC\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
    "start_date,end_date\nWK,1,1,1,1,1,0,0,20250101,20251231\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,A,1,3\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n"
    + "".join(f"S{i},Stop {i},-37.{i:04d},144.{i:04d}\n" for i in range(40)),
}
ST_HEADER = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n"


def _hms(sec: int) -> str:
    return f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"


def stop_time_lines(trips: int, stops: int = 20, quote: bool = False) -> list[str]:
    lines = []
    for t in range(trips):
        for s in range(stops):
            cells = [f"T{t}", _hms(8 * 3600 + s * 60), _hms(8 * 3600 + s * 60 + 20)]
            cells += [f"S{(t + s) % 40}", str(s + 1), f"{s * 1.5:.1f}"]
            lines.append(",".join(f'"{c}"' if quote else c for c in cells) + "\n")
    return lines


def trips_txt(trips: int) -> str:
    return "route_id,service_id,trip_id\n" + "".join(f"R1,WK,T{t}\n" for t in range(trips))


def write_zip(path: Path, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return path


def dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows with their rowids, and the schema, in a comparable form."""
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {
            n: conn.execute(f"SELECT rowid, * FROM {n} ORDER BY rowid").fetchall() for n in names
        }
        schema = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
        out["schema"] = conn.execute(schema).fetchall()  # root pages may differ
    return out


def load_both(feed: Path, tmp: Path) -> tuple[FeedLoadResult, FeedLoadResult]:
    """Load ``feed`` serially and in parallel, asserting identical tables and results."""
    serial = load_feed(feed, tmp / "serial.db", tuning=SERIAL)
    parallel = load_feed(feed, tmp / "parallel.db", tuning=PARALLEL)
    assert dump(tmp / "parallel.db") == dump(tmp / "serial.db")
    assert parallel == serial
    assert not list(tmp.glob(".gtfs-chunks-*")), "chunk files were left behind"
    return serial, parallel


def counts(result: FeedLoadResult) -> dict[str, int]:
    return {code: c["count"] for code, c in result.report["counts"].items()}  # type: ignore[union-attr]


def test_clean_feed_loads_in_worker_processes(tmp_path: Path) -> None:
    """A clean feed's big member goes through workers and matches the serial load."""
    lines = stop_time_lines(150)
    feed = write_zip(
        tmp_path / "f.zip",
        {**BASE, "trips.txt": trips_txt(150), "stop_times.txt": ST_HEADER + "".join(lines)},
    )
    seen: list[int] = []

    def progress(table: str, loaded: int) -> None:
        if table == "stop_times":
            seen.append(len(psutil.Process().children()))

    serial = load_feed(feed, tmp_path / "serial.db", tuning=SERIAL)
    parallel = load_feed(feed, tmp_path / "parallel.db", tuning=PARALLEL, progress=progress)
    assert dump(tmp_path / "parallel.db") == dump(tmp_path / "serial.db")
    assert parallel == serial
    assert len(seen) > 10 and min(seen) == 2, "stop_times did not load through two workers"
    assert serial.record_counts["stop_times"] == 3000 and serial.report["error_count"] == 0


def test_row_notices_in_late_chunks_keep_their_row_numbers(tmp_path: Path) -> None:
    """Dropped rows, bad values, blank lines and order errors late in the file match."""
    lines = stop_time_lines(150)
    lines[2500] = "T125,08:00:00,08:00:20,S1,1\n"  # invalid_row_length, a gap in rowids
    lines[2600] = "T130,8:00,08:00:20,S1,1,0.0\n"  # invalid_time: dropped
    lines[2700] = "T135,07:00:00,07:00:20,S1,1,0.0\n"  # fine
    lines[2705] = "T135,06:00:00,06:00:20,S5,6,7.5\n"  # arrival before previous departure
    lines[2800] = "T140,,,S1,1,-3\n"  # number_out_of_range, kept
    lines[2900] = "\n"  # a blank line is not a row
    lines[2950] = "T147,08:00:00,08:00:20,S404,1,0.0\n"  # (references go unchecked: bad file)
    lines[2990] = lines[2989]  # duplicate_key
    feed = write_zip(
        tmp_path / "f.zip",
        {**BASE, "trips.txt": trips_txt(150), "stop_times.txt": ST_HEADER + "".join(lines)},
    )
    serial, _ = load_both(feed, tmp_path)
    found = counts(serial)
    for code in (
        "invalid_row_length",
        "invalid_time",
        "number_out_of_range",
        "duplicate_key",
        "stop_time_with_arrival_before_previous_departure_time",
    ):
        assert found.get(code, 0) >= 1, code
    rows = {n["code"]: n["row"] for n in serial.report["notices"]}  # type: ignore[union-attr]
    # The blank line above is not a row, so later rows are numbered one lower.
    assert rows["invalid_time"] == 2602 and rows["duplicate_key"] == 2991


def test_many_notices_of_one_code_are_counted_across_chunks(tmp_path: Path) -> None:
    """More notices than the example cap, spread over chunks, give the same examples."""
    lines = [
        line.replace(",S", ",S9") if i % 7 == 0 else line
        for i, line in enumerate(stop_time_lines(150))
    ]
    lines = [line.replace("08:", "8h:") if i % 11 == 0 else line for i, line in enumerate(lines)]
    feed = write_zip(
        tmp_path / "f.zip",
        {**BASE, "trips.txt": trips_txt(150), "stop_times.txt": ST_HEADER + "".join(lines)},
    )
    serial, _ = load_both(feed, tmp_path)
    assert counts(serial)["invalid_time"] > 50


def test_quoted_crlf_feed_with_bom_loads_in_parallel(tmp_path: Path) -> None:
    """Transport Victoria's style (BOM, CRLF, every value quoted) matches the serial load."""
    lines = [line.replace("\n", "\r\n") for line in stop_time_lines(150, quote=True)]
    body = "\ufeff" + ST_HEADER.replace("\n", "\r\n") + "".join(lines)
    feed = write_zip(
        tmp_path / "f.zip",
        {**BASE, "trips.txt": trips_txt(150), "stop_times.txt": body.encode()},
    )
    load_both(feed, tmp_path)


def test_a_trip_longer_than_a_chunk_is_checked_by_query(tmp_path: Path) -> None:
    """A trip split between chunks still gets the serial order check's notices."""
    lines = stop_time_lines(6, stops=400)
    cells = lines[1500].split(",")
    lines[1500] = ",".join([cells[0], "00:00:01", *cells[2:]])  # before previous departure
    feed = write_zip(
        tmp_path / "f.zip",
        {**BASE, "trips.txt": trips_txt(6), "stop_times.txt": ST_HEADER + "".join(lines)},
    )
    serial, _ = load_both(feed, tmp_path)
    assert counts(serial)["stop_time_with_arrival_before_previous_departure_time"] >= 1


@pytest.mark.parametrize(
    "late",
    [
        'T140,08:00:00,08:00:20,S1,1,"2\n.5"\n',  # a quoted newline
        "T140,08:00:00,08:00:20,S1,1,2\x00\n",  # a NUL (csv reads it; workers do too)
        'T140,08:00:00,08:00:20,S1,1,"2.5\n',  # a quote still open at the end
    ],
)
def test_awkward_late_lines_give_the_serial_result(tmp_path: Path, late: str) -> None:
    """A quoted newline, NUL or open quote late in the file gives the serial result."""
    lines = stop_time_lines(150)
    lines[2800] = late
    feed = write_zip(
        tmp_path / "f.zip",
        {**BASE, "trips.txt": trips_txt(150), "stop_times.txt": ST_HEADER + "".join(lines)},
    )
    load_both(feed, tmp_path)


def test_lenient_values_late_in_the_file_give_the_serial_result(tmp_path: Path) -> None:
    """Padded values (bare and quoted), HHH times and huge integers in late chunks: the
    workers trim, warn and refuse exactly as the serial load does."""
    lines = stop_time_lines(150)
    lines[2500] = "T125, 08:00:00,08:00:20 ,S1 ,1,0.0\n"  # trimmed silently
    lines[2600] = 'T130,"08:00:00 ",08:00:20,"S1\t",1,0.0\n'  # trimmed with two warnings
    lines[2700] = "T135,100:00:00,100:00:20,S1,1,0.0\n"  # a valid time
    lines[2800] = "T140,08:00:00,08:00:20,S1,99999999999999999999,0.0\n"  # invalid_integer
    lines[2905] = "T145,08:05:00,08:05:20,S10,6,1.0\n"  # shape_dist_traveled goes back
    feed = write_zip(
        tmp_path / "f.zip",
        {**BASE, "trips.txt": trips_txt(150), "stop_times.txt": ST_HEADER + "".join(lines)},
    )
    serial, _ = load_both(feed, tmp_path)
    found = counts(serial)
    assert found.get("leading_or_trailing_whitespaces") == 2
    assert found.get("invalid_integer") == 1 and "invalid_time" not in found
    assert found.get("decreasing_or_equal_stop_time_distance") == 1  # 6.0, then 1.0
    with sqlite3.connect(tmp_path / "parallel.db") as conn:
        got = conn.execute("SELECT arrival_time_secs, stop_id FROM stop_times WHERE rowid = 2502")
        assert got.fetchone() == (8 * 3600, "S1")


def test_bad_utf8_late_in_the_file_fails_the_member_as_serially(tmp_path: Path) -> None:
    """Undecodable bytes in a late chunk give the serial csv_parsing_failed, message and all."""
    lines = stop_time_lines(150)
    body = (
        (ST_HEADER + "".join(lines[:2800])).encode()
        + b"T1,\xff\xfe\n"
        + "".join(lines[2800:]).encode()
    )
    feed = write_zip(
        tmp_path / "f.zip", {**BASE, "trips.txt": trips_txt(150), "stop_times.txt": body}
    )
    serial, _ = load_both(feed, tmp_path)
    assert counts(serial)["csv_parsing_failed"] == 1
    assert serial.record_counts["stop_times"] == 0


def test_zip_of_zips_loads_each_mode_in_parallel(tmp_path: Path) -> None:
    """Each mode's stop_times loads through workers with its own rowid range."""
    outer: dict[str, str | bytes] = {}
    for mode, trips in (("1", 120), ("2", 90)):
        lines = stop_time_lines(trips)
        lines[-30] = lines[-30].replace(",S", ",S99")
        inner = write_zip(
            tmp_path / f"inner-{mode}.zip",
            {**BASE, "trips.txt": trips_txt(trips), "stop_times.txt": ST_HEADER + "".join(lines)},
        )
        outer[f"{mode}/google_transit.zip"] = inner.read_bytes()
    feed = write_zip(tmp_path / "vic.zip", outer)
    serial, _ = load_both(feed, tmp_path)
    assert counts(serial)["foreign_key_violation"] == 2


def test_zip_limits_apply_to_a_parallel_load(tmp_path: Path) -> None:
    """The payload byte limit still refuses a member read by the parallel path."""
    lines = stop_time_lines(150)
    feed = write_zip(
        tmp_path / "f.zip",
        {**BASE, "trips.txt": trips_txt(150), "stop_times.txt": ST_HEADER + "".join(lines)},
    )
    with pytest.raises(UnsafeArchiveError, match="max_total_bytes"):
        load_feed(
            feed, tmp_path / "x.db", tuning=PARALLEL, limits=ZipLimits(max_total_bytes=50_000)
        )
    assert not (tmp_path / "x.db").exists()
    assert not list(tmp_path.glob(".gtfs-chunks-*"))


def test_cancel_stops_workers_and_removes_every_file(tmp_path: Path) -> None:
    """A cancel during a parallel load kills the workers and leaves no file behind."""
    lines = stop_time_lines(150)
    feed = write_zip(
        tmp_path / "f.zip",
        {**BASE, "trips.txt": trips_txt(150), "stop_times.txt": ST_HEADER + "".join(lines)},
    )
    cancel = threading.Event()
    workers: list[psutil.Process] = []

    def progress(table: str, loaded: int) -> None:
        if table == "stop_times" and not cancel.is_set():
            workers.extend(psutil.Process().children())
            cancel.set()

    with pytest.raises(WorkCancelledError):
        load_feed(feed, tmp_path / "c.db", tuning=PARALLEL, cancel=cancel, progress=progress)
    assert len(workers) == 2
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zip"]
