"""The built-in components' production settings, and a one-line description of a source.

A built-in configured without ``settings`` gets its real production source: the
settings of the same name in the shipped ``orchestration.json`` (Transport Victoria's
CKAN, the Open Data API, the PTV Timetable API, Data Vic), so that file is the one
place they are written down. :func:`describe_source` is what ``plan`` shows.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from interlock.config.registry import BUILTINS


@cache
def _production() -> dict[str, Any]:
    text = resources.files("interlock.config").joinpath("orchestration.json").read_text()
    components = json.loads(text).get("components", {})
    return {n: c.get("settings", {}) for n, c in components.items() if isinstance(c, dict)}


def builtin_settings(name: str) -> dict[str, Any] | None:
    """A fresh copy of the production settings of built-in ``name`` (None if not built in)."""
    if name not in BUILTINS or name not in _production():
        return None
    settings: dict[str, Any] = copy.deepcopy(_production()[name])
    return settings


def describe_source(class_path: str | None, settings: Mapping[str, Any]) -> str | None:
    """Where a built-in component fetches from, in one line (None for other components)."""
    if class_path not in BUILTINS.values():
        return None
    source = settings.get("source")
    if isinstance(source, Mapping):
        ckan = source.get("ckan")
        if isinstance(ckan, Mapping):
            return f"CKAN {ckan.get('base_url')} dataset {ckan.get('dataset')!r}"
        if source.get("url") or source.get("path"):
            return str(source.get("url") or source.get("path"))
    endpoints = settings.get("endpoints")
    if isinstance(endpoints, Mapping) and endpoints:
        hosts = sorted({urlsplit(str(u)).netloc or str(u) for u in endpoints.values()})
        return f"{len(endpoints)} GTFS-realtime feeds at {', '.join(hosts)}"
    if settings.get("ckan_url"):
        return f"CKAN {settings['ckan_url']} dataset {settings.get('dataset')!r}"
    if settings.get("base_url"):
        return str(settings["base_url"])
    return None
