"""Resolve a Data Vic (CKAN) dataset to the CSV resources a component asked for.

``resources`` is ``"latest"`` (the CSV created most recently), ``"all"`` or a list
of resource names. Pure selection over ``package_show``'s result, plus the
metadata that lets an unchanged dataset be skipped before anything is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.errors import FetchError


def is_csv(resource: Mapping[str, Any]) -> bool:
    fmt = str(resource.get("format") or "").strip().upper()
    url = str(resource.get("url") or "").lower().split("?")[0]
    return fmt == "CSV" or (not fmt and url.endswith(".csv"))


def select(
    package: Mapping[str, Any], wanted: str | list[str], dataset: str
) -> list[dict[str, Any]]:
    """The resources to fetch, in the package's order."""
    resources = [r for r in package.get("resources") or [] if isinstance(r, dict)]
    csvs = [r for r in resources if is_csv(r) and r.get("state", "active") == "active"]
    if isinstance(wanted, list):
        by_name = {r.get("name"): r for r in resources}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            names = ", ".join(repr(r.get("name")) for r in resources) or "none"
            raise FetchError(
                f"CKAN dataset {dataset!r} has no resource(s) {missing!r}; its resources: {names}"
            )
        chosen = [by_name[n] for n in wanted]
    elif not csvs:
        names = ", ".join(f"{r.get('name')!r} ({r.get('format')})" for r in resources) or "none"
        raise FetchError(f"CKAN dataset {dataset!r} has no CSV resource; its resources: {names}")
    elif wanted == "latest":
        chosen = [max(csvs, key=lambda r: (str(r.get("created") or ""), r.get("position") or 0))]
    else:
        chosen = csvs
    for r in chosen:
        url = r.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise FetchError(f"CKAN resource {r.get('name')!r} has no usable url: {url!r}")
    return chosen


def metadata(package: Mapping[str, Any], chosen: list[dict[str, Any]]) -> dict[str, Any]:
    """What CKAN says about the chosen resources, for the before-download change check."""
    return {
        "metadata_modified": package.get("metadata_modified"),
        "resources": {
            str(r.get("id") or r.get("url")): {
                "name": r.get("name"),
                "url": r.get("url"),
                "last_modified": r.get("last_modified"),
                "hash": r.get("hash") or None,
                "size": r.get("size"),
            }
            for r in chosen
        },
    }


def metadata_unchanged(
    before: Mapping[str, Any] | None, now: Mapping[str, Any], *, timestamps: bool, hashes: bool
) -> bool:
    """Whether CKAN's metadata proves nothing changed: the same resources, and every
    compared field that is present (last_modified, metadata_modified, hash, size) equal.
    A resource with no such field at all proves nothing."""
    if not before or set(before.get("resources", {})) != set(now["resources"]):
        return False
    fields = (["last_modified"] if timestamps else []) + (["hash", "size"] if hashes else [])
    if timestamps and before.get("metadata_modified") != now.get("metadata_modified"):
        return False
    for rid, meta in now["resources"].items():
        old = before["resources"][rid]
        if old.get("url") != meta.get("url"):
            return False
        compared = [f for f in fields if meta.get(f) is not None or old.get(f) is not None]
        if not compared or any(old.get(f) != meta.get(f) for f in compared):
            return False
    return True
