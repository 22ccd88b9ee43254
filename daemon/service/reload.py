"""What a reload changes beyond the scheduler: the parts rebuilt live (alerting, the metrics
and dashboard listeners, the admin socket) and the settings only a restart can change.

Each listener is started anew before the old one closes where that can fail, so a new
address that cannot be bound is a failed part, named, with the old listener kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from interlock.config.dashboard import DashboardSettings
from interlock.config.model import Config
from interlock.errors import AdminError, DashboardError
from interlock.events import EventBus

if TYPE_CHECKING:
    from interlock.observe.dashboard.server import Dashboard
    from interlock.service.admin import AdminServer
    from interlock.service.app import Orchestrator

log = structlog.get_logger("interlock.service")

#: Config file key -> Config attribute, for naming what a reload changed.
SECTIONS = (
    ("components", "components"),
    ("runtime_settings", "runtime"),
    ("dependency_management", "parallel_groups"),
    ("change_detection", "change_detection"),
    ("data_quality", "data_quality"),
    ("quota_management", "quota"),
    ("performance_monitoring", "monitoring"),
    ("override_settings", "overrides"),
)

#: Paths the open state store, its lock and the staging area were made for.
_PINNED = (
    ("runtime_settings.state_dir", "state_dir", "the state store and its lock are open there"),
    ("runtime_settings.data_dir", "data_dir", "staging and published datasets live there"),
)


def pin_restart_only(old: Config, new: Config) -> tuple[Config, list[dict[str, str]]]:
    """``new`` with what cannot change live kept as ``old`` has it, and each such setting."""
    needed: list[dict[str, str]] = []
    runtime = new.runtime
    for setting, attr, why in _PINNED:
        was, now = getattr(old.runtime, attr), getattr(new.runtime, attr)
        if was != now:
            needed.append(
                {
                    "setting": setting,
                    "in_use": str(was),
                    "configured": str(now),
                    "reason": f"{why}; restart the service to use the new one",
                }
            )
            runtime = dataclasses.replace(runtime, **{attr: was})
    if new.quota != old.quota:
        needed.append(
            {
                "setting": "quota_management",
                "reason": "the quota guard keeps the limits it started with; restart to use these",
            }
        )
    if new.monitoring.get("enabled", True) != old.monitoring.get("enabled", True):
        needed.append(
            {
                "setting": "performance_monitoring.enabled",
                "reason": "monitoring is switched on or off at start; restart to change it",
            }
        )
    if runtime is not new.runtime:
        new = dataclasses.replace(new, runtime=runtime)
    return new, needed


def changed_sections(old: Config, new: Config) -> list[str]:
    """The config file's top-level keys whose values differ between ``old`` and ``new``."""
    return [key for key, attr in SECTIONS if getattr(old, attr) != getattr(new, attr)]


async def rebuild_dashboard(
    orch: Orchestrator, current: Dashboard | None, failed: list[dict[str, str]]
) -> tuple[Dashboard | None, bool]:
    """The dashboard for ``orch``'s config now: ``(dashboard, rebuilt)``.

    A new address is bound before the old one closes (kept when the new cannot bind); the
    same address with other settings is closed first, since both cannot hold the port.
    """
    from interlock.observe.dashboard.server import Dashboard

    settings = DashboardSettings.from_monitoring(orch.config.monitoring)
    running = current.settings if current is not None else DashboardSettings()
    if settings == running or (not settings.enabled and current is None):
        return current, False
    if not settings.enabled:
        assert current is not None
        await current.close()
        return None, True
    same_port = current is not None and (running.host, running.port) == (
        settings.host,
        settings.port,
    )
    if same_port and current is not None:
        await current.close()
    new = Dashboard(orch, settings)
    try:
        await new.start()
    except DashboardError as exc:
        failed.append({"part": "dashboard listener", "error": str(exc)})
        log.error("dashboard_rebuild_failed", error=str(exc))
        return (None if same_port else current), False
    if current is not None and not same_port:
        await current.close()
    return new, True


async def rebuild_admin(
    admin: AdminServer, bus: EventBus, path: Path, failed: list[dict[str, str]]
) -> tuple[AdminServer, asyncio.Task[None] | None]:
    """An admin server on ``path`` with ``admin``'s commands, and the task closing the old.

    The old socket keeps serving until that task runs, so the client that asked for the
    reload gets its reply there; then it is closed and its file removed.
    """
    from interlock.service.admin import AdminServer

    new = AdminServer(
        path,
        admin.commands,
        bus,
        max_line=admin.max_line,
        read_timeout_s=admin.read_timeout_s,
        max_clients=admin.max_clients,
        idle_grace_s=admin.idle_grace_s,
    )
    try:
        await new.start()
    except AdminError as exc:
        failed.append({"part": "admin socket", "error": str(exc)})
        log.error("admin_rebuild_failed", error=str(exc), keeping=str(admin.path))
        return admin, None

    async def close_old() -> None:
        await asyncio.sleep(0)  # the reply to `reload` is written first
        await admin.close()

    return new, asyncio.create_task(close_old(), name=f"close admin socket {str(admin.path)!r}")


def describe(result: dict[str, Any]) -> dict[str, Any]:
    """The reload's summary fields for the log line (setting names only, no values)."""
    return {
        "changed": result["changed"],
        "rebuilt": result["rebuilt"],
        "restart_needed": [n["setting"] for n in result["restart_needed"]],
        "failed": [f["part"] for f in result["failed"]],
    }
