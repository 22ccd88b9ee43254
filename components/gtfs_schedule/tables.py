"""The GTFS schedule dataset (``<data_dir>/<component>.sqlite``) described column by column.

The spec tables come from :data:`.spec.TABLES` (one declaration for the loader, the
validator and this page); the units come from each field's kind. Checked against a
really loaded feed by ``tests/test_dataset_schema.py``.
"""

from __future__ import annotations

from interlock.components.gtfs_schedule.schema import Field, Kind
from interlock.components.gtfs_schedule.schema import Table as SpecTable
from interlock.components.gtfs_schedule.spec import TABLES as SPEC_TABLES
from interlock.kit.tables import PUBLISH_STAMP, Column, Database, Table, col

_UNITS = {
    Kind.LATITUDE: "degrees WGS84",
    Kind.LONGITUDE: "degrees WGS84",
    Kind.DATE: "YYYYMMDD text (service day)",
    Kind.TIME: "H:MM:SS or HH:MM:SS text, service-day time, may pass 24:00:00",
    Kind.COLOR: "RRGGBB hex text",
    Kind.TIMEZONE: "IANA time zone name",
    Kind.URL: "URL",
    Kind.EMAIL: "e-mail address",
    Kind.CURRENCY: "ISO 4217 code",
}
_SPEC = "https://gtfs.org/documentation/schedule/reference/"
_MODE = col(
    "mode",
    "TEXT",
    "The per-mode folder of Victoria's zip of zips the row came from (1 regional train, "
    "2 metro train, 3 tram, 4 bus, 5 coach, 6 regional bus...); absent for a flat feed. "
    "Ids are unique within a mode only: join on (mode, id).",
)


def _columns(table: SpecTable) -> list[Column]:
    out = [_MODE]
    for f in table.fields:
        out.append(_column(table, f))
        if f.kind is Kind.TIME:
            out.append(
                col(
                    f"{f.name}_secs",
                    "INTEGER",
                    f"{f.name} in seconds after the service day's start (noon minus 12 h); "
                    "above 86400 for times past midnight.",
                    "seconds",
                )
            )
    return out


def _column(table: SpecTable, f: Field) -> Column:
    need = "required" if f.required else "optional"
    meaning = f"GTFS {table.filename} field {f.name} ({need}; see {_SPEC}#{table.name}txt)."
    if f.required:
        meaning += " NULL only where the feed broke the rule (a notice says so)."
    return col(f.name, f.kind.sql_type, meaning, _UNITS.get(f.kind, ""))


PROVENANCE = Table(
    "provenance",
    "One row: where this dataset's feed came from.",
    (
        col("source_url", "TEXT", "URL fetched."),
        col("sha256", "TEXT", "SHA-256 of the zip (its raw-archive name).", "hex", null=False),
        col("size", "INTEGER", "Zip size.", "bytes"),
        col("etag", "TEXT", "The server's ETag."),
        col("last_modified", "TEXT", "The server's Last-Modified.", "HTTP date text"),
        col("fetched_at", "TEXT", "When interlock fetched it.", "ISO 8601 text, UTC", null=False),
        col(
            "published_at", "TEXT", "When interlock published it.", "ISO 8601 text, UTC", null=False
        ),
        col("modes", "TEXT", "Mode folders loaded.", "JSON text (list)"),
        col("record_counts", "TEXT", "Rows per table.", "JSON text (object)", null=False),
        col("run_id", "TEXT", "The interlock run.", null=False),
    ),
)

DATASET = Database(
    name="gtfs_schedule",
    meaning="The GTFS schedule, one table per GTFS file (every spec table is created, empty "
    "when its file is absent). Values are stored as the feed has them; each TIME column "
    "gains an integer <name>_secs. A snapshot: each publish replaces the whole file.",
    file="<data_dir>/<component>.sqlite (snapshot, swapped in by rename)",
    version=1,
    migrations=("",),  # 0 -> 1: same tables; a snapshot is rebuilt, never migrated
    tables=(
        *(
            Table(t.name, f"Rows of GTFS {t.filename}.", tuple(_columns(t)), key=t.primary_key)
            for t in SPEC_TABLES
        ),
        PROVENANCE,
        PUBLISH_STAMP,
    ),
)
