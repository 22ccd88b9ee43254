"""``interlock report``: performance over a period, from the daemon or the state database.

The numbers come from :mod:`interlock.observe.report`; this module parses the
arguments and renders the table and the lines below it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from interlock.cadence import human_time
from interlock.cli import admin as cliadmin
from interlock.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    add_common_options,
    lacks_state_database,
    load_args_config,
    named_zone,
    print_table,
)
from interlock.errors import AdminError


def _fmt_s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}s" if value < 60 else f"{value / 60:.1f}m"


def render(report: Mapping[str, Any]) -> tuple[list[tuple[Any, ...]], list[str], list[str]]:
    """Table rows, headers, and the lines printed below the table."""
    rows = []
    for name, s in report["components"].items():
        trend = s["trend_percent"]
        api = s["api"]
        worst = max((a["p95_ms"] for a in api.values()), default=None)
        rows.append(
            (
                name,
                s["runs"],
                "-" if s["success_rate"] is None else f"{s['success_rate']:g}%",
                _fmt_s(s["p50_s"]),
                _fmt_s(s["p95_s"]),
                "-" if trend is None else f"{trend:+.0f}%",
                "-" if s["records_per_s"] is None else f"{s['records_per_s']:g}",
                "-" if worst is None else f"{worst:.0f}ms",
                "-" if s["peak_rss_mb"] is None else f"{s['peak_rss_mb']:.0f}MB",
            )
        )
    headers = [
        "component",
        "runs",
        "success",
        "p50",
        "p95",
        "trend",
        "rec/s",
        "api p95",
        "peak mem",
    ]
    lines: list[str] = []
    errors = [(n, e) for n, s in report["components"].items() for e in s["top_errors"]]
    if errors:
        lines += ["", "Top errors:"]
        for name, e in sorted(errors, key=lambda x: -x[1]["count"])[:10]:
            lines.append(
                f"  {e['count']:>4}x  {name}: {e['message'][:100]}  (last {e['last_seen']})"
            )
    quota = report.get("quota")
    if quota:
        lines += ["", f"Quota today: {quota.get('used')} of {quota.get('daily_limit')} calls used"]
    if report["insights"]:
        lines += ["", "Insights:"] + [f"  - {i}" for i in report["insights"]]
    return rows, headers, lines


def add_parsers(sub: Any) -> None:
    """Add ``interlock report`` to the CLI's subparsers."""
    p = sub.add_parser("report", help="performance over a period: durations, trends, errors")
    add_common_options(p)
    p.add_argument("--since", default="7d", help="span back from now (7d, 12h, 30m, 2w) or a date")
    p.add_argument("--component", default=None, help="only this component")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--state-dir", type=Path, default=None, help="read this state directory")
    p.add_argument(
        "--timezone",
        default="Australia/Melbourne",
        help="time zone for --state-dir output (default Australia/Melbourne)",
    )
    p.add_argument(
        "--socket",
        type=Path,
        default=None,
        help="ask the daemon on this admin socket (default: the daemon serving the config's "
        "state directory, if one is; else the state database is read directly)",
    )


def cmd_report(args: Any) -> int:
    """``interlock report``: exit 0, or 2 for a bad --since or component."""
    from interlock.observe.report import collect, parse_since
    from interlock.store.factory import shared, state_reader
    from interlock.store.sqlite import STATE_DB

    config = load_args_config(args) if args.state_dir is None or args.config else None
    state_dir = args.state_dir or (config.runtime.state_dir if config else Path("."))
    now = datetime.now(UTC)
    try:
        since = parse_since(args.since, now)
    except ValueError as exc:
        print(f"interlock: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.state_dir is not None and lacks_state_database(args.state_dir):
        return EXIT_CONFIG
    zone = named_zone(args.timezone)
    if zone is None:
        return EXIT_CONFIG
    if config is not None and args.component and args.component not in config.components:
        known = ", ".join(config.components)
        print(f"interlock: unknown component {args.component!r}; known: {known}", file=sys.stderr)
        return EXIT_CONFIG
    timeouts = {n: s.timeout_s for n, s in config.components.items()} if config else None
    limit = int(config.quota.get("daily_limit", 1000)) if config else None
    client = cliadmin.daemon_serving(args, config) if config is not None else None
    if client is not None:
        try:
            report = client.request("report", since=args.since, component=args.component)
        except AdminError as exc:
            return cliadmin.fail(exc, args)
    else:
        import asyncio  # here, not at the top: --help and status stay quick

        report = asyncio.run(
            collect(
                state_dir / STATE_DB,
                reader=state_reader(config.runtime) if config and shared(config.runtime) else None,
                since=since,
                until=now,
                component=args.component,
                timeouts=timeouts,
                daily_limit=limit,
            )
        )
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return EXIT_OK
    tz = config.runtime.timezone if config else zone
    print(f"Report {human_time(since, tz)} to {human_time(now, tz)}")
    if not report["components"]:
        print("no component runs in this period")
        return EXIT_OK
    rows, headers, lines = render(report)
    print_table(rows, headers)
    for line in lines:
        print(line)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"report": cmd_report}
