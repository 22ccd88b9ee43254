"""What each admin command does inside the daemon: status, plan, trigger, pause, resume,
cancel, history and reload (``watch`` is the socket server's own).

Handlers take the request object and the peer, validate their arguments, and
return JSON-friendly results; a refusal is an AdminRequestError with a stable code.
"""

from __future__ import annotations

import enum
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from interlock.core.decisions import Decision
from interlock.core.planning import plan_row
from interlock.errors import AdminRequestError, StateError
from interlock.events import utcnow
from interlock.outcome import SkipReason
from interlock.service.admin import Command, Peer
from interlock.service.adminrequest import BOOLEAN, INTEGER, NAMES, STRING, check_arguments

if TYPE_CHECKING:
    from interlock.service.app import Orchestrator

HISTORY_LIMIT_MAX = 1000
_SELECT = {"component": STRING, "components": NAMES}
#: What each command takes and of what JSON type; anything else is refused at the socket.
ARGUMENTS: dict[str, dict[str, str]] = {
    "status": {},
    "plan": {**_SELECT, "with_deps": BOOLEAN, "force": BOOLEAN},
    "trigger": {**_SELECT, "with_deps": BOOLEAN, "force": BOOLEAN},
    "pause": _SELECT,
    "resume": _SELECT,
    "cancel": {**_SELECT, "run_id": STRING},
    "history": {"component": STRING, "limit": INTEGER},
    "report": {"since": STRING, "component": STRING},
    "reload": {},
}


def _checked(handler: Command, arguments: dict[str, str]) -> Command:
    """``handler``, called only with a request whose arguments have the declared types."""

    async def checked(request: dict[str, Any], peer: Peer) -> Any:
        check_arguments(request, arguments)
        return await handler(request, peer)

    checked.__doc__ = handler.__doc__
    return checked


def _iso(value: datetime | None, tz: Any) -> str | None:
    return value.astimezone(tz).isoformat() if value is not None else None


def _last_reload(last: dict[str, Any] | None, tz: Any) -> dict[str, Any] | None:
    return None if last is None else {**last, "at": _iso(last["at"], tz)}


def _flag(request: dict[str, Any], key: str) -> bool:
    value = request.get(key, False)
    if not isinstance(value, bool):
        raise AdminRequestError("invalid_argument", f"{key!r} must be true or false, not {value!r}")
    return value


def _names(request: dict[str, Any], *, required: bool) -> list[str] | None:
    """``component`` (one name) or ``components`` (a list) from a request."""
    one, many = request.get("component"), request.get("components")
    if one is not None and many is not None:
        raise AdminRequestError("invalid_argument", "give 'component' or 'components', not both")
    if one is not None:
        many = [one]
    if many is None:
        if required:
            raise AdminRequestError("invalid_argument", 'this command needs "component": "NAME"')
        return None
    if not isinstance(many, list) or not many or not all(isinstance(n, str) for n in many):
        raise AdminRequestError(
            "invalid_argument", f"'components' must be a non-empty list of names, not {many!r}"
        )
    return many


class ServedDaemon(Protocol):
    """What the commands need of the service that serves them (``serve.Service``)."""

    @property
    def orch(self) -> Orchestrator | None:
        """The orchestrator, while the service has one."""
        ...

    @property
    def state(self) -> enum.Enum:
        """The service's lifecycle state."""
        ...

    @property
    def started_at(self) -> datetime:
        """When the service started."""
        ...

    @property
    def config_path(self) -> Path:
        """The config file it serves."""
        ...

    @property
    def socket_path(self) -> Path:
        """Its admin socket."""
        ...

    def summary(self) -> str:
        """One line about what it is doing."""
        ...

    @property
    def last_reload(self) -> dict[str, Any] | None:
        """The last reload: at, trigger, applied, error (None: none yet)."""
        ...

    async def reload(self, trigger: str) -> dict[str, Any]:
        """Load the config file again; what was applied."""
        ...


class AdminCommands:
    """The command table of one service."""

    def __init__(self, service: ServedDaemon) -> None:
        self.service = service

    def table(self) -> dict[str, Command]:
        """Command name -> handler (its arguments checked against ``ARGUMENTS`` first)."""
        handlers: dict[str, Command] = {
            "status": self.status,
            "plan": self.plan,
            "trigger": self.trigger,
            "pause": self.pause,
            "resume": self.resume,
            "cancel": self.cancel,
            "history": self.history,
            "report": self.report,
            "reload": self.reload,
        }
        return {name: _checked(h, ARGUMENTS[name]) for name, h in handlers.items()}

    @property
    def orch(self) -> Orchestrator:
        orch = self.service.orch
        if orch is None:
            raise AdminRequestError("not_serving", f"the daemon is {self.service.state.value}")
        return orch

    def _known(self, names: list[str]) -> None:
        components = self.orch.config.components
        for name in names:
            if name not in components:
                raise AdminRequestError(
                    "unknown_component",
                    f"unknown component {name!r}; known: {', '.join(components)}",
                )

    def _decision(self, d: Decision) -> dict[str, Any]:
        return plan_row(d, self.orch.config)

    # --- read-only ------------------------------------------------------------

    async def status(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """The daemon and, per component: state, last outcome and reason, next due, paused."""
        orch, service = self.orch, self.service
        scheduler = orch.scheduler
        tz = orch.config.runtime.timezone
        running = scheduler.running
        stopping = scheduler.stopping
        components = []
        for d in scheduler.plan(utcnow()):
            name = d.component
            spec = orch.config.components[name]
            st = scheduler.states[name]
            last = await orch.store.history(component=name, limit=1)
            if name in stopping:
                state = "stopping"  # its run ended; a worker thread has not yet
            elif name in running:
                state = "running"
            elif not spec.enabled:
                state = "disabled"
            elif name in scheduler.paused:
                state = "paused"
            else:
                state = "idle"
            components.append(
                {
                    "component": name,
                    "state": state,
                    "run_id": running.get(name),
                    "enabled": spec.enabled,
                    "disabled_reason": spec.disabled_reason,
                    "paused": name in scheduler.paused,
                    "frequency": spec.frequency.text,
                    "last_status": last[0]["status"] if last else st.last_status,
                    "last_reason": last[0]["reason"] if last else None,
                    "last_error": st.last_error,
                    "last_started_at": _iso(st.last_started_at, tz),
                    "last_finished_at": _iso(st.last_finished_at, tz),
                    "last_success_at": _iso(st.last_success_at, tz),
                    "records": st.records,
                    "next_due": _iso(d.next_due, tz) if spec.enabled else None,
                    "decision": d.detail,
                    # How long a worker thread has outlived its run (None: not stopping).
                    "stopping_s": stopping[name]["stopping_s"] if name in stopping else None,
                    # Realtime: how the last run's feeds joined the schedule in force.
                    "joins": (last[0].get("metrics") or {}).get("joins") if last else None,
                }
            )
        quota = orch.services.get("quota")
        describe = getattr(quota, "describe", None)
        return {
            "daemon": {
                "pid": os.getpid(),
                "state": service.state.value,
                "started_at": _iso(service.started_at, tz),
                "timezone": str(tz),
                "config": str(service.config_path),
                "socket": str(service.socket_path),
                "active_runs": scheduler.active_runs,
                "summary": service.summary(),
                "last_reload": _last_reload(service.last_reload, tz),
            },
            "components": components,
            "quota": describe() if callable(describe) else None,
        }

    async def plan(self, request: dict[str, Any], peer: Peer) -> list[dict[str, Any]]:
        """What would run now and why (the daemon's live view: paused, running)."""
        names = _names(request, required=False)
        if names:
            self._known(names)
        decisions = self.orch.scheduler.plan(
            names=names, with_deps=_flag(request, "with_deps"), force=_flag(request, "force")
        )
        return [self._decision(d) for d in decisions]

    async def history(self, request: dict[str, Any], peer: Peer) -> list[dict[str, Any]]:
        """Recent component runs, newest first (times in the configured zone)."""
        component = request.get("component")
        if component is not None:
            if not isinstance(component, str):
                raise AdminRequestError("invalid_argument", "'component' must be a name")
            self._known([component])
        limit = request.get("limit", 20)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise AdminRequestError(
                "invalid_argument",
                f"'limit' must be an integer from 1 to {HISTORY_LIMIT_MAX}, not {limit!r}",
            )
        rows = await self.orch.store.history(component=component, limit=limit)
        tz = self.orch.config.runtime.timezone
        for row in rows:
            for key in ("started_at", "finished_at"):
                if row[key]:
                    row[key] = datetime.fromisoformat(row[key]).astimezone(tz).isoformat()
        return rows

    async def report(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """Performance over a period (``since``: '7d', '12h', a date), as ``interlock report``."""
        from interlock.observe.report import collect_from, parse_since

        since_text = request.get("since", "7d")
        if not isinstance(since_text, str):
            raise AdminRequestError("invalid_argument", "'since' must be text such as '7d'")
        component = request.get("component")
        if component is not None:
            if not isinstance(component, str):
                raise AdminRequestError("invalid_argument", "'component' must be a name")
            self._known([component])
        now = utcnow()
        try:
            since = parse_since(since_text, now)
        except ValueError as exc:
            raise AdminRequestError("invalid_argument", str(exc)) from None
        config = self.orch.config
        return await collect_from(
            self.orch.store,
            since=since,
            until=now,
            component=component,
            timeouts={n: s.timeout_s for n, s in config.components.items()},
            daily_limit=int(config.quota.get("daily_limit", 1000)),
        )

    # --- actions ----------------------------------------------------------------

    async def trigger(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """Start a run of the named components now; the run id, or why nothing started."""
        names = _names(request, required=True)
        assert names is not None
        self._known(names)
        try:
            run_id, decisions = self.orch.scheduler.start_run(
                names,
                with_deps=_flag(request, "with_deps"),
                force=_flag(request, "force"),
                trigger=peer.actor,
            )
        except StateError as exc:
            raise AdminRequestError("stopping", str(exc)) from None
        if run_id is None:
            refused = [d for d in decisions if d.component in names]
            why = "; ".join(
                f"{d.component!r}: {d.reason.value if d.reason else 'not run'} ({d.detail})"
                for d in refused
            )
            reasons = {d.reason for d in refused}
            # A hint only where it helps: --force runs a paused component, nothing
            # runs a component beside itself.
            hint = "; --force runs a paused component" if SkipReason.PAUSED in reasons else ""
            raise AdminRequestError("not_started", f"nothing was started: {why}{hint}")
        return {
            "run_id": run_id,
            "components": [d.component for d in decisions if d.run],
        }

    async def _set_paused(self, request: dict[str, Any], peer: Peer, paused: bool) -> Any:
        names = _names(request, required=True)
        assert names is not None
        self._known(names)
        changed = [
            n
            for n in names
            if await self.orch.set_paused(n, paused, uid=peer.uid, actor=peer.actor)
        ]
        return {"paused": sorted(self.orch.scheduler.paused), "changed": changed}

    async def pause(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """Keep components out of scheduled runs until resumed (survives restarts)."""
        result: dict[str, Any] = await self._set_paused(request, peer, True)
        return result

    async def resume(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """Schedule paused components again."""
        result: dict[str, Any] = await self._set_paused(request, peer, False)
        return result

    async def cancel(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """Cancel a running component (``component``) or a whole run (``run_id``)."""
        scheduler = self.orch.scheduler
        run_id = request.get("run_id")
        if run_id is not None:
            if not isinstance(run_id, str):
                raise AdminRequestError("invalid_argument", "'run_id' must be a string")
            if not scheduler.cancel_run(run_id, actor=peer.actor):
                active = ", ".join(scheduler.active_runs) or "none"
                raise AdminRequestError(
                    "not_running", f"run {run_id!r} is not in progress; active runs: {active}"
                )
            return {"cancelled": "run", "run_id": run_id}
        names = _names(request, required=True)
        assert names is not None
        self._known(names)
        for name in names:
            if not scheduler.cancel_component(name, actor=peer.actor):
                running = ", ".join(sorted(scheduler.running)) or "none"
                raise AdminRequestError(
                    "not_running", f"component {name!r} is not running; running: {running}"
                )
        return {"cancelled": "component", "components": names}

    async def reload(self, request: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """Load the config file again; applied if valid, else the old one stays."""
        return await self.service.reload(peer.actor)
