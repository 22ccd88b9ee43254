"""A dataset as files: one Parquet (or CSV) file per table, typed from its declaration.

Rows stream from SQLite in batches (``fetchmany``) into Parquet row groups, so memory
stays flat whatever the dataset's size. Each export is a fresh folder
``<out>/.<dataset>@<UTC time>`` and ``<out>/<dataset>`` is a symbolic link to it, swapped
with one ``rename``: a reader that resolved ``<out>/<dataset>`` reads one whole file set,
old or new, never a mix (a non-empty folder cannot be renamed over another, a link can).
The previous folder is kept until the next export, so a reader that started on it can
finish. Parquet needs pyarrow (``pip install 'interlock[parquet]'``); CSV needs nothing.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from interlock.errors import ExportError, WorkCancelledError
from interlock.kit.files import DATA_FILE, restrict
from interlock.store.tables import Column, Database, Table, table_info

if TYPE_CHECKING:
    import pyarrow as pa

log = structlog.get_logger("interlock.export")

FORMATS = ("parquet", "csv")
#: Rows per fetch and per Parquet row group: big enough to be fast, small enough to stay flat.
BATCH_ROWS = 65_536
PARQUET_HINT = "pip install 'interlock[parquet]' (pyarrow), or export with --format csv"
MANIFEST = "_export.json"
#: A column whose declared unit starts with this is exported as timestamp[ms, tz=UTC].
EPOCH_UNIT = "epoch seconds"
#: An export folder: listed and entered by the service's group, as the data folder.
DATA_DIR = 0o750
#: Where exports go when neither ``--out`` nor the setting's ``dir`` says.
DEFAULT_DIR = "export"


def pyarrow_missing() -> str | None:
    """Why Parquet cannot be written here (None: pyarrow is importable)."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return f"Parquet export needs pyarrow, which is not installed: {PARQUET_HINT}"
    return None


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type of a declared column (INTEGER epoch seconds become UTC timestamps).

    Timestamps are milliseconds: Parquet has no unit of seconds, and a reader would get
    milliseconds back anyway. The values are whole seconds, as the source gave them.
    """
    import pyarrow as pa

    if column.type == "INTEGER":
        if column.unit.startswith(EPOCH_UNIT):
            return pa.timestamp("ms", tz="UTC")
        return pa.int64()
    return {"REAL": pa.float64(), "TEXT": pa.string(), "BLOB": pa.binary()}[column.type]


@dataclass
class ExportResult:
    """What one export wrote: the link readers use, the folder behind it, rows per table."""

    dataset: str
    format: str
    link: Path
    folder: Path
    tables: dict[str, int] = field(default_factory=dict)
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "format": self.format,
            "path": str(self.link),
            "folder": str(self.folder),
            "tables": self.tables,
            "bytes": self.bytes,
        }


def _tables(conn: sqlite3.Connection, decl: Database | None) -> list[Table]:
    """The tables in the file, typed by the declaration (undeclared ones by SQLite's types)."""
    found = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    declared = {t.name: t for t in decl.tables} if decl is not None else {}
    out = []
    for name in found:
        if name in declared:
            out.append(declared[name])
            continue
        cols = tuple(
            Column(c, t if t in ("INTEGER", "REAL", "BLOB") else "TEXT", "", "", null)
            for c, t, null in table_info(conn, name)
        )
        out.append(Table(name, "", cols))
    return out


def _select(table: Table) -> str:
    # TEXT is cast so a number stored in a text column still reads as text; other types
    # are checked by Arrow, and a value that does not fit is named (see _bad_value).
    cols = ", ".join(
        f'CAST("{c.name}" AS TEXT)' if c.type == "TEXT" else f'"{c.name}"' for c in table.columns
    )
    return f'SELECT {cols} FROM "{table.name}"'


def _batches(
    conn: sqlite3.Connection, table: Table, batch_rows: int, cancel: threading.Event | None
) -> Iterator[list[tuple[Any, ...]]]:
    cur = conn.execute(_select(table))
    while rows := cur.fetchmany(batch_rows):
        if cancel is not None and cancel.is_set():
            raise WorkCancelledError(f"export of table {table.name!r} cancelled")
        yield rows


def _bad_value(conn: sqlite3.Connection, table: Table, column: Column) -> str:
    want = {"INTEGER": "'integer'", "REAL": "'integer','real'", "BLOB": "'blob'"}[column.type]
    row = conn.execute(
        f'SELECT "{column.name}", typeof("{column.name}") FROM "{table.name}" '
        f"WHERE typeof(\"{column.name}\") NOT IN ({want}, 'null') LIMIT 1"
    ).fetchone()
    return f"{row[0]!r} ({row[1]})" if row else "a value Arrow cannot convert"


def _array(values: tuple[Any, ...], type_: pa.DataType) -> pa.Array:
    import pyarrow as pa

    if pa.types.is_timestamp(type_):  # epoch seconds in, milliseconds out
        return pa.array(values, pa.timestamp("s", tz="UTC")).cast(type_)
    return pa.array(values, type=type_)


def _write_parquet(
    conn: sqlite3.Connection,
    table: Table,
    path: Path,
    batch_rows: int,
    cancel: threading.Event | None,
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in table.columns]
    )
    rows_out = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for rows in _batches(conn, table, batch_rows, cancel):
            columns = list(zip(*rows, strict=True))
            arrays = []
            for i, c in enumerate(table.columns):
                try:
                    arrays.append(_array(columns[i], schema.field(i).type))
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                    raise ExportError(
                        f"table {table.name!r} column {c.name!r} is declared {c.type} but "
                        f"holds {_bad_value(conn, table, c)}; fix the dataset's declaration "
                        "or its loader, or export with --format csv"
                    ) from None
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows_out += len(rows)
    return rows_out


def _write_csv(
    conn: sqlite3.Connection,
    table: Table,
    path: Path,
    batch_rows: int,
    cancel: threading.Event | None,
) -> int:
    rows_out = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")  # RFC 4180 quoting; NULL is an empty field
        writer.writerow([c.name for c in table.columns])
        for rows in _batches(conn, table, batch_rows, cancel):
            writer.writerows(rows)
            rows_out += len(rows)
    return rows_out


def _generation(out: Path, name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return out / f".{name}@{stamp}"


def _swap(out: Path, name: str, folder: Path) -> None:
    """Point ``out/name`` at ``folder`` with one rename, then drop all but the last two."""
    link = out / name
    tmp = out / f".{name}.link-{os.getpid()}-{threading.get_ident()}"
    tmp.unlink(missing_ok=True)
    os.symlink(folder.name, tmp)
    if link.is_dir() and not link.is_symlink():
        # An export folder from before links were used (or made by hand): set aside.
        os.replace(link, out / f".{name}@00000000-moved-aside")
    try:
        previous = os.readlink(link) if link.is_symlink() else None
    except OSError:
        previous = None
    os.replace(tmp, link)
    keep = {folder.name, previous}
    for old in out.glob(f".{name}@*"):
        if old.name in keep or (old.name.endswith(".partial") and _recent(old)):
            continue  # a concurrent export's folder is not ours to remove
        shutil.rmtree(old, ignore_errors=True)


def _recent(path: Path, within_s: float = 3600.0) -> bool:
    try:
        return datetime.now(UTC).timestamp() - path.stat().st_mtime < within_s
    except OSError:
        return False


def export_dataset(
    db_file: Path,
    decl: Database | None,
    out: Path,
    fmt: str = "parquet",
    *,
    name: str | None = None,
    batch_rows: int = BATCH_ROWS,
    cancel: threading.Event | None = None,
    after_table: Callable[[str, int], None] | None = None,
) -> ExportResult:
    """Write every table of ``db_file`` under ``out/<name>`` (see the module docstring).

    All tables come from one read transaction, so the set matches one publish. Raises
    :class:`ExportError` (the previous export untouched) for a missing file, a format
    without its library, or a value that does not fit its declared type.
    """
    if fmt not in FORMATS:
        raise ExportError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "parquet" and (why := pyarrow_missing()):
        raise ExportError(why)
    name = name or db_file.stem
    if not db_file.is_file():
        raise ExportError(
            f"dataset {name!r} has no file at {str(db_file)!r}; run the component first"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create export folder {str(out)!r}: {exc.strerror}") from None
    folder = _generation(out, name)
    partial = folder.with_name(folder.name + ".partial")
    write = _write_parquet if fmt == "parquet" else _write_csv
    suffix = ".parquet" if fmt == "parquet" else ".csv"
    result = ExportResult(dataset=name, format=fmt, link=out / name, folder=folder)
    conn = sqlite3.connect(f"{db_file.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        partial.mkdir()
        conn.execute("BEGIN")  # one snapshot for every table (WAL or rollback journal)
        for table in _tables(conn, decl):
            result.tables[table.name] = write(
                conn, table, partial / f"{table.name}{suffix}", batch_rows, cancel
            )
            if after_table is not None:
                after_table(table.name, result.tables[table.name])
        manifest = {
            "dataset": name,
            "format": fmt,
            "source": str(db_file),
            "schema_version": conn.execute("PRAGMA user_version").fetchone()[0],
            "exported_at": datetime.now(UTC).isoformat(),
            "tables": result.tables,
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        for p in partial.iterdir():  # as the datasets: the service's group reads, no one else
            restrict(p, DATA_FILE)
            result.bytes += p.stat().st_size
        restrict(partial, DATA_DIR)
        os.replace(partial, folder)
        _swap(out, name, folder)
    except sqlite3.Error as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ExportError(f"cannot read dataset {name!r} ({str(db_file)!r}): {exc}") from None
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ExportError(f"cannot write the export of {name!r} to {str(out)!r}: {exc}") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        conn.close()
    return result


def export_dir(setting: Mapping[str, Any], data_dir: Path) -> Path:
    """The folder an ``export`` setting names (relative to ``data_dir``; default ``export``)."""
    return data_dir / str(setting.get("dir") or DEFAULT_DIR)  # an absolute dir replaces it


async def export_published(
    name: str, setting: Mapping[str, Any], data_dir: Path, decl: Database | None
) -> dict[str, Any]:
    """The ``export`` setting's copy of a dataset just published, in a worker thread.

    Never raises (but for cancellation): the dataset is the product and the export a
    copy, so a failure is logged and returned for the run's metrics as ``{"error": ...}``.
    """
    fmt = str(setting.get("format", "parquet"))
    cancel = threading.Event()
    try:
        result = await asyncio.to_thread(
            export_dataset,
            data_dir / f"{name}.sqlite",
            decl,
            export_dir(setting, data_dir),
            fmt,
            name=name,
            cancel=cancel,
        )
    except asyncio.CancelledError:
        cancel.set()  # the thread stops at its next batch and removes its folder
        raise
    except Exception as exc:
        error = str(exc) if isinstance(exc, ExportError) else repr(exc)
        log.error("export_failed", component=name, format=fmt, error=error)
        return {"format": fmt, "error": error}
    log.info("dataset_exported", component=name, path=str(result.link), bytes=result.bytes)
    return {"format": fmt, "path": str(result.link), "bytes": result.bytes, "tables": result.tables}
