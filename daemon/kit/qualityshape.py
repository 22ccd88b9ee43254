"""The one shape of a quality report, whichever component wrote it.

Every component run's report (in history, in ``data_dir/quality/``, on the dashboard)
has the keys of :data:`REPORT_SCHEMA`; a component adds its own beside them. The
runner passes each report through :func:`shape`, which fills what a component left
out, so readers never guess: ``counts`` are notice codes (``{code: {severity,
count}}``), ``record_counts`` are rows per table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SEVERITIES = ("ERROR", "WARNING", "INFO")

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "interlock quality report",
    "type": "object",
    "required": [
        "passed",
        "error_count",
        "warning_count",
        "info_count",
        "counts",
        "notices",
        "rules",
        "record_counts",
    ],
    "properties": {
        "passed": {"type": ["boolean", "null"], "description": "the verdict; null: none"},
        "error_count": {"type": "integer", "minimum": 0},
        "warning_count": {"type": "integer", "minimum": 0},
        "info_count": {"type": "integer", "minimum": 0},
        "counts": {
            "description": "notices per code",
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["severity", "count"],
                "properties": {
                    "severity": {"enum": list(SEVERITIES)},
                    "count": {"type": "integer", "minimum": 0},
                    "tolerated": {"type": "boolean"},
                    "escalated": {"type": "boolean"},
                },
            },
        },
        "notices": {
            "description": "sample notices, each naming its code",
            "type": "array",
            "items": {"type": "object", "required": ["code"]},
        },
        "rules": {
            "description": "the data_quality rules applied and their verdicts",
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rule", "measured", "limit", "passed"],
                "properties": {"rule": {"type": "string"}, "passed": {"type": "boolean"}},
            },
        },
        "record_counts": {
            "description": "rows per table",
            "type": "object",
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
        "volume": {"type": "object"},
    },
}


def _is_notice_counts(counts: Any) -> bool:
    return isinstance(counts, Mapping) and all(
        isinstance(c, Mapping) and c.get("severity") in SEVERITIES for c in counts.values()
    )


def shape(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``report`` with every key of :data:`REPORT_SCHEMA` (None stays None).

    Counts per table filed under ``counts`` (as older components wrote them) move to
    ``record_counts``; severity totals are derived from ``counts`` where missing.
    """
    if report is None:
        return None
    out = dict(report)
    counts = out.get("counts")
    if counts is not None and not _is_notice_counts(counts):
        if isinstance(counts, Mapping) and "record_counts" not in out:
            out["record_counts"] = {
                str(k): v for k, v in counts.items() if isinstance(v, int) and v >= 0
            }
        counts = None
    out["counts"] = dict(counts or {})
    totals = ("error_count", "warning_count", "info_count")
    for severity, key in zip(SEVERITIES, totals, strict=True):
        if not isinstance(out.get(key), int):
            out[key] = sum(
                int(c["count"]) for c in out["counts"].values() if c["severity"] == severity
            )
    if not isinstance(out.get("notices"), list):
        out["notices"] = []
    if not isinstance(out.get("rules"), list):
        out["rules"] = []
    if not isinstance(out.get("record_counts"), Mapping):
        out["record_counts"] = {}
    if not isinstance(out.get("passed"), bool):
        out["passed"] = None
    return out
