"""Run planning: which components a run would take now, and when anything is next due.

Pure functions of the config, the components' state and a time: the scheduler
asks them what to start, the status view asks them what would start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from datetime import datetime

from interlock import graph
from interlock.config.model import Config
from interlock.core.decisions import Decision, due_decision
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
) -> list[Decision]:
    """Per component, in dependency order: would it run at ``now``, and why (not).

    ``requested`` limits the run to those components (None: whatever is due);
    ``claimed`` are those already in an active run.
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
    return out


def earliest_wake(decisions: Iterable[Decision]) -> datetime | None:
    """The earliest due time among components that could run (None: nothing ever)."""
    times = [
        d.next_due
        for d in decisions
        if d.next_due is not None
        and d.reason not in (SkipReason.PAUSED, SkipReason.ALREADY_RUNNING)
    ]
    return min(times, default=None)
