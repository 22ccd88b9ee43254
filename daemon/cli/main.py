"""The ``interlock`` command line: the parser of every subcommand, and the entry point.

Each command group lives in its own module (``pipeline``, ``history``, ``report``,
``admin``, ``demo``); this module only assembles them. User errors (bad config,
unknown component) print a clear message and exit 2; they never show a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from interlock.cli import (
    admin,
    completion,
    export,
    history,
    pipeline,
    query,
    replay,
    report,
    schema,
    standins,
    validate,
)
from interlock.cli.common import EXIT_CONFIG, QUICK_COMMANDS, add_log_options, start_logging
from interlock.errors import ConfigError, InterlockError


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("interlock")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked (metadata is slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kw: object) -> None:
        print(f"interlock {_version()}")
        parser.exit()


#: Options whose value may start with "-" (``--since -5d``), which argparse takes for an option.
_DASHED_VALUES = ("--since",)


def _values_may_start_with_a_dash(argv: Sequence[str] | None) -> list[str]:
    args = list(sys.argv[1:] if argv is None else argv)
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in _DASHED_VALUES and i + 1 < len(args) and args[i + 1].startswith("-"):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="interlock",
        description="Keeps Victoria's public-transport open data fresh, correct and cheap "
        "to fetch.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pipeline.add_parsers(sub)
    history.add_parsers(sub)
    report.add_parsers(sub)

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
    add_log_options(p, level="warning", log_format="console")
    admin.add_parsers(sub)
    schema.add_parsers(sub)
    query.add_parsers(sub)
    export.add_parsers(sub)
    replay.add_parsers(sub)
    validate.add_parsers(sub)
    standins.add_parsers(sub)
    completion.add_parsers(sub)
    return parser


def cmd_demo(args: argparse.Namespace) -> int:
    """``interlock demo``: the whole pipeline against the stand-ins, in a temporary directory."""
    from interlock.cli.demo import run_demo

    return run_demo(args.dir, args.config)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    **pipeline.COMMANDS,
    **history.COMMANDS,
    **report.COMMANDS,
    "demo": cmd_demo,
    **admin.COMMANDS,
    **schema.COMMANDS,
    **query.COMMANDS,
    **export.COMMANDS,
    **replay.COMMANDS,
    **validate.COMMANDS,
    **standins.COMMANDS,
    **completion.COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``interlock`` console script."""
    args = build_parser().parse_args(_values_may_start_with_a_dash(argv))
    if args.command not in QUICK_COMMANDS:  # these start logging only on their full paths
        start_logging(args)
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
    except BrokenPipeError:
        # The reader went away (`interlock history | head -2`): stop quietly, as Unix
        # tools do on SIGPIPE, and keep Python from complaining when it flushes stdout.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
