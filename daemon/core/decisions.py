"""The scheduling rules as pure functions of configuration, state and time.

``due_decision`` says whether a component joins a run; ``release_decision`` says,
once its upstreams are settled, whether it runs or is skipped and why. ``plan``
and the scheduler both use them, so a dry run shows exactly what would happen.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from interlock.cadence import human_time, next_due
from interlock.config.model import ComponentSpec, Overrides
from interlock.outcome import SkipReason, Status
from interlock.store.abc import ComponentState


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Whether a component runs, and the reason either way."""

    component: str
    run: bool
    reason: SkipReason | None
    detail: str
    next_due: datetime | None = None
    #: For one that joins the run: the skip already foreseeable from stored state
    #: (``unchanged``, ``upstream_missing``), which the run will then record.
    then: SkipReason | None = None
    then_detail: str | None = None
    #: With ``then`` = ``quota_exhausted``: when its API calls are tried again.
    resume_at: datetime | None = None
    #: The change-detection method that found its last run unchanged (None: it was not).
    decided_by: str | None = None

    def shown(self) -> tuple[bool, SkipReason | None, str]:
        """What ``plan`` shows: whether it will really run, and why (not)."""
        if self.run and self.then is not None:
            return False, self.then, self.then_detail or ""
        return self.run, self.reason, self.detail


class Settled:
    """How an upstream ended in the current run (``ok``: dependents may use its data)."""

    __slots__ = ("ok", "reason", "status")

    def __init__(self, status: Status, reason: str | None = None) -> None:
        self.status = status
        self.reason = reason
        # Read once per dependency edge on the scheduler's hot path: computed here.
        self.ok = status in (Status.SUCCEEDED, Status.UNCHANGED) or (
            status is Status.SKIPPED
            and reason in (SkipReason.UNCHANGED, SkipReason.QUOTA_EXHAUSTED)
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settled) and (self.status, self.reason) == (
            other.status,
            other.reason,
        )

    def __hash__(self) -> int:
        return hash((self.status, self.reason))

    def __repr__(self) -> str:
        return f"Settled({self.status.value!r}, {self.reason!r})"


def due_decision(
    spec: ComponentSpec,
    state: ComponentState,
    now: datetime,
    tz: ZoneInfo,
    overrides: Overrides,
    *,
    paused: bool = False,
    claimed: bool = False,
    requested: bool = False,
    force: bool = False,
) -> Decision:
    """Does ``spec`` join a run starting at ``now``?

    ``requested`` means it was named explicitly (``run --once NAME``, ``trigger``);
    ``force`` also runs it while paused.
    """
    name = spec.name
    due_at = next_due(spec.frequency, state.last_started_at, now, tz)
    if state.last_status == Status.INTERRUPTED.value:
        # Cut short by a crash or a kill: it runs again now, not at its next due time.
        due_at = min(due_at, now)
    if not spec.enabled:
        return Decision(
            component=name,
            run=False,
            reason=SkipReason.DISABLED,
            detail=spec.disabled_reason or "disabled",
            next_due=None,
        )
    if claimed:
        return Decision(
            component=name,
            run=False,
            reason=SkipReason.ALREADY_RUNNING,
            detail="already in a run; this due time is coalesced",
            next_due=due_at,
        )
    if paused and not (force or overrides.force_run_all):
        return Decision(
            component=name,
            run=False,
            reason=SkipReason.PAUSED,
            detail="paused by an operator; resume it to schedule it again",
            next_due=due_at,
        )
    if requested or force:
        return Decision(component=name, run=True, reason=None, detail="requested", next_due=due_at)
    if overrides.force_run_all:
        return Decision(
            component=name, run=True, reason=None, detail="force_run_all", next_due=due_at
        )
    if overrides.skip_frequency_check:
        return Decision(
            component=name, run=True, reason=None, detail="skip_frequency_check", next_due=due_at
        )
    if now >= due_at:
        if state.last_started_at is None:
            detail = "never run"
        elif state.last_status == Status.INTERRUPTED.value:
            detail = "interrupted by a restart; runs again"
        else:
            detail = f"due since {human_time(due_at, tz)} ({spec.frequency.text})"
        return Decision(component=name, run=True, reason=None, detail=detail, next_due=due_at)
    return Decision(
        component=name,
        run=False,
        reason=SkipReason.NOT_DUE,
        detail=f"next due {human_time(due_at, tz)} ({spec.frequency.text})",
        next_due=due_at,
    )


def release_decision(
    spec: ComponentSpec,
    state: ComponentState,
    upstream: Mapping[str, ComponentState],
    settled: Mapping[str, Settled],
    overrides: Overrides,
    *,
    force: bool = False,
) -> tuple[SkipReason, str] | None:
    """With every upstream in this run settled: skip ``spec`` (reason, detail) or run it (None).

    ``settled`` holds the upstreams that ran in this run; the others are judged by
    their last successful publish.
    """
    if not overrides.skip_dependency_check:
        for dep in spec.dependencies:
            done = settled.get(dep)
            if done is not None:
                if not done.ok:
                    how = f"{done.status.value}" + (f" ({done.reason})" if done.reason else "")
                    return SkipReason.UPSTREAM_FAILED, f"upstream {dep!r} {how} in this run"
                continue
            up = upstream.get(dep)
            if up is None or (up.last_success_at is None and up.fingerprint is None):
                return (
                    SkipReason.UPSTREAM_MISSING,
                    f"upstream {dep!r} has never published; run it first",
                )
    if (
        spec.dependencies
        and spec.skip_when_upstream_unchanged
        and not (force or overrides.force_run_all or overrides.skip_change_detection)
        and state.last_success_at is not None
        and all(
            (upstream.get(dep) or ComponentState(name=dep)).fingerprint == state.inputs.get(dep)
            for dep in spec.dependencies
        )
    ):
        return (
            SkipReason.UNCHANGED,
            "no upstream has published since this component's last success",
        )
    return None


#: Outcomes after which an upstream's dependents wait for it to succeed again.
_FAILING = frozenset(
    {Status.FAILED.value, Status.TIMED_OUT.value, Status.CANCELLED.value, Status.INTERRUPTED.value}
)


def upstream_hold(
    spec: ComponentSpec,
    state: ComponentState,
    upstream: Mapping[str, ComponentState],
    now: datetime,
    tz: ZoneInfo,
) -> tuple[SkipReason, str, datetime | None] | None:
    """Whether a due ``spec`` waits for an upstream that is not in the run with it.

    An upstream that has never published holds it until it does. One that failed
    since this component last started holds it until it next succeeds, or for one
    of this component's own periods after the failure, whichever comes first (so an
    hourly dependent of a weekly upstream is not held for a week). Returns
    (reason, detail, when the hold ends) or None.
    """
    for dep in spec.dependencies:
        up = upstream.get(dep)
        if up is None or (up.last_success_at is None and up.fingerprint is None):
            return SkipReason.UPSTREAM_MISSING, f"waits for upstream {dep!r} to publish", None
        if (
            up.last_status in _FAILING
            and up.last_finished_at is not None
            and (state.last_started_at is None or up.last_finished_at >= state.last_started_at)
        ):
            until = next_due(spec.frequency, up.last_finished_at, now, tz)
            if now < until:
                return (
                    SkipReason.UPSTREAM_FAILED,
                    f"waits for upstream {dep!r} ({up.last_status}) to succeed, or until "
                    f"{until.astimezone(tz).isoformat(timespec='seconds')}",
                    until,
                )
    return None


def backoff_delay(
    attempt: int,
    base_s: float,
    cap_s: float,
    retry_after_s: float | None = None,
    rand: float | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    Exponential with "equal jitter" (half fixed, half random) so retries from many
    components spread out; a source's Retry-After is honoured as a floor.
    """
    r = random.random() if rand is None else rand
    exp = min(cap_s, base_s * (2 ** (attempt - 1)))
    delay = exp / 2 + r * exp / 2
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return delay
