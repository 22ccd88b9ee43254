"""What an event changes in a component's remembered state.

The runner applies it to the scheduler's in-memory state and the store persists
the same fields from the same events, so the two always agree.
"""

from __future__ import annotations

from typing import Any

from interlock.events import (
    ComponentFinished,
    ComponentNotStarted,
    ComponentSkipped,
    ComponentStarted,
    Event,
)

#: Skips that leave the component's due time as it was.
_KEEPS_DUE_TIME = frozenset(
    {
        "not_due",
        "disabled",
        "paused",
        "already_running",
        "dry_run",
        "upstream_failed",
        "upstream_missing",
    }
)


def component_state_changes(e: Event) -> tuple[str, dict[str, Any]] | None:
    """What an event changes in its component's remembered state, as ``(component, fields)``.

    The scheduler applies this to its in-memory state and the store persists the
    same fields, so both always agree.
    """
    if isinstance(e, ComponentStarted):
        return (e.component, {"last_started_at": e.at}) if e.attempt == 1 else None
    if isinstance(e, ComponentSkipped):
        # Skips that say nothing about the component's cadence do not consume its due time;
        # nor does an upstream's failure: the dependent runs when the upstream next succeeds.
        if e.reason in _KEEPS_DUE_TIME:
            return None
        return e.component, {"last_started_at": e.at}
    if isinstance(e, ComponentNotStarted):
        return None  # it never ran: its state, due time included, is as it was
    if isinstance(e, ComponentFinished):
        fields: dict[str, Any] = {
            "last_status": e.status,
            "last_finished_at": e.at,
            "last_error": e.error,
        }
        if e.status in ("succeeded", "unchanged"):
            fields["last_success_at"] = e.at
            fields["inputs"] = e.inputs or {}
            if e.fingerprint is not None:
                fields["fingerprint"] = e.fingerprint
            if e.memory is not None:
                fields["memory"] = e.memory
        if e.status == "succeeded":
            fields["published_at"] = e.at
            fields["records"] = e.records
        return e.component, fields
    return None
