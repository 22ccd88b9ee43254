"""The CLI's admin subcommands: status, trigger, pause, resume, cancel, reload, watch.

They talk to a running daemon over its admin socket (``--socket``, else the
config's ``runtime_settings.admin_socket``, else the default); ``plan``,
``history`` and ``status`` use the socket when a daemon serves the config's state
and read the state database otherwise. Tables for people, JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from interlock.cli import offline, quick
from interlock.cli.adminclient import AdminClient
from interlock.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_NO_DAEMON,
    EXIT_OK,
    PrintTable,
    add_common_options,
    add_socket_option,
    lacks_state_database,
    load_args_config,
    print_table,
    start_logging,
)
from interlock.config.admin_socket import resolve_socket
from interlock.config.model import Config, default_config_path
from interlock.errors import AdminError, AdminRequestError, DaemonNotListeningError

EXIT_USAGE = EXIT_CONFIG
#: Refusals that mean the request itself was wrong (exit 2, like other usage errors).
_USAGE_CODES = frozenset({"unknown_component", "invalid_argument", "unknown_command"})
RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def add_parsers(sub: Any) -> None:
    """Add the admin subcommands to the CLI's subparsers."""

    def parser(name: str, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
        add_common_options(p)
        add_socket_option(p)
        p.add_argument("--json", action="store_true", help="print the daemon's JSON")
        p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a reply")
        return p

    p = parser("status", "the daemon and each component: state, last outcome, next due, quota")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="read this state directory (no config: last outcomes and pauses, no plan)",
    )
    p = parser("trigger", "start a run of a component now (in a running daemon)")
    p.add_argument("component", metavar="COMPONENT")
    p.add_argument("--with-deps", action="store_true", help="also run what it depends on")
    p.add_argument("--force", action="store_true", help="run it even if paused or unchanged")
    p = parser("pause", "keep a component out of scheduled runs (survives restarts)")
    p.add_argument("component", metavar="COMPONENT")
    p = parser("resume", "schedule a paused component again")
    p.add_argument("component", metavar="COMPONENT")
    p = parser("cancel", "cancel a running component, or a whole run by its run id")
    p.add_argument("target", metavar="COMPONENT|RUN_ID")
    parser("reload", "make the daemon load its config file again (like SIGHUP)")
    p = parser("watch", "print the daemon's events as they happen, until interrupted")
    p.add_argument("--events", default=None, help="comma-separated event names to show")


def client_for(args: argparse.Namespace) -> AdminClient:
    """The client for the socket these arguments name."""
    config_path = getattr(args, "config", None) or default_config_path()
    path = resolve_socket(getattr(args, "socket", None), config_path)
    return AdminClient(path, timeout_s=getattr(args, "timeout", 30.0))


def daemon_serving(args: argparse.Namespace, config: Config) -> AdminClient | None:
    """A client when a daemon serves ``config``'s state (or ``--socket`` was given), else None."""
    from interlock.store.lock import StateLock

    client = client_for(args)
    if getattr(args, "socket", None) is not None:
        return client  # asked for explicitly: a missing daemon is an error, not a fallback
    try:
        live = StateLock(config.runtime.state_dir).held_elsewhere()
    except OSError:
        live = True  # the lock is not readable by this user; the socket will tell
    return client if live and client.listening() else None


def fail(exc: AdminError, args: argparse.Namespace) -> int:
    """Report a failed admin call; its exit code."""
    if isinstance(exc, DaemonNotListeningError):
        print(f"interlock: {exc}", file=sys.stderr)
        return EXIT_NO_DAEMON
    if isinstance(exc, AdminRequestError):
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": {"code": exc.code, "message": str(exc)}}))
        print(f"interlock: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.code in _USAGE_CODES else EXIT_FAILED
    print(f"interlock: {exc}", file=sys.stderr)
    return EXIT_FAILED


def call(args: argparse.Namespace, command: str, **request: Any) -> tuple[int, Any]:
    """Send one request; (exit code, result). The failure is already reported."""
    try:
        return EXIT_OK, client_for(args).request(command, **request)
    except AdminError as exc:
        return fail(exc, args), None


def _short(value: str | None) -> str:
    return (value or "")[:19].replace("T", " ")


def print_status(result: dict[str, Any], table: PrintTable) -> None:
    """The status response for people."""
    d = result.get("daemon") or {}
    if d:
        print(
            f"interlock pid {d['pid']} {d['state']} since {_short(d['started_at'])}: {d['summary']}"
        )
        print(f"config {d['config']}  socket {d['socket']}")
        last = d.get("last_reload")
        if last and not last["applied"]:
            print(
                f"last reload ({last['trigger']}, {_short(last['at'])}) REJECTED, "
                f"the config in use is kept: {last['error']}"
            )
        elif last and (last.get("failed") or last.get("restart_needed")):
            from interlock.cli.statustext import reload_notes

            print(f"last reload ({last['trigger']}, {_short(last['at'])}):")
            for line in reload_notes({**last, "changed": [], "rebuilt": []}):
                print("  " + line)
    else:
        print("no daemon is running; showing the state database")
    rows = [
        (
            c["component"],
            c["state"] + (f" {c['stopping_s']:.0f}s" if c.get("stopping_s") is not None else ""),
            c["last_status"] or "never run",
            (c["last_reason"] or c["last_error"] or "")[:50],
            _short(c["last_finished_at"] or c["last_started_at"]),
            _short(c["next_due"]) or (c["disabled_reason"] or "")[:40],
        )
        for c in result["components"]
    ]
    print()
    table(rows, ["component", "state", "last", "reason", "last run", "next due"])
    from interlock.cli.statustext import join_lines

    join_lines(result["components"], table)
    quota = result.get("quota")
    if quota:
        from interlock.cli.statustext import quota_lines

        quota_lines(quota, table)


def cmd_status(args: argparse.Namespace) -> int:
    """``interlock status``: from the daemon, else from the state database."""
    if args.state_dir is not None:
        if lacks_state_database(args.state_dir):
            return EXIT_CONFIG
        start_logging(args)
        result = offline.state_dir_status(args.state_dir)
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        else:
            print_status(result, print_table)
        return EXIT_OK
    if args.socket is not None:  # the daemon's view; no need for the config to load here
        client: AdminClient | None = client_for(args)
    else:
        client = quick.daemon_for(args)[0]  # a daemon answers without the config loading here
    if client is None:
        start_logging(args)
        config = load_args_config(args)
        client = daemon_serving(args, config)
    if client is None:
        result = offline.offline_status(config)
    else:
        try:
            result = client.request("status")
        except AdminError as exc:
            return fail(exc, args)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_status(result, print_table)
    return EXIT_OK


def reply(args: argparse.Namespace, code: int, result: Any, text: Callable[[Any], str]) -> int:
    """Print a successful admin reply: the daemon's JSON with --json, else ``text(result)``."""
    if code == EXIT_OK:
        print(json.dumps(result, indent=2) if args.json else text(result))
    return code


def cmd_trigger(args: argparse.Namespace) -> int:
    code, result = call(
        args, "trigger", component=args.component, with_deps=args.with_deps, force=args.force
    )
    return reply(
        args, code, result, lambda r: f"started run {r['run_id']}: {', '.join(r['components'])}"
    )


def _pause(args: argparse.Namespace, command: str) -> int:
    code, result = call(args, command, component=args.component)
    verb = "paused" if command == "pause" else "resumed"
    unchanged = " (it was already paused)" if command == "pause" else " (it was not paused)"

    def text(r: Any) -> str:
        note = "" if r["changed"] else unchanged
        return f"{verb} {args.component}{note}; paused now: {', '.join(r['paused']) or 'none'}"

    return reply(args, code, result, text)


def cmd_pause(args: argparse.Namespace) -> int:
    return _pause(args, "pause")


def cmd_resume(args: argparse.Namespace) -> int:
    return _pause(args, "resume")


def cmd_cancel(args: argparse.Namespace) -> int:
    if RUN_ID.match(args.target):
        code, result = call(args, "cancel", run_id=args.target)
    else:
        code, result = call(args, "cancel", component=args.target)
    return reply(
        args, code, result, lambda r: f"cancelling {args.target}; it will be recorded as cancelled"
    )


def cmd_reload(args: argparse.Namespace) -> int:
    code, result = call(args, "reload")
    from interlock.cli.statustext import reload_text

    return reply(args, code, result, reload_text)


_EVENT_TIMES = ("at", "started_at")


def _in_zone(e: dict[str, Any], tz: tzinfo | None) -> dict[str, Any]:
    """The event with its times in the daemon's configured zone (ISO 8601, offset)."""
    if tz is None:
        return e
    for key in _EVENT_TIMES:
        if isinstance(e.get(key), str):
            with contextlib.suppress(ValueError):
                e[key] = datetime.fromisoformat(e[key]).astimezone(tz).isoformat()
    return e


def _daemon_zone(client: AdminClient) -> tzinfo | None:
    """The zone the daemon reports its times in (None: an older daemon, keep its times)."""
    from zoneinfo import ZoneInfo

    with contextlib.suppress(AdminError, ValueError, KeyError, TypeError):
        return ZoneInfo(client.request("status")["daemon"]["timezone"])
    return None


def _event_line(e: dict[str, Any]) -> str:
    parts = [_short(e.get("at"))[11:], e.get("event", "?")]
    for key in ("component", "run_id", "status", "reason", "detail", "error"):
        if e.get(key):
            parts.append(f"{key}={e[key]}")
    return "  ".join(str(p) for p in parts)


def cmd_watch(args: argparse.Namespace) -> int:
    events = [e.strip() for e in args.events.split(",") if e.strip()] if args.events else None
    try:
        client = client_for(args)
        tz = _daemon_zone(client)
        for event in client.watch(events):
            event = _in_zone(event, tz)
            print(json.dumps(event) if args.json else _event_line(event), flush=True)
    except AdminError as exc:
        return fail(exc, args)
    except KeyboardInterrupt:
        return EXIT_OK
    print("interlock: the daemon closed the stream (it is stopping)", file=sys.stderr)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "status": cmd_status,
    "trigger": cmd_trigger,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "cancel": cmd_cancel,
    "reload": cmd_reload,
    "watch": cmd_watch,
}
