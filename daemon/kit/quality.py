"""Data-quality rules (``data_quality``) applied to the statistics a loader reports.

The rules are the seed's: record_count_min, null_percentage_max,
duplicate_percentage_max and schema_validation; per-component rules override the
defaults. ``tolerate`` and ``escalate`` move single notice codes across the line
schema_validation draws (ERRORs block). The verdict goes into the quality report
stored with the component run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

from interlock import secrets

RULES = ("record_count_min", "null_percentage_max", "duplicate_percentage_max", "schema_validation")


def rules_for(section: Mapping[str, Any], component: str) -> dict[str, Any]:
    """The default rules (``validation_rules``, then ``default_rules``) with the component's own
    on top."""
    merged = dict(section.get("validation_rules", {}))
    merged.update(section.get("default_rules", {}))
    merged.update(section.get("rules", {}).get(component, {}))
    return merged


def _percent(part: int, whole: int) -> float:
    return round(part / whole * 100.0, 4) if whole else 0.0


def blocking_notices(counts: Mapping[str, Any], rules: Mapping[str, Any]) -> dict[str, int]:
    """code -> count of the notices that fail schema_validation under ``rules``.

    ``counts`` is a report's ``{code: {"severity", "count"}}``: every ERROR blocks
    unless its code is in ``tolerate``, and a WARNING or INFO blocks when its code is
    in ``escalate``. Tolerated and escalated codes are marked so in ``counts``.
    """
    tolerate = set(rules.get("tolerate", ()))
    escalate = set(rules.get("escalate", ()))
    out: dict[str, int] = {}
    for code, entry in counts.items():
        if not isinstance(entry, dict):
            continue
        if entry.get("severity") == "ERROR" and code in tolerate:
            entry["tolerated"] = True
        elif entry.get("severity") == "ERROR" or code in escalate:
            out[code] = int(entry.get("count", 0))
            if code in escalate:
                entry["escalated"] = True
    return out


def _notice_counts(counts: Any) -> TypeGuard[dict[str, Any]]:
    """Whether ``counts`` is per-code notice counts (``{code: {"severity", "count"}}``),
    not some other tally a component reports under that name."""
    return (
        isinstance(counts, dict)
        and bool(counts)
        and all(isinstance(c, dict) and "severity" in c for c in counts.values())
    )


def evaluate(
    stats: Mapping[str, int], rules: Mapping[str, Any], report: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Each configured rule with its measured value, limit and whether it passed.

    ``stats`` carries records, checked_cells, null_cells, keyed_rows,
    duplicate_rows and error_notices. When ``report`` has per-code ``counts``,
    schema_validation measures the notices :func:`blocking_notices` names instead
    of ``error_notices``.
    """
    out: list[dict[str, Any]] = []

    def check(rule: str, measured: float, limit: Any, passed: bool) -> None:
        out.append({"rule": rule, "measured": measured, "limit": limit, "passed": passed})

    if "record_count_min" in rules:
        n = stats.get("records", 0)
        check("record_count_min", n, rules["record_count_min"], n >= rules["record_count_min"])
    if "null_percentage_max" in rules:
        pct = _percent(stats.get("null_cells", 0), stats.get("checked_cells", 0))
        check(
            "null_percentage_max",
            pct,
            rules["null_percentage_max"],
            pct <= rules["null_percentage_max"],
        )
    if "duplicate_percentage_max" in rules:
        pct = _percent(stats.get("duplicate_rows", 0), stats.get("keyed_rows", 0))
        check(
            "duplicate_percentage_max",
            pct,
            rules["duplicate_percentage_max"],
            pct <= rules["duplicate_percentage_max"],
        )
    if rules.get("schema_validation"):
        counts = report.get("counts") if report else None
        if _notice_counts(counts):
            errors = sum(blocking_notices(counts, rules).values())
        else:
            errors = stats.get("error_notices", 0)
        check("schema_validation", errors, 0, errors == 0)
    return out


def failures(results: list[dict[str, Any]], report: Mapping[str, Any] | None = None) -> list[str]:
    """One line per failed rule, naming the figure and the limit.

    For schema_validation the commonest error codes of ``report`` are named too,
    so the first line of a failure already says what is wrong with the data.
    """
    out = []
    for r in results:
        if r["passed"]:
            continue
        line = f"{r['rule']}: measured {r['measured']}, limit {r['limit']}"
        if r["rule"] == "schema_validation" and report:
            counts = report.get("counts", {})
            errors = sorted(
                (
                    (c["count"], code)
                    for code, c in counts.items()
                    if isinstance(c, dict)
                    and (c.get("severity") == "ERROR" or c.get("escalated"))
                    and not c.get("tolerated")
                ),
                reverse=True,
            )[:3]
            if errors:
                line += " (" + ", ".join(f"{code} x{n}" for n, code in errors) + ")"
        out.append(line)
    return out


def write_report(
    data_dir: Path, component: str, run_id: str, at: datetime, status: str, report: Any
) -> Path:
    """Write one run's quality report as ``data_dir/quality/<component>/<time>-<run>.json``.

    ``data_quality.quality_reports`` asks for it. Written whole (a temporary file renamed
    into place), mode 0600 like the payloads, secrets masked like history.
    """
    folder = data_dir / "quality" / component
    folder.mkdir(parents=True, exist_ok=True)
    stamp = at.strftime("%Y%m%dT%H%M%S")
    path = folder / f"{stamp}-{run_id}.json"
    doc = {"component": component, "run_id": run_id, "at": at.isoformat(), "status": status}
    text = json.dumps(secrets.mask_all({**doc, "quality": report}), indent=2, default=str)
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)
    return path
