"""Change detection: has the source anything new since the last publish?

Pure decisions over what the component remembered from its last success and what
the source says now, each method switched on or off in ``change_detection``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

METHODS = ("file_hash", "etag", "last_modified", "record_count")


@dataclass(frozen=True, kw_only=True)
class ChangePolicy:
    """``change_detection`` with defaults applied."""

    enabled: bool = True
    file_hash: bool = True
    etag: bool = True
    last_modified: bool = True
    record_count: bool = True
    threshold_percentage: float = 10.0
    max_record_drop_percentage: float = 50.0

    @classmethod
    def from_config(cls, section: Mapping[str, Any], *, skip: bool = False) -> ChangePolicy:
        """Build from the config section; ``skip`` (the override) turns every method off."""
        methods = section.get("methods", {})
        enabled = section.get("enabled", True) and not skip
        return cls(
            enabled=enabled,
            file_hash=enabled and methods.get("file_hash", True),
            etag=enabled and methods.get("etag", True),
            last_modified=enabled and methods.get("last_modified", True),
            record_count=section.get("enabled", True) and methods.get("record_count", True),
            threshold_percentage=section.get("threshold_percentage", 10.0),
            max_record_drop_percentage=section.get("max_record_drop_percentage", 50.0),
        )


def conditional_headers(memory: Mapping[str, Any], policy: ChangePolicy) -> dict[str, str]:
    """The validators to send so an unchanged source can answer 304."""
    out: dict[str, str] = {}
    if policy.etag and memory.get("etag"):
        out["etag"] = memory["etag"]
    if policy.last_modified and memory.get("last_modified"):
        out["last_modified"] = memory["last_modified"]
    return out


def same_payload(memory: Mapping[str, Any], sha256: str | None, policy: ChangePolicy) -> bool:
    """Whether the payload is byte-for-byte what was last published."""
    return bool(policy.file_hash and sha256 and memory.get("sha256") == sha256)


@dataclass(frozen=True, kw_only=True)
class VolumeVerdict:
    """How the record count moved against the last publish."""

    previous: int | None
    current: int
    change_percent: float | None
    significant: bool
    drop_too_large: bool


def volume_change(previous: int | None, current: int, policy: ChangePolicy) -> VolumeVerdict:
    """Compare record counts: a change beyond the threshold is significant (warned
    about); a drop beyond ``max_record_drop_percentage`` fails quality."""
    if not policy.record_count or not previous:
        return VolumeVerdict(
            previous=previous,
            current=current,
            change_percent=None,
            significant=False,
            drop_too_large=False,
        )
    change = (current - previous) / previous * 100.0
    return VolumeVerdict(
        previous=previous,
        current=current,
        change_percent=round(change, 3),
        significant=abs(change) > policy.threshold_percentage,
        drop_too_large=-change > policy.max_record_drop_percentage,
    )
