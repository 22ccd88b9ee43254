"""The store the config names: ``runtime_settings.state_store`` made into a store or a reader.

SQLite is ``state.sqlite`` in ``state_dir``; PostgreSQL the database behind the DSN.
The PostgreSQL driver is imported only when the config asks for it, so the CLI's
quick paths and a single-VM daemon never load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlock.config.model import Runtime

if TYPE_CHECKING:
    from interlock.store.postgresql import PgStateReader, PgStateStore
    from interlock.store.sqlite import SqliteStateReader, SqliteStateStore


def shared(runtime: Runtime) -> bool:
    """Whether the state lives in a database several daemons may share (PostgreSQL)."""
    return runtime.state_store.kind == "postgresql"


def state_store(runtime: Runtime) -> SqliteStateStore | PgStateStore:
    """The daemon's read-write store as configured (not yet open)."""
    if shared(runtime):
        from interlock.store.postgresql import PgStateStore

        assert runtime.state_store.dsn is not None
        return PgStateStore(runtime.state_store.dsn)
    from interlock.store.sqlite import STATE_DB, SqliteStateStore

    return SqliteStateStore(runtime.state_dir / STATE_DB)


def state_reader(runtime: Runtime, *, live: bool = True) -> SqliteStateReader | PgStateReader:
    """A read-only view of the configured state (not yet open; ``async with`` it).

    ``live`` (SQLite only) says whether a daemon may be writing meanwhile.
    """
    if shared(runtime):
        from interlock.store.postgresql import PgStateReader

        assert runtime.state_store.dsn is not None
        return PgStateReader(runtime.state_store.dsn)
    from interlock.store.sqlite import STATE_DB, SqliteStateReader

    return SqliteStateReader(runtime.state_dir / STATE_DB, live=live)
