"""A standby daemon: its admin socket and dashboard, read-only, from the shared store.

While another daemon leads, a standby serves ``status`` (``standby (leader: host pid N
since ...)``, the components as the shared store last recorded them), ``plan`` (from
the stored states), ``history`` and ``report`` on a reader of the shared store, and the
dashboard with its buttons off; ``watch`` gets the leader's events from the relay
(:mod:`interlock.service.relay`). ``trigger``, ``pause``, ``resume``, ``cancel`` and
``reload`` are refused with ``standby``, naming the leader to send them to: only the
leader writes, and it may be on another VM. :func:`become_leader` is the wait itself.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from interlock.config.model import Config
from interlock.errors import AdminRequestError, StateError, StoreError
from interlock.events import utcnow
from interlock.service.admin import Command, Peer
from interlock.service.admincommands import ARGUMENTS, _checked
from interlock.service.leader import RETRY_SHARE, Election
from interlock.service.relay import relay
from interlock.store.abc import PAUSED_KEY, StateReader

log = structlog.get_logger("interlock.service")

#: Commands only the leader answers.
LEADER_ONLY = ("trigger", "pause", "resume", "cancel", "reload")


def _iso(value: datetime | None, config: Config) -> str | None:
    return value.astimezone(config.runtime.timezone).isoformat() if value else None


class StandbyCommands:
    """The command table of a standby."""

    def __init__(
        self,
        config: Config,
        election: Election,
        reader: StateReader,
        *,
        config_path: Path,
        socket_path: Path,
        started_at: datetime,
        scheduler: Any,
    ) -> None:
        self.scheduler = scheduler  # never serves: plans from the states the store holds
        self.config = config
        self.election = election
        self.reader = reader
        self.config_path = config_path
        self.socket_path = socket_path
        self.started_at = started_at

    def table(self) -> dict[str, Command]:
        """Every admin command: the read-only ones answered, the others refused."""
        table: dict[str, Command] = {
            "status": self.status,
            "plan": self.plan,
            "history": self.history,
            "report": self.report,
        }
        for name in LEADER_ONLY:
            table[name] = self._refuser(name)
        return {name: _checked(handler, ARGUMENTS[name]) for name, handler in table.items()}

    async def leader_text(self) -> str:
        """``host pid N since ISO`` of the leader, or why it is unknown."""
        try:
            leader = await self.election.leader()
        except StoreError:
            return "unknown (the shared state store does not answer)"
        return leader.describe() if leader is not None else "none yet"

    def _refuser(self, name: str) -> Command:
        async def refuse(request: dict[str, Any], peer: Peer) -> Any:
            leader = await self.leader_text()
            raise AdminRequestError(
                "standby",
                f"this daemon is a standby: {name!r} is the leader's to do; the leader is "
                f"{leader}: send it to the leader's admin socket (or stop the leader, and "
                "this daemon takes over within runtime_settings.failover_seconds)",
            )

        refuse.__doc__ = f"Refused on a standby: {name} is the leader's."
        return refuse

    async def status(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """The standby, its leader, and the components as the shared store last saw them."""
        leader = await self.leader_text()
        states = await self.reader.component_states()
        self.scheduler.states.update(states)
        due = {d.component: d.next_due for d in self.scheduler.plan(utcnow())}
        components = []
        for name, spec in self.config.components.items():
            st = states.get(name)
            last = await self.reader.history(component=name, limit=1)
            components.append(
                {
                    "component": name,
                    "state": "standby",
                    "run_id": None,
                    "enabled": spec.enabled,
                    "disabled_reason": spec.disabled_reason,
                    "paused": name in self.scheduler.paused,
                    "frequency": spec.frequency.text,
                    "last_status": last[0]["status"] if last else (st and st.last_status),
                    "last_reason": last[0]["reason"] if last else None,
                    "last_error": st.last_error if st else None,
                    "last_started_at": _iso(st.last_started_at if st else None, self.config),
                    "last_finished_at": _iso(st.last_finished_at if st else None, self.config),
                    "last_success_at": _iso(st.last_success_at if st else None, self.config),
                    "records": st.records if st else None,
                    "next_due": _iso(due.get(name), self.config) if spec.enabled else None,
                    "decision": f"the leader ({leader}) schedules",
                    "stopping_s": None,
                    "joins": None,
                }
            )
        return {
            "daemon": {
                "pid": os.getpid(),
                "state": "standby",
                "started_at": _iso(self.started_at, self.config),
                "timezone": str(self.config.runtime.timezone),
                "config": str(self.config_path),
                "socket": str(self.socket_path),
                "active_runs": [],
                "summary": f"standby (leader: {leader})",
                "leader": leader,
                "last_reload": None,
            },
            "components": components,
            "quota": None,
        }

    async def plan(self, request: dict[str, Any], peer: Peer) -> list[dict[str, Any]]:
        """What the leader would run now and why, from the states the shared store holds
        (what runs at this moment is the leader's alone)."""
        from interlock.core.planning import plan_row
        from interlock.service.admincommands import _flag, _names

        names = _names(request, required=False)
        for name in names or ():
            if name not in self.config.components:
                raise AdminRequestError(
                    "unknown_component",
                    f"unknown component {name!r}; known: {', '.join(self.config.components)}",
                )
        decisions = self.scheduler.plan(
            names=names, with_deps=_flag(request, "with_deps"), force=_flag(request, "force")
        )
        return [plan_row(d, self.config) for d in decisions]

    async def history(self, request: dict[str, Any], peer: Peer) -> list[dict[str, Any]]:
        """Recent component runs from the shared store, newest first."""
        component = request.get("component")
        limit = request.get("limit", 20)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise AdminRequestError(
                "invalid_argument", f"'limit' must be an integer from 1 to 1000, not {limit!r}"
            )
        rows = await self.reader.history(component=component, limit=limit)
        tz = self.config.runtime.timezone
        for row in rows:
            for key in ("started_at", "finished_at"):
                if row[key]:
                    row[key] = datetime.fromisoformat(row[key]).astimezone(tz).isoformat()
        return rows

    async def report(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """Performance over a period, from the shared store (as the leader answers it)."""
        from interlock.observe.report import collect_from, parse_since

        since_text = request.get("since", "7d")
        now = utcnow()
        try:
            since = parse_since(str(since_text), now)
        except ValueError as exc:
            raise AdminRequestError("invalid_argument", str(exc)) from None
        config = self.config
        return await collect_from(
            self.reader,
            since=since,
            until=now,
            component=request.get("component"),
            timeouts={n: s.timeout_s for n, s in config.components.items()},
            daily_limit=int(config.quota.get("daily_limit", 1000)),
        )


class StandbyHost:
    """The standby as the dashboard sees it: the shared store, read-only, and a scheduler
    that never serves (plans from the stored states; it cannot start a run)."""

    def __init__(self, config: Config, bus: Any, dsn: str, states: dict[str, Any]) -> None:
        from interlock.core.scheduler import Scheduler

        self.config = config
        self.bus = bus
        self.dsn = dsn
        self.services: dict[str, Any] = {}
        self.scheduler = Scheduler(config, bus, states, services=self.services)

    @property
    def store(self) -> StandbyHost:
        return self  # the dashboard asks its store only for a reader

    def reader(self, *, timeout_s: float = 5.0) -> StateReader:
        from interlock.store.postgresql import PgStateReader

        return PgStateReader(self.dsn, timeout_s=timeout_s)

    async def set_paused(self, name: str, paused: bool, **_: Any) -> bool:
        raise StateError("this daemon is a standby: pausing is the leader's; use its dashboard")


class StandbyServer:
    """The standby's admin socket, dashboard and reader, closed together."""

    def __init__(
        self, admin: Any, reader: Any, bus: Any, relay: asyncio.Task[None], dashboard: Any
    ) -> None:
        self.admin = admin
        self.reader = reader
        self.bus = bus
        self.relay = relay
        self.dashboard = dashboard

    async def aclose(self) -> None:
        """Close the relay, the dashboard, the socket, then the reader."""
        self.relay.cancel()
        await asyncio.gather(self.relay, return_exceptions=True)
        if self.dashboard is not None:
            await self.dashboard.close()
        await self.admin.close()
        await self.bus.close()
        await self.reader.close()


async def standby_server(service: Any, config: Config, election: Election) -> StandbyServer:
    """Open the standby's admin socket (the service's path) on a reader of the shared store."""
    from interlock.events import EventBus
    from interlock.service.admin import AdminServer
    from interlock.service.leader import store_dsn
    from interlock.store.postgresql import PgStateReader

    dsn = store_dsn(config)
    assert dsn is not None, "a standby needs a shared store"
    reader = PgStateReader(dsn)
    await reader.open()
    bus = EventBus()
    try:
        host = StandbyHost(config, bus, dsn, await reader.component_states())
        commands = StandbyCommands(
            config,
            election,
            reader,
            config_path=service.config_path,
            socket_path=service.socket_path,
            started_at=service.started_at,
            scheduler=host.scheduler,
        )
        admin = AdminServer(
            service.socket_path, commands.table(), bus, read_timeout_s=service.admin_read_timeout_s
        )
        await admin.start()
    except BaseException:
        await bus.close()
        await reader.close()
        raise

    async def refresh() -> None:  # the dashboard's states follow the leader's writes
        host.scheduler.states.update(await reader.component_states())
        paused = await reader.get_meta(PAUSED_KEY) or []
        host.scheduler.paused.clear()
        host.scheduler.paused.update(n for n in paused if n in config.components)

    try:
        await refresh()
        dashboard = await _standby_dashboard(host)
    except BaseException:
        await admin.close()
        await bus.close()
        await reader.close()
        raise

    # watch and the dashboard on a standby: the leader's events, polled from the store.
    every_s = max(0.05, config.runtime.failover_s * RETRY_SHARE)
    task = asyncio.create_task(
        relay(reader.pool, bus.publish, every_s, refresh), name="standby relay"
    )
    return StandbyServer(admin, reader, bus, task, dashboard)


async def _standby_dashboard(host: StandbyHost) -> Any:
    """The dashboard, read-only (its buttons off), if the config enables it."""
    from dataclasses import replace

    from interlock.config.dashboard import DashboardSettings
    from interlock.observe.dashboard.server import Dashboard, DashboardError

    settings = DashboardSettings.from_monitoring(host.config.monitoring)
    if not settings.enabled:
        return None
    dashboard = Dashboard(host, replace(settings, actions_enabled=False))  # type: ignore[arg-type]
    try:
        await dashboard.start()
    except DashboardError as exc:
        log.error("dashboard_failed", error=str(exc))
        return None
    return dashboard


async def become_leader(
    service: Any, config: Config, election: Election, stop: asyncio.Event
) -> Config | None:
    """Stand by, answering read-only on the admin socket, until this daemon leads; the
    config to lead with (the shared store's DSN fenced with the epoch), or None when
    ``stop`` came first. With SQLite it leads at once and the config is unchanged."""
    from interlock.service.leader import wait_to_lead, with_dsn

    standby: StandbyServer | None = None

    async def stand_by() -> None:
        nonlocal standby
        standby = await standby_server(service, config, election)
        service.notifier.ready("standby")  # systemd: up, and waiting to lead

    service.standby_config = config  # a SIGHUP meanwhile replaces it (reload_standby)
    try:
        epoch = await wait_to_lead(election, config.runtime.failover_s, stop, stand_by)
    finally:
        if standby is not None:
            await standby.aclose()  # the leader's admin socket takes the path next
        config, service.standby_config = service.standby_config, None
    if epoch is None:
        return None
    fenced = election.fenced_dsn()
    if fenced is None:
        return config
    log.info("leading", epoch=epoch, failover_s=config.runtime.failover_s)
    return with_dsn(config, fenced)


async def reload_standby(service: Any, trigger: str) -> dict[str, Any]:
    """SIGHUP on a standby: read the config file again; the daemon leads with it.

    Invalid: the one in use is kept (AdminRequestError ``invalid_config``). What needs a
    restart (``state_dir``, ``data_dir``) keeps its value, as on a leader.
    """
    from interlock.errors import InterlockError
    from interlock.service.reload import pin_restart_only

    source = str(service.config_path)
    service.notifier.reloading()
    try:
        new = await asyncio.to_thread(service.load)
    except InterlockError as exc:
        log.error("config_reload_rejected", source=source, trigger=trigger, error=str(exc))
        raise AdminRequestError(
            "invalid_config", f"{exc}\nthe daemon keeps its current configuration"
        ) from None
    finally:
        service.notifier.ready("standby")
    new, restart_needed = pin_restart_only(service.standby_config, new)
    service.standby_config = new
    log.info("config_applied", source=source, trigger=trigger, components=len(new.components))
    return {
        "applied": True,
        "source": source,
        "components": list(new.components),
        "changed": [],
        "rebuilt": [],
        "restart_needed": restart_needed,
        "failed": [],
    }
