"""``interlock history``: recent component runs, from the daemon or the state database."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interlock.cli import admin as cliadmin
from interlock.cli import quick
from interlock.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    add_common_options,
    add_socket_option,
    lacks_state_database,
    load_args_config,
    named_zone,
    print_table,
    start_logging,
)
from interlock.errors import AdminError

if TYPE_CHECKING:
    from interlock.config.model import Config


def add_parsers(sub: Any) -> None:
    """Add ``history`` to the CLI's subparsers."""
    p = sub.add_parser("history", help="recent component runs, newest first")
    add_common_options(p)
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
    add_socket_option(p)


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


def _quick_rows(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    """The rows from the daemon or the database without loading the config (None: cannot)."""
    if args.state_dir is not None or args.socket is not None:
        return None
    client, state_dir, zone = quick.daemon_for(args)
    if client is not None:
        return list(client.request("history", component=args.component, limit=args.limit))
    tz = quick.zone(zone) if zone is not None else None
    if state_dir is None or tz is None:
        return None
    return quick.read_history(state_dir, tz, component=args.component, limit=args.limit)


def cmd_history(args: argparse.Namespace) -> int:
    try:
        rows = _quick_rows(args)
    except AdminError as exc:
        return cliadmin.fail(exc, args)
    if rows is None:
        start_logging(args)
        code, rows = _full_rows(args)
        if rows is None:
            return code
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    table = []
    for r in rows:
        q = r.get("quality") or {}
        issues = f"{q.get('error_count', 0)}E/{q.get('warning_count', 0)}W" if q else ""
        table.append(
            (
                r["started_at"][:19].replace("T", " "),
                r["component"],
                r["status"],
                # A failure with no reason of its own carries its error as the reason.
                "" if r["reason"] == r["error"] else r["reason"] or "",
                f"{r['duration_s'] or 0:.2f}s",
                r["records"] or 0,
                issues,
                (r["error"] or "")[:60],
            )
        )
    print_table(
        table, ["started", "component", "status", "reason", "took", "records", "quality", "error"]
    )
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"history": cmd_history}


def _full_rows(args: argparse.Namespace) -> tuple[int, list[dict[str, Any]] | None]:
    """(exit code, rows) with the config loaded and the async store: the full path."""
    import asyncio

    if args.state_dir is not None:
        if lacks_state_database(args.state_dir):
            return EXIT_CONFIG, None
        zone = named_zone(args.timezone)
        if zone is None:
            return EXIT_CONFIG, None
        rows = quick.read_history(args.state_dir, zone, component=args.component, limit=args.limit)
        if rows is not None:
            return EXIT_OK, rows
        return EXIT_OK, asyncio.run(_history(args.state_dir, zone, args))
    config = load_args_config(args)
    client = cliadmin.daemon_serving(args, config)
    if client is not None:
        try:
            return EXIT_OK, client.request("history", component=args.component, limit=args.limit)
        except AdminError as exc:
            return cliadmin.fail(exc, args), None
    from interlock.store.factory import shared

    if shared(config.runtime):  # PostgreSQL: read it; recovery is the leading daemon's
        return EXIT_OK, asyncio.run(_shared_history(config, args))
    return EXIT_OK, asyncio.run(_history(config.runtime.state_dir, config.runtime.timezone, args))


async def _shared_history(config: Config, args: argparse.Namespace) -> list[dict[str, Any]]:
    from datetime import datetime

    from interlock.store.factory import state_reader

    async with state_reader(config.runtime) as reader:
        rows = await reader.history(component=args.component, limit=args.limit)
    for row in rows:
        for key in ("started_at", "finished_at"):
            if row[key]:
                row[key] = datetime.fromisoformat(row[key]).astimezone(config.runtime.timezone)
                row[key] = row[key].isoformat()
    return rows
