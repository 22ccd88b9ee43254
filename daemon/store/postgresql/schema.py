"""Connections to the PostgreSQL state store, its versioned migrations, and its errors.

The DSN is a secret (it may hold a password): it is registered with the mask, and no
error, log line or status names it; they name the setting and the credential instead.
A server that refused or lost a connection raises :class:`StoreUnavailableError`,
which the history subscriber waits out as it does a locked SQLite file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote, urlsplit

import asyncpg

from interlock.errors import SchemaVersionError, StoreError, StoreUnavailableError
from interlock.secrets import mask, remember
from interlock.store.postgresql.tables import MIGRATIONS, SCHEMA, VERSION

#: What errors and logs call the store instead of its DSN.
SETTING = "runtime_settings.state_store.postgresql.dsn"
#: Held while migrating, so two daemons starting together migrate once.
_MIGRATE_LOCK = 0x696E_746C_6B01  # "intlk" + 1

# SQLSTATE classes worth waiting for: connection exceptions, insufficient resources
# (disk full, too many connections), operator intervention (shutdown, restart),
# transaction rollback (serialization failure, deadlock).
_TRANSIENT_CLASSES = ("08", "53", "57", "40")


def remember_dsn(dsn: str) -> None:
    """Register the DSN, and the password inside it, with the mask."""
    remember(dsn)
    try:
        password = urlsplit(dsn).password
    except ValueError:
        password = None
    if password:
        remember(password)
        remember(unquote(password))


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the server is unreachable or busy for now (try again later)."""
    if isinstance(exc, OSError | TimeoutError):
        return True  # refused, no such socket, reset, timed out
    if isinstance(exc, asyncpg.ConnectionDoesNotExistError | asyncpg.InterfaceError):
        return True  # lost mid-query, or the pool's connection closed under it
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state[:2] in _TRANSIENT_CLASSES
    return False


def store_error(exc: BaseException, doing: str) -> StoreError:
    """``exc`` as the store's error, naming what it did, never the DSN."""
    text = mask(f"{type(exc).__name__}: {exc}")
    if is_transient(exc):
        return StoreUnavailableError(
            f"the PostgreSQL state store ({SETTING}) is unavailable while {doing}: {text}; "
            "interlock tries again until it answers"
        )
    return StoreError(f"the PostgreSQL state store ({SETTING}) failed while {doing}: {text}")


@asynccontextmanager
async def translated(doing: str) -> AsyncIterator[None]:
    """Raise the driver's and the network's errors as :class:`StoreError`s."""
    try:
        yield
    except StoreError:
        raise
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise store_error(exc, doing) from None


async def connect_pool(dsn: str, *, max_size: int = 4, timeout_s: float = 10.0) -> asyncpg.Pool:
    """A pool of connections to the store (opened now, so a wrong DSN fails at start)."""
    remember_dsn(dsn)
    async with translated("connecting"):
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=timeout_s,
            command_timeout=60,
            server_settings={"application_name": "interlock"},
        )
    assert pool is not None
    return pool


async def schema_version(conn: asyncpg.Connection) -> int:
    """The database's schema version (0: no ``schema_version`` table or row yet)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    found = await conn.fetchval("SELECT max(version) FROM schema_version")
    return int(found or 0)


async def migrate(conn: asyncpg.Connection, *, version: int = VERSION) -> int:
    """Bring the database to ``version`` in one transaction; returns the old version.

    Refuses a database newer than the code; a failing step rolls everything back.
    """
    async with translated("migrating the schema"), conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
        found = await schema_version(conn)
        if found > version:
            raise SchemaVersionError(
                f"the PostgreSQL state store ({SETTING}) has schema version {found}, newer "
                f"than this interlock's {version}: it was written by a newer interlock. "
                "Upgrade interlock, or point the setting at another database"
            )
        if found == version:
            return found
        has_tables = await conn.fetchval("SELECT to_regclass('runs') IS NOT NULL")
        try:
            for step in MIGRATIONS[found:version] if has_tables else ():
                if step:
                    await conn.execute(step)
            await conn.execute(SCHEMA)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            await conn.execute("DELETE FROM schema_version")
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
        except asyncpg.PostgresError as exc:
            if is_transient(exc):
                raise
            raise SchemaVersionError(
                f"cannot migrate the PostgreSQL state store ({SETTING}) from schema version "
                f"{found} to {version}: {mask(str(exc))}; the database is unchanged"
            ) from None
    return found
