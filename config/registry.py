"""Where component classes come from: the built-ins by name, others by ``module:Class``."""

from __future__ import annotations

import functools
import importlib
import inspect

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


def component_class_path(name: str) -> str | None:
    """The class path of the built-in component called ``name``, if there is one."""
    return BUILTINS.get(name)


@functools.cache
def load_component_class(path: str) -> type:
    """Import ``package.module:ClassName`` and check it looks like a component."""
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
