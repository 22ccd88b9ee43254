"""Benchmark ``interlock export`` (SQLite to Parquet, typed, streamed by row groups)
against DuckDB's ``COPY (SELECT * FROM read_csv(...)) TO 'x.parquet'`` of the same rows.

Builds a gtfs_schedule-shaped SQLite file holding only ``stop_times`` (the declared
columns, filled as bench/gtfs_load.py fills its feeds), dumps it to CSV with the sqlite3
shell, then times each export in a fresh child process at two sizes (default 1 M and
5 M rows) and prints seconds, rows/s, the ratio (ours / DuckDB's) and our peak RSS at
both sizes: streamed, it must stay flat as the dataset grows. The last line is one JSON
object. DuckDB is bench-only (``pip install 'interlock[bench]'``; installed if missing).
Usage: python bench/export.py [--sizes 1000000,5000000]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOPS_PER_TRIP = 50
N_STOPS = 20_000

OURS = """
import sys, time, resource
from pathlib import Path
from interlock.components.gtfs_schedule.tables import DATASET
from interlock.kit.export import export_dataset
from interlock.store.tables import Database
decl = Database("bench", "", "bench.sqlite", (DATASET.table("stop_times"),), 0)
t = time.perf_counter()
r = export_dataset(Path(sys.argv[1]), decl, Path(sys.argv[2]), "parquet", name="bench")
print(time.perf_counter() - t, r.tables["stop_times"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
DUCKDB = """
import sys, time, resource
import duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")  # it draws on stdout, which we parse
t = time.perf_counter()
con.execute(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}')) TO '{sys.argv[2]}' (FORMAT parquet)")
secs = time.perf_counter() - t
n = con.execute(f"SELECT count(*) FROM '{sys.argv[2]}'").fetchall()[0][0]
print(secs, n)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _hms(sec: int) -> str:
    return f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"


def _rows(n: int) -> Iterator[tuple[object, ...]]:
    for i in range(n):
        t, s = divmod(i, STOPS_PER_TRIP)
        base = 5 * 3600 + (t % 900) * 60 + s * 120
        yield (
            ("1", "2", "3")[t % 3],
            f"T{t}",
            _hms(base),
            base,
            _hms(base + 30),
            base + 30,
            f"S{(t * 7 + s) % N_STOPS}",
            s + 1,
            0,
            0,
            round(s * 1.5, 1),
        )


def build(db: Path, csv: Path, n: int) -> None:
    """The SQLite file (declared stop_times columns) and its CSV dump, ``n`` rows."""
    sys.path.insert(0, str(ROOT))
    from interlock.components.gtfs_schedule.tables import DATASET

    table = DATASET.table("stop_times")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    cols = ", ".join(f'"{c.name}" {c.type}' for c in table.columns)
    conn.execute(f"CREATE TABLE stop_times ({cols})")
    filled = (
        "mode, trip_id, arrival_time, arrival_time_secs, departure_time, departure_time_secs, "
        "stop_id, stop_sequence, pickup_type, drop_off_type, shape_dist_traveled"
    )
    conn.executemany(f"INSERT INTO stop_times ({filled}) VALUES ({','.join('?' * 11)})", _rows(n))
    conn.commit()
    conn.close()
    script = f".headers on\n.mode csv\n.once {csv}\nSELECT * FROM stop_times;\n"
    subprocess.run(["sqlite3", str(db)], input=script, text=True, check=True)


def run_child(code: str, *args: str) -> tuple[float, int, float]:
    """(seconds, rows, peak RSS MiB) of ``code`` in a fresh child process."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the benchmark child failed ({done.returncode}): {done.stderr[-2000:]}")
    out = done.stdout.split()[-3:]
    return float(out[0]), int(out[1]), int(out[2]) / 1024


def ensure_duckdb() -> None:
    if importlib.util.find_spec("duckdb") is None:
        print("duckdb is not installed; installing it for the benchmark (bench only)")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "duckdb"], check=True)


def measure(n: int, tmp: Path) -> dict[str, float]:
    db, csv = tmp / f"st-{n}.sqlite", tmp / f"st-{n}.csv"
    t = time.perf_counter()
    build(db, csv, n)
    print(f"{n:,} rows: built SQLite and CSV in {time.perf_counter() - t:.1f} s")
    ours_s, ours_rows, ours_rss = run_child(OURS, str(db), str(tmp / f"out-{n}"))
    duck_s, duck_rows, duck_rss = run_child(DUCKDB, str(csv), str(tmp / f"duck-{n}.parquet"))
    if ours_rows != n or duck_rows != n:
        raise SystemExit(f"row counts differ: ours {ours_rows}, duckdb {duck_rows}, want {n}")
    ours_bytes = (tmp / f"out-{n}" / "bench" / "stop_times.parquet").stat().st_size
    duck_bytes = (tmp / f"duck-{n}.parquet").stat().st_size
    print(
        f"  ours   {ours_s:6.2f} s  {n / ours_s:>12,.0f} rows/s  peak RSS {ours_rss:6.0f} MiB  "
        f"{ours_bytes / 2**20:6.1f} MiB"
    )
    print(
        f"  duckdb {duck_s:6.2f} s  {n / duck_s:>12,.0f} rows/s  peak RSS {duck_rss:6.0f} MiB  "
        f"{duck_bytes / 2**20:6.1f} MiB"
    )
    print(f"  ratio (ours / duckdb time): {ours_s / duck_s:.2f}")
    for p in (db, csv):
        p.unlink()
    return {
        "rows": n,
        "ours_s": round(ours_s, 3),
        "duckdb_s": round(duck_s, 3),
        "ratio": round(ours_s / duck_s, 3),
        "ours_peak_rss_mb": round(ours_rss, 1),
        "duckdb_peak_rss_mb": round(duck_rss, 1),
        "ours_mb": round(ours_bytes / 2**20, 2),
        "duckdb_mb": round(duck_bytes / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,5000000", help="row counts, comma-separated")
    args = parser.parse_args()
    ensure_duckdb()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="interlock-bench-export-") as tmp:
        results = [measure(n, Path(tmp)) for n in sizes]
    small, large = results[0], results[-1]
    rss_growth = large["ours_peak_rss_mb"] / small["ours_peak_rss_mb"]
    print(
        f"our peak RSS: {small['ours_peak_rss_mb']:.0f} MiB at {small['rows']:,} rows, "
        f"{large['ours_peak_rss_mb']:.0f} MiB at {large['rows']:,} ({rss_growth:.2f}x for "
        f"{large['rows'] / small['rows']:.0f}x the rows)"
    )
    summary = {
        "bench": "export",
        "rows": large["rows"],
        "ours_s": large["ours_s"],
        "duckdb_s": large["duckdb_s"],
        "ratio": large["ratio"],
        "ours_peak_rss_mb_small": small["ours_peak_rss_mb"],
        "ours_peak_rss_mb_large": large["ours_peak_rss_mb"],
        "rss_growth": round(rss_growth, 3),
        "runs": results,
        "ru_maxrss_children_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
