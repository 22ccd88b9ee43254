"""Turns events (and the alert book's view of them) into readable messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from interlock import events as ev
from interlock.observe.notify.message import Message, span, when
from interlock.observe.notify.policy import Failing


def _history(component: str) -> str:
    return f"interlock history --component {component}"


def _next(next_at: datetime | None, now: datetime, tz: ZoneInfo) -> tuple[str, str]:
    if next_at is None:
        return ("Next attempt", "not scheduled (disabled or paused)")
    if next_at <= now:
        return ("Next attempt", "at the next scheduler pass")
    return ("Next attempt", f"{when(next_at, tz, now)} (in {span(next_at - now)})")


def failure(
    e: ev.ComponentFinished, state: Failing, next_at: datetime | None, tz: ZoneInfo
) -> Message:
    """A component failed after its last retry (first time, or with a new error)."""
    what = "timed out" if e.status == "timed_out" else "failed"
    since = (
        f"{when(state.since, tz, e.at)} (first failure)"
        if state.failures == 1
        else f"{when(state.since, tz, e.at)}: {state.failures} failures, now a different error"
    )
    lines = [("Why", e.error or e.reason or "no error message"), ("Since", since)]
    if e.attempts > 1:
        lines.append(("Attempts", f"{e.attempts} in this run (retries used up)"))
    lines.append(_next(next_at, e.at, tz))
    return Message(
        kind="failure",
        title=f"{e.component} {what}",
        lines=tuple(lines),
        command=_history(e.component),
        component=e.component,
    )


def still_failing(
    e: ev.ComponentFinished, state: Failing, next_at: datetime | None, tz: ZoneInfo
) -> Message:
    """The periodic summary of a failure already announced."""
    return Message(
        kind="still_failing",
        title=f"{e.component} still failing",
        lines=(
            ("Why", state.last_error),
            (
                "Since",
                f"failed {state.failures} times since {when(state.since, tz, e.at)} "
                f"({span(e.at - state.since)})",
            ),
            _next(next_at, e.at, tz),
        ),
        command=_history(e.component),
        component=e.component,
    )


def recovery(e: ev.ComponentFinished, state: Failing, tz: ZoneInfo) -> Message:
    """A component that was failing succeeded."""
    times = "once" if state.failures == 1 else f"{state.failures} times"
    return Message(
        kind="recovery",
        title=f"{e.component} recovered",
        lines=(
            ("Status", f"{e.status} at {when(e.at, tz, e.at)}"),
            (
                "Was failing",
                f"{times} since {when(state.since, tz, e.at)} ({span(e.at - state.since)})",
            ),
            ("Last error", state.last_error),
        ),
        command=_history(e.component),
        component=e.component,
        urgent=True,
    )


def threshold(e: ev.ThresholdBreached, tz: ZoneInfo) -> Message:
    """A run exceeded a performance threshold."""
    return Message(
        kind="threshold",
        title=f"{e.component} over {e.metric}",
        lines=(
            ("Measured", f"{e.measured:g} {e.unit} (limit {e.limit:g} {e.unit})"),
            ("Detail", e.detail),
            ("When", f"{when(e.at, tz, e.at)}, run {e.run_id}"),
        ),
        command=f"interlock report --component {e.component}",
        component=e.component,
    )


def threshold_recovered(e: ev.ThresholdRecovered, tz: ZoneInfo) -> Message:
    """A breached threshold is met again."""
    return Message(
        kind="recovery",
        title=f"{e.component} back within {e.metric}",
        lines=(("Detail", e.detail), ("When", f"{when(e.at, tz, e.at)}, run {e.run_id}")),
        command=f"interlock report --component {e.component}",
        component=e.component,
        urgent=True,
    )


def run_summary(
    e: ev.RunFinished, finished: Sequence[ev.ComponentFinished], tz: ZoneInfo
) -> Message:
    """One run's outcome: counts, and each component that did not succeed, with why."""
    counts = ", ".join(f"{n} {status}" for status, n in sorted(e.counts.items()) if n)
    lines = [("Result", f"{counts or 'nothing ran'} in {span_s(e.duration_s)}")]
    for f in finished:
        if f.status not in ("succeeded", "unchanged"):
            lines.append((f.component, f"{f.status}: {f.error or f.reason or ''}".strip()))
    return Message(
        kind="run_summary",
        title=f"run {e.run_id} {e.status}",
        lines=tuple(lines),
        command="interlock history",
    )


def quota(e: ev.Event, tz: ZoneInfo) -> Message:
    """A quota warning (the quota guard's event; read by field name)."""
    fields: dict[str, Any] = e.to_dict()
    used, limit = fields.get("used"), fields.get("limit")
    reset = getattr(e, "reset_at", None)
    lines = [("Used", f"{used} of {limit} API calls today")]
    if isinstance(reset, datetime):
        lines.append(("Resets", f"{when(reset, tz, e.at)} (in {span(reset - e.at)})"))
    percent = fields.get("threshold_percent")
    return Message(
        kind="quota",
        title=f"API quota {percent:g}% used" if isinstance(percent, int | float) else "API quota",
        lines=tuple(lines),
        command="interlock status",
    )


def span_s(seconds: float) -> str:
    """Seconds as a span (sub-second runs read ``0.3 s``)."""
    return f"{seconds:.1f} s" if seconds < 60 else span(timedelta(seconds=seconds))
