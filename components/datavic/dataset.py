"""Build a patronage snapshot (``<component>.sqlite``) beside the live one, and join
stations to the GTFS schedule's stops where the ids allow.

Data Vic's station ``Stop_ID`` is the PTV stop number. It joins to GTFS when a
GTFS ``stop_id`` equals it, or when a GTFS stop's ``stop_url`` carries it
(``.../stop/1071/``, as Transport Victoria's feed does), giving the parent station.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from interlock.components.datavic.parsers import Parsed
from interlock.errors import WorkCancelledError

#: The schema version both patronage datasets are stamped with (see :mod:`.tables`).
DATASET_VERSION = 1

_PTV_STOP = re.compile(r"/stop/(\d+)(?:/|$|\?)")


def gtfs_stop_index(db: Path) -> tuple[set[str], dict[str, str]] | None:
    """(GTFS stop ids, PTV stop number -> GTFS station id) from a gtfs_schedule dataset."""
    if not db.is_file():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(stops)")}
        if "stop_id" not in cols:
            return None
        url = "stop_url" if "stop_url" in cols else "NULL"
        parent = "parent_station" if "parent_station" in cols else "NULL"
        ids: set[str] = set()
        by_ptv: dict[str, str] = {}
        # Station entries are metropolitan train: its folder (mode 2) wins a shared number.
        order = "ORDER BY mode <> '2'" if "mode" in cols else ""
        for stop_id, stop_url, parent_id in conn.execute(
            f"SELECT stop_id, {url}, {parent} FROM stops {order}"
        ):
            ids.add(str(stop_id))
            m = _PTV_STOP.search(stop_url or "")
            if m:
                by_ptv.setdefault(m.group(1), parent_id or str(stop_id))
        return ids, by_ptv
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _join(conn: sqlite3.Connection, gtfs: Path | None) -> dict[str, Any]:
    conn.execute("ALTER TABLE station_patronage ADD COLUMN gtfs_stop_id TEXT")
    conn.execute("ALTER TABLE station_patronage ADD COLUMN gtfs_join TEXT")
    stations = [r[0] for r in conn.execute("SELECT DISTINCT stop_id FROM station_patronage")]
    index = gtfs_stop_index(gtfs) if gtfs is not None else None
    report: dict[str, Any] = {"gtfs_dataset": str(gtfs) if gtfs else None}
    if index is None:
        report |= {"available": False, "stations": len(stations), "rate_percent": None}
        return report
    ids, by_ptv = index
    found: dict[str, tuple[str, str]] = {}
    for sid in stations:
        if sid in ids:
            found[sid] = (sid, "stop_id")
        elif sid in by_ptv:
            found[sid] = (by_ptv[sid], "stop_url")
    conn.executemany(
        "UPDATE station_patronage SET gtfs_stop_id = ?, gtfs_join = ? WHERE stop_id = ?",
        [(g, how, sid) for sid, (g, how) in found.items()],
    )
    methods = [how for _, how in found.values()]
    unmatched = sorted(set(stations) - set(found))
    report |= {
        "available": True,
        "stations": len(stations),
        "matched": len(found),
        "rate_percent": round(len(found) / len(stations) * 100, 2) if stations else 0.0,
        "by_stop_id": methods.count("stop_id"),
        "by_stop_url": methods.count("stop_url"),
        "unmatched_examples": unmatched[:10],
    }
    return report


_STATIONS_VIEW = """
CREATE VIEW station_patronage_stops AS
SELECT p.fin_year, p.fin_year_start, p.stop_id, p.stop_name, p.pax_annual, p.pax_weekday,
    p.pax_saturday, p.pax_sunday, p.gtfs_stop_id, p.gtfs_join, g.mode AS gtfs_mode,
    g.stop_name AS gtfs_stop_name, g.stop_lat AS gtfs_stop_lat, g.stop_lon AS gtfs_stop_lon
FROM station_patronage p LEFT JOIN gtfs_stations g ON g.stop_id = p.gtfs_stop_id
"""


def _copy_stations(conn: sqlite3.Connection, gtfs: Path | None) -> None:
    """Copy the GTFS stops the stations joined (a view cannot reach into another file)."""
    conn.execute(
        "CREATE TABLE gtfs_stations (stop_id TEXT NOT NULL, mode TEXT, stop_name TEXT, "
        "stop_lat REAL, stop_lon REAL)"
    )
    conn.execute(_STATIONS_VIEW)
    wanted = {r[0] for r in conn.execute("SELECT gtfs_stop_id FROM station_patronage")} - {None}
    if not wanted or gtfs is None or not gtfs.is_file():
        return
    src = sqlite3.connect(f"{gtfs.resolve().as_uri()}?mode=ro", uri=True)
    try:
        moded = "mode" in {r[1] for r in src.execute("PRAGMA table_info(stops)")}
        mode, order = ("mode", "ORDER BY mode <> '2'") if moded else ("NULL", "")
        seen: dict[str, tuple[Any, ...]] = {}
        query = f"SELECT stop_id, {mode}, stop_name, stop_lat, stop_lon FROM stops {order}"
        for row in src.execute(query):
            if row[0] in wanted:
                seen.setdefault(row[0], row)  # metropolitan train's folder first
    except sqlite3.Error:
        return  # the join report already says the schedule could not be read
    finally:
        src.close()
    conn.executemany("INSERT INTO gtfs_stations VALUES (?,?,?,?,?)", list(seen.values()))


def build(
    staged: Path,
    parsed: Parsed,
    resources: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any],
    *,
    gtfs: Path | None,
    join: bool,
    cancel: threading.Event,
) -> dict[str, Any]:
    """Write the snapshot at ``staged``; returns the join report (empty without a join)."""
    conn = sqlite3.connect(staged)
    try:
        cols = ", ".join(f"{name} {kind}" for name, kind in parsed.columns)
        conn.execute(f"CREATE TABLE {parsed.table} ({cols})")
        marks = ",".join("?" * len(parsed.columns))
        step = 5000
        for start in range(0, len(parsed.rows), step):
            if cancel.is_set():
                raise WorkCancelledError(f"building {staged.name!r} was cancelled")
            conn.executemany(
                f"INSERT INTO {parsed.table} VALUES ({marks})", parsed.rows[start : start + step]
            )
        key = ", ".join(parsed.key)
        conn.execute(f"CREATE INDEX {parsed.table}_key ON {parsed.table} ({key})")
        report = _join(conn, gtfs) if join else {}
        if join:
            _copy_stations(conn, gtfs)
        conn.execute(
            "CREATE TABLE resources (resource_id TEXT, name TEXT, url TEXT, last_modified TEXT, "
            "size INTEGER, sha256 TEXT, etag TEXT, rows INTEGER, junk_rows INTEGER)"
        )
        conn.executemany(
            "INSERT INTO resources VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    r.get("id"),
                    r.get("name"),
                    r.get("url"),
                    r.get("last_modified"),
                    r.get("size"),
                    r.get("sha256"),
                    r.get("etag"),
                    r.get("rows"),
                    r.get("junk_rows"),
                )
                for r in resources
            ],
        )
        conn.execute("CREATE TABLE provenance (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute(f"PRAGMA user_version={DATASET_VERSION}")
        conn.executemany(
            "INSERT INTO provenance VALUES (?, ?)",
            [(k, json.dumps(v, default=str)) for k, v in provenance.items()],
        )
        conn.commit()
    finally:
        conn.close()
    return report
