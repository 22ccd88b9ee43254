"""Leader election and fencing on the PostgreSQL state store (the SQL part).

Daemons sharing a database elect one leader with a session advisory lock held on a
dedicated connection (:class:`PgLeaderLock`). The server holds the lease: the
connection sets ``idle_session_timeout``, and the leader runs a heartbeat more often
than that, so a leader that is killed, paused (SIGSTOP) or cut off the network loses
its session, and with it the lock, within the lease, without waiting for TCP.

Each election increments the ``leader`` table's ``epoch``. The leader's store
connections carry the epoch as the ``interlock.epoch`` setting (:func:`fenced_dsn`),
and a statement trigger on every state table compares it with the table's, under
``FOR SHARE``: a write from a stale epoch is refused by the server, and an election
waits for the old leader's open write transactions to end (they are cut after
``idle_in_transaction_session_timeout`` if that leader is paused mid-transaction).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg

from interlock.errors import StoreError
from interlock.store.postgresql.schema import SETTING, migrate, remember_dsn, translated
from interlock.store.postgresql.tables import TABLES

#: The session advisory lock whose holder leads ("intlk" + 2; + 1 is the migration's).
LEADER_LOCK = 0x696E_746C_6B02
#: Serialises the leader table's and the fence's DDL between daemons starting together.
_DDL_LOCK = 0x696E_746C_6B03
#: The session setting that carries a connection's epoch to the fence.
EPOCH_SETTING = "interlock.epoch"
#: SQLSTATE of a write refused by the fence (a custom class: never retried as transient).
STALE_SQLSTATE = "IL001"

_LEADER_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS leader (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    since TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION interlock_fence() RETURNS trigger LANGUAGE plpgsql AS $fence$
DECLARE
    mine TEXT := current_setting('{EPOCH_SETTING}', true);
    current BIGINT;
BEGIN
    IF mine IS NULL OR mine = '' THEN
        RETURN NULL;  -- not a daemon (a maintenance session): not fenced
    END IF;
    SELECT epoch INTO current FROM leader WHERE id = 1 FOR SHARE;
    IF current IS DISTINCT FROM mine::BIGINT THEN
        RAISE EXCEPTION USING ERRCODE = '{STALE_SQLSTATE}',
            MESSAGE = format('write refused: this daemon led in epoch %s, the leader is now '
                             'epoch %s (another daemon took over)', mine, current);
    END IF;
    RETURN NULL;
END
$fence$;
"""


@dataclass(frozen=True, kw_only=True)
class LeaderRow:
    """Who was elected last: the epoch, host, pid and when."""

    epoch: int
    host: str
    pid: int
    since: datetime

    def describe(self) -> str:
        """``host pid N since ISO`` for status lines and refusals."""
        return f"{self.host} pid {self.pid} since {self.since.isoformat(timespec='seconds')}"


def fenced_dsn(dsn: str, epoch: int, *, lease_s: float) -> str:
    """``dsn`` with the epoch the fence checks, and a cut for a paused transaction."""
    settings = {
        EPOCH_SETTING: str(epoch),
        "idle_in_transaction_session_timeout": str(max(1, int(lease_s * 1000))),
    }
    joiner = "&" if urlsplit(dsn).query else "?"
    return dsn + joiner + urlencode(settings)


class PgLeaderLock:
    """The election's connection: take the lock, bump the epoch, keep the lease."""

    def __init__(self, dsn: str, *, lease_s: float, timeout_s: float = 5.0) -> None:
        self.dsn = dsn
        self.lease_s = lease_s
        self.timeout_s = timeout_s
        self.epoch: int | None = None
        self._conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        remember_dsn(self.dsn)
        lease_ms = str(max(1, int(self.lease_s * 1000)))
        keepalive = str(max(1, int(self.lease_s / 3)))
        settings: dict[str, Any] = {
            "application_name": "interlock leader election",
            "idle_session_timeout": lease_ms,  # the server ends a silent session: the lease
            "tcp_keepalives_idle": keepalive,
            "tcp_keepalives_interval": keepalive,
            "tcp_keepalives_count": "3",
        }
        async with translated("connecting for the leader election"):
            conn = await asyncpg.connect(self.dsn, timeout=self.timeout_s, server_settings=settings)
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
                    await conn.execute(_LEADER_SCHEMA)
            except BaseException:
                await conn.close(timeout=self.timeout_s)
                raise
        self._conn = conn
        return conn

    async def try_lead(self, host: str, pid: int, now: datetime) -> int | None:
        """Take the lock if free, then fence the tables and start a new epoch; the epoch
        (None: another daemon leads)."""
        conn = await self._connection()
        async with translated("trying to take the leader lock"):
            won = await conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", LEADER_LOCK, timeout=self.timeout_s
            )
            if not won:
                return None
            try:
                await migrate(conn)  # the fence's triggers need the state tables
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
                    for table in TABLES:
                        await conn.execute(
                            f"CREATE OR REPLACE TRIGGER interlock_fence BEFORE INSERT OR "
                            f"UPDATE OR DELETE ON {table} FOR EACH STATEMENT "
                            "EXECUTE FUNCTION interlock_fence()"
                        )
                    # Waits for the old leader's open writes (they hold the row FOR SHARE).
                    epoch = await conn.fetchval(
                        "INSERT INTO leader AS l (id, epoch, host, pid, since) "
                        "VALUES (1, 1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET "
                        "epoch = l.epoch + 1, host = $1, pid = $2, since = $3 RETURNING epoch",
                        host,
                        pid,
                        now.astimezone(UTC).isoformat(),
                        timeout=self.lease_s * 2,
                    )
            except BaseException:
                await self.aclose()  # the lock goes with the session
                raise
        self.epoch = int(epoch)
        return self.epoch

    async def heartbeat(self) -> None:
        """Renew the lease; raise StoreError when the session or the leadership is gone."""
        if self._conn is None or self._conn.is_closed() or self.epoch is None:
            raise StoreError(f"the leader's session on {SETTING} is closed")
        async with translated("renewing the leader lease"):
            epoch = await self._conn.fetchval(
                "SELECT epoch FROM leader WHERE id = 1", timeout=self.lease_s / 2
            )
        if epoch != self.epoch:
            raise StoreError(f"another daemon leads now (epoch {epoch}, this one {self.epoch})")

    async def leader(self) -> LeaderRow | None:
        """The last elected leader (None: never any)."""
        conn = await self._connection()
        async with translated("reading the leader"):
            row = await conn.fetchrow(
                "SELECT epoch, host, pid, since FROM leader WHERE id = 1", timeout=self.timeout_s
            )
        if row is None:
            return None
        return LeaderRow(
            epoch=int(row["epoch"]),
            host=row["host"],
            pid=int(row["pid"]),
            since=datetime.fromisoformat(row["since"]),
        )

    async def aclose(self) -> None:
        """Close the connection (the lock is released with it). Idempotent."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=self.timeout_s)
            except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError):
                conn.terminate()


def this_host() -> tuple[str, int]:
    """This daemon's host name and pid, as the leader table records them."""
    return socket.gethostname(), os.getpid()
