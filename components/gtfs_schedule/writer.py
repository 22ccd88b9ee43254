"""Inserts batches of flat row values with multi-row ``INSERT ... VALUES`` statements.

A statement of a few hundred rows costs a third less per row than ``executemany``
of one-row statements (one step and one reset for many rows).

Batches are written on the parsing thread. A writer thread was tried: sqlite3 gives up
the GIL only inside each statement, so the two threads mostly took turns and the
load used more CPU than it does serially (measured on two cores).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

# Rows per statement: past a few hundred the statement gets no faster per row.
_ROWS_PER_STATEMENT = 256


@dataclass(frozen=True, slots=True)
class Insert:
    """The statements that insert flat row values into ``table``'s ``columns``."""

    width: int
    one: str
    many: str
    per: int

    @classmethod
    def build(cls, conn: sqlite3.Connection, table: str, columns: Sequence[str]) -> Insert:
        width = len(columns)
        # Stay under this build's limit on bound parameters (999 in old builds).
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        per = max(1, min(_ROWS_PER_STATEMENT, limit // width))
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        row = f"({', '.join('?' * width)})"
        return cls(width, head + row, head + ", ".join([row] * per), per)

    def run(self, conn: sqlite3.Connection, values: list[object]) -> None:
        step = self.per * self.width
        full = len(values) - len(values) % step
        for i in range(0, full, step):
            conn.execute(self.many, values[i : i + step])
        if full < len(values):
            w = self.width
            conn.executemany(self.one, (values[i : i + w] for i in range(full, len(values), w)))
