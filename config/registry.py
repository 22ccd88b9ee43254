"""Where component classes come from: the built-ins by name, installed packages through the
``interlock.components`` entry-point group, and anything else by ``package.module:ClassName``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from interlock.errors import ComponentLoadError

BUILTINS: dict[str, str] = {
    "gtfs_schedule": "interlock.components.gtfs_schedule.component:GtfsScheduleComponent",
    "gtfs_realtime": "interlock.components.gtfs_realtime.component:GtfsRealtimeComponent",
    "ptv_timetable": "interlock.components.ptv_timetable.component:PtvTimetableComponent",
    "datavic_station_patronage": "interlock.components.datavic.component:StationPatronageComponent",
    "datavic_temporal_patronage": (
        "interlock.components.datavic.component:TemporalPatronageComponent"
    ),
}


#: What a command runs without any configuration: name -> ``package.module:function``.
TOOLS: dict[str, str] = {
    "validate_gtfs": "interlock.components.gtfs_schedule.standalone:validate_file",
}


def load_tool(name: str) -> Callable[..., Any]:
    """The function :data:`TOOLS` names (imported only when asked for)."""
    module_name, _, attr = TOOLS[name].partition(":")
    found: Callable[..., Any] = getattr(importlib.import_module(module_name), attr)
    return found


#: Installed packages offer components by name through this group (in their pyproject.toml:
#: ``[project.entry-points."interlock.components"]``, ``name = "package.module:ClassName"``).
ENTRY_POINT_GROUP = "interlock.components"


def installed_components() -> dict[str, str]:
    """Component name -> class path, for every ``interlock.components`` entry point installed."""
    from importlib import metadata  # here: a config of built-ins and class paths never asks

    found: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def component_class_path(name: str) -> str | None:
    """The class path of the component called ``name``: a built-in, else an installed one."""
    return BUILTINS.get(name) or installed_components().get(name)


@functools.cache
def load_component_class(path: str) -> type:
    """Import ``package.module:ClassName`` (or an installed entry point's) and check it."""
    if ":" not in path:
        installed = installed_components()
        if path not in installed:
            known = ", ".join(sorted(installed)) or "none"
            raise ComponentLoadError(
                f"class {path!r} is neither 'package.module:ClassName' nor the name of an "
                f"installed '{ENTRY_POINT_GROUP}' entry point (installed: {known})"
            )
        path = installed[path]
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if path in BUILTINS.values() and exc.name == module_name:
            raise ComponentLoadError(
                f"built-in component class {path!r} is not available in this version of interlock"
            ) from None
        raise ComponentLoadError(
            f"cannot import module {module_name!r} for class {path!r}: {exc}; check the "
            "'class' value and that the package is installed"
        ) from None
    except Exception as exc:
        # A module that fails while importing is a configuration problem, not a crash.
        raise ComponentLoadError(
            f"importing module {module_name!r} for class {path!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise ComponentLoadError(
            f"module {module_name!r} has no class {class_name!r} (from {path!r})"
        )
    if not inspect.iscoroutinefunction(getattr(cls, "run", None)):
        raise ComponentLoadError(
            f"class {path!r} is not a component: it needs 'async def run(self, ctx)'"
        )
    return cls
