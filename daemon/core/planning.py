"""Run planning: which components a run would take now, and when anything is next due.

Pure functions of the config, the components' state and a time: the scheduler
asks them what to start, the status view asks them what would start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import replace
from datetime import datetime
from typing import Any

from interlock import graph
from interlock.cadence import human_time
from interlock.config.model import ComponentSpec, Config
from interlock.config.registry import BUILTINS
from interlock.core.decisions import Decision, due_decision, release_decision, upstream_hold
from interlock.kit.change import DECIDED, ChangePolicy, methods_on
from interlock.outcome import SkipReason
from interlock.store.abc import ComponentState


def requested_components(
    config: Config, names: Iterable[str] | None, with_deps: bool
) -> set[str] | None:
    """The components asked for by name (with their upstreams); None when none were named.

    An unknown name raises KeyError, which names the known components.
    """
    if names is None:
        return None
    wanted = list(names)
    unknown = [n for n in wanted if n not in config.components]
    if unknown:
        known = ", ".join(config.components)
        raise KeyError(f"unknown component {unknown[0]!r}; known: {known}")
    if with_deps:
        deps = {n: s.dependencies for n, s in config.components.items()}
        return graph.upstream_closure(deps, wanted)
    return set(wanted)


def plan_components(
    config: Config,
    states: Mapping[str, ComponentState],
    now: datetime,
    *,
    requested: Set[str] | None,
    paused: Set[str],
    claimed: Set[str],
    force: bool,
    quota_hold: datetime | None = None,
) -> list[Decision]:
    """Per component, in dependency order: would it run at ``now``, and why (not).

    ``requested`` limits the run to those components (None: whatever is due);
    ``claimed`` are those already in an active run; ``quota_hold``, when the daily
    quota refuses non-priority calls, is when they are tried again.
    """
    tz = config.runtime.timezone
    out = []
    for name, spec in config.components.items():
        if requested is not None and name not in requested:
            out.append(
                Decision(
                    component=name, run=False, reason=SkipReason.NOT_DUE, detail="not requested"
                )
            )
            continue
        out.append(
            due_decision(
                spec,
                states[name],
                now,
                tz,
                config.overrides,
                paused=name in paused,
                claimed=name in claimed,
                requested=requested is not None,
                force=force,
            )
        )
    out = _second_stage(config, states, now, out, scheduled=requested is None, force=force)
    out = [_decided(d, states[d.component]) for d in out]
    if quota_hold is None or not config.quota.get("enabled", True):
        return out
    return [_quota_stage(config, d, quota_hold) for d in out]


def _decided(d: Decision, state: ComponentState) -> Decision:
    """``d`` naming the change-detection method that found the last run unchanged."""
    by = state.memory.get(DECIDED) if state.last_status == "unchanged" else None
    return replace(d, decided_by=str(by)) if by else d


#: The change checks of the built-ins that do not use ``change_detection``'s methods.
OWN_CHANGE_CHECKS = {
    "gtfs_realtime": ["file_hash(sha256)", "header timestamp"],
    "ptv_timetable": ["response fingerprint"],
}


def change_methods(config: Config, spec: ComponentSpec) -> list[str]:
    """The change-detection methods that are on for a component, as ``plan`` shows them."""
    for name, checks in OWN_CHANGE_CHECKS.items():
        if spec.class_path == BUILTINS[name]:
            return list(checks)
    skip = config.overrides.skip_change_detection
    return methods_on(ChangePolicy.from_config(config.change_detection, skip=skip))


def metered_endpoints(spec: ComponentSpec) -> list[str]:
    """The quota-metered endpoints a component calls (the GTFS-realtime feeds)."""
    endpoints = spec.settings.get("endpoints")
    if spec.class_path != BUILTINS["gtfs_realtime"] or not isinstance(endpoints, Mapping):
        return []
    return list(endpoints)


def _quota_stage(config: Config, d: Decision, hold: datetime) -> Decision:
    """One that would run but whose calls are all refused by the quota: skipped."""
    if not d.run or d.then is not None:
        return d
    endpoints = metered_endpoints(config.components[d.component])
    priority = set(config.quota.get("priority_endpoints", ()))
    if not endpoints or priority.intersection(endpoints):
        return d
    detail = (
        f"the daily API quota is exhausted and none of its {len(endpoints)} endpoints is a "
        f"priority endpoint; resumes at {human_time(hold, config.runtime.timezone)}"
    )
    return replace(d, then=SkipReason.QUOTA_EXHAUSTED, then_detail=detail, resume_at=hold)


def _second_stage(
    config: Config,
    states: Mapping[str, ComponentState],
    now: datetime,
    decisions: list[Decision],
    *,
    scheduled: bool,
    force: bool,
) -> list[Decision]:
    """For those that join the run with no upstream beside them: what stored state decides.

    A scheduled run leaves out a component that waits for a failing or missing
    upstream (its due time is kept for when the upstream succeeds); for the others
    the release decision is foreseen (``unchanged``...) and shown by ``plan``.
    """
    joining = {d.component for d in decisions if d.run}
    tz = config.runtime.timezone
    overrides = config.overrides
    out = []
    for d in decisions:
        spec = config.components[d.component]
        if not d.run or any(dep in joining for dep in spec.dependencies):
            out.append(d)
            continue
        state = states[d.component]
        if scheduled and not (force or overrides.force_run_all or overrides.skip_dependency_check):
            hold = upstream_hold(spec, state, states, now, tz)
            if hold is not None:
                out.append(replace(d, run=False, reason=hold[0], detail=hold[1], next_due=hold[2]))
                continue
        verdict = release_decision(spec, state, states, {}, overrides, force=force)
        out.append(d if verdict is None else replace(d, then=verdict[0], then_detail=verdict[1]))
    return out


def earliest_wake(decisions: Iterable[Decision]) -> datetime | None:
    """The earliest due time among components that could run (None: nothing ever)."""
    times = [
        d.next_due
        for d in decisions
        if d.next_due is not None
        and d.reason not in (SkipReason.PAUSED, SkipReason.ALREADY_RUNNING, SkipReason.DISABLED)
    ]
    return min(times, default=None)


def plan_row(d: Decision, config: Config) -> dict[str, Any]:
    """One decision as ``plan`` reports it (the CLI's and the admin socket's shape)."""
    run, reason, detail = d.shown()
    tz = config.runtime.timezone
    return {
        "component": d.component,
        "run": run,
        "reason": reason.value if reason else None,
        "detail": detail,
        "next_due": d.next_due.astimezone(tz).isoformat() if d.next_due else None,
        "resume_at": d.resume_at.astimezone(tz).isoformat() if d.resume_at else None,
        "change_detection": {
            "methods": change_methods(config, config.components[d.component]),
            "decided_by": d.decided_by,
        },
        "dependencies": list(config.components[d.component].dependencies),
        "source": config.components[d.component].source,
    }
