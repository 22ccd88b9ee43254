"""``interlock validate FEED.zip|URL``: the GTFS validator alone, before any configuration.

Prints one line per notice code (or, with ``--json``, the report in MobilityData
gtfs-validator's ``report.json`` shape). Exits 0 without ERRORs, 1 with, 2 when the
feed cannot be validated at all (no such file, not a zip, a failed download).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from interlock.cli.common import EXIT_FAILED, EXIT_OK, add_log_options, print_table
from interlock.errors import UnsafeArchiveError, ValidationFailedError

#: How a zip starts: a local file header, or the end record of an empty archive.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
MB = 1 << 20


def add_parsers(sub: Any) -> None:
    """Add ``validate`` to the CLI's subparsers."""
    p = sub.add_parser(
        "validate",
        help="validate a GTFS zip (a file or an http(s) URL) as MobilityData's validator does",
    )
    p.add_argument("feed", metavar="FEED", help="a GTFS zip file, or an http(s) URL of one")
    p.add_argument(
        "--json", action="store_true", help="print the report in gtfs-validator's report.json shape"
    )
    p.add_argument(
        "--date",
        default=None,
        type=_day,
        metavar="YYYY-MM-DD",
        help="the day date-dependent rules judge against (default: today)",
    )
    p.add_argument(
        "--max-download-mb",
        type=float,
        default=1024.0,
        help="refuse a URL whose body is larger than this (default 1024)",
    )
    add_log_options(p, level="warning", log_format="console")


def _day(text: str) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; give YYYY-MM-DD") from None


def _check_zip(path: Path, shown: str) -> None:
    if not path.exists():
        raise ValidationFailedError(
            f"GTFS feed {shown!r} does not exist; give a GTFS zip file or an http(s) URL"
        )
    if not path.is_file():
        raise ValidationFailedError(f"GTFS feed {shown!r} is not a regular file; give a GTFS zip")
    with open(path, "rb") as f:
        head = f.read(4)
    if head not in ZIP_MAGIC:
        raise UnsafeArchiveError(
            f"GTFS feed {shown!r} is not a zip (it starts {head!r}); give a GTFS zip"
        )


async def _download(url: str, dest: Path, max_bytes: int) -> None:
    from interlock.kit.http import HttpClient  # aiohttp: only for a URL

    async with HttpClient() as http:
        await http.download(url, dest, max_bytes=max_bytes, endpoint="validate")


def _table(doc: dict[str, Any]) -> None:
    rows = [(n["code"], n["severity"], n["totalNotices"]) for n in doc["notices"]]
    if rows:
        print_table(rows, ["code", "severity", "count"])
    errors = sum(n["totalNotices"] for n in doc["notices"] if n["severity"] == "ERROR")
    codes = sum(1 for n in doc["notices"] if n["severity"] == "ERROR")
    plural = "code" if codes == 1 else "codes"
    verdict = f"{errors} ERROR notices in {codes} {plural}" if errors else "no ERROR notices"
    print(f"{doc['summary']['gtfsInput']}: {verdict}")


def cmd_validate(args: argparse.Namespace) -> int:
    """``interlock validate``: validate one feed, print the notices, exit 1 on ERRORs."""
    import asyncio  # here, not at the top: every other command starts without it

    from interlock.config.registry import load_tool  # the validator: only when it runs

    day: date | None = args.date
    validate_file = load_tool("validate_gtfs")
    with tempfile.TemporaryDirectory(prefix="interlock-validate-") as tmp:
        feed: str = args.feed
        if re.match(r"(?i)https?://", feed):
            path = Path(tmp) / "feed.zip"
            asyncio.run(_download(feed, path, int(args.max_download_mb * MB)))
            _check_zip(path, feed)
            doc = validate_file(path, gtfs_input=feed, day=day)
        else:
            path = Path(feed)
            _check_zip(path, feed)
            doc = validate_file(path, day=day)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _table(doc)
    errors = any(n["severity"] == "ERROR" for n in doc["notices"])
    return EXIT_FAILED if errors else EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"validate": cmd_validate}
