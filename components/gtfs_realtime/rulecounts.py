"""A realtime poll's rule results in the shape every quality report has.

The rules run per endpoint (``rt_rules[endpoint]``); the report's ``counts`` add them
up per rule id, and ``notices`` carries the samples, each naming its endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Sample notices kept in the report across all endpoints.
MAX_SAMPLES = 50


def rule_totals(per_endpoint: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``counts`` ({rule id: {severity, count}}) and ``notices`` (samples) of a poll."""
    counts: dict[str, dict[str, Any]] = {}
    notices: list[dict[str, Any]] = []
    for endpoint, result in sorted(per_endpoint.items()):
        for n in result.get("notices") or ():
            code, severity = n["code"], n["severity"]
            entry = counts.setdefault(code, {"severity": severity, "count": 0})
            entry["count"] += int(n["count"])
            for sample in n.get("samples") or ():
                if len(notices) < MAX_SAMPLES:
                    notices.append(
                        {"code": code, "severity": severity, "endpoint": endpoint, **sample}
                    )
    return {"counts": dict(sorted(counts.items())), "notices": notices}
