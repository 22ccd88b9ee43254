"""What the dashboard reads from the state store, and the pure folds that shape it.

The store aggregates where the rows are (one row per component and hour), so the
cost of a page does not grow with how often components run; the folds into
7-day (hourly) and 30-day (daily, in the configured zone) series are plain
functions of rows and time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from interlock.kit.qualityshape import shape
from interlock.store.abc import StateReader

#: Statuses that count as a failure in trends and error patterns.
FAILED = ("failed", "timed_out", "interrupted", "cancelled")
TOP_ERRORS = 20
NOTICES_SHOWN = 50
#: What the page shows of a component's last run (the rest is too large or too private).
LAST_RUN_FIELDS = (
    "run_id",
    "status",
    "reason",
    "error",
    "started_at",
    "finished_at",
    "duration_s",
    "records",
    "attempts",
)


# --- trends ---------------------------------------------------------------------------


class _Bucket:
    __slots__ = ("dur_max", "dur_sum", "failures", "published", "rec_sum", "runs")

    def __init__(self) -> None:
        self.runs = self.failures = self.published = 0
        self.dur_sum = self.rec_sum = 0.0
        self.dur_max: float | None = None

    def add(self, row: Sequence[Any]) -> None:
        runs, failures, dur_sum, dur_max, rec_sum, published = row
        self.runs += runs or 0
        self.failures += failures or 0
        self.published += published or 0
        self.dur_sum += dur_sum or 0.0
        self.rec_sum += rec_sum or 0
        if dur_max is not None:
            self.dur_max = dur_max if self.dur_max is None else max(self.dur_max, dur_max)


def _series(labels: list[str], buckets: list[_Bucket]) -> dict[str, Any]:
    def avg(total: float, n: int, digits: int) -> float | None:
        return round(total / n, digits) if n else None

    runs = sum(b.runs for b in buckets)
    published = sum(b.published for b in buckets)
    maxima = [b.dur_max for b in buckets if b.dur_max is not None]
    return {
        "labels": labels,
        "runs": [b.runs for b in buckets],
        "failures": [b.failures for b in buckets],
        "duration_avg": [avg(b.dur_sum, b.runs, 3) for b in buckets],
        "duration_max": [None if b.dur_max is None else round(b.dur_max, 3) for b in buckets],
        "records_avg": [avg(b.rec_sum, b.published, 1) for b in buckets],
        "summary": {
            "runs": runs,
            "failures": sum(b.failures for b in buckets),
            "published": published,
            "duration_avg": avg(sum(b.dur_sum for b in buckets), runs, 3),
            "duration_max": round(max(maxima), 3) if maxima else None,
            "records_avg": avg(sum(b.rec_sum for b in buckets), published, 1),
        },
    }


def fold_trends(
    rows: Iterable[Sequence[Any]], components: Iterable[str], now: datetime, tz: ZoneInfo
) -> dict[str, dict[str, Any]]:
    """Per component: ``7d`` (168 hourly buckets) and ``30d`` (30 local days) series.

    ``rows`` are ``(component, 'YYYY-MM-DDTHH' in UTC, runs, failures, dur_sum,
    dur_max, rec_sum, published)``; rows of components not listed are ignored.
    """
    names = list(components)
    this_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=167 - i) for i in range(168)]
    hour_index = {h.strftime("%Y-%m-%dT%H"): i for i, h in enumerate(hours)}
    today = now.astimezone(tz).date()
    days = [today - timedelta(days=29 - i) for i in range(30)]
    day_index = {d: i for i, d in enumerate(days)}
    hourly = {n: [_Bucket() for _ in hours] for n in names}
    daily = {n: [_Bucket() for _ in days] for n in names}
    for component, hour, *values in rows:
        if component not in hourly:
            continue
        i = hour_index.get(hour)
        if i is not None:
            hourly[component][i].add(values)
        start = datetime.fromisoformat(hour + ":00:00+00:00")
        d = day_index.get(start.astimezone(tz).date())
        if d is not None:
            daily[component][d].add(values)
    hour_labels = [h.astimezone(tz).strftime("%a %d %b %H:00") for h in hours]
    day_labels = [d.isoformat() for d in days]
    return {
        n: {"7d": _series(hour_labels, hourly[n]), "30d": _series(day_labels, daily[n])}
        for n in names
    }


# --- error patterns ---------------------------------------------------------------------

_VARIABLE = [
    (re.compile(r"\b\d{8}T\d{6}Z-[0-9a-f]{6}\b"), "<run>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ][\d:.]+(?:[+-]\d\d:\d\d|Z)?"), "<time>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"\b\d+\.\d+\b|\b\d{5,}\b"), "<n>"),
]


def error_pattern(message: str) -> str:
    """The shape of an error message: first line, with ids, times and measurements masked."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    for pattern, mask in _VARIABLE:
        line = pattern.sub(mask, line)
    return line[:300]


def fold_errors(
    rows: Iterable[Sequence[Any]], tz: ZoneInfo, *, top: int = TOP_ERRORS
) -> list[dict[str, Any]]:
    """The commonest error patterns, with counts, first and last seen and a recent example.

    ``rows`` are ``(component, status, message, count, last_seen, first_seen)``.
    """
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for component, status, message, n, last_seen, first_seen in rows:
        key = (component, status, error_pattern(message or ""))
        entry = merged.get(key)
        if entry is None:
            merged[key] = {
                "component": component,
                "status": status,
                "pattern": key[2],
                "count": n,
                "last_seen": last_seen,
                "first_seen": first_seen,
                "example": (message or "")[:500],
            }
            continue
        entry["count"] += n
        entry["first_seen"] = min(entry["first_seen"], first_seen)
        if last_seen > entry["last_seen"]:
            entry["last_seen"], entry["example"] = last_seen, (message or "")[:500]
    out = sorted(merged.values(), key=lambda e: (e["count"], e["last_seen"]), reverse=True)
    for entry in out[:top]:
        for when in ("last_seen", "first_seen"):
            entry[when] = datetime.fromisoformat(entry[when]).astimezone(tz).isoformat()
    return out[:top]


# --- quality reports --------------------------------------------------------------------


def summarise_quality(report: Mapping[str, Any]) -> dict[str, Any]:
    """A quality report cut to what a page shows: verdict, rules, counts, some notices."""
    report = shape(report) or {}  # history written before the one shape, too
    notices = report.get("notices")
    notices = notices if isinstance(notices, list) else []
    order = {"ERROR": 0, "WARNING": 1, "INFO": 2}
    shown = sorted(notices, key=lambda n: order.get(str(n.get("severity")), 3))[:NOTICES_SHOWN]
    return {
        "passed": report.get("passed"),
        "error_count": report.get("error_count"),
        "warning_count": report.get("warning_count"),
        "rules": report.get("rules") or [],
        "counts": report.get("counts") or {},
        "volume": report.get("volume"),
        "record_counts": report.get("record_counts") or {},
        "notices": shown,
        "notices_total": len(notices),
        # Realtime: endpoint -> kind -> {ids, joined, percent} against the schedule in force.
        "joins": report.get("joins") if isinstance(report.get("joins"), dict) else {},
        "other": {
            k: v
            for k, v in report.items()
            if k not in _SHOWN_KEYS and isinstance(v, str | int | float | bool)
        },
    }


_SHOWN_KEYS = frozenset(
    {
        "passed",
        "error_count",
        "warning_count",
        "rules",
        "counts",
        "volume",
        "record_counts",
        "notices",
        "stats",
        "joins",
    }
)


# --- reading ----------------------------------------------------------------------------


async def read_trends(
    store: StateReader, components: Iterable[str], now: datetime, tz: ZoneInfo
) -> dict[str, dict[str, Any]]:
    """30 days of per-hour aggregates, folded (see :func:`fold_trends`)."""
    rows = await store.hourly_totals(now.astimezone(UTC) - timedelta(days=31), failed=FAILED)
    return fold_trends(rows, components, now, tz)


async def read_errors(store: StateReader, now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The top error patterns of the last 30 days."""
    rows = await store.error_tallies(now.astimezone(UTC) - timedelta(days=30), statuses=FAILED)
    return fold_errors(rows, tz)


async def read_last_runs(
    store: StateReader, components: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Each component's most recent history row, cut to what the page shows."""
    last = await store.last_runs(components)
    return {name: {k: row[k] for k in LAST_RUN_FIELDS} for name, row in last.items()}


async def read_last_quality(
    store: StateReader, components: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Each component's most recent quality report, summarised."""
    return {
        name: {
            "run_id": row["run_id"],
            "status": row["status"],
            "finished_at": row["finished_at"],
            "report": summarise_quality(row["quality"]),
        }
        for name, row in (await store.last_quality(components)).items()
    }
