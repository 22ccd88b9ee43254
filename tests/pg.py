"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, a Unix socket.

One cluster per session (:func:`pg_cluster`), a fresh database per test
(:meth:`PgCluster.new_database`). The server listens on no TCP port
(``listen_addresses=''``), only on a socket in its folder, and is stopped at the end
(``pg_ctl stop -m fast``, bounded). initdb refuses to run as root, so as root the
cluster is made and run by ``nobody``. Without PostgreSQL's binaries the tests that
need it skip and say why.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")


def find_bin_dir() -> Path | None:
    """The folder holding initdb, pg_ctl and psql (newest version first), or None."""
    found = sorted(
        (Path(d) for g in _BIN_GLOBS for d in glob.glob(g)),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split("-")[-1:]],
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        found.append(Path(os.path.realpath(on_path)).parent)
    for d in found:
        if all((d / tool).exists() for tool in ("initdb", "pg_ctl", "psql")):
            return d
    return None


@dataclass
class PgCluster:
    """A running cluster: where its socket is, and how to make a database on it."""

    bin_dir: Path
    root: Path
    run_as: dict[str, Any]
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def socket_dir(self) -> str:
        return str(self.root)

    def dsn(self, database: str) -> str:
        """A DSN for ``database`` through the Unix socket (user ``postgres``, trust auth)."""
        return f"postgresql:///{database}?host={self.socket_dir}&user=postgres"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement with psql; its output."""
        done = subprocess.run(
            [
                *(str(self.bin_dir / "psql"), "-h", self.socket_dir, "-U", "postgres"),
                *("-d", database, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def new_database(self) -> str:
        """A new empty database's DSN."""
        name = f"t{os.getpid()}_{next(self._names)}"
        try:  # a file copy is quicker for a tiny database (PostgreSQL 15 and later)
            self.psql(f"CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY")
        except subprocess.CalledProcessError:
            self.psql(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.dsn(name)


def _pg_ctl(cluster: PgCluster, *args: str, timeout: float = 40) -> None:
    subprocess.run(
        [str(cluster.bin_dir / "pg_ctl"), "-D", str(cluster.root / "data"), *args],
        capture_output=True,
        timeout=timeout,
        check=True,
        cwd=cluster.root,  # nobody may not enter the caller's folder (CI's clone under /root)
        **cluster.run_as,
    )


def start_cluster() -> PgCluster:
    """initdb and start a cluster under a new temporary folder (skips without PostgreSQL)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL not found (no initdb/pg_ctl/psql under /usr/lib/postgresql/*/bin or "
            "on PATH); install Debian's postgresql package to run the PostgreSQL store tests"
        )
    # Short, under /tmp: a Unix socket path must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="ilpg-", dir="/tmp"))
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to nobody
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    cluster = PgCluster(bin_dir, root, run_as)
    subprocess.run(
        [
            *(str(bin_dir / "initdb"), "-D", str(root / "data"), "-A", "trust"),
            *("-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"),
        ],
        capture_output=True,
        timeout=120,
        check=True,
        cwd=root,
        **run_as,
    )
    options = (
        f"-c listen_addresses='' -k {root} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    _pg_ctl(cluster, "-l", str(root / "server.log"), "-w", "-t", "30", "-o", options, "start")
    return cluster


def stop_cluster(cluster: PgCluster) -> None:
    """Stop the server (fast, bounded) and remove its folder."""
    try:
        _pg_ctl(cluster, "-m", "fast", "-w", "-t", "20", "stop", timeout=30)
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL cluster for the whole session, stopped at its end."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture
def pg_dsn(pg_cluster: PgCluster) -> str:
    """The DSN of a fresh, empty database on the session's cluster."""
    return pg_cluster.new_database()
