"""The configuration as the daemon sees it: immutable, validated, with secrets resolved.

:class:`Config` holds one :class:`ComponentSpec` per component (in dependency order),
the :class:`Runtime` settings and the :class:`Overrides`; the loader builds them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from interlock.cadence import Frequency

DEFAULT_PATHS = (Path("/etc/interlock/orchestration.json"), Path("config/orchestration.json"))
OVERRIDE_FLAGS = (
    "force_run_all",
    "skip_frequency_check",
    "skip_dependency_check",
    "skip_change_detection",
    "skip_data_quality",
    "dry_run",
)


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """Switches that bend the normal rules for one invocation (file, then CLI)."""

    force_run_all: bool = False
    skip_frequency_check: bool = False
    skip_dependency_check: bool = False
    skip_change_detection: bool = False
    skip_data_quality: bool = False
    dry_run: bool = False

    def merged(self, cli: Mapping[str, bool | None]) -> Overrides:
        """The CLI wins over the file wherever it says something."""
        given = {k: bool(v) for k, v in cli.items() if k in OVERRIDE_FLAGS and v is not None}
        return replace(self, **given)


@dataclass(frozen=True, kw_only=True)
class ComponentSpec:
    """One component as configured, with secrets resolved."""

    name: str
    class_path: str | None
    enabled: bool
    disabled_reason: str | None
    frequency: Frequency
    dependencies: tuple[str, ...]
    provides: tuple[str, ...]
    timeout_s: float
    retries: int
    skip_when_upstream_unchanged: bool
    settings: Mapping[str, Any]
    groups: frozenset[str] = frozenset()
    source: str | None = None  # where a built-in fetches from, as plan shows it
    #: ``export``: files written after each publish (``interlock.kit.export``); None: off.
    export: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """``runtime_settings`` with defaults applied and paths resolved."""

    max_concurrent: int
    global_timeout_s: float
    default_timeout_s: float
    timezone: ZoneInfo
    state_dir: Path
    data_dir: Path
    retry_backoff_s: float
    retry_backoff_max_s: float
    history_retention_days: float = 90.0
    worker_stop_grace_s: float = 10.0
    #: With a shared state store: how soon a standby takes over from a dead leader.
    failover_s: float = 15.0
    state_store: StateStoreSpec = field(default_factory=lambda: StateStoreSpec())


@dataclass(frozen=True)
class StateStoreSpec:
    """``runtime_settings.state_store``: which store keeps the state.

    ``sqlite`` is ``state.sqlite`` in ``state_dir``; ``postgresql`` a database several
    daemons share, reached by ``dsn`` (a secret: never in a repr, a log or status).
    """

    kind: str = "sqlite"
    dsn: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole validated configuration."""

    source: str
    components: Mapping[str, ComponentSpec]  # in topological order
    runtime: Runtime
    parallel_groups: Mapping[str, frozenset[str]]
    overrides: Overrides
    change_detection: Mapping[str, Any] = field(default_factory=dict)
    data_quality: Mapping[str, Any] = field(default_factory=dict)
    quota: Mapping[str, Any] = field(default_factory=dict)
    monitoring: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # valid but unwise (a literal secret): check-config says so

    @property
    def grouping(self) -> bool:
        """Whether parallel groups restrict overlap at all."""
        return bool(self.parallel_groups)

    def with_overrides(self, cli: Mapping[str, bool | None]) -> Config:
        """A copy with CLI override flags applied on top of the file's."""
        return replace(self, overrides=self.overrides.merged(cli))

    def with_dirs(self, state_dir: Path, data_dir: Path) -> Config:
        """A copy whose state and data live elsewhere (the demo, tests)."""
        return replace(self, runtime=replace(self.runtime, state_dir=state_dir, data_dir=data_dir))


def config_source(
    env: Mapping[str, str] | None = None, *, daemon: bool = False
) -> tuple[Path, str]:
    """The config file to read when none is named, and where that choice came from.

    $INTERLOCK_CONFIG, else ``orchestration.json`` in $CONFIGURATION_DIRECTORY (systemd's
    ConfigurationDirectory=), else /etc/interlock/orchestration.json; the CLI, and only
    the CLI (``daemon=False``), falls back to ./config/orchestration.json when /etc has
    none: a daemon must not serve whatever config its working directory happens to hold.
    """
    env = os.environ if env is None else env
    if env.get("INTERLOCK_CONFIG"):
        return Path(env["INTERLOCK_CONFIG"]), "$INTERLOCK_CONFIG"
    confdir = env.get("CONFIGURATION_DIRECTORY", "").split(":")[0]
    if confdir:
        return Path(confdir) / DEFAULT_PATHS[0].name, "$CONFIGURATION_DIRECTORY"
    system, local = DEFAULT_PATHS
    if daemon or system.exists():
        return system, "the system default"
    return local, "the current directory (a fallback of the CLI; serve never uses it)"


def default_config_path(env: Mapping[str, str] | None = None, *, daemon: bool = False) -> Path:
    """The config file to read when none is named (:func:`config_source`)."""
    return config_source(env, daemon=daemon)[0]
