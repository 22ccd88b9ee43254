"""Checks the ``tolerate`` and ``escalate`` notice codes of ``data_quality``'s rules.

A code must be in the notice catalogue of the component the rules apply to (its
class's ``notice_severities``; for ``default_rules`` and ``validation_rules``, of any
configured component): only an ERROR can be tolerated, only a WARNING or INFO
escalated, and no code may be on both lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.config.registry import component_class_path, load_component_class
from interlock.config.schema import did_you_mean
from interlock.errors import ComponentLoadError

LISTS = ("tolerate", "escalate")


def catalogue(name: str, raw: Any) -> Mapping[str, str] | None:
    """code -> severity of the notices component ``name`` reports (None: it has none)."""
    given = raw.get("class") if isinstance(raw, dict) else None
    path = given if isinstance(given, str) else component_class_path(name)
    if path is None:
        return None
    try:
        cls = load_component_class(path)
    except ComponentLoadError:
        return None  # the component checks report why it cannot load
    found = getattr(cls, "notice_severities", None)
    return found if isinstance(found, Mapping) else None


def problems(data_quality: Any, components: Mapping[str, Any]) -> list[str]:
    """Every misplaced or unknown code in ``data_quality``'s tolerate/escalate lists."""
    if not isinstance(data_quality, dict):
        return []
    known = {name: catalogue(name, raw) for name, raw in components.items()}
    everyone: dict[str, str] = {}
    for codes in known.values():
        everyone.update(codes or {})
    out: list[str] = []
    for section in ("validation_rules", "default_rules"):
        rules = data_quality.get(section)
        out += _check(f"$.data_quality.{section}", rules, everyone, "the configured components")
    per_component = data_quality.get("rules")
    for name, rules in (per_component if isinstance(per_component, dict) else {}).items():
        codes = known.get(name) if name in known else catalogue(name, None)
        out += _check(f"$.data_quality.rules.{name}", rules, codes or {}, repr(name))
    return out


def _check(where: str, rules: Any, codes: Mapping[str, str], whose: str) -> list[str]:
    if not isinstance(rules, dict) or not any(isinstance(rules.get(k), list) for k in LISTS):
        return []
    if not codes:
        return [
            f"{where}: {whose} reports no notice codes, so tolerate and escalate do not "
            "apply; remove them (they apply to components with a notice catalogue, such "
            "as gtfs_schedule)"
        ]
    out = []
    errors = sorted(c for c, s in codes.items() if s == "ERROR")
    others = sorted(c for c, s in codes.items() if s != "ERROR")
    for key, allowed in (("tolerate", errors), ("escalate", others)):
        listed = rules.get(key)
        for i, code in enumerate(listed if isinstance(listed, list) else []):
            if not isinstance(code, str):
                continue  # the schema reports it
            path = f"{where}.{key}[{i}]"
            if code not in codes:
                out.append(
                    f"{path}: unknown notice code {code!r}{did_you_mean(code, sorted(codes))}; "
                    f"allowed (the {'ERROR' if key == 'tolerate' else 'WARNING and INFO'} "
                    f"codes of {whose}): {', '.join(allowed)}"
                )
            elif key == "tolerate" and codes[code] != "ERROR":
                out.append(
                    f"{path}: {code!r} is a {codes[code]} notice, which never blocks; only "
                    "ERROR codes can be tolerated (list it under escalate to make it block)"
                )
            elif key == "escalate" and codes[code] == "ERROR":
                out.append(
                    f"{path}: {code!r} is an ERROR notice, which blocks already; only "
                    "WARNING and INFO codes can be escalated (list it under tolerate to let "
                    "it publish)"
                )
    tolerate, escalate = (rules.get(k) for k in LISTS)
    if isinstance(tolerate, list) and isinstance(escalate, list):
        for code in sorted({c for c in tolerate if isinstance(c, str)} & set(escalate)):
            out.append(
                f"{where}: {code!r} is in both tolerate and escalate; keep it in one of them"
            )
    return out
