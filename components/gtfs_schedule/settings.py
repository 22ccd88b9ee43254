"""The ``gtfs_schedule`` component's settings: their JSON Schema and the zip limits they set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.components.gtfs_schedule.zipsafe import ZipLimits

MB = 1 << 20

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["source"],
    "properties": {
        "source": {
            "oneOf": [
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["url"],
                    "properties": {"url": {"type": "string", "pattern": "^https?://"}},
                },
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["path"],
                    "properties": {"path": {"type": "string", "minLength": 1}},
                },
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["ckan"],
                    "properties": {
                        "ckan": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["base_url", "dataset"],
                            "properties": {
                                "base_url": {"type": "string", "pattern": "^https?://"},
                                "dataset": {"type": "string", "minLength": 1},
                                "resource": {"type": "string", "minLength": 1},
                            },
                        }
                    },
                },
            ],
        },
        "modes": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[0-9]{1,3}$"},
            "uniqueItems": True,
            "minItems": 1,
        },
        "max_download_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 102400},
        "archive_keep": {"type": "integer", "minimum": 1, "maximum": 1000},
        # Published versions kept, live included (realtime polls join the one they used).
        "keep_versions": {"type": "integer", "minimum": 2, "maximum": 100},
        # A CKAN resource URL must be http(s) to public addresses unless this is set.
        "allow_private_addresses": {"type": "boolean"},
        "zip_limits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_members": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                "max_member_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1 << 20},
                "max_total_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1 << 20},
                "max_ratio": {"type": "number", "exclusiveMinimum": 1, "maximum": 100_000},
            },
        },
    },
}


def zip_limits(settings: Mapping[str, Any]) -> ZipLimits:
    """The zip guards ``settings.zip_limits`` asks for, the defaults elsewhere."""
    given = settings.get("zip_limits", {})
    base = ZipLimits()
    return ZipLimits(
        max_members=given.get("max_members", base.max_members),
        max_member_bytes=int(given.get("max_member_mb", base.max_member_bytes / MB) * MB),
        max_total_bytes=int(given.get("max_total_mb", base.max_total_bytes / MB) * MB),
        max_ratio=given.get("max_ratio", base.max_ratio),
        ratio_min_bytes=base.ratio_min_bytes,
    )
