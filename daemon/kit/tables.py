"""How a component declares its dataset: tables, columns, views, version and migrations.

The types live in ``interlock.store.tables`` (the state database uses them too, and the
store sits below the kit); components import them from here.
"""

from __future__ import annotations

from interlock.store.tables import (
    Column,
    Database,
    Table,
    View,
    col,
    drift,
    migrate,
    refuse_newer,
    table_info,
    user_version,
)

_ISO = "ISO 8601 text, UTC"

#: The publish stamp every snapshot dataset carries (``interlock.kit.publish.STAMP_TABLE``).
PUBLISH_STAMP = Table(
    "_interlock_publish",
    "One row: the publish that made this file live (what the run reported).",
    (
        col("component", "TEXT", "Component that published it.", null=False),
        col("run_id", "TEXT", "The interlock run.", null=False),
        col("fingerprint", "TEXT", "Fingerprint of the content.", null=False),
        col("records", "INTEGER", "Records published.", "rows", null=False),
        col("published_at", "TEXT", "When it was published.", _ISO, null=False),
        col(
            "memory_json", "TEXT", "What the component remembers.", "JSON text (object)", null=False
        ),
        col("inputs_json", "TEXT", "Upstream fingerprints.", "JSON text (object)", null=False),
    ),
)

__all__ = [
    "PUBLISH_STAMP",
    "Column",
    "Database",
    "Table",
    "View",
    "col",
    "drift",
    "migrate",
    "refuse_newer",
    "table_info",
    "user_version",
]
