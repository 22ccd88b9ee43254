"""``interlock export DATASET [--format parquet|csv] [--out DIR]``: a dataset as files.

One file per table, typed from the dataset's declaration (``interlock schema``), written
into a fresh folder that ``DIR/<dataset>`` is then switched to (``interlock.kit.export``).
Parquet needs the ``parquet`` extra; without it the command says what to install.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interlock.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, add_log_options

if TYPE_CHECKING:
    from interlock.store.tables import Database


def add_parsers(sub: Any) -> None:
    """Add ``export`` to the CLI's subparsers."""
    p = sub.add_parser("export", help="write a dataset as Parquet (or CSV), one file per table")
    p.add_argument("dataset", help="the dataset: its component's name (e.g. gtfs_schedule)")
    p.add_argument(
        "--format", choices=["parquet", "csv"], default="parquet", help="default: parquet"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write DIR/<dataset>/ (default: <data_dir>/export, where the export setting writes)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--config", type=Path, default=None, help="find the dataset in this config's data_dir"
    )
    where.add_argument(
        "--data-dir", type=Path, default=None, help="find <dataset>.sqlite in this directory"
    )
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    add_log_options(p, level="warning", log_format="console")


def _declaration(args: argparse.Namespace) -> tuple[Path, Database | None] | None:
    """The dataset's file and declaration; None (with the reason printed) when unknown."""
    from interlock.cli.common import load_args_config
    from interlock.cli.schema import databases

    known = databases()
    known.pop("state", None)
    if args.data_dir is not None:
        data_dir: Path = args.data_dir
        decl = known.get(args.dataset)
        names = sorted(known)
    else:
        from interlock.config.registry import load_component_class

        config = load_args_config(args)
        data_dir = config.runtime.data_dir
        spec = config.components.get(args.dataset)
        names = list(config.components)
        decl = None
        if spec is not None and spec.class_path:
            decl = getattr(load_component_class(spec.class_path), "dataset_schema", None)
    if decl is None and not (data_dir / f"{args.dataset}.sqlite").is_file():
        print(
            f"interlock: unknown dataset {args.dataset!r} in {str(data_dir)!r}; known: "
            f"{', '.join(names) or 'none'}",
            file=sys.stderr,
        )
        return None
    return data_dir, decl


def cmd_export(args: argparse.Namespace) -> int:
    """``interlock export``: 0 when written, 2 for a user error (unknown dataset, no
    pyarrow for Parquet), 1 when the export fails part-way (the previous one stays)."""
    from interlock.errors import ExportError
    from interlock.kit.export import DEFAULT_DIR, export_dataset, pyarrow_missing

    if args.format == "parquet" and (why := pyarrow_missing()):
        print(f"interlock: {why}", file=sys.stderr)
        return EXIT_CONFIG
    found = _declaration(args)
    if found is None:
        return EXIT_CONFIG
    data_dir, decl = found
    db_file = data_dir / f"{args.dataset}.sqlite"
    if not db_file.is_file():
        print(
            f"interlock: dataset {args.dataset!r} has no file at {str(db_file)!r}; "
            "run the component first",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    out = args.out if args.out is not None else data_dir / DEFAULT_DIR
    try:
        result = export_dataset(db_file, decl, out, args.format, name=args.dataset)
    except ExportError as exc:
        print(f"interlock: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        rows = sum(result.tables.values())
        print(
            f"{result.dataset}: {len(result.tables)} tables, {rows} rows, "
            f"{result.bytes} bytes of {result.format} in {result.link}/"
        )
    return EXIT_OK


COMMANDS = {"export": cmd_export}
