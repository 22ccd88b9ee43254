"""Datasets on disk: staging, the atomic swap, one-step rollback, and quarantine.

A snapshot dataset is built in ``<data_dir>/.staging`` and swapped in with one
``rename``: readers see the old file or the new one, never a mix. The previous
version stays beside it (``<name>.previous.sqlite``) for a one-step rollback; with
``keep_versions`` over 2 the last N published versions (live included) are also kept as
``<data_dir>/versions/<name>/<fingerprint>.sqlite`` (hard links: no copy is made).
Rejected payloads go to ``<data_dir>/quarantine/<component>/`` with their report.

Every snapshot carries its publish stamp (:class:`PublishStamp`, table
``_interlock_publish``), written into the staged file before the swap: what the run
will report, so a crash that loses the outcome does not lose the publish.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interlock.errors import PublishError
from interlock.kit.files import DATA_FILE, PRIVATE_FILE, private_dir, restrict, write_private

if TYPE_CHECKING:
    from interlock.kit.context import ComponentContext

STAGING = ".staging"
#: Where the published versions of a snapshot are kept (``versions/<name>/``).
VERSIONS = "versions"

#: The table inside every published snapshot that holds its publish stamp (one row).
STAMP_TABLE = "_interlock_publish"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, kw_only=True)
class PublishStamp:
    """What a publish will report, kept inside the dataset it publishes.

    ``fingerprint``, ``records`` and ``memory`` are exactly what the run's outcome
    and ``ctx.remember()`` report, and ``inputs`` the upstream fingerprints it ran
    on: from them start-up rebuilds the component's state when a crash lost the
    outcome of a publish that happened.
    """

    component: str
    run_id: str
    fingerprint: str
    records: int
    published_at: datetime
    memory: dict[str, Any]
    inputs: dict[str, str | None]

    @classmethod
    def of(
        cls, ctx: ComponentContext, *, fingerprint: str, records: int, memory: dict[str, Any]
    ) -> PublishStamp:
        """The stamp of this run's publish (on the run's clock, as its outcome will be)."""
        return cls(
            component=ctx.name,
            run_id=ctx.run_id,
            fingerprint=fingerprint,
            records=records,
            published_at=ctx.clock(),
            memory=memory,
            inputs={name: state.fingerprint for name, state in ctx.upstream.items()},
        )


def write_stamp(db: Path, stamp: PublishStamp) -> None:
    """Put ``stamp`` into the SQLite file ``db`` (blocking), replacing any stamp there."""
    conn = sqlite3.connect(db)
    try:
        # A finished snapshot is in rollback-journal mode: a read-only reader (another
        # user, mode=ro) can open it with read access alone, which WAL does not allow.
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute(f"DROP TABLE IF EXISTS {STAMP_TABLE}")
        conn.execute(
            f"CREATE TABLE {STAMP_TABLE} (component TEXT NOT NULL, run_id TEXT NOT NULL, "
            "fingerprint TEXT NOT NULL, records INTEGER NOT NULL, published_at TEXT NOT NULL, "
            "memory_json TEXT NOT NULL, inputs_json TEXT NOT NULL)"
        )
        conn.execute(
            f"INSERT INTO {STAMP_TABLE} VALUES (?,?,?,?,?,?,?)",
            (
                stamp.component,
                stamp.run_id,
                stamp.fingerprint,
                stamp.records,
                stamp.published_at.astimezone(UTC).isoformat(),
                # As the state store keeps memory, so the round trip gives the same value.
                json.dumps(stamp.memory, default=str, separators=(",", ":")),
                json.dumps(stamp.inputs, separators=(",", ":")),
            ),
        )
        conn.commit()
    finally:
        conn.close()


def read_stamp(db: Path) -> PublishStamp | None:
    """The publish stamp inside ``db`` (blocking); None when there is no file or no stamp.

    Raises :class:`PublishError` when the file or its stamp cannot be read.
    """
    if not db.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (STAMP_TABLE,)
            ).fetchone()
            if found is None:
                return None  # an append dataset, or one published before stamps existed
            rows = conn.execute(
                "SELECT component, run_id, fingerprint, records, published_at, memory_json, "
                f"inputs_json FROM {STAMP_TABLE}"
            ).fetchall()
        finally:
            conn.close()
        (row,) = rows
        published_at = datetime.fromisoformat(row[4])
        if published_at.tzinfo is None:
            raise ValueError(f"published_at {row[4]!r} has no time zone")
        memory, inputs = json.loads(row[5]), json.loads(row[6])
        if not isinstance(memory, dict) or not isinstance(inputs, dict):
            raise ValueError("memory_json and inputs_json must hold JSON objects")
        return PublishStamp(
            component=row[0],
            run_id=row[1],
            fingerprint=row[2],
            records=int(row[3]),
            published_at=published_at,
            memory=memory,
            inputs=inputs,
        )
    except (sqlite3.Error, ValueError, TypeError) as exc:
        raise PublishError(
            f"cannot read the publish stamp of {str(db)!r}: {exc}; the dataset is left as it is"
        ) from None


class SnapshotDataset:
    """``<data_dir>/<name>.sqlite`` and its staging and previous versions."""

    def __init__(self, data_dir: Path, name: str, *, keep_versions: int = 2) -> None:
        self.data_dir = data_dir
        self.name = name
        self.live = data_dir / f"{name}.sqlite"
        self.previous = data_dir / f"{name}.previous.sqlite"
        #: Versions kept, live included: 2 is live and previous; more adds ``versions/``.
        self.keep_versions = keep_versions
        self.versions = data_dir / VERSIONS / name

    def version_path(self, fingerprint: str) -> Path:
        """Where the published version ``fingerprint`` is kept (while it is one of the last N)."""
        return self.versions / f"{fingerprint}.sqlite"

    def staging_path(self, run_id: str) -> Path:
        """A fresh path to build the next version at (the directory is created)."""
        staging = private_dir(self.data_dir / STAGING, self.data_dir / STAGING)
        path = staging / f"{self.name}-{run_id}.sqlite"
        discard(path)
        return path

    def stamp(self, staged: Path, stamp: PublishStamp) -> None:
        """Write ``stamp`` into ``staged`` before :meth:`publish` (blocking).

        The stamp is then part of the swap: the dataset is live with its stamp, or not
        live at all.
        """
        if not staged.is_file():
            raise PublishError(f"staged dataset {str(staged)!r} does not exist; nothing stamped")
        write_stamp(staged, stamp)

    def read_stamp(self) -> PublishStamp | None:
        """The live dataset's publish stamp (blocking); None without one."""
        return read_stamp(self.live)

    def publish(self, staged: Path) -> None:
        """Swap ``staged`` in as the live dataset (blocking: call from a worker thread).

        The old live file is hard-linked to ``previous`` first, so there is no
        instant at which the live path is missing.
        """
        if not staged.is_file():
            raise PublishError(f"staged dataset {str(staged)!r} does not exist; nothing published")
        try:
            with open(staged, "rb") as f:
                os.fsync(f.fileno())
            restrict(staged, DATA_FILE)  # whatever the umask: the group may read, no one else
            if self.live.exists():
                link = self.previous.with_name(self.previous.name + ".tmp")
                link.unlink(missing_ok=True)
                os.link(self.live, link)
                os.replace(link, self.previous)
            os.replace(staged, self.live)
            _fsync_dir(self.data_dir)
        except OSError as exc:
            raise PublishError(
                f"could not publish {self.name!r} from {str(staged)!r}: {exc}; the live "
                "dataset is unchanged"
            ) from None
        if self.keep_versions > 2:
            self._keep_version()

    def _keep_version(self) -> None:
        """Link the new live version into ``versions/`` and drop those past the last N.

        Best effort: the publish has happened, and a version that could not be linked
        only means an old realtime poll cannot be re-joined to exactly its schedule.
        """
        try:
            stamp = read_stamp(self.live)
            if stamp is None:
                return
            self.versions.mkdir(parents=True, exist_ok=True)
            target = self.version_path(stamp.fingerprint)
            link = target.with_name(target.name + ".tmp")
            link.unlink(missing_ok=True)
            os.link(self.live, link)
            os.replace(link, target)
            # Newest first by the file's own time (a link does not change it).
            kept = sorted(
                self.versions.glob("*.sqlite"),
                key=lambda p: (p.stat().st_mtime_ns, p.name),
                reverse=True,
            )
            for old in kept[self.keep_versions :]:
                old.unlink(missing_ok=True)
        except (OSError, PublishError):
            return

    def rollback(self) -> None:
        """Put the previous version back as the live dataset."""
        if not self.previous.exists():
            raise PublishError(f"dataset {self.name!r} has no previous version to roll back to")
        os.replace(self.previous, self.live)
        _fsync_dir(self.data_dir)


def discard(path: Path) -> None:
    """Remove a staged file and SQLite's companions, if present."""
    for p in (
        path,
        path.with_name(path.name + "-journal"),
        path.with_name(path.name + "-wal"),
        path.with_name(path.name + "-shm"),
    ):
        p.unlink(missing_ok=True)


def quarantine(
    data_dir: Path, component: str, payload: Path | None, report: dict[str, Any], reason: str
) -> Path:
    """Keep a rejected payload and its report for inspection; returns the folder."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = private_dir(data_dir / "quarantine" / component / stamp, data_dir / "quarantine")
    if payload is not None and payload.exists():
        target = folder / payload.name
        try:
            os.link(payload, target)  # the archive keeps the original; a link costs nothing
        except OSError:
            shutil.copy2(payload, target)
        restrict(target, PRIVATE_FILE)
    body = {
        "component": component,
        "reason": reason,
        "quarantined_at": stamp,
        "payload": payload.name if payload else None,
        "report": report,
    }
    write_private(folder / "report.json", json.dumps(body, indent=2, default=str))
    return folder
