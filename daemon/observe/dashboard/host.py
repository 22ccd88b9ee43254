"""What the dashboard needs of the daemon that serves it, as a Protocol.

The service's orchestrator satisfies it; the dashboard never imports the service room.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from interlock.config.model import Config
from interlock.core.scheduler import Scheduler
from interlock.events import EventBus
from interlock.store.abc import StateStore


class DashboardHost(Protocol):
    """The running daemon as the dashboard sees it: read its state, pause and trigger."""

    @property
    def config(self) -> Config:
        """The configuration in force."""
        ...

    @property
    def bus(self) -> EventBus | None:
        """The event bus (None before the daemon has started)."""
        ...

    @property
    def store(self) -> StateStore:
        """The state store."""
        ...

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler, for plans, pauses and runs."""
        ...

    @property
    def services(self) -> Mapping[str, Any]:
        """Shared services by name (``quota``, ``monitor``...)."""
        ...

    async def set_paused(
        self, name: str, paused: bool, *, uid: int | None = None, actor: str | None = None
    ) -> bool:
        """Pause or resume ``name`` on behalf of ``actor``; whether anything changed."""
        ...
