"""Synthetic history for the dashboard's tests and benchmark: 30 days of five components.

Events go through the real history writer (``SqliteStateStore.record_events``), so
the rows are exactly what a daemon that ran for a month would have left.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from interlock import events as ev
from interlock.store.sqlite import SqliteStateStore

#: name -> (seconds between runs, typical seconds per run, records per publish).
FIVE: dict[str, tuple[int, float, int]] = {
    "gtfs_schedule": (3600, 95.0, 2_400_000),
    "gtfs_realtime": (60, 0.8, 1_500),
    "ptv_timetable": (300, 2.5, 4_000),
    "datavic_station_patronage": (86400, 6.0, 220_000),
    "datavic_temporal_patronage": (86400, 9.0, 1_100_000),
}

ERRORS = [
    "HTTP 503 from https://data.example/feed after 3 attempts (took 12.5 s)",
    "timed out after 300 s",
    "data quality failed: record_count_min: measured 0, limit 1",
    "source answered nonsense",
]


def quality_report(records: int) -> dict[str, Any]:
    """A report shaped like the GTFS component's: notices, counts per code, rules, verdict."""
    notices = [
        {
            "code": "unusable_trip",
            "severity": "WARNING",
            "file": "trips.txt",
            "row": 10 + i,
            "field": "trip_id",
            "value": f"T{i}",
        }
        for i in range(3)
    ] + [
        {
            "code": "missing_recommended_field",
            "severity": "WARNING",
            "file": "feed_info.txt",
            "row": 2,
            "field": "feed_contact_email",
            "value": None,
        }
    ]
    return {
        "notices": notices,
        "counts": {
            "unusable_trip": {"severity": "WARNING", "count": 37},
            "missing_recommended_field": {"severity": "WARNING", "count": 1},
        },
        "error_count": 0,
        "warning_count": 38,
        "rules": [
            {"rule": "record_count_min", "measured": records, "limit": 1000, "passed": True},
            {"rule": "null_percentage_max", "measured": 0.42, "limit": 5, "passed": True},
            {"rule": "schema_validation", "measured": 0, "limit": 0, "passed": True},
        ],
        "volume": {
            "previous": records - 120,
            "current": records,
            "change_percent": 0.01,
            "significant": False,
        },
        "passed": True,
    }


def _events(now: datetime, days: int, seed: int) -> Iterator[ev.Event]:
    rnd = random.Random(seed)
    start = now - timedelta(days=days)
    for name, (every, took, records) in FIVE.items():
        at = start + timedelta(seconds=rnd.uniform(0, every))
        n = 0
        while at < now - timedelta(seconds=took + 1):
            n += 1
            run_id = f"{at:%Y%m%dT%H%M%SZ}-{n:06x}"
            duration = max(0.01, rnd.gauss(took, took * 0.15))
            end = at + timedelta(seconds=duration)
            roll = rnd.random()
            if at + timedelta(seconds=every) >= now - timedelta(seconds=took + 1):
                # The last run: its start is what the scheduler reads to decide when it is due.
                yield ev.ComponentStarted(at=at, run_id=run_id, component=name, attempt=1)
            common: dict[str, Any] = {
                "at": end,
                "run_id": run_id,
                "component": name,
                "started_at": at,
                "duration_s": duration,
            }
            if roll < 0.02:
                error = rnd.choice(ERRORS)
                if error.startswith("timed out"):
                    yield ev.ComponentTimedOut(
                        status="timed_out", reason="timeout", error=error, **common
                    )
                else:
                    yield ev.ComponentFailed(status="failed", reason="error", error=error, **common)
            elif roll < 0.3 and every >= 3600:
                yield ev.ComponentUnchanged(status="unchanged", reason="source unchanged", **common)
            else:
                yield ev.ComponentSucceeded(
                    status="succeeded",
                    reason=None,
                    records=int(records * rnd.uniform(0.97, 1.03)),
                    fingerprint=f"{name}-{n}",
                    quality=quality_report(records) if every >= 3600 else None,
                    **common,
                )
            at += timedelta(seconds=every)


async def write_history(
    store: SqliteStateStore, now: datetime, *, days: int = 30, seed: int = 8, batch: int = 1000
) -> int:
    """Record ``days`` of runs of the five components ending at ``now``; how many rows."""
    pending: list[ev.Event] = []
    written = 0
    for event in _events(now, days, seed):
        pending.append(event)
        if len(pending) >= batch:
            await store.record_events(pending)
            written += len(pending)
            pending = []
    if pending:
        await store.record_events(pending)
        written += len(pending)
    return written
