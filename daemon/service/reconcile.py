"""Start-up reconciliation: the component state brought up to date with the live datasets.

A kill between a snapshot's atomic swap and the history write loses the run's
outcome, not its publish: the dataset carries its stamp
(:class:`~interlock.kit.publish.PublishStamp`). After crash recovery, each configured
component whose live dataset holds a publish newer than its state remembers is
recorded as that run having succeeded (fingerprint, records, memory, inputs), so the
next run finds the source unchanged instead of fetching and re-publishing it, which
would also overwrite ``.previous`` with a copy of the live data.

Append datasets (``gtfs_realtime``, ``ptv_timetable``) carry no stamp and need none:
each poll commits its own transaction, and a poll whose outcome was lost is polled
again, deduplicated by feed header timestamp (realtime) or recorded once more as a
poll (PTV), which loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from interlock.config.model import Config
from interlock.errors import PublishError
from interlock.events import ComponentSucceeded
from interlock.kit.publish import PublishStamp, SnapshotDataset
from interlock.store.abc import ComponentState, StateStore

log = structlog.get_logger("interlock.reconcile")

REASON = (
    "reconciled at start-up from the dataset's publish stamp: the run published, and the "
    "daemon stopped before recording it"
)


def unrecorded(stamp: PublishStamp, state: ComponentState | None) -> bool:
    """Whether ``stamp`` is a publish that ``state`` never heard of.

    A recorded publish is remembered at or after its stamp's time (the outcome is
    written after the swap, on the same clock); an older stamp is an operator's
    rollback, which the state must not follow back.
    """
    if state is None or state.published_at is None:
        return True
    return state.published_at < stamp.published_at


def reconciled(
    stamp: PublishStamp, last_run: Mapping[str, Any] | None = None
) -> ComponentSucceeded:
    """The event that records ``stamp``'s run as succeeded when it published.

    ``last_run`` is the component's newest history row: when it is the stamped run
    (recorded ``interrupted`` by crash recovery), its start is kept.
    """
    started = stamp.published_at
    attempts = 1
    if last_run is not None and last_run.get("run_id") == stamp.run_id:
        began = datetime.fromisoformat(last_run["started_at"])
        if began <= stamp.published_at:
            started = began
        attempts = max(1, int(last_run.get("attempts") or 1))
    return ComponentSucceeded(
        at=stamp.published_at,
        run_id=stamp.run_id,
        component=stamp.component,
        status="succeeded",
        reason=REASON,
        started_at=started,
        duration_s=round((stamp.published_at - started).total_seconds(), 6),
        records=stamp.records,
        attempts=attempts,
        fingerprint=stamp.fingerprint,
        inputs=dict(stamp.inputs),
        memory=dict(stamp.memory),
    )


def live_stamps(data_dir: Path, names: Iterable[str]) -> dict[str, PublishStamp]:
    """The stamp of each named component's live snapshot dataset, where it has one (blocking).

    A dataset whose stamp cannot be read is logged and passed over: it is served as it
    is, and its component's next run decides by its own state.
    """
    out: dict[str, PublishStamp] = {}
    for name in names:
        try:
            stamp = SnapshotDataset(data_dir, name).read_stamp()
        except PublishError as exc:
            log.warning("publish_stamp_unreadable", component=name, error=str(exc))
            continue
        if stamp is not None and stamp.component == name:
            out[name] = stamp
    return out


async def reconcile(config: Config, store: StateStore) -> list[ComponentSucceeded]:
    """Record every publish the state never heard of, durably; the events recorded."""
    stamps = await asyncio.to_thread(live_stamps, config.runtime.data_dir, config.components)
    if not stamps:
        return []
    states = await store.component_states()
    stale = [s for name, s in stamps.items() if unrecorded(s, states.get(name))]
    if not stale:
        return []
    last = await store.last_runs(s.component for s in stale)
    events = [reconciled(s, last.get(s.component)) for s in stale]
    # Through the store's one write path, as the success the run would have recorded: its
    # history row (``interrupted``, if crash recovery wrote one) becomes ``succeeded`` with
    # the reconciled reason, and the state takes the fields a success sets. It is recorded,
    # not published: the bus's subscribers are not up yet, and the states they start from
    # already hold it. An event class of its own would say no more than the reason and the
    # ``state_reconciled`` line do.
    await store.record_events(events)
    for e in events:
        log.warning(
            "state_reconciled",
            component=e.component,
            run_id=e.run_id,
            fingerprint=e.fingerprint,
            records=e.records,
            published_at=e.at.isoformat(),
        )
    return events
