"""``interlock serve``: the daemon's lifecycle under systemd.

Start-up opens the orchestrator (interrupted runs recorded, staging cleaned),
binds the admin socket, tells systemd READY=1 and feeds its watchdog from the
event loop. SIGHUP (or ``reload``) swaps in a new config if it is valid and keeps
the old one otherwise. SIGTERM/SIGINT stop new releases, give running components
a grace period (a second signal cuts it short), cancel the rest with cleanup,
flush history and return 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import enum
import gc
import os
import signal
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from interlock import events as ev
from interlock.config.admin_socket import resolve_socket
from interlock.config.loader import load_config
from interlock.config.model import Config
from interlock.errors import AdminRequestError, InterlockError
from interlock.events import utcnow
from interlock.observe import logs
from interlock.service import leader
from interlock.service import reload as reload_parts
from interlock.service.admin import READ_TIMEOUT_S, AdminServer
from interlock.service.app import Orchestrator
from interlock.service.sdnotify import Notifier
from interlock.service.standby import become_leader, reload_standby

if TYPE_CHECKING:
    from interlock.observe.dashboard.server import Dashboard

log = structlog.get_logger("interlock.service")

_libc: ctypes.CDLL | None
try:  # glibc only; elsewhere freed memory is simply kept
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _libc.malloc_trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):
    _libc = None

#: Events after which the one-line STATUS= summary may have changed.
_STATUS_EVENTS = (
    "run_started",
    "run_finished",
    "component_started",
    "component_succeeded",
    "component_unchanged",
    "component_failed",
    "component_timed_out",
    "component_cancelled",
    "component_paused",
    "component_resumed",
    "config_reloaded",
)


class ServiceState(enum.Enum):
    """Lifecycle of the service."""

    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Service:
    """One ``interlock serve`` process."""

    def __init__(
        self,
        config_path: Path,
        *,
        overrides: Mapping[str, bool | None] | None = None,
        grace_s: float = 30.0,
        socket_path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config_path = config_path
        self.overrides = dict(overrides or {})
        self.grace_s = grace_s
        env = os.environ if env is None else env
        self.env = env
        self.explicit_socket = socket_path  # --socket: it wins over the config on reload too
        self.socket_path = resolve_socket(socket_path, config_path, env)
        self.notifier = Notifier(env)
        # How long an admin client may take to send a request line (tests shorten it).
        self.admin_read_timeout_s = float(
            env.get("INTERLOCK_ADMIN_READ_TIMEOUT", "") or READ_TIMEOUT_S
        )
        self.state = ServiceState.STARTING
        self.started_at: datetime = utcnow()
        self.orch: Orchestrator | None = None
        self.admin: AdminServer | None = None
        self.dashboard: Dashboard | None = None
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self._stop_signals = 0
        #: The last reload: when, by what, applied or not and why (None: none yet).
        self.last_reload: dict[str, Any] | None = None
        self._lease: asyncio.Task[None] | None = None
        self.standby_config: Config | None = None  # while standing by: the config to lead with

    # --- config ---------------------------------------------------------------

    def load(self) -> Config:
        """Read and validate the config file, with the command line's overrides on top."""
        config = load_config(self.config_path)
        return config.with_overrides(self.overrides) if self.overrides else config

    async def reload(self, trigger: str) -> dict[str, Any]:
        """Load the config again and apply it if valid; keep the old one if not.

        Running components are not interrupted: they finish with the settings they
        started with. Raises AdminRequestError("invalid_config") when rejected.
        """
        if self.orch is None and self.standby_config is not None:
            return await reload_standby(self, trigger)  # read now, used when it leads
        orch = self._orch()
        source = str(self.config_path)
        async with self._reload_lock:
            self.notifier.reloading()
            try:
                new = await asyncio.to_thread(self.load)
            except InterlockError as exc:
                self._record_reload(trigger, error=str(exc))
                log.error(
                    "config_reload_rejected",
                    source=source,
                    trigger=trigger,
                    error=str(exc),
                    keeping="the configuration already in use",
                )
                self._publish(ev.ConfigReloaded(source=source, applied=False, error=str(exc)))
                self.notifier.ready(self.summary())  # systemd hears the reload is over
                raise AdminRequestError(
                    "invalid_config", f"{exc}\nthe daemon keeps its current configuration"
                ) from None
            except BaseException:
                self.notifier.ready(self.summary())
                raise
            try:
                old = orch.config
                new, restart_needed = reload_parts.pin_restart_only(old, new)
                orch.config = new
                orch.scheduler.apply_config(new)
                details: dict[str, Any] = {
                    "changed": reload_parts.changed_sections(old, new),
                    "rebuilt": [],
                    "restart_needed": restart_needed,
                    "failed": [],
                }
                await self._rebuild(orch, details["rebuilt"], details["failed"])
            finally:
                self.notifier.ready(self.summary())
            self._record_reload(trigger, error=None, **details)
            self._publish(ev.ConfigReloaded(source=source, applied=True))
            (log.warning if details["failed"] or restart_needed else log.info)(
                "config_applied",
                source=source,
                trigger=trigger,
                components=len(new.components),
                **reload_parts.describe(details),
            )
            return {
                "applied": True,
                "source": source,
                "components": list(new.components),
                **details,
            }

    async def _rebuild(
        self, orch: Orchestrator, rebuilt: list[str], failed: list[dict[str, str]]
    ) -> None:
        """Rebuild the listeners and channels whose settings the new config changed."""
        if orch.observers is not None:
            await orch.observers.reconfigure(rebuilt, failed)
        if self.state is ServiceState.SERVING:
            self.dashboard, done = await reload_parts.rebuild_dashboard(
                orch, self.dashboard, failed
            )
            if done:
                rebuilt.append("dashboard listener")
        path = resolve_socket(self.explicit_socket, self.config_path, self.env)
        if self.admin is not None and orch.bus is not None and path != self.socket_path:
            self.admin, closing = await reload_parts.rebuild_admin(
                self.admin, orch.bus, path, failed
            )
            if closing is not None:
                self._background.add(closing)
                closing.add_done_callback(self._background.discard)
                self.socket_path = path
                rebuilt.append("admin socket")

    def _record_reload(self, trigger: str, *, error: str | None, **details: Any) -> None:
        self.last_reload = {
            "at": utcnow(),
            "trigger": trigger,
            "applied": error is None,
            "error": error,
            "changed": details.get("changed", []),
            "rebuilt": details.get("rebuilt", []),
            "restart_needed": details.get("restart_needed", []),
            "failed": details.get("failed", []),
        }

    # --- lifecycle ------------------------------------------------------------

    def _orch(self) -> Orchestrator:
        if self.orch is None:
            raise InterlockError(f"the service is {self.state.value}; it has no orchestrator")
        return self.orch

    def _publish(self, event: ev.Event) -> None:
        if self.orch is not None and self.orch.bus is not None:
            self.orch.bus.publish(event)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def request_stop(self, signame: str = "SIGTERM") -> None:
        """Stop releasing components and begin the shutdown (signal handler)."""
        self._stop_signals += 1
        if self._stop_signals == 1:
            log.info("stop_requested", signal=signame, grace_s=self.grace_s)
        elif self._stop_signals == 2 and self.orch is not None:
            # The operator will not wait out the grace: cancel now (outcomes still recorded).
            log.warning(
                "stop_hastened", signal=signame, running=sorted(self.orch.scheduler.running)
            )
            self.notifier.status("stopping now: running components cancelled")
            self.orch.scheduler.end_grace()
        self._stop.set()

    def _on_sighup(self) -> None:
        async def reload() -> None:
            # A rejection is logged and published by reload(); the daemon carries on.
            with contextlib.suppress(AdminRequestError):
                await self.reload("SIGHUP")

        self._spawn(reload(), "reload on SIGHUP")

    async def run(self) -> int:
        """Serve until a stop signal; the process exit code (0 after a clean stop)."""
        config = self.load()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        watchdog = self._spawn(self.notifier.feed_watchdog(), "sd_notify watchdog")
        election = leader.election_for(config)
        try:
            # A standby (shared store, another daemon leads) waits here, read-only.
            leading = await become_leader(self, config, election, self._stop)
            if leading is not None:
                self._lease = self._spawn(
                    leader.keep_lease(election, leading.runtime.failover_s, leader.lost_lease),
                    "leader lease",
                )
                async with Orchestrator(leading) as orch:
                    self.orch = orch
                    await self._serve(orch)
        finally:
            if self._lease is not None:
                self._lease.cancel()  # a lease given up on purpose is not lost
            await election.aclose()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            watchdog.cancel()
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            self.state = ServiceState.STOPPED
            self.orch = None
            self.notifier.close()
        log.info("stopped", uptime_s=round((utcnow() - self.started_at).total_seconds(), 3))
        return 0

    async def _serve(self, orch: Orchestrator) -> None:
        from interlock.observe.dashboard.server import start_dashboard
        from interlock.service.admincommands import AdminCommands

        assert orch.bus is not None
        self.admin = AdminServer(
            self.socket_path,
            AdminCommands(self).table(),
            orch.bus,
            read_timeout_s=self.admin_read_timeout_s,
        )
        await self.admin.start()
        try:
            self.dashboard = await start_dashboard(orch)
            orch.bus.subscribe("sd_status", self._refresh_status, maxsize=1000)
            log.info(
                "serving",
                pid=os.getpid(),
                config=str(self.config_path),
                socket=str(self.socket_path),
                components=len(orch.config.components),
                paused=sorted(orch.scheduler.paused),
                watchdog_s=self.notifier.watchdog_s,
            )
            # READY once the scheduler has made its first decisions (overdue runs started).
            decided = asyncio.Event()
            serve = self._spawn(
                orch.scheduler.serve(self._stop, on_idle=lambda _wake: decided.set()),
                "scheduler",
            )
            ready = asyncio.ensure_future(decided.wait())
            await asyncio.wait({ready, serve}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            self.state = ServiceState.SERVING
            self.notifier.ready(self.summary())
            await serve
            self.state = ServiceState.STOPPING
            running = orch.scheduler.running
            self.notifier.stopping(
                f"stopping: {len(running)} running, grace {self.grace_s:g} s"
                if running
                else "stopping"
            )
            await orch.scheduler.shutdown(self.grace_s)
        finally:
            if self.dashboard is not None:
                await self.dashboard.close()
            await self.admin.close()

    # --- STATUS= ----------------------------------------------------------------

    async def _refresh_status(self, batch: Sequence[ev.Event]) -> None:
        if self.state is ServiceState.SERVING and any(e.name in _STATUS_EVENTS for e in batch):
            self.notifier.status(self.summary())
        if (
            self.orch is not None
            and any(isinstance(e, ev.RunFinished) for e in batch)
            and not self.orch.scheduler.active_runs
        ):
            release_memory()

    def summary(self) -> str:
        """One line for ``systemctl status``: what runs, what is paused, what is next."""
        if self.orch is None:
            return self.state.value
        scheduler = self.orch.scheduler
        config = self.orch.config
        now = utcnow()
        parts = [f"{len(config.components)} components"]
        running = scheduler.running
        parts.append("running: " + ", ".join(sorted(running)) if running else "idle")
        if scheduler.paused:
            parts.append("paused: " + ", ".join(sorted(scheduler.paused)))
        wake = scheduler.next_wake(now)
        if wake is not None:
            parts.append(
                "next due " + wake.astimezone(config.runtime.timezone).strftime("%H:%M:%S")
            )
        return "; ".join(parts)


def release_memory() -> None:
    """Hand memory freed by a run back to the OS before idling (glibc keeps it otherwise)."""
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)


def serve(
    config_path: Path,
    *,
    overrides: Mapping[str, bool | None] | None = None,
    grace_s: float = 30.0,
    socket_path: Path | None = None,
) -> int:
    """Run the service in a new event loop; its exit code."""
    service = Service(config_path, overrides=overrides, grace_s=grace_s, socket_path=socket_path)
    try:
        return asyncio.run(service.run())
    finally:
        # The last lines ("stopped") go out before the process does; a stalled stdout
        # holds the exit for at most this long.
        logs.flush(logs.EXIT_FLUSH_S)
