"""The SQLite state store: one local file (``state.sqlite``) in the state directory, WAL.

``schema`` holds the file's layout and connections, ``batch`` the write path for
event batches, ``reader`` every read (also opened read-only on its own), ``store``
the daemon's read-write store. May import ``store.abc`` and the leaves.
"""

from interlock.store.sqlite.reader import SqliteStateReader
from interlock.store.sqlite.schema import STATE_DB
from interlock.store.sqlite.store import SqliteStateStore

__all__ = ["STATE_DB", "SqliteStateReader", "SqliteStateStore"]
