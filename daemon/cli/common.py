"""What every CLI command shares: exit codes, the common options, loading the config
named by the arguments, and the plain-text table that people read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Any

from interlock.config.model import OVERRIDE_FLAGS, Config, default_config_path

#: The log levels (``interlock.observe.logs.LEVELS``), here so that parsing the
#: arguments does not import the logging setup: ``--help`` stays instant.
LOG_LEVELS = ("debug", "info", "warning", "error")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_NO_DAEMON = 0, 1, 2, 3

PrintTable = Callable[[Sequence[Sequence[Any]], Sequence[str]], None]


def add_common_options(p: argparse.ArgumentParser, *, overrides: bool = False) -> None:
    """``--config`` and the log options; with ``overrides``, the override flags too."""
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config file (default: $INTERLOCK_CONFIG, else "
        "/etc/interlock/orchestration.json, else ./config/orchestration.json)",
    )
    add_log_options(p)
    if overrides:
        for flag in OVERRIDE_FLAGS:
            p.add_argument(
                "--" + flag.replace("_", "-"),
                dest=flag,
                action="store_true",
                default=None,
                help=f"override_settings.{flag} for this invocation",
            )


def add_log_options(
    p: argparse.ArgumentParser, *, level: str = "info", log_format: str = "auto"
) -> None:
    """``--log-level`` and ``--log-format`` with the given defaults."""
    p.add_argument("--log-level", choices=LOG_LEVELS, default=level)
    p.add_argument(
        "--log-format",
        choices=["json", "console", "auto"],
        default=log_format,
        help="json lines (default when not a TTY) or a console view",
    )


def add_socket_option(p: argparse.ArgumentParser) -> None:
    """``--socket PATH`` for a subcommand that may talk to the daemon."""
    p.add_argument(
        "--socket",
        type=Path,
        default=None,
        help="the daemon's admin socket (default: the config's runtime_settings.admin_socket, "
        "else $RUNTIME_DIRECTORY/admin.sock, else /run/interlock/admin.sock)",
    )


#: Commands whose quick paths (cli/quick.py) log nothing: they call start_logging only
#: before a full path, so structlog is not imported to answer them.
QUICK_COMMANDS = ("status", "history", "completion")


def start_logging(args: argparse.Namespace) -> None:
    """Configure logging for this command (structlog, the daemon's processors)."""
    from interlock.observe import logs  # after parsing: --help and usage errors stay instant

    logs.configure(
        args.log_level,
        args.log_format,
        stream=sys.stdout if args.command in ("serve", "run") else sys.stderr,
        off_loop=args.command in ("serve", "run"),
    )


def load_args_config(args: argparse.Namespace) -> Config:
    """The config these arguments name, with their override flags applied."""
    from interlock.config.loader import load_config  # jsonschema: only when a config is read

    path = args.config or default_config_path()
    config = load_config(path)
    if any(hasattr(args, f) for f in OVERRIDE_FLAGS):
        config = config.with_overrides({f: getattr(args, f, None) for f in OVERRIDE_FLAGS})
    return config


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """Left-aligned columns under upper-case headers, as wide as their widest cell."""
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def lacks_state_database(state_dir: Path) -> bool:
    """Whether ``--state-dir`` names a folder with no state database (said on stderr)."""
    if (state_dir / "state.sqlite").is_file():  # store.sqlite.STATE_DB, without its imports
        return False
    print(
        f"interlock: no state database in {str(state_dir)!r} (no state.sqlite); "
        "give the folder a daemon or `run` uses (runtime_settings.state_dir)",
        file=sys.stderr,
    )
    return True


def named_zone(name: str) -> tzinfo | None:
    """The IANA zone ``name`` (a --timezone value); None, with the reason printed, if unknown."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        print(
            f"interlock: unknown time zone {name!r}; give an IANA name such as "
            "'Australia/Melbourne' or 'UTC'",
            file=sys.stderr,
        )
        return None
