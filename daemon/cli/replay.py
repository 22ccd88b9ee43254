"""``interlock replay COMPONENT [--since DATE]``: rebuild a dataset from the raw archive.

The run is an ordinary run of the component (quality gate, atomic swap, a history row
with ``trigger=replay``) whose fetch step reads the archived payload of its last publish
instead of the network (``interlock.kit.replay``): no API call, no quota. It takes the
state directory's lock like ``interlock run``, so it refuses while a daemon serves the
same state directory: stop the daemon, replay, start it again.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from interlock.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, add_common_options

if TYPE_CHECKING:
    from interlock.config.model import Config


def add_parsers(sub: Any) -> None:
    """Add ``replay`` to the CLI's subparsers."""
    p = sub.add_parser(
        "replay", help="rebuild a component's dataset from its raw archive (no network, no quota)"
    )
    p.add_argument("component", help="the component to rebuild (e.g. gtfs_schedule)")
    p.add_argument(
        "--since",
        default=None,
        help="refuse unless the payload replayed was archived at or after DATE "
        "(YYYY-MM-DD or an ISO 8601 time, UTC unless it says)",
    )
    add_common_options(p)


def since_time(text: str) -> datetime | None:
    """``--since`` as an aware UTC time; None (with the reason printed) when unreadable."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        print(
            f"interlock: --since {text!r} is not a date; give YYYY-MM-DD or an ISO 8601 "
            "time such as 2026-01-31T06:00:00Z",
            file=sys.stderr,
        )
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _refusal(config: Config, name: str) -> str | None:
    """Why ``name`` cannot be replayed (None: it can)."""
    from interlock.config.registry import load_component_class

    spec = config.components.get(name)
    if spec is None:
        return f"unknown component {name!r}; known: {', '.join(config.components) or 'none'}"
    if not spec.enabled:
        return f"{name!r} is disabled: {spec.disabled_reason}"
    assert spec.class_path is not None  # the config loader guarantees it
    if not getattr(load_component_class(spec.class_path), "replays", False):
        return (
            f"component {name!r} cannot be replayed: it does not rebuild from the raw "
            "archive (the built-ins do: gtfs_schedule, gtfs_realtime, ptv_timetable, datavic_*)"
        )
    return None


async def _replay(config: Config, name: str, since: datetime | None) -> int:
    from interlock.kit.replay import NoNetwork, Replay
    from interlock.service.app import Orchestrator

    services = {"http": NoNetwork(), "replay": Replay(since)}
    async with Orchestrator(config, services=services) as orch:
        result = await orch.scheduler.run_once([name], force=True, trigger="replay")
    settled = result.outcomes.get(name)
    if settled is None or result.failed:
        why = settled.reason if settled is not None else "it did not run"
        print(f"interlock: replay of {name!r} failed: {why}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{name}: {settled.status.value} (replayed from the raw archive)")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    """``interlock replay``: 0 when republished, 1 when the run fails (the live dataset
    stays), 2 when the component cannot replay or a daemon holds the state directory."""
    import asyncio

    from interlock.cli.common import load_args_config
    from interlock.errors import StateError

    config = load_args_config(args)
    since = since_time(args.since) if args.since is not None else None
    if args.since is not None and since is None:
        return EXIT_CONFIG
    refusal = _refusal(config, args.component)
    if refusal is not None:
        print(f"interlock: {refusal}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return asyncio.run(_replay(config, args.component, since))
    except StateError as exc:
        print(
            f"interlock: {exc}. A replay does not run beside a daemon on the same state "
            "directory: stop the daemon (systemctl stop interlock), replay, start it again",
            file=sys.stderr,
        )
        return EXIT_CONFIG


COMMANDS = {"replay": cmd_replay}
