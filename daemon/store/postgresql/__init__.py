"""The PostgreSQL state store: one database several daemons share (asyncpg).

``tables`` holds the schema and its version, ``schema`` the connections, migrations
and errors, ``reader`` every read, ``store`` the writes and the shared quota. May
import ``store.abc``, ``store.sqlite`` (the batch and the value encodings) and the leaves.
"""

from interlock.store.postgresql.reader import PgStateReader
from interlock.store.postgresql.store import PgStateStore

__all__ = ["PgStateReader", "PgStateStore"]
