"""The validation report in the shape MobilityData's gtfs-validator writes (``report.json``).

``{"summary": {...}, "notices": [{"code", "severity", "totalNotices", "sampleNotices"}]}``,
so that tools which read gtfs-validator's reports read ours. The summary is filled from
the loaded SQLite file as far as its fields mean something here; sample notices carry
gtfs-validator's field names (``filename``, ``csvRowNumber``, ``fieldName``,
``fieldValue``) plus ``mode`` for a zip of per-mode zips.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from interlock import secrets
from interlock.kit.files import private_dir, write_private

#: The file name gtfs-validator gives its JSON report.
REPORT_NAME = "report.json"
_ORDER = {"ERROR": 0, "WARNING": 1, "INFO": 2}
_SAMPLE_KEYS = (
    ("file", "filename"),
    ("row", "csvRowNumber"),
    ("field", "fieldName"),
    ("value", "fieldValue"),
    ("mode", "mode"),
)
# gtfs-validator's summary counts: its label -> our table.
_COUNTED = (("Agencies", "agency"), ("Routes", "routes"), ("Stops", "stops"), ("Trips", "trips"))


def _version() -> str:
    from importlib import metadata

    try:
        return f"interlock {metadata.version('interlock')}"
    except metadata.PackageNotFoundError:
        return "interlock (not installed)"


def sample(notice: Mapping[str, Any]) -> dict[str, Any]:
    """One of our example notices as gtfs-validator writes a sample notice."""
    return {theirs: notice[ours] for ours, theirs in _SAMPLE_KEYS if notice.get(ours) is not None}


def notices(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Our report's counts and examples as gtfs-validator's ``notices`` list."""
    counts: Mapping[str, Any] = report.get("counts") or {}
    samples: dict[str, list[dict[str, Any]]] = {}
    for notice in report.get("notices") or []:
        samples.setdefault(notice["code"], []).append(sample(notice))
    out = [
        {
            "code": code,
            "severity": entry["severity"],
            "totalNotices": entry["count"],
            "sampleNotices": samples.get(code, []),
        }
        for code, entry in counts.items()
    ]
    return sorted(out, key=lambda n: (_ORDER.get(n["severity"], 3), n["code"]))


def _rows(conn: sqlite3.Connection, sql: str) -> list[sqlite3.Row]:
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.Error:  # a table this version of the loader does not create
        return []


def _count(conn: sqlite3.Connection, sql: str) -> int:
    found = _rows(conn, sql)
    return int(found[0][0]) if found else 0


def _date(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


def feed_summary(db: Path) -> dict[str, Any]:
    """feedInfo, agencies, files and counts of the loaded feed in ``db``."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        info = _rows(conn, "SELECT * FROM feed_info LIMIT 1")
        window = _rows(
            conn,
            "SELECT min(d) AS lo, max(d) AS hi FROM (SELECT start_date AS d FROM calendar "
            "UNION ALL SELECT end_date FROM calendar UNION ALL SELECT date FROM calendar_dates)",
        )
        agencies = _rows(conn, "SELECT * FROM agency")
        counts = {label: _count(conn, f"SELECT count(*) FROM {t}") for label, t in _COUNTED}
        counts["Shapes"] = _count(conn, "SELECT count(DISTINCT shape_id) FROM shapes")
        counts["Blocks"] = _count(conn, "SELECT count(DISTINCT block_id) FROM trips")
    finally:
        conn.close()
    first = dict(info[0]) if info else {}
    lo, hi = (window[0]["lo"], window[0]["hi"]) if window else (None, None)
    return {
        "feedInfo": {
            "publisherName": first.get("feed_publisher_name") or "",
            "publisherUrl": first.get("feed_publisher_url") or "",
            "feedLanguage": first.get("feed_lang") or "",
            "feedStartDate": _date(first.get("feed_start_date")),
            "feedEndDate": _date(first.get("feed_end_date")),
            "feedEmail": first.get("feed_contact_email") or "",
            "feedServiceWindowStart": _date(lo),
            "feedServiceWindowEnd": _date(hi),
        },
        "agencies": [
            {
                "name": a["agency_name"] or "",
                "url": a["agency_url"] or "",
                "phone": (dict(a).get("agency_phone") or ""),
                "email": (dict(a).get("agency_email") or ""),
                "timezone": a["agency_timezone"] or "",
            }
            for a in agencies
        ],
        "counts": counts,
    }


def document(
    report: Mapping[str, Any],
    *,
    gtfs_input: str,
    validated_at: datetime,
    record_counts: Mapping[str, int],
    db: Path | None = None,
    date_for_validation: str | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """The whole report.json: gtfs-validator's summary and notices for one validated feed.

    ``db`` is the SQLite file the feed loaded into (feedInfo, agencies and counts are
    read from it; without it they are left out).
    """
    summary: dict[str, Any] = {
        "validatorVersion": _version(),
        "validatedAt": validated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gtfsInput": gtfs_input,
        "validationReportName": REPORT_NAME,
        "dateForValidation": date_for_validation or validated_at.date().isoformat(),
        "files": sorted(f"{name}.txt" for name, n in record_counts.items() if n),
    }
    if seconds is not None:
        summary["validationTimeSeconds"] = round(seconds, 6)
    if db is not None:
        summary.update(feed_summary(db))
    return {"summary": summary, "notices": notices(report)}


def write(folder: Path, root: Path, doc: Mapping[str, Any], name: str = REPORT_NAME) -> Path:
    """Write ``doc`` as ``folder/name`` (0600, in 0700 folders down from ``root``), with
    any configured secret (a key in a source URL) masked as history masks it."""
    private_dir(folder, root)
    path = folder / name
    tmp = folder / f".{name}.tmp"
    write_private(tmp, json.dumps(secrets.mask_all(dict(doc)), indent=2, default=str))
    tmp.replace(path)
    return path


def write_published(data_dir: Path, component: str, run_id: str, doc: Mapping[str, Any]) -> Path:
    """Write a published version's report as
    ``data_dir/quality/<component>/<time>-<run_id>.report.json``, beside its quality report."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = data_dir / "quality" / component
    return write(folder, data_dir, doc, f"{stamp}-{run_id}.report.json")
