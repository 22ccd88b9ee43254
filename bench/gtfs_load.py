"""Benchmark load_feed against the sqlite3 shell's `.import --csv` of the same files, and
its validation against loading alone and against the gtfs-guru oracle.

Generates a deterministic feed, loads it in a child process, and prints rows/s, the
floor, their ratio and peak RSS (summed over the loader and its workers). It also
loads the feed with the whole-feed checks switched off ("load alone": every
``check_*`` pass of the loader and the stop-order check become no-ops in that child;
parsing, typing, keys and indexes stay) and validates it with gtfs-guru (test extra)
in a child process of its own. The last line is one JSON object, with
``validate_overhead`` (load+validate time / load time), ``vs_oracle`` (our
load+validate time / gtfs-guru's validate-only time) and the peak RSS of both.
Usage: python bench/gtfs_load.py [--stop-times N] [--runs K] [--no-oracle]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
STOPS_PER_TRIP = 50
N_STOPS = 20_000


def _hms(sec: int) -> str:
    return f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"


def generate(folder: Path, stop_times: int) -> dict[str, int]:
    """Write a valid feed with ``stop_times`` rows; returns rows per file."""
    trips = max(1, stop_times // STOPS_PER_TRIP)
    rows: dict[str, int] = {}
    files = {
        "agency.txt": [
            "agency_id,agency_name,agency_url,agency_timezone",
            "A,Bench,http://b.example,UTC",
        ],
        "calendar.txt": [
            "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date",
            "WK,1,1,1,1,1,0,0,20250101,20251231",
            "WE,0,0,0,0,0,1,1,20250101,20251231",
        ],
        "routes.txt": ["route_id,agency_id,route_short_name,route_type,route_color"]
        + [f"R{i},A,{i},{(3, 700, 400)[i % 3]},FF{i % 100:02d}00" for i in range(200)],
        "stops.txt": ["stop_id,stop_name,stop_lat,stop_lon"]
        + [f"S{i},Stop {i},{-37.0 - i / 1e5:.6f},{144.0 + i / 1e5:.6f}" for i in range(N_STOPS)],
        "trips.txt": ["route_id,service_id,trip_id,direction_id"]
        + [f"R{t % 200},{'WK' if t % 3 else 'WE'},T{t},{t % 2}" for t in range(trips)],
    }
    for name, lines in files.items():
        (folder / name).write_text("\r\n".join(lines) + "\r\n")
        rows[name] = len(lines) - 1
    with (folder / "stop_times.txt").open("w", newline="") as f:
        f.write("trip_id,arrival_time,departure_time,stop_id,stop_sequence,pickup_type,")
        f.write("drop_off_type,shape_dist_traveled\r\n")
        for t in range(trips):
            base = 5 * 3600 + (t % 900) * 60
            f.writelines(
                f"T{t},{_hms(base + s * 120)},{_hms(base + s * 120 + 30)},"
                f"S{(t * 7 + s) % N_STOPS},{s + 1},0,0,{s * 1.5:.1f}\r\n"
                for s in range(STOPS_PER_TRIP)
            )
    rows["stop_times.txt"] = trips * STOPS_PER_TRIP
    return rows


def zip_feed(folder: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for txt in sorted(folder.glob("*.txt")):
            zf.write(txt, txt.name)


# The child that loads: argv feed, db, "full" or "load" (the whole-feed checks off).
LOADER = """
import sys, time, resource
from datetime import date
from pathlib import Path
from interlock.components.gtfs_schedule import loader, order
if sys.argv[3] == "load":
    skip = lambda *args, **kwargs: None
    for name in [n for n in vars(loader) if n.startswith("check_") and n != "check_cancel"]:
        setattr(loader, name, skip)
    order.OrderTracker.check = skip
t = time.perf_counter()
day = date(2025, 6, 1)  # inside the generated calendars: no expired_calendar warnings
r = loader.load_feed(Path(sys.argv[1]), Path(sys.argv[2]), today=day)
print(time.perf_counter() - t, r.report["error_count"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
# The oracle: gtfs-guru validating the same zip, timed around validate() alone.
ORACLE = """
import sys, time, resource
import gtfs_guru
t = time.perf_counter()
r = gtfs_guru.validate(sys.argv[1], date="2025-06-01")
print(time.perf_counter() - t, 0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_child(code: str, *args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, error count) of ``code`` run in a fresh child process.

    The peak is the largest sum of the RSS of the child and all its descendants (the
    loader's worker processes), sampled every 10 ms, and never less than the child's
    own peak.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0
        try:
            family = [watched, *watched.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for p in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        peak = max(peak, total)
        time.sleep(0.01)
    stdout, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the benchmark child failed with exit status {proc.returncode}")
    out = stdout.split()
    return float(out[0]), max(peak, int(out[2]) * 1024) / 2**20, out[1]


def run_loader(feed: Path, db: Path, mode: str = "full") -> tuple[float, float]:
    """(seconds, peak RSS MiB) of load_feed in a fresh child process."""
    secs, peak, errors = run_child(LOADER, str(feed), str(db), mode)
    if errors != "0":
        raise SystemExit(f"benchmark feed raised {errors} errors; the generator is wrong")
    return secs, peak


def run_floor(folder: Path, db: Path) -> float:
    """Seconds for the sqlite3 shell to .import every file into an empty database."""
    script = "\n".join(f".import --csv {txt} {txt.stem}" for txt in sorted(folder.glob("*.txt")))
    t = time.perf_counter()
    subprocess.run(["sqlite3", str(db)], input=script, text=True, check=True)
    return time.perf_counter() - t


def measure(stop_times: int, runs: int, tmp: Path, oracle: bool) -> dict[str, float]:
    folder = tmp / f"feed-{stop_times}"
    folder.mkdir()
    rows = sum(generate(folder, stop_times).values())
    feed = tmp / f"feed-{stop_times}.zip"
    zip_feed(folder, feed)
    full, loads, floors, rss, load_rss = [], [], [], [], []
    for i in range(runs):
        db = tmp / f"ours-{stop_times}-{i}.db"
        secs, peak = run_loader(feed, db)
        db.unlink()
        full.append(secs)
        rss.append(peak)
        secs, peak = run_loader(feed, db, "load")
        db.unlink()
        loads.append(secs)
        load_rss.append(peak)
        fdb = tmp / f"floor-{stop_times}-{i}.db"
        floors.append(rows / run_floor(folder, fdb))
        fdb.unlink()
    result = {
        "rows": rows,
        "rows_per_s": rows / statistics.median(full),
        "floor_rows_per_s": statistics.median(floors),
        "peak_rss_mb": max(rss),
        "load_s": statistics.median(loads),
        "load_validate_s": statistics.median(full),
        "peak_rss_mb_load_only": max(load_rss),
    }
    result["ratio"] = result["rows_per_s"] / result["floor_rows_per_s"]
    result["validate_overhead"] = result["load_validate_s"] / result["load_s"]
    print(
        f"{stop_times:>10} stop_times: {result['rows_per_s']:,.0f} rows/s, floor "
        f"{result['floor_rows_per_s']:,.0f} rows/s, ratio {result['ratio']:.2f}, "
        f"peak RSS {result['peak_rss_mb']:.0f} MiB; load+validate "
        f"{result['load_validate_s']:.1f} s vs load alone {result['load_s']:.1f} s "
        f"(overhead {result['validate_overhead']:.2f})",
        flush=True,
    )
    if oracle:
        secs, peak, _ = run_child(ORACLE, str(feed))
        result.update(oracle_validate_s=secs, peak_rss_mb_oracle=peak)
        result["vs_oracle"] = result["load_validate_s"] / secs
        print(
            f"{stop_times:>10} stop_times: gtfs-guru validates in {secs:.1f} s, peak RSS "
            f"{peak:.0f} MiB; ours/gtfs-guru time {result['vs_oracle']:.2f}, memory "
            f"{result['peak_rss_mb'] / peak:.2f}",
            flush=True,
        )
    shutil.rmtree(folder)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stop-times", type=int, default=5_000_000, help="rows of the large feed")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; medians reported")
    parser.add_argument(
        "--no-oracle", action="store_true", help="skip gtfs-guru (needs the test extra)"
    )
    args = parser.parse_args()
    oracle = not args.no_oracle
    if oracle and importlib.util.find_spec("gtfs_guru") is None:
        raise SystemExit(
            "gtfs-guru is needed for vs_oracle: pip install -e '.[test]', or --no-oracle"
        )
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 shell is needed for the floor: apt-get install -y sqlite3")
    small_n = max(1000, args.stop_times // 5)
    with tempfile.TemporaryDirectory(prefix="gtfs-bench-") as tmp:
        small = measure(small_n, args.runs, Path(tmp), oracle)
        large = measure(args.stop_times, args.runs, Path(tmp), oracle)
    summary = {
        "stop_times_small": small_n,
        "stop_times_large": args.stop_times,
        "rows_per_s": round(large["rows_per_s"]),
        "floor_rows_per_s": round(large["floor_rows_per_s"]),
        "ratio": round(large["ratio"], 3),
        "peak_rss_mb_small": round(small["peak_rss_mb"], 1),
        "peak_rss_mb_large": round(large["peak_rss_mb"], 1),
        "ru_maxrss_children_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "load_s": round(large["load_s"], 3),
        "load_validate_s": round(large["load_validate_s"], 3),
        "validate_overhead": round(large["validate_overhead"], 3),
        "peak_rss_mb_load_only": round(large["peak_rss_mb_load_only"], 1),
    }
    if oracle:
        summary.update(
            oracle_validate_s=round(large["oracle_validate_s"], 3),
            vs_oracle=round(large["vs_oracle"], 3),
            peak_rss_mb_oracle=round(large["peak_rss_mb_oracle"], 1),
            rss_vs_oracle=round(large["peak_rss_mb"] / large["peak_rss_mb_oracle"], 3),
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
