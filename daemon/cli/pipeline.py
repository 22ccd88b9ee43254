"""The pipeline's commands: ``serve``, ``run``, ``plan`` and ``check-config``.

``plan`` (and ``run --dry-run``) asks a daemon serving the same state when there is
one, else computes the plan from the state database opened read-only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interlock.cli import admin as cliadmin
from interlock.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    add_common_options,
    add_log_options,
    add_socket_option,
    load_args_config,
    print_table,
)
from interlock.config.model import OVERRIDE_FLAGS, Config, config_source, default_config_path
from interlock.errors import AdminError


def add_parsers(sub: Any) -> None:
    """Add serve, run, plan and check-config to the CLI's subparsers."""
    p = sub.add_parser("serve", help="run as a daemon: start components as they fall due")
    add_common_options(p, overrides=True)
    p.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds running components get to finish on SIGTERM (default 30)",
    )
    add_socket_option(p)

    p = sub.add_parser("run", help="run what is due (or the named components) once and exit")
    add_common_options(p, overrides=True)
    p.add_argument(
        "--once",
        action="store_true",
        default=True,
        help="run once and exit (the only mode; accepted for clarity)",
    )
    p.add_argument("components", nargs="*", metavar="COMPONENT")
    p.add_argument(
        "--with-deps", action="store_true", help="also run what the named components depend on"
    )

    p = sub.add_parser("plan", help="show what would run now and why, touching nothing")
    add_common_options(p, overrides=True)
    p.add_argument("components", nargs="*", metavar="COMPONENT")
    p.add_argument("--with-deps", action="store_true")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_socket_option(p)

    p = sub.add_parser("check-config", help="validate a config file (exit 0 valid, 2 invalid)")
    p.add_argument("file", type=Path, nargs="?", default=None)
    p.add_argument("--config", type=Path, default=None, help="the same as FILE")
    add_log_options(p)


def cmd_check_config(args: argparse.Namespace) -> int:
    from interlock.config.loader import load_config

    path, source = args.file or args.config, "the command line"
    if path is None:
        path, source = config_source()
    config = load_config(path)
    disabled = [s for s in config.components.values() if not s.enabled]
    print(f"{path}: valid ({len(config.components)} components)")
    print(f"  config from {source}")
    for spec in disabled:
        print(f"  note: {spec.name!r} is disabled: {spec.disabled_reason}")
    for warning in config.warnings:
        print(f"  warning: {warning}")
    return EXIT_OK


async def _plan(config: Config, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The plan, computed from the state database opened read-only: nothing is written."""
    from interlock.core.planning import plan_row
    from interlock.core.scheduler import Scheduler
    from interlock.events import EventBus
    from interlock.kit.quota import META_KEY, QuotaGuard, usage_from_json
    from interlock.store.abc import PAUSED_KEY
    from interlock.store.factory import state_reader
    from interlock.store.lock import StateLock

    live = StateLock(config.runtime.state_dir).held_elsewhere()
    async with state_reader(config.runtime, live=live) as reader:
        states = await reader.component_states()
        paused = await reader.get_meta(PAUSED_KEY) or []
        stored_quota = await reader.get_meta(META_KEY)
    # The day's saved counters, so plan foresees quota_exhausted (nothing is written).
    quota = QuotaGuard(config.quota, config.runtime.timezone)
    if isinstance(stored_quota, dict):
        quota.usage = usage_from_json(stored_quota.get("day"))
    scheduler = Scheduler(config, EventBus(), states, services={"quota": quota})
    # Pauses saved by an operator hold without a daemon too.
    scheduler.paused.update(n for n in paused if n in config.components)
    decisions = scheduler.plan(names=args.components or None, with_deps=args.with_deps)
    return [plan_row(d, config) for d in decisions]


def cmd_plan(args: argparse.Namespace) -> int:
    config = load_args_config(args)
    client = cliadmin.daemon_serving(args, config)
    try:
        if client is not None:  # the daemon's live view: paused, running, its config
            rows = client.request(
                "plan", components=args.components or None, with_deps=args.with_deps
            )
        else:
            import asyncio  # here, not at the top: --help and status stay quick

            rows = asyncio.run(_plan(config, args))
    except AdminError as exc:
        return cliadmin.fail(exc, args)
    except KeyError as exc:
        print(f"interlock: {exc.args[0]}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(
            [
                (
                    r["component"],
                    "run" if r["run"] else "skip",
                    r["reason"] or "",
                    r["detail"],
                    _change_column(r.get("change_detection")),
                )
                for r in rows
            ],
            ["component", "action", "reason", "why", "change detection"],
        )
        sources = [(r["component"], r["source"]) for r in rows if r.get("source")]
        if sources:
            print("\nsources:")
            print_table(sources, ["component", "source"])
    return EXIT_OK


def _change_column(change: dict[str, Any] | None) -> str:
    """The methods on, and which one found the last run unchanged."""
    if not change:
        return ""
    methods = " ".join(change["methods"]) or "off"
    by = change.get("decided_by")
    return f"{methods}; last unchanged by {by}" if by else methods


async def _run(config: Config, args: argparse.Namespace) -> int:
    from interlock.service.app import Orchestrator

    async with Orchestrator(config) as orch:
        try:
            result = await orch.scheduler.run_once(
                args.components or None, with_deps=args.with_deps, trigger="cli"
            )
        except KeyError as exc:
            print(f"interlock: {exc.args[0]}", file=sys.stderr)
            return EXIT_CONFIG
    return EXIT_FAILED if result.failed else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    config = load_args_config(args)
    disabled = [
        config.components[n]
        for n in args.components or ()
        if n in config.components and not config.components[n].enabled
    ]
    if disabled:
        # Named but unable to run: saying nothing and exiting 0 would look like success.
        for spec in disabled:
            print(f"interlock: {spec.name!r} is disabled: {spec.disabled_reason}", file=sys.stderr)
        return EXIT_FAILED
    if config.overrides.dry_run:
        # A dry run is the plan: it touches no network and writes no data.
        return cmd_plan(argparse.Namespace(**{**vars(args), "json": False}))
    import asyncio  # here, not at the top: --help and status stay quick

    return asyncio.run(_run(config, args))


def cmd_serve(args: argparse.Namespace) -> int:
    from interlock.service.serve import serve

    return serve(
        args.config or default_config_path(daemon=True),
        overrides={f: getattr(args, f, None) for f in OVERRIDE_FLAGS},
        grace_s=args.grace,
        socket_path=args.socket,
    )


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": cmd_serve,
    "run": cmd_run,
    "plan": cmd_plan,
    "check-config": cmd_check_config,
}
