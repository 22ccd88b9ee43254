"""Building blocks of the GTFS spec tables: field kinds, bounds, fields and keys.

Kept apart from the table list in :mod:`.spec` so each stays short.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    """How a field is parsed and which SQLite type stores it."""

    TEXT = "TEXT"
    INTEGER = "INTEGER"
    FLOAT = "FLOAT"
    LATITUDE = "LATITUDE"
    LONGITUDE = "LONGITUDE"
    DATE = "DATE"
    TIME = "TIME"
    COLOR = "COLOR"
    # Text that must have a format (checked, reported, and kept as is).
    TIMEZONE = "TIMEZONE"
    URL = "URL"
    EMAIL = "EMAIL"
    CURRENCY = "CURRENCY"
    LANGUAGE = "LANGUAGE"

    @property
    def sql_type(self) -> str:
        if self is Kind.INTEGER:
            return "INTEGER"
        if self in (Kind.FLOAT, Kind.LATITUDE, Kind.LONGITUDE):
            return "REAL"
        return "TEXT"


class Bound(enum.Enum):
    """A numeric constraint whose violation is a number_out_of_range notice."""

    NONE = "none"
    NON_NEGATIVE = "non-negative"
    POSITIVE = "positive"


@dataclass(frozen=True, slots=True)
class Field:
    """One column of a GTFS file."""

    name: str
    kind: Kind = Kind.TEXT
    required: bool = False
    bound: Bound = Bound.NONE


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """A reference from ``field`` of this table to ``parent_field`` of ``parent``."""

    field: str
    parent: str
    parent_field: str


@dataclass(frozen=True, slots=True)
class Table:
    """One GTFS file and the SQLite table it loads into (named after the file)."""

    name: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    required_file: bool = False

    @property
    def filename(self) -> str:
        return f"{self.name}.txt"

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def create_table_sql(table: Table, moded: bool) -> str:
    """The CREATE TABLE statement for ``table`` (with a leading mode column when ``moded``)."""
    cols = ['"mode" TEXT'] if moded else []
    for f in table.fields:
        cols.append(f"{f.name} {f.kind.sql_type}")
        if f.kind is Kind.TIME:
            cols.append(f"{f.name}_secs INTEGER")
    # A rowid table: the rowid carries the source CSV row (see validate.ROWID_BITS).
    return f"CREATE TABLE {table.name} ({', '.join(cols)})"
