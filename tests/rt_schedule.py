"""Publishing a GTFS schedule the way ``gtfs_schedule`` does, for the realtime tests.

The zip is loaded by the real loader, stamped and swapped in by the real
:class:`SnapshotDataset`, so the realtime side reads exactly what a publish leaves.
"""

from __future__ import annotations

import hashlib
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from interlock.components.gtfs_schedule.loader import load_feed
from interlock.components.gtfs_schedule.parallel import Tuning
from interlock.kit.publish import PublishStamp, SnapshotDataset


def publish_zip(data_dir: Path, zip_path: Path, *, name: str = "gtfs_schedule", **kw) -> str:
    """Load ``zip_path`` and publish it as ``<data_dir>/<name>.sqlite``; its fingerprint."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    dataset = SnapshotDataset(data_dir, name, **kw)
    staged = dataset.staging_path(fingerprint[:12])
    load_feed(zip_path, staged, tuning=Tuning(workers=0))
    stamp = PublishStamp(
        component=name,
        run_id=fingerprint[:12],
        fingerprint=fingerprint,
        records=0,
        published_at=datetime.now(UTC),
        memory={},
        inputs={},
    )
    dataset.stamp(staged, stamp)
    dataset.publish(staged)
    return fingerprint


def publish_bytes(data_dir: Path, data: bytes, tmp: Path, **kw) -> str:
    """Publish the zip ``data`` (written to a file under ``tmp`` first)."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"{hashlib.sha256(data).hexdigest()[:12]}.zip"
    path.write_bytes(data)
    return publish_zip(data_dir, path, **kw)


#: The tables the realtime side reads (pathways and transfers only slow the load).
_TABLES = {"agency", "calendar", "calendar_dates", "routes", "stops", "trips", "levels"}


def vic_partial_zip(shared: Path, tmp: Path) -> Path:
    """The real Victorian tables of ``vic-gtfs-partial`` as Transport Victoria's zip of zips."""
    out = tmp / "vic-partial.zip"
    with zipfile.ZipFile(out, "w") as outer:
        for folder in sorted((shared / "vic-gtfs-partial").iterdir()):
            if not folder.is_dir():
                continue
            inner = tmp / f"inner-{folder.name}.zip"
            with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(folder.glob("*.txt")):
                    if f.stem in _TABLES:
                        zf.write(f, f.name)
            outer.write(inner, f"{folder.name}/google_transit.zip")
    return out
