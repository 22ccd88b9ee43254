"""What can happen to a component in a run, and the record of what did."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    """The outcome of one component in one run."""

    SUCCEEDED = "succeeded"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    #: Chosen for a run that ended (timeout, cancel, shutdown) before its turn came.
    NOT_STARTED = "not_started"
    RUNNING = "running"

    @property
    def ok(self) -> bool:
        """Whether downstream components may proceed after this outcome."""
        return self in (Status.SUCCEEDED, Status.UNCHANGED)


class SkipReason(enum.StrEnum):
    """Why a component was not run."""

    NOT_DUE = "not_due"
    DISABLED = "disabled"
    PAUSED = "paused"
    ALREADY_RUNNING = "already_running"
    UPSTREAM_FAILED = "upstream_failed"
    UPSTREAM_MISSING = "upstream_missing"
    UNCHANGED = "unchanged"
    QUOTA_EXHAUSTED = "quota_exhausted"
    DRY_RUN = "dry_run"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What a component's ``run`` returns (failures are raised instead).

    ``fingerprint`` identifies the published data (e.g. the payload's SHA-256):
    downstream components compare it to decide whether anything changed.
    """

    status: Status
    records: int = 0
    fingerprint: str | None = None
    reason: str | None = None
    quality: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None

    @classmethod
    def published(cls, *, records: int, fingerprint: str, **kw: Any) -> Outcome:
        """New data was published."""
        return cls(status=Status.SUCCEEDED, records=records, fingerprint=fingerprint, **kw)

    @classmethod
    def unchanged(
        cls, *, fingerprint: str | None = None, reason: str = "source unchanged", **kw: Any
    ) -> Outcome:
        """The source had nothing new; nothing was re-parsed or re-published."""
        return cls(status=Status.UNCHANGED, fingerprint=fingerprint, reason=reason, **kw)

    @classmethod
    def skipped(cls, reason: SkipReason, detail: str, **kw: Any) -> Outcome:
        """The component decided not to run (e.g. the daily API quota is used up)."""
        return cls(status=Status.SKIPPED, reason=reason.value, detail=detail, **kw)
