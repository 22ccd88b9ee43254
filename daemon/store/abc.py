"""The interfaces: a component, and the state store behind history and scheduling state.

Implementations live beside them (``daemon/store.py`` is the SQLite store); a
PostgreSQL store for several daemons would implement the same Protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from interlock.events import Event
from interlock.outcome import Outcome

if TYPE_CHECKING:
    from interlock.kit.context import ComponentContext


@runtime_checkable
class Component(Protocol):
    """An ingestion component: constructed with its name and settings, run per due time."""

    settings_schema: ClassVar[dict[str, Any] | None]

    async def run(self, ctx: ComponentContext) -> Outcome:
        """Fetch, check, parse, validate and publish; raise to fail."""
        ...


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


class StateStore(Protocol):
    """Durable state: runs, component runs, component state, and small key-values."""

    async def open(self) -> None:
        """Create or migrate the schema; safe to call once per instance."""
        ...

    async def close(self) -> None:
        """Release the connection. Idempotent."""
        ...

    async def recover_interrupted(self, now: datetime) -> list[tuple[str, str]]:
        """Mark runs and component runs left ``running`` by a crash as interrupted."""
        ...

    async def component_states(self) -> dict[str, ComponentState]:
        """The remembered state of every component seen so far."""
        ...

    async def record_events(self, events: Sequence[Event]) -> None:
        """Persist a batch of events in one transaction."""
        ...

    async def history(
        self, *, component: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Component runs, newest first."""
        ...

    async def get_meta(self, key: str) -> Any:
        """A small JSON value stored under ``key`` (None if absent)."""
        ...

    async def set_meta(self, key: str, value: Any) -> None:
        """Store a small JSON value under ``key``."""
        ...


StateMap = Mapping[str, ComponentState]
