"""How ``status`` and ``reload`` read for people: the quota lines and the reload summary.

Printing only: plain dicts in, text out, so ``status`` through the admin socket imports
none of the daemon.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interlock.cli.common import PrintTable


def _wall(iso: str) -> str:
    """An ISO 8601 time from the daemon (already in its zone) as people read it."""
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return str(iso)


def quota_lines(quota: dict[str, Any], table: PrintTable) -> None:
    """Print the quota for people: the day's totals, then calls per endpoint."""
    state = "EXHAUSTED" if quota.get("exhausted") else "ok"
    resume = quota.get("resume_at")
    print(
        f"\nquota {state}: {quota['used']} of {quota['daily_limit']} calls used today "
        f"({quota['used_percent']}%), {quota['left']} left; resets {_wall(quota['reset_at'])}"
        + (f"; non-priority calls resume {_wall(resume)}" if resume else "")
    )
    endpoints = quota.get("endpoints") or {}
    if endpoints:
        table(
            [
                (name, e["calls"], e["refused"], "yes" if e["priority"] else "")
                for name, e in endpoints.items()
            ],
            ["endpoint", "calls today", "refused", "priority"],
        )
    for family, r in (quota.get("rate") or {}).items():
        print(
            f"rate {family}: {r['available']} of {r['calls']} calls free now "
            f"(per {r['per_seconds']:g} s)"
        )


def join_lines(components: list[dict[str, Any]], table: PrintTable) -> None:
    """Print each realtime endpoint's join rates (the last run that stored it)."""
    rows = []
    for c in components:
        for endpoint, kinds in (c.get("joins") or {}).items():
            cells = [
                f"{j['percent']:g}% of {j['ids']}" if j.get("ids") else "-"
                for j in (kinds.get(k) or {} for k in ("trip", "route", "stop"))
            ]
            rows.append((c["component"], endpoint, *cells))
    if rows:
        print("\nrealtime ids found in the schedule in force (last run that stored each feed)")
        table(rows, ["component", "endpoint", "trip ids", "route ids", "stop ids"])


def reload_text(result: dict[str, Any]) -> str:
    """The ``reload`` reply for people: what changed, was rebuilt, failed or needs a restart."""
    lines = [f"reloaded {result['source']}: {len(result['components'])} components"]
    lines += reload_notes(result)
    return "\n".join(lines)


def reload_notes(result: dict[str, Any]) -> list[str]:
    """A reload's changed, rebuilt, failed and restart-needed parts, a line each."""
    lines = []
    if result.get("changed"):
        lines.append("changed: " + ", ".join(result["changed"]))
    if result.get("rebuilt"):
        lines.append("rebuilt: " + ", ".join(result["rebuilt"]))
    for failed in result.get("failed") or []:
        lines.append(f"FAILED {failed['part']} (the old one is kept): {failed['error']}")
    for needed in result.get("restart_needed") or []:
        values = (
            f" (in use {needed['in_use']!r}, configured {needed['configured']!r})"
            if "in_use" in needed
            else ""
        )
        lines.append(f"needs a restart: {needed['setting']}{values}: {needed['reason']}")
    return lines
