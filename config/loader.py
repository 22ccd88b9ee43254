"""Load, validate and resolve ``orchestration.json`` into the immutable :mod:`.model`.

Every problem is collected and reported together (JSON path, bad value, what is
allowed); nothing is silently ignored. Secrets are resolved here; a missing one
disables only the component that needs it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from interlock import graph, secrets
from interlock.cadence import parse_frequency
from interlock.config import alerting as alerting_forms
from interlock.config import change as change_settings
from interlock.config import dashboard as dashboard_settings
from interlock.config import metrics as metrics_settings
from interlock.config import notice_rules
from interlock.config.builtins import builtin_settings, describe_source
from interlock.config.durations import duration_seconds
from interlock.config.model import ComponentSpec, Config, Overrides, Runtime, StateStoreSpec
from interlock.config.registry import component_class_path, load_component_class
from interlock.config.schema import did_you_mean, schema_problems, settings_problems
from interlock.errors import ComponentLoadError, ConfigError


def shipped_config(name: str) -> Path:
    """Path of a config shipped with the package (``demo.json``, ``orchestration.json``)."""
    return Path(str(resources.files("interlock.config").joinpath(name)))


def read_json(path: Path) -> Any:
    """Read a JSON file, turning every failure into a one-line ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(path),
            [f"file not found: {str(path)!r}; pass --config FILE or set INTERLOCK_CONFIG"],
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read {str(path)!r}: {exc}"]) from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), [_json_problem(exc)]) from None
    except ValueError as exc:  # NaN / Infinity, or an integer of thousands of digits
        found = _CONSTANT.search(text)
        near = f" near line {text.count(chr(10), 0, found.start()) + 1}" if found else ""
        raise ConfigError(str(path), [f"invalid JSON{near}: {exc}"]) from None


def _json_problem(exc: json.JSONDecodeError) -> str:
    """Where and why a config is not JSON. The commonest slip, a trailing comma, gets our
    own words and the comma's place (Python's wording and position for it vary)."""
    text, pos = exc.doc, exc.pos
    comma = pos if text[pos : pos + 1] == "," else len(text[:pos].rstrip()) - 1
    after = text[comma + 1 :].lstrip()[:1]
    if comma >= 0 and text[comma] == "," and after in ("}", "]"):
        line = text.count("\n", 0, comma) + 1
        column = comma - text.rfind("\n", 0, comma)
        return (
            f"invalid JSON at line {line} column {column}: a trailing comma before "
            f"{after!r}; JSON allows none, remove it"
        )
    return f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"


_CONSTANT = re.compile(r'(?<![\w"])(?:-?Infinity|NaN)(?![\w"])')


def _refuse_constant(name: str) -> Any:
    # Python's json reads these, but they are not JSON, and NaN passes every bound.
    raise ValueError(f"{name} is not a JSON number; write a finite number")


def parse_config(doc: Any, source: str, env: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed document and build a :class:`Config`, or raise ConfigError.

    Schema problems and the checks that need the whole picture (dependencies,
    cycles, groups, timeouts) are reported together in one error.
    """
    problems = schema_problems(doc)
    try:
        config = _build(doc, source, env)
    except ConfigError as exc:
        extra = [p for p in exc.problems if p not in problems]
        raise ConfigError(source, problems + extra) from None
    except (TypeError, AttributeError, KeyError, ValueError, OverflowError):
        # The document's shape is wrong (or a number too big for arithmetic: over the
        # schema's maxima); the schema problems already say how.
        if not problems:
            raise
        raise ConfigError(source, problems) from None
    if problems:
        raise ConfigError(source, problems)
    return config


def _build(doc: Any, source: str, env: Mapping[str, str] | None) -> Config:
    if not isinstance(doc, dict) or not isinstance(doc.get("components"), dict):
        raise ConfigError(source, [])
    base = Path(source).resolve().parent if source and not source.startswith("<") else Path.cwd()
    # Parts of the wrong type were reported by the schema; read them as empty so the
    # checks below still find every other problem.
    rt = _obj(doc.get("runtime_settings"))
    problems = []
    try:
        tz = ZoneInfo(rt.get("timezone", "Australia/Melbourne"))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            f"$.runtime_settings.timezone: {rt.get('timezone')!r} is not a known IANA time zone; "
            "use a name like 'Australia/Melbourne'"
        )
        tz = ZoneInfo("UTC")
    # systemd's StateDirectory= (first entry) stands in for the fixed default.
    default_state = (env if env is not None else os.environ).get("STATE_DIRECTORY", "")
    default_state = default_state.split(":")[0] or "/var/lib/interlock"
    runtime = Runtime(
        max_concurrent=rt.get("max_concurrent_components", 4),
        global_timeout_s=rt.get("global_timeout_minutes", 120) * 60.0,
        default_timeout_s=rt.get("default_component_timeout_minutes", 30) * 60.0,
        timezone=tz,
        state_dir=base / rt.get("state_dir", default_state),
        data_dir=base / rt.get("data_dir", f"{default_state}/data"),
        retry_backoff_s=rt.get("retry_backoff_seconds", 2),
        retry_backoff_max_s=rt.get("retry_backoff_max_seconds", 300),
        history_retention_days=rt.get("history_retention_days", 90),
        worker_stop_grace_s=rt.get("worker_stop_grace_seconds", 10),
        failover_s=rt.get("failover_seconds", 15),
    )
    if runtime.default_timeout_s > runtime.global_timeout_s:
        problems.append(
            "$.runtime_settings.default_component_timeout_minutes: "
            f"{runtime.default_timeout_s / 60:g} is above global_timeout_minutes "
            f"{runtime.global_timeout_s / 60:g}; lower it or raise the global timeout"
        )

    raw_components: dict[str, Any] = {
        n: _obj(r) | {"dependencies": _strings(_obj(r).get("dependencies"))}
        for n, r in doc["components"].items()
    }
    names = list(raw_components)
    groups_raw = _groups(_obj(doc.get("dependency_management")).get("parallel_groups"))
    for group, members in groups_raw.items():
        for member in members:
            if member not in raw_components:
                problems.append(
                    f"$.dependency_management.parallel_groups{_group_path(group)}: unknown "
                    f"component {member!r}{did_you_mean(member, names)}; known: {', '.join(names)}"
                )
    member_of = graph.groups_by_component(groups_raw)
    for name, gs in member_of.items():
        if len(gs) > 1:
            problems.append(
                f"$.dependency_management.parallel_groups: component {name!r} is in more than "
                f"one group ({', '.join(sorted(gs))}); put it in exactly one"
            )

    specs: dict[str, ComponentSpec] = {}
    for name, raw in raw_components.items():
        where = f"$.components.{name}"
        for dep in raw.get("dependencies", []):
            if dep not in raw_components:
                problems.append(
                    f"{where}.dependencies: component {name!r} depends on unknown component "
                    f"{dep!r}{did_you_mean(dep, names)}; known: {', '.join(names)}"
                )
            elif dep == name:
                problems.append(f"{where}.dependencies: component {name!r} depends on itself")
        if not isinstance(raw, dict) or "frequency" not in raw:
            continue  # the schema problems already say what is missing
        try:
            frequency = parse_frequency(raw["frequency"])
        except ValueError as exc:
            problems.append(f"{where}.frequency: {exc}")
            continue
        timeout_s = raw.get("timeout_minutes", runtime.default_timeout_s / 60) * 60.0
        if timeout_s > runtime.global_timeout_s:
            problems.append(
                f"{where}.timeout_minutes: {timeout_s / 60:g} is above the global timeout "
                f"({runtime.global_timeout_s / 60:g} minutes); lower it or raise "
                "runtime_settings.global_timeout_minutes"
            )
        enabled = raw.get("enabled", True)
        reason = None if enabled else "disabled in the configuration"
        class_path = raw.get("class") or component_class_path(name)
        raw_settings = raw.get("settings")
        if raw_settings is None and not raw.get("class"):
            # A built-in with no settings fetches from its real production source.
            raw_settings = builtin_settings(name)
        raw_settings = raw_settings if raw_settings is not None else {}
        settings, missing = secrets.resolve(raw_settings, env)
        if class_path is None:
            problems.append(
                f"{where}: {name!r} is not a built-in or installed component and has no "
                'class; set "class": "package.module:ClassName" (or install the package '
                "that offers it as an 'interlock.components' entry point)"
            )
        else:
            try:
                cls = load_component_class(class_path)
            except ComponentLoadError as exc:
                if raw.get("class"):
                    problems.append(f"{where}.class: {exc}")
                elif enabled:
                    enabled, reason = False, str(exc)
            else:
                # Resolved values are what the component gets; with a secret missing the
                # component is disabled anyway, so only its keys are judged.
                problems.extend(settings_problems(cls, where, settings, keys_only=bool(missing)))
        if enabled and missing:
            enabled, reason = False, "missing secret: " + "; ".join(missing)
        specs[name] = ComponentSpec(
            name=name,
            class_path=class_path,
            enabled=enabled,
            disabled_reason=reason,
            frequency=frequency,
            dependencies=tuple(raw.get("dependencies", [])),
            provides=tuple(raw.get("provides", [])),
            timeout_s=timeout_s,
            retries=raw.get("retries", 2),
            skip_when_upstream_unchanged=raw.get("skip_when_upstream_unchanged", True),
            settings=settings,
            groups=member_of.get(name, frozenset()),
            source=describe_source(class_path, _obj(raw_settings)),
            export=raw.get("export"),
        )

    # Self-dependencies were reported above; leave them out of the cycle search.
    deps = {
        n: [d for d in r.get("dependencies", []) if d in raw_components and d != n]
        for n, r in raw_components.items()
    }
    cycle = graph.find_cycle(deps)
    if cycle:
        problems.append(f"$.components: dependency cycle: {' -> '.join(cycle)}")
    retry = _obj(doc.get("quota_management")).get("retry_after_quota")
    if isinstance(retry, str):  # numbers and booleans are the schema's to judge
        try:
            duration_seconds(retry)
        except ValueError as exc:
            problems.append(f"$.quota_management.retry_after_quota: {exc}")
    if len(specs) == len(raw_components):  # else an unbuilt component's endpoints are unknown
        problems.extend(_priority_problems(_obj(doc.get("quota_management")), specs))
    problems.extend(change_settings.problems(doc.get("change_detection")))
    problems.extend(notice_rules.problems(doc.get("data_quality"), raw_components))
    problems.extend(dashboard_settings.problems(doc.get("performance_monitoring")))
    problems.extend(metrics_settings.problems(doc.get("performance_monitoring")))
    warnings: list[str] = []
    monitoring = _monitoring(
        _obj(doc.get("performance_monitoring")), env, names, problems, warnings
    )
    store = _state_store(_obj(rt.get("state_store")), env, problems, warnings)
    if problems:
        raise ConfigError(source, problems)
    ordered = {name: specs[name] for name in graph.topological_order(deps)}
    return Config(
        source=source,
        components=ordered,
        runtime=replace(runtime, state_store=store),
        parallel_groups={g: frozenset(m) for g, m in groups_raw.items()},
        overrides=Overrides(**doc.get("override_settings", {})),
        change_detection=doc.get("change_detection", {}),
        data_quality=doc.get("data_quality", {}),
        quota=doc.get("quota_management", {}),
        monitoring=monitoring,
        warnings=tuple(warnings),
    )


def _state_store(
    section: dict[str, Any],
    env: Mapping[str, str] | None,
    problems: list[str],
    warnings: list[str],
) -> StateStoreSpec:
    """``runtime_settings.state_store``, its DSN resolved (a secret: never echoed)."""
    pg = section.get("postgresql")
    if not isinstance(pg, dict) or not isinstance(pg.get("dsn"), str):
        return StateStoreSpec()  # SQLite (a wrong shape was reported by the schema)
    path = "$.runtime_settings.state_store.postgresql.dsn"
    raw = pg["dsn"]
    if not re.fullmatch(r"\$\{[^}]+\}", raw) and re.search(r":[^/@:]*[^/@]@|password=", raw):
        warnings.append(
            f"{path}: holds a password literally; keep it in a credential "
            "('${credential:pg_dsn}') so it is not in the config file"
        )
    dsn, missing = secrets.resolve(raw, env)
    if missing:
        problems.append(f"{path}: " + "; ".join(missing))
        return StateStoreSpec()
    secrets.remember(dsn)  # a literal DSN is masked too: it may hold a password
    return StateStoreSpec(kind="postgresql", dsn=dsn)


def _monitoring(
    section: dict[str, Any],
    env: Mapping[str, str] | None,
    names: list[str],
    problems: list[str],
    warnings: list[str],
) -> dict[str, Any]:
    """``performance_monitoring`` with alerting secrets resolved.

    A channel whose secret is missing is disabled with the reason (the daemon still
    starts); thresholds for unknown components are reported.
    """
    for name in _obj(section.get("component_thresholds")):
        if name not in names:
            problems.append(
                f"$.performance_monitoring.component_thresholds: unknown component "
                f"{name!r}{did_you_mean(name, names)}; known: {', '.join(names)}"
            )
    alerting = _obj(section.get("alerting"))
    if not alerting:
        return section
    environ = env if env is not None else os.environ
    alerting = alerting_forms.documented_forms(alerting, environ, problems, warnings)
    resolved = dict(alerting)
    for channel in ("email", "slack"):
        raw = alerting.get(channel)
        if not isinstance(raw, dict):
            continue
        key = "password" if channel == "email" else "webhook_url"
        literal_ok = channel == "slack" and alerting.get("literal_slack_webhook")
        if (
            isinstance(raw.get(key), str)
            and not literal_ok
            and not re.fullmatch(r"\$\{[^}]+\}", raw[key])
        ):
            # Never echo it: it is probably the secret itself.
            problems.append(
                f"$.performance_monitoring.alerting.{channel}.{key}: must be a placeholder such "
                f"as '${{credential:{channel}_{key}}}' or '${{ENV_VAR}}', not the secret itself"
            )
            continue
        value, missing = secrets.resolve(raw, env)
        if missing and value.get("enabled", True):
            reason = "missing secret: " + "; ".join(missing)
            value = {**raw, "enabled": False, "disabled_reason": reason}
        resolved[channel] = value
    return {**section, "alerting": resolved}


def _priority_problems(quota: dict[str, Any], specs: Mapping[str, ComponentSpec]) -> list[str]:
    """A priority endpoint must name an endpoint some component configures."""
    known = sorted(
        {e for s in specs.values() for e in _obj(s.settings.get("endpoints")) if isinstance(e, str)}
    )
    out = []
    for i, name in enumerate(_strings(quota.get("priority_endpoints"))):
        if name not in known:
            out.append(
                f"$.quota_management.priority_endpoints[{i}]: {name!r} is not a configured "
                f"endpoint{did_you_mean(name, known)}; known: {', '.join(known) or 'none'}"
            )
    return out


def _groups(value: Any) -> dict[str, list[str]]:
    """``parallel_groups`` as ``{name: members}``; a list of lists names each by position."""
    if isinstance(value, list):
        return {f"[{i}]": _strings(m) for i, m in enumerate(value)}
    return {g: _strings(m) for g, m in _obj(value).items()}


def _group_path(group: str) -> str:
    return group if group.startswith("[") else f".{group}"


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and resolve a configuration file."""
    return parse_config(read_json(path), str(path), env)
