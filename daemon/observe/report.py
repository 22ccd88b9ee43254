"""``interlock report``: how components performed over a period, and where their time goes.

Per component: p50/p95 duration and the trend against the previous period of the
same length, success rate, records/s, API latency, the most frequent errors, and
plain-sentence insights ("gtfs_schedule spends 81% of its time in load").
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from interlock.observe.monitor import percentile
from interlock.observe.notify.policy import signature
from interlock.store.abc import StateReader

RAN = frozenset({"succeeded", "unchanged", "failed", "timed_out"})
OK = frozenset({"succeeded", "unchanged"})
# "5d" and "-5d" both mean five days back (people write it both ways).
_SPAN = re.compile(r"^\s*-?\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


#: How far back a report reaches at most (its previous period, as far again, must fit too).
MAX_SINCE = timedelta(days=100 * 365)


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``, ``12h``, ``30m``, ``2w`` (or ``-7d``) before ``now``, or an ISO date/time.

    A date or time without an offset is UTC.

    Raises ValueError for a time after ``now`` or more than 100 years before it.
    """
    m = _SPAN.match(text)
    if m:
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
        if not seconds <= MAX_SINCE.total_seconds():  # also catches inf
            raise ValueError(
                f"--since {text[:40]!r} reaches more than 100 years back; use a shorter span "
                "such as '30d'"
            )
        return now - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text[:40]!r} is neither a span like '7d', '12h', '30m', '2w' nor an ISO "
            "date such as '2025-05-01'"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when > now:
        raise ValueError(f"--since {text!r} is in the future; give a time before now")
    if now - when > MAX_SINCE:
        raise ValueError(f"--since {text!r} is more than 100 years back; give a later date")
    return when


def _p(values: Sequence[float], q: float) -> float | None:
    return round(percentile(values, q), 3) if values else None


def component_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The figures of one component's runs (oldest first)."""
    ran = [r for r in rows if r["status"] in RAN]
    durations = [float(r["duration_s"]) for r in ran if r["duration_s"] is not None]
    ok = sum(1 for r in ran if r["status"] in OK)
    statuses = Counter(r["status"] for r in rows)
    metrics = [r["metrics"] or {} for r in ran]
    rates = [float(m["records_per_s"]) for m in metrics if m.get("records_per_s")]
    api: dict[str, dict[str, float]] = {}
    phases: dict[str, float] = {}
    for m in metrics:
        for endpoint, a in (m.get("api") or {}).items():
            agg = api.setdefault(endpoint, {"calls": 0, "total_ms": 0.0, "p95_ms": 0.0})
            agg["calls"] += a.get("calls", 0)
            agg["total_ms"] += a.get("total_ms", 0.0)
            agg["p95_ms"] = max(agg["p95_ms"], a.get("p95_ms", 0.0))
            agg["max_ms"] = max(agg.get("max_ms", 0.0), a.get("max_ms", 0.0))
        for phase, seconds in (m.get("phases") or {}).items():
            if isinstance(seconds, int | float):
                phases[phase] = phases.get(phase, 0.0) + seconds
    for agg in api.values():
        agg["mean_ms"] = round(agg["total_ms"] / agg["calls"], 2) if agg["calls"] else 0.0
    errors: dict[str, dict[str, Any]] = {}
    for r in ran:
        if r["status"] not in OK and r["error"]:
            e = errors.setdefault(signature(r["error"]), {"count": 0})
            e.update(count=e["count"] + 1, last_seen=r["started_at"], message=r["error"])
    skipped = Counter(r["reason"] for r in rows if r["status"] == "skipped")
    # Wall time with a call in flight: the union kept per run, or for older history the
    # sum of call times, which concurrent calls inflate, capped at the run's wall time.
    api_busy = sum(
        float(m["api_busy_s"])
        if "api_busy_s" in m
        else min(
            sum(a.get("total_ms", 0.0) for a in (m.get("api") or {}).values()) / 1e3,
            float(m.get("wall_s") or r["duration_s"] or 0.0),
        )
        for r, m in zip(ran, metrics, strict=True)
        if m.get("api")
    )
    joins: dict[str, dict[str, dict[str, Any]]] = {}
    for m in metrics:
        for endpoint, kinds in (m.get("joins") or {}).items():
            for kind, j in (kinds or {}).items():
                if not isinstance(j, dict) or not j.get("ids"):
                    continue
                agg = joins.setdefault(endpoint, {}).setdefault(
                    kind, {"polls": 0, "ids": 0, "joined": 0, "min_percent": 100.0}
                )
                agg["polls"] += 1
                agg["ids"] += int(j["ids"])
                agg["joined"] += int(j.get("joined", 0))
                agg["min_percent"] = min(agg["min_percent"], 100.0 * j.get("joined", 0) / j["ids"])
    for kinds in joins.values():
        for agg in kinds.values():
            agg["percent"] = round(100.0 * agg["joined"] / agg["ids"], 1)
            agg["min_percent"] = round(agg["min_percent"], 1)
    peaks = [float(m["peak_rss_mb"]) for m in metrics if m.get("peak_rss_mb")]
    cpu = sum(float(m.get("cpu_s", 0)) for m in metrics if not m.get("overlapped"))
    wall_solo = sum(float(m.get("wall_s", 0)) for m in metrics if not m.get("overlapped"))
    return {
        "runs": len(ran),
        "statuses": dict(statuses),
        "success_rate": round(100.0 * ok / len(ran), 1) if ran else None,
        "p50_s": _p(durations, 50),
        "p95_s": _p(durations, 95),
        "total_s": round(sum(durations), 3),
        "records_per_s": round(statistics.median(rates), 1) if rates else None,
        "retries": sum(max(0, int(r["attempts"] or 1) - 1) for r in ran),
        "peak_rss_mb": max(peaks) if peaks else None,
        "cpu_share": round(cpu / wall_solo, 2) if wall_solo > 0 else None,
        "api": api,
        "api_busy_s": round(api_busy, 3),
        "phases_s": {k: round(v, 3) for k, v in sorted(phases.items(), key=lambda kv: -kv[1])},
        "top_errors": sorted(errors.values(), key=lambda e: (-e["count"], e["message"]))[:5],
        "skipped": dict(skipped),
        "joins": joins,
    }


def insights(name: str, s: Mapping[str, Any], timeout_s: float | None) -> list[str]:
    """Plain sentences about where a component's time goes and what stands out."""
    out: list[str] = []
    total = s["total_s"] or 0.0
    phases = s["phases_s"]
    phase_sum = sum(phases.values())
    if phase_sum > 0:
        top, seconds = next(iter(phases.items()))
        out.append(f"{name} spends {100 * seconds / phase_sum:.0f}% of its time in {top}")
    api_s = min(s.get("api_busy_s", 0.0), total)
    if total > 0 and api_s / total >= 0.3:
        slowest = max(s["api"].items(), key=lambda kv: kv[1]["total_ms"])[0]
        out.append(
            f"{name} spends {100 * api_s / total:.0f}% of its time waiting on API calls "
            f"(mostly {slowest})"
        )
    if s["cpu_share"] is not None and s["cpu_share"] >= 0.8 and total >= 1:
        out.append(f"{name} is CPU-bound ({100 * s['cpu_share']:.0f}% of its wall time on CPU)")
    if timeout_s and s["p95_s"] and s["p95_s"] >= 0.8 * timeout_s:
        out.append(
            f"{name}'s p95 duration ({s['p95_s']:.0f} s) is {100 * s['p95_s'] / timeout_s:.0f}% "
            "of its timeout: raise timeout_minutes or make it faster"
        )
    trend = s.get("trend_percent")
    if trend is not None and trend >= 50 and (s["p50_s"] or 0) >= 1:
        out.append(f"{name} got slower: p50 up {trend:.0f}% on the previous period")
    if s["runs"] and s["retries"] >= max(2, s["runs"] // 4):
        out.append(f"{name} needed {s['retries']} retries in {s['runs']} runs")
    if s["top_errors"]:
        e = s["top_errors"][0]
        out.append(f"{name}'s most frequent error ({e['count']}x): {e['message'][:120]}")
    for reason, n in s["skipped"].items():
        if reason in ("upstream_failed", "quota_exhausted"):
            out.append(f"{name} was skipped {n}x as {reason}")
    for endpoint, kinds in s.get("joins", {}).items():
        parts = [f"{k} {a['percent']:g}%" for k, a in kinds.items()]
        out.append(
            f"{name} {endpoint}: ids found in the schedule in force: {', '.join(parts)} "
            f"(over {max(a['polls'] for a in kinds.values())} stored polls)"
        )
    return out


def build(
    rows: Sequence[Mapping[str, Any]],
    previous: Sequence[Mapping[str, Any]],
    *,
    since: datetime,
    until: datetime,
    timeouts: Mapping[str, float] | None = None,
    quota: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole report as JSON-friendly data."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["component"], []).append(r)
    prev_by: dict[str, list[Mapping[str, Any]]] = {}
    for r in previous:
        prev_by.setdefault(r["component"], []).append(r)
    components: dict[str, Any] = {}
    notes: list[str] = []
    for name in sorted(by):
        s = component_stats(by[name])
        before = component_stats(prev_by.get(name, []))
        s["previous_p50_s"] = before["p50_s"]
        s["trend_percent"] = (
            round(100.0 * (s["p50_s"] - before["p50_s"]) / before["p50_s"], 1)
            if s["p50_s"] is not None and before["p50_s"]
            else None
        )
        s["insights"] = insights(name, s, (timeouts or {}).get(name))
        components[name] = s
    grand = sum(s["total_s"] for s in components.values())
    if grand > 0 and len(components) > 1:
        top = max(components, key=lambda n: components[n]["total_s"])
        share = components[top]["total_s"] / grand
        if share >= 0.5:
            notes.append(f"{top} takes {100 * share:.0f}% of all component time")
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "components": components,
        "insights": notes + [i for s in components.values() for i in s["insights"]],
        "quota": dict(quota) if quota else None,
    }


async def collect(
    db: Path,
    *,
    since: datetime,
    until: datetime,
    component: str | None = None,
    timeouts: Mapping[str, float] | None = None,
    daily_limit: int | None = None,
    reader: StateReader | None = None,
) -> dict[str, Any]:
    """Read the state database at ``db`` (or ``reader``'s state: PostgreSQL) and build the
    report (empty if there is none)."""
    from interlock.store.sqlite import SqliteStateStore

    if reader is not None:
        await reader.open()
        try:
            return await collect_from(
                reader,
                since=since,
                until=until,
                component=component,
                timeouts=timeouts,
                daily_limit=daily_limit,
            )
        finally:
            await reader.close()
    if not db.exists():  # noqa: ASYNC240 - one stat before opening
        return build([], [], since=since, until=until)
    async with SqliteStateStore(db) as store:
        return await collect_from(
            store,
            since=since,
            until=until,
            component=component,
            timeouts=timeouts,
            daily_limit=daily_limit,
        )


async def collect_from(
    store: StateReader,
    *,
    since: datetime,
    until: datetime,
    component: str | None = None,
    timeouts: Mapping[str, float] | None = None,
    daily_limit: int | None = None,
) -> dict[str, Any]:
    """Build the report from an open state store (the daemon's own, for the admin socket)."""
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    rows = await store.runs_between(since, until, component=component)
    previous = await store.runs_between(since - (until - since), since, component=component)
    stored = await store.get_meta("quota")
    quota = None
    if isinstance(stored, dict) and isinstance(stored.get("day"), dict):
        day = stored["day"]
        quota = {
            "day": day.get("day"),
            "used": day.get("used"),
            "daily_limit": daily_limit,
            "by_endpoint": day.get("by_endpoint"),
            "refused": day.get("refused"),
        }
    return build(rows, previous, since=since, until=until, timeouts=timeouts, quota=quota)
