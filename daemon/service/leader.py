"""Which daemon schedules: the leader election, its lease and the standby's wait.

One small interface, :class:`Election`, that both stores satisfy. With SQLite the
state directory's ``flock`` is the election (:class:`LocalElection` always leads; the
orchestrator's :class:`~interlock.store.lock.StateLock` refuses a second daemon), so
nothing changes for one VM. With PostgreSQL (:class:`PgElection`) daemons sharing a
database elect one leader with an advisory lock; the others wait as standbys and
retry every fifth of ``runtime_settings.failover_seconds``. The leader renews its
lease every fifth too; a leader whose lease is gone stops at once (exit 75) and
its writes are refused by the store's fence meanwhile
(:mod:`interlock.store.postgresql.leader`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

import structlog

from interlock.config.model import Config
from interlock.errors import StoreError, StoreUnavailableError
from interlock.events import utcnow
from interlock.store.abc import StateStore

log = structlog.get_logger("interlock.service")

#: The process exit code of a leader that lost its lease (EX_TEMPFAIL: restart me).
LOST_EXIT = 75
#: The lease is this share of failover_seconds; the standby retries every RETRY share.
LEASE_SHARE = 0.6
RETRY_SHARE = 0.2


class Leader(Protocol):
    """Who leads (the ``leader`` table's row)."""

    @property
    def epoch(self) -> int: ...
    @property
    def host(self) -> str: ...
    @property
    def pid(self) -> int: ...
    @property
    def since(self) -> datetime: ...

    def describe(self) -> str: ...


class Election(Protocol):
    """How a daemon becomes the one that schedules."""

    async def try_lead(self) -> int | None:
        """Lead if nobody does; this leadership's epoch, or None (another daemon leads)."""
        ...

    async def leader(self) -> Leader | None:
        """The daemon that leads (None: unknown)."""
        ...

    async def heartbeat(self) -> None:
        """Renew the lease; raise StoreError when the leadership is lost."""
        ...

    def fenced_dsn(self) -> str | None:
        """The leader's store DSN carrying its epoch (None: SQLite, nothing to fence)."""
        ...

    async def aclose(self) -> None:
        """Give the leadership up (idempotent)."""
        ...


class LocalElection:
    """SQLite: the state directory's flock (taken by the orchestrator) is the election."""

    async def try_lead(self) -> int | None:
        return 0

    async def leader(self) -> Leader | None:
        return None

    async def heartbeat(self) -> None:
        return None

    def fenced_dsn(self) -> str | None:
        return None

    def store(self) -> StateStore | None:
        return None

    async def aclose(self) -> None:
        return None


class PgElection:
    """PostgreSQL: an advisory lock on a dedicated connection, a lease, an epoch."""

    def __init__(self, dsn: str, failover_s: float) -> None:
        from interlock.store.postgresql.leader import PgLeaderLock

        self.dsn = dsn
        self.failover_s = failover_s
        self.lock = PgLeaderLock(dsn, lease_s=failover_s * LEASE_SHARE)
        self.epoch: int | None = None

    async def try_lead(self) -> int | None:
        from interlock.store.postgresql.leader import this_host

        host, pid = this_host()
        try:
            self.epoch = await self.lock.try_lead(host, pid, utcnow())
        except StoreError:
            await self.lock.aclose()  # a lost session: the next try reconnects
            raise
        return self.epoch

    async def leader(self) -> Leader | None:
        return await self.lock.leader()

    async def heartbeat(self) -> None:
        await self.lock.heartbeat()

    def fenced_dsn(self) -> str | None:
        from interlock.store.postgresql.leader import fenced_dsn

        assert self.epoch is not None, "fenced_dsn() before the election was won"
        return fenced_dsn(self.dsn, self.epoch, lease_s=self.lock.lease_s)

    def store(self) -> StateStore | None:
        """The leader's store, fenced with its epoch (not yet open)."""
        from interlock.store.postgresql import PgStateStore

        dsn = self.fenced_dsn()
        assert dsn is not None
        return PgStateStore(dsn)

    async def aclose(self) -> None:
        await self.lock.aclose()


def store_dsn(config: Config) -> str | None:
    """The PostgreSQL DSN ``runtime_settings.state_store`` names (None: SQLite)."""
    spec = config.runtime.state_store
    return spec.dsn if spec.kind == "postgresql" else None


def with_dsn(config: Config, dsn: str) -> Config:
    """``config`` whose shared store is reached through ``dsn`` (the fenced one)."""
    spec = replace(config.runtime.state_store, dsn=dsn)
    return replace(config, runtime=replace(config.runtime, state_store=spec))


def election_for(config: Config) -> Election:
    """The election the config's state store calls for."""
    dsn = store_dsn(config)
    if dsn is None:
        return LocalElection()
    return PgElection(dsn, config.runtime.failover_s)


async def wait_to_lead(
    election: Election, failover_s: float, stop: asyncio.Event, on_standby: Any = None
) -> int | None:
    """Try to lead until it works or ``stop`` is set; the epoch, or None when stopped.

    ``on_standby(leader)`` is awaited once, after the first lost try (the standby's
    admin socket opens then).
    """
    retry_s = max(0.05, failover_s * RETRY_SHARE)
    standing_by = False
    while not stop.is_set():
        try:
            epoch = await election.try_lead()
        except StoreUnavailableError as exc:  # a wrong DSN or a missing database is raised
            log.warning("election_failed", error=str(exc), retry_s=retry_s)
            epoch = None
        if epoch is not None:
            return epoch
        if not standing_by:
            standing_by = True
            leader = await _quiet_leader(election)
            log.info("standby", leader=leader.describe() if leader else "unknown")
            if on_standby is not None:
                await on_standby()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), retry_s)
    return None


async def _quiet_leader(election: Election) -> Leader | None:
    try:
        return await election.leader()
    except StoreError:
        return None


async def keep_lease(election: Election, failover_s: float, on_lost: Any) -> None:
    """Renew the lease every fifth of failover_seconds; call ``on_lost(error)`` and end
    when it cannot be renewed (SQLite's flock needs no renewal: it ends at once)."""
    if isinstance(election, LocalElection):
        return
    every = max(0.05, failover_s * RETRY_SHARE)
    while True:
        await asyncio.sleep(every)
        try:
            await election.heartbeat()
        except StoreError as exc:
            on_lost(str(exc))
            return


def lost_lease(error: str) -> None:
    """The lease is gone (paused, cut off): another daemon may lead; exit now.

    Its writes would be refused by the fence anyway; exit code 75 asks systemd to
    restart it (``Restart=on-failure``), and it comes back as a standby.
    """
    from interlock.observe import logs

    log.error("leadership_lost", error=error, exit_code=LOST_EXIT)
    logs.flush(logs.EXIT_FLUSH_S)
    os._exit(LOST_EXIT)
