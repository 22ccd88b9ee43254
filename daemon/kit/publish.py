"""Datasets on disk: staging, the atomic swap, one-step rollback, and quarantine.

A snapshot dataset is built in ``<data_dir>/.staging`` and swapped in with one
``rename``: readers see the old file or the new one, never a mix. The previous
version stays beside it (``<name>.previous.sqlite``) for a one-step rollback.
Rejected payloads go to ``<data_dir>/quarantine/<component>/`` with their report.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from interlock.errors import PublishError
from interlock.kit.files import DATA_FILE, PRIVATE_FILE, private_dir, restrict, write_private

STAGING = ".staging"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotDataset:
    """``<data_dir>/<name>.sqlite`` and its staging and previous versions."""

    def __init__(self, data_dir: Path, name: str) -> None:
        self.data_dir = data_dir
        self.name = name
        self.live = data_dir / f"{name}.sqlite"
        self.previous = data_dir / f"{name}.previous.sqlite"

    def staging_path(self, run_id: str) -> Path:
        """A fresh path to build the next version at (the directory is created)."""
        staging = private_dir(self.data_dir / STAGING, self.data_dir / STAGING)
        path = staging / f"{self.name}-{run_id}.sqlite"
        discard(path)
        return path

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
