"""The ``interlock`` command line: serve, run, plan, history, check-config, demo.

User errors (bad config, unknown component) print a clear message and exit 2;
they never show a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interlock.cli import admin as cliadmin
from interlock.config.loader import load_config
from interlock.config.model import OVERRIDE_FLAGS, Config, default_config_path
from interlock.errors import AdminError, ConfigError, InterlockError
from interlock.observe import logs, report

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _common(p: argparse.ArgumentParser, *, overrides: bool = False) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config file (default: $INTERLOCK_CONFIG, else "
        "/etc/interlock/orchestration.json, else ./config/orchestration.json)",
    )
    p.add_argument("--log-level", choices=sorted(logs.LEVELS), default="info")
    p.add_argument(
        "--log-format",
        choices=["json", "console", "auto"],
        default="auto",
        help="json lines (default when not a TTY) or a console view",
    )
    if overrides:
        for flag in OVERRIDE_FLAGS:
            p.add_argument(
                "--" + flag.replace("_", "-"),
                dest=flag,
                action="store_true",
                default=None,
                help=f"override_settings.{flag} for this invocation",
            )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="interlock",
        description="Keeps Victoria's public-transport open data fresh, correct and cheap "
        "to fetch.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run as a daemon: start components as they fall due")
    _common(p, overrides=True)
    p.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds running components get to finish on SIGTERM (default 30)",
    )
    cliadmin.add_socket_option(p)

    p = sub.add_parser("run", help="run what is due (or the named components) once and exit")
    _common(p, overrides=True)
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
    _common(p, overrides=True)
    p.add_argument("components", nargs="*", metavar="COMPONENT")
    p.add_argument("--with-deps", action="store_true")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    cliadmin.add_socket_option(p)

    p = sub.add_parser("history", help="recent component runs, newest first")
    _common(p)
    p.add_argument("--component", default=None)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="read this state directory instead of the config's",
    )
    p.add_argument(
        "--timezone",
        default="Australia/Melbourne",
        help="time zone for --state-dir output (default Australia/Melbourne)",
    )
    cliadmin.add_socket_option(p)

    report.add_parser(sub, _common)

    p = sub.add_parser("check-config", help="validate a config file (exit 0 valid, 2 invalid)")
    p.add_argument("file", type=Path, nargs="?", default=None)
    p.add_argument("--config", type=Path, default=None, help="the same as FILE")
    p.add_argument("--log-level", choices=sorted(logs.LEVELS), default="info")
    p.add_argument("--log-format", choices=["json", "console", "auto"], default="auto")

    p = sub.add_parser("demo", help="run the whole pipeline against local stand-in sources")
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="keep state and data here (default: a temporary directory)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a demo config to run instead of the shipped config/demo.json",
    )
    p.add_argument("--log-level", choices=sorted(logs.LEVELS), default="warning")
    p.add_argument("--log-format", choices=["json", "console", "auto"], default="console")
    cliadmin.add_parsers(sub, _common)
    return parser


def _load(args: argparse.Namespace) -> Config:
    path = args.config or default_config_path()
    config = load_config(path)
    if any(hasattr(args, f) for f in OVERRIDE_FLAGS):
        config = config.with_overrides({f: getattr(args, f, None) for f in OVERRIDE_FLAGS})
    return config


def _print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.file or args.config or default_config_path()
    config = load_config(path)
    disabled = [s for s in config.components.values() if not s.enabled]
    print(f"{path}: valid ({len(config.components)} components)")
    for spec in disabled:
        print(f"  note: {spec.name!r} is disabled: {spec.disabled_reason}")
    return EXIT_OK


async def _plan(config: Config, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The plan, computed from the state database opened read-only: nothing is written."""
    from interlock.core.scheduler import Scheduler
    from interlock.events import EventBus
    from interlock.store.lock import StateLock
    from interlock.store.sqlite import STATE_DB, SqliteStateStore

    state_dir = config.runtime.state_dir
    live = StateLock(state_dir).held_elsewhere()
    states = await SqliteStateStore.read_states(state_dir / STATE_DB, live=live)
    scheduler = Scheduler(config, EventBus(), states)
    decisions = scheduler.plan(names=args.components or None, with_deps=args.with_deps)
    tz = config.runtime.timezone
    out = []
    for d in decisions:
        spec = config.components[d.component]
        out.append(
            {
                "component": d.component,
                "run": d.run,
                "reason": d.reason.value if d.reason else None,
                "detail": d.detail,
                "next_due": d.next_due.astimezone(tz).isoformat() if d.next_due else None,
                "dependencies": list(spec.dependencies),
            }
        )
    return out


def cmd_plan(args: argparse.Namespace) -> int:
    config = _load(args)
    client = cliadmin.daemon_serving(args, config)
    try:
        if client is not None:  # the daemon's live view: paused, running, its config
            rows = client.request(
                "plan", components=args.components or None, with_deps=args.with_deps
            )
        else:
            rows = asyncio.run(_plan(config, args))
    except AdminError as exc:
        return cliadmin.fail(exc, args)
    except KeyError as exc:
        print(f"interlock: {exc.args[0]}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(
            [
                (r["component"], "run" if r["run"] else "skip", r["reason"] or "", r["detail"])
                for r in rows
            ],
            ["component", "action", "reason", "why"],
        )
    return EXIT_OK


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
    config = _load(args)
    if config.overrides.dry_run:
        # A dry run is the plan: it touches no network and writes no data.
        return cmd_plan(argparse.Namespace(**{**vars(args), "json": False}))
    return asyncio.run(_run(config, args))


def cmd_serve(args: argparse.Namespace) -> int:
    from interlock.service.serve import serve

    return serve(
        args.config or default_config_path(),
        overrides={f: getattr(args, f, None) for f in OVERRIDE_FLAGS},
        grace_s=args.grace,
        socket_path=args.socket,
    )


async def _history(state_dir: Path, tz: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    from datetime import UTC, datetime

    from interlock.store.lock import StateLock
    from interlock.store.sqlite import STATE_DB, SqliteStateStore

    db = state_dir / STATE_DB
    if not db.exists():
        return []
    async with SqliteStateStore(db) as store:
        lock = StateLock(state_dir)
        if lock.try_acquire():
            # No daemon is alive: runs it left 'running' were cut short; say so.
            try:
                await store.recover_interrupted(datetime.now(UTC))
            finally:
                lock.release()
        rows = await store.history(component=args.component, limit=args.limit)
    for row in rows:
        for key in ("started_at", "finished_at"):
            if row[key]:
                row[key] = datetime.fromisoformat(row[key]).astimezone(tz).isoformat()
    return rows


def cmd_history(args: argparse.Namespace) -> int:
    if args.state_dir is not None:
        from zoneinfo import ZoneInfo

        state_dir, tz = args.state_dir, ZoneInfo(args.timezone)
    else:
        config = _load(args)
        state_dir, tz = config.runtime.state_dir, config.runtime.timezone
    client = cliadmin.daemon_serving(args, config) if args.state_dir is None else None
    if client is not None:
        try:
            rows = client.request("history", component=args.component, limit=args.limit)
        except AdminError as exc:
            return cliadmin.fail(exc, args)
    else:
        rows = asyncio.run(_history(state_dir, tz, args))
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    table = []
    for r in rows:
        q = r.get("quality") or {}
        issues = f"{q.get('error_count', 0)}E/{q.get('warning_count', 0)}W" if q else ""
        table.append(
            (
                r["started_at"][:19],
                r["component"],
                r["status"],
                r["reason"] or "",
                f"{r['duration_s'] or 0:.2f}s",
                r["records"] or 0,
                issues,
                (r["error"] or "")[:60],
            )
        )
    _print_table(
        table, ["started", "component", "status", "reason", "took", "records", "quality", "error"]
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from interlock.cli.demo import run_demo

    return run_demo(args.dir, args.config)


COMMANDS = {
    "serve": cmd_serve,
    "run": cmd_run,
    "plan": cmd_plan,
    "history": cmd_history,
    "check-config": cmd_check_config,
    "demo": cmd_demo,
    "report": report.cmd_report,
    **cliadmin.COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``interlock`` console script."""
    args = build_parser().parse_args(argv)
    logs.configure(
        args.log_level,
        args.log_format,
        stream=sys.stdout if args.command in ("serve", "run") else sys.stderr,
    )
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"interlock: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except InterlockError as exc:
        print(f"interlock: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
