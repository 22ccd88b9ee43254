"""Wires the pieces into one running orchestrator: store, bus, subscribers, scheduler.

``async with Orchestrator(config) as orch:`` opens the state store, records runs a
crash left behind as interrupted, starts the history and log subscribers and
builds the scheduler; leaving the block flushes history and closes everything.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from daemon import events as ev
from daemon.config import Config
from daemon.events import EventBus, utcnow
from daemon.logs import log_subscriber
from daemon.scheduler import Scheduler
from daemon.store import SqliteStateStore

log = structlog.get_logger("interlock")

STATE_DB = "state.sqlite"


class Orchestrator:
    """The long-lived objects of one process, opened and closed together."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], datetime] = utcnow,
        services: Mapping[str, Any] | None = None,
        log_events: bool = True,
    ) -> None:
        self.config = config
        self.clock = clock
        self.services = dict(services or {})
        self.log_events = log_events
        self.store = SqliteStateStore(config.runtime.state_dir / STATE_DB)
        self.bus: EventBus | None = None
        self._scheduler: Scheduler | None = None

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler (only inside ``async with``)."""
        if self._scheduler is None:
            raise RuntimeError("the orchestrator is not open; use 'async with Orchestrator(...)'")
        return self._scheduler

    async def __aenter__(self) -> Orchestrator:
        await self.store.open()
        try:
            interrupted = await self.store.recover_interrupted(self.clock())
            for run_id, component in interrupted:
                log.warning(
                    "component_interrupted",
                    run_id=run_id,
                    component=component,
                    reason="the daemon stopped while it ran",
                )
            self._clean_staging()
            states = await self.store.component_states()
            self.bus = EventBus()
            self.bus.subscribe("history", self._write_history, maxsize=100_000)
            if self.log_events:
                self.bus.subscribe("log", log_subscriber())
            self._scheduler = Scheduler(
                self.config, self.bus, states, clock=self.clock, services=self.services
            )
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _write_history(self, batch: Sequence[ev.Event]) -> None:
        await self.store.record_events(batch)

    def _clean_staging(self) -> None:
        """Remove staging files a crash left behind; live datasets are never touched."""
        staging = self.config.runtime.data_dir / ".staging"
        if staging.exists():
            leftovers = list(staging.iterdir())
            shutil.rmtree(staging, ignore_errors=True)
            if leftovers:
                log.warning("staging_cleaned", path=str(staging), entries=len(leftovers))

    async def aclose(self) -> None:
        """Flush the bus into history and close the store. Idempotent."""
        if self.bus is not None:
            bus, self.bus = self.bus, None
            await asyncio.shield(bus.close())
        await self.store.close()
