"""The state-store interfaces: what is remembered between runs, and every read of it.

:class:`StateReader` is every read the daemon, the dashboard, ``status``,
``history``, ``report`` and the offline CLI make; :class:`StateStore` adds the
writes. The SQLite implementation lives beside them (``store/sqlite/``); a
PostgreSQL store for several daemons would implement the same Protocols.

Times cross the interface as aware datetimes; history rows carry them as UTC ISO
strings, as stored.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from interlock.events import Event

#: Meta key holding the components an operator paused (they stay paused across restarts).
PAUSED_KEY = "paused"

T = TypeVar("T")


@dataclass(kw_only=True)
class ComponentState:
    """What the scheduler remembers about a component between runs."""

    name: str
    last_started_at: datetime | None = None
    last_status: str | None = None
    last_finished_at: datetime | None = None
    last_success_at: datetime | None = None
    fingerprint: str | None = None
    published_at: datetime | None = None
    records: int | None = None
    inputs: dict[str, str | None] = field(default_factory=dict)
    last_error: str | None = None
    memory: dict[str, Any] = field(default_factory=dict)


StateMap = Mapping[str, ComponentState]


class HourlyTotals(NamedTuple):
    """One component's runs in one UTC hour, summed (skipped runs are not runs)."""

    component: str
    #: ``YYYY-MM-DDTHH``, in UTC.
    hour: str
    runs: int
    failures: int
    duration_sum: float | None
    duration_max: float | None
    #: Records of the succeeded runs, summed.
    records_sum: float | None
    #: How many runs succeeded (published).
    published: int


class ErrorTally(NamedTuple):
    """How often one component ended with one status and one message."""

    component: str
    status: str
    #: The error, else the reason, else the status.
    message: str
    #: How many runs ended so.
    runs: int
    #: UTC ISO times of the newest finish and the oldest start.
    last_seen: str
    first_seen: str


class StateReader(Protocol):
    """Every read of durable state: runs, component runs, component state, key-values."""

    async def open(self) -> None:
        """Connect; safe to call once per instance."""
        ...

    async def close(self) -> None:
        """Release the connection. Idempotent."""
        ...

    async def component_states(self) -> dict[str, ComponentState]:
        """The remembered state of every component seen so far."""
        ...

    async def history(
        self, *, component: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Component runs, newest first, JSON columns (inputs, quality, metrics) parsed."""
        ...

    async def last_runs(self, components: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Each named component's newest run, as :meth:`history` gives it (absent: none yet)."""
        ...

    async def last_quality(self, components: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Each named component's newest run with a quality report.

        Per component: ``run_id``, ``status``, ``finished_at`` and ``quality`` (the
        report, a dict); a report that cannot be read is passed over.
        """
        ...

    async def recent_outcomes(self, window: int) -> dict[str, list[bool]]:
        """Per component, whether each of its last ``window`` finished runs succeeded."""
        ...

    async def runs_between(
        self, since: datetime, until: datetime, *, component: str | None = None
    ) -> list[dict[str, Any]]:
        """Component runs started in ``[since, until)``, oldest first, metrics parsed."""
        ...

    async def hourly_totals(
        self, since: datetime, *, failed: Collection[str]
    ) -> list[HourlyTotals]:
        """Per component and UTC hour since ``since``: runs, failures, durations, records.

        A run counts as failed when its status is one of ``failed``. The work is done
        where the rows are, so its cost grows with hours, not with runs.
        """
        ...

    async def error_tallies(
        self, since: datetime, *, statuses: Collection[str]
    ) -> list[ErrorTally]:
        """Runs started since ``since`` with one of ``statuses``, counted per message."""
        ...

    async def get_meta(self, key: str) -> Any:
        """A small JSON value stored under ``key`` (None if absent)."""
        ...


class StateStore(StateReader, Protocol):
    """Durable state, read and written: what the daemon itself keeps."""

    async def open(self) -> None:
        """Create or migrate the schema; safe to call once per instance."""
        ...

    def reader(self, *, timeout_s: float = 5.0) -> StateReader:
        """A read-only view of this state on a connection of its own (not yet open).

        For readers that must never hold up the writes (the dashboard); waits at
        most ``timeout_s`` for a writer's lock.
        """
        ...

    async def recover_interrupted(self, now: datetime) -> list[tuple[str, str]]:
        """Mark runs and component runs left ``running`` by a crash as interrupted."""
        ...

    async def record_events(self, events: Sequence[Event]) -> None:
        """Persist a batch of events in one transaction."""
        ...

    async def prune_history(self, before: datetime) -> int:
        """Delete runs and component runs that started before ``before``; rows deleted."""
        ...

    async def set_meta(self, key: str, value: Any) -> None:
        """Store a small JSON value under ``key``."""
        ...


@runtime_checkable
class SharedQuota(Protocol):
    """Quota counters that several daemons share, each change atomic in the store.

    A store that several daemons use (PostgreSQL) implements it; the quota guard
    then reserves every call here instead of in its own memory, so the daemons
    together never exceed the daily limit or a family's rate.
    """

    async def take_call(
        self, day: str, endpoint: str, *, limit: int | None
    ) -> tuple[int, int] | None:
        """Count one call to ``endpoint`` on quota day ``day`` unless the day's count has
        reached ``limit`` (None: no limit, a priority endpoint). Returns the day's count
        and the endpoint's after it, or None when the limit refused it."""
        ...

    async def return_call(self, day: str, endpoint: str) -> None:
        """Uncount one call taken with :meth:`take_call` (its caller gave up)."""
        ...

    async def day_calls(self, day: str) -> dict[str, int]:
        """The calls counted on ``day``, per endpoint."""
        ...

    async def update_tokens(
        self, family: str, change: Callable[[tuple[float, ...]], tuple[tuple[float, ...], T]]
    ) -> T:
        """Apply ``change`` to ``family``'s spend times atomically; return what it returns.

        ``change`` gets the stored spend times and gives the new ones and a result; no
        other daemon's change comes between the read and the write.
        """
        ...
