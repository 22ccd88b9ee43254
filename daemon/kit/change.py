"""Change detection: has the source anything new since the last publish?

Pure decisions over what the component remembered from its last success and what
the source says now, each method switched on or off in ``change_detection``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

METHODS = ("file_hash", "etag", "last_modified", "record_count")
# The platform's documented names: api_etag covers both HTTP validators.
DOCUMENTED_METHODS = ("file_hash", "api_etag", "record_count")


def _switch(value: Any) -> bool:
    """A method given as ``true``/``false`` or as ``{"enabled": ...}``."""
    if isinstance(value, Mapping):
        return bool(value.get("enabled", True))
    return bool(value)


def _option(methods: Mapping[str, Any], method: str, key: str) -> Any:
    value = methods.get(method)
    return value.get(key) if isinstance(value, Mapping) else None


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
    algorithm: str = "sha256"
    cache_duration_hours: float | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any], *, skip: bool = False) -> ChangePolicy:
        """Build from the config section; ``skip`` (the override) turns every method off."""
        methods = section.get("methods", {})
        enabled = section.get("enabled", True) and not skip
        api_etag = _switch(methods.get("api_etag", True))
        threshold = _option(methods, "record_count", "threshold_percentage")
        return cls(
            enabled=enabled,
            file_hash=enabled and _switch(methods.get("file_hash", True)),
            etag=enabled and api_etag and _switch(methods.get("etag", True)),
            last_modified=enabled and api_etag and _switch(methods.get("last_modified", True)),
            record_count=section.get("enabled", True)
            and _switch(methods.get("record_count", True)),
            threshold_percentage=section.get("threshold_percentage", 10.0)
            if threshold is None
            else threshold,
            max_record_drop_percentage=section.get("max_record_drop_percentage", 50.0),
            algorithm=_option(methods, "file_hash", "algorithm") or "sha256",
            cache_duration_hours=_option(methods, "api_etag", "cache_duration_hours"),
        )

    def validators_fresh(self, stored_at: str | None, now: datetime | None = None) -> bool:
        """Whether validators stored at ``stored_at`` (ISO time) may still be sent:
        past ``cache_duration_hours`` the next fetch is unconditional."""
        if self.cache_duration_hours is None:
            return True
        if not stored_at:
            return False
        try:
            when = datetime.fromisoformat(stored_at)
        except ValueError:
            return False
        now = now or datetime.now(UTC)
        return now - when < timedelta(hours=self.cache_duration_hours)


def decided(policy: ChangePolicy, method: str) -> dict[str, Any]:
    """Outcome metrics naming the method that found the source unchanged, and those on."""
    on = [
        name
        for name, used in (
            ("file_hash", policy.file_hash),
            ("api_etag", policy.etag or policy.last_modified),
            ("record_count", policy.record_count),
        )
        if used
    ]
    return {"change_detection": {"decided_by": method, "methods": on}}


#: The memory key naming the method that found a component's last run unchanged.
DECIDED = "unchanged_by"


def because(method: str, why: str) -> str:
    """An unchanged run's reason, naming the method that decided by its config name."""
    return f"{why} (decided by {method})"


def methods_on(policy: ChangePolicy) -> list[str]:
    """The methods that are on, as ``plan`` shows them: ``file_hash(sha256) api_etag(24h)``."""
    hours = policy.cache_duration_hours
    return [
        label
        for label, used in (
            (f"file_hash({policy.algorithm})", policy.file_hash),
            (f"api_etag({hours:g}h)" if hours else "api_etag", policy.etag or policy.last_modified),
            (f"record_count({policy.threshold_percentage:g}%)", policy.record_count),
        )
        if used
    ]


def file_digest(path: Path, algorithm: str) -> str:
    """``path``'s digest with ``algorithm``, labelled (``"blake2b:..."``)."""
    with open(path, "rb") as f:
        return f"{algorithm}:{hashlib.file_digest(f, algorithm).hexdigest()}"


def conditional_headers(memory: Mapping[str, Any], policy: ChangePolicy) -> dict[str, str]:
    """The validators to send so an unchanged source can answer 304."""
    out: dict[str, str] = {}
    if not policy.validators_fresh(memory.get("fetched_at")):
        return out
    if policy.etag and memory.get("etag"):
        out["etag"] = memory["etag"]
    if policy.last_modified and memory.get("last_modified"):
        out["last_modified"] = memory["last_modified"]
    return out


def same_payload(
    memory: Mapping[str, Any], sha256: str | None, policy: ChangePolicy, digest: str | None = None
) -> bool:
    """Whether the payload is byte-for-byte what was last published. With an
    ``algorithm`` other than sha256, ``digest`` (its labelled digest) decides."""
    if policy.algorithm != "sha256":
        return bool(policy.file_hash and digest and memory.get("digest") == digest)
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
