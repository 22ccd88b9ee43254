"""``interlock query "SQL" [--json|--csv]``: one read-only statement over every dataset.

Each ``<data_dir>/<component>.sqlite`` is attached read-only (``mode=ro``) under its
component's name, so one statement can join them (``gtfs_schedule.stops`` with
``datavic_station_patronage.station_patronage``). Writes are refused twice over: the
files are opened read-only, and an authorizer denies anything but reading (no INSERT,
CREATE, ATTACH, or PRAGMA that sets a value). Rows stream out as they are read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interlock.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, add_log_options

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator

#: PRAGMAs that describe a schema; their argument names a table or index, never a value.
DESCRIBE_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "database_list",
        "collation_list",
        "function_list",
        "pragma_list",
    }
)
#: PRAGMAs a query may read but never set (``PRAGMA user_version = 5`` is refused).
VALUE_PRAGMAS = frozenset({"user_version", "schema_version", "journal_mode", "page_count"})
DEFAULT_TABLE_LIMIT = 1000


def add_parsers(sub: Any) -> None:
    """Add ``query`` to the CLI's subparsers."""
    p = sub.add_parser(
        "query",
        help="run one read-only SQL statement over every dataset (attached by component name)",
    )
    p.add_argument(
        "sql", help='one SELECT statement, e.g. "SELECT count(*) FROM gtfs_schedule.stops"'
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--config", type=Path, default=None, help="find datasets in this config's data_dir"
    )
    where.add_argument(
        "--data-dir", type=Path, default=None, help="attach every dataset in this directory"
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="a JSON array of objects (streamed)")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row (streamed)")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help=f"print at most this many rows (default: all for --json/--csv, "
        f"{DEFAULT_TABLE_LIMIT} for the table)",
    )
    add_log_options(p, level="warning", log_format="console")


def datasets(data_dir: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Schema name -> live dataset file: the named components' (or every ``*.sqlite``)."""
    if names is None:
        names = sorted(
            p.stem
            for p in data_dir.glob("*.sqlite")
            if not p.name.endswith(".previous.sqlite") and p.is_file()
        )
    return {n: data_dir / f"{n}.sqlite" for n in names if (data_dir / f"{n}.sqlite").is_file()}


class _ReadOnly:
    """The authorizer: reading is allowed, anything else denied (and remembered)."""

    def __init__(self) -> None:
        self.denied = False

    def __call__(self, action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
        import sqlite3

        reading = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
        reading.add(getattr(sqlite3, "SQLITE_RECURSIVE", sqlite3.SQLITE_SELECT))
        if action in reading:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if name in DESCRIBE_PRAGMAS or (name in VALUE_PRAGMAS and arg2 is None):
                return sqlite3.SQLITE_OK
        self.denied = True
        return sqlite3.SQLITE_DENY


def open_readonly(attached: dict[str, Path]) -> tuple[sqlite3.Connection, _ReadOnly]:
    """An in-memory connection with each dataset attached read-only, then locked to reading."""
    import sqlite3

    conn = sqlite3.connect("file:interlock-query?mode=memory", uri=True, timeout=10)
    for name, path in attached.items():
        conn.execute("ATTACH DATABASE ? AS ?", (f"{path.resolve().as_uri()}?mode=ro", name))
    guard = _ReadOnly()
    conn.set_authorizer(guard)
    return conn, guard


def run_query(
    conn: sqlite3.Connection, guard: _ReadOnly, sql: str, limit: int | None
) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """Column names and a stream of at most ``limit`` rows; raises QueryError for bad SQL."""
    import sqlite3

    from interlock.errors import QueryError

    try:
        cur = conn.execute(sql)
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if guard.denied:
            raise QueryError(
                f"refused {_short(sql)!r}: interlock query is read-only (one SELECT; no "
                "INSERT/UPDATE/DELETE, CREATE/DROP, ATTACH or PRAGMA that sets a value)"
            ) from None
        raise QueryError(f"cannot run {_short(sql)!r}: {text}") from None
    except sqlite3.ProgrammingError as exc:
        raise QueryError(f"cannot run {_short(sql)!r}: {exc}; give exactly one statement") from None
    except sqlite3.Warning as exc:  # more than one statement
        raise QueryError(f"cannot run {_short(sql)!r}: {exc}; give exactly one statement") from None
    names = [d[0] for d in cur.description or ()]

    def rows() -> Iterator[tuple[Any, ...]]:
        for i, row in enumerate(cur):
            if limit is not None and i >= limit:
                break
            yield row

    return names, rows()


def _short(sql: str) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= 80 else one[:77] + "..."


def _write(names: list[str], rows: Iterator[tuple[Any, ...]], args: argparse.Namespace) -> None:
    out = sys.stdout
    if args.csv:
        import csv

        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow(row)
    elif args.json:
        import json

        out.write("[")
        for i, row in enumerate(rows):
            out.write(("\n" if i == 0 else ",\n") + json.dumps(dict(zip(names, row, strict=True))))
        out.write("\n]\n")
    else:
        from interlock.cli.common import print_table

        print_table(list(rows), names)


def cmd_query(args: argparse.Namespace) -> int:
    """``interlock query``: exit 0 when the rows are out, 2 for a bad or refused query or
    nothing to query, 1 when the query fails while it runs (a locked or corrupt file)."""
    import sqlite3

    from interlock.cli.common import load_args_config
    from interlock.errors import QueryError

    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            print(
                f"interlock: --data-dir {str(args.data_dir)!r} is not a directory", file=sys.stderr
            )
            return EXIT_CONFIG
        attached = datasets(args.data_dir)
        where = str(args.data_dir)
    else:
        config = load_args_config(args)
        attached = datasets(config.runtime.data_dir, list(config.components))
        where = str(config.runtime.data_dir)
    if not attached:
        print(f"interlock: no datasets in {where!r}; run the pipeline first", file=sys.stderr)
        return EXIT_CONFIG
    limit = args.limit
    if limit is None and not (args.json or args.csv):
        limit = DEFAULT_TABLE_LIMIT
    try:
        conn, guard = open_readonly(attached)
    except sqlite3.Error as exc:
        print(f"interlock: cannot open the datasets in {where!r}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        names, rows = run_query(conn, guard, args.sql, limit)
        _write(names, rows, args)
    except QueryError as exc:
        print(f"interlock: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except sqlite3.Error as exc:
        print(f"interlock: the query failed while running: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        conn.close()
    return EXIT_OK


COMMANDS = {"query": cmd_query}
