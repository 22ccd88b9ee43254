"""The last N schedule versions are kept, so a realtime poll can be joined to the one it used."""

from __future__ import annotations

from pathlib import Path

from interlock.components.gtfs_realtime.schedule_index import ScheduleSource
from interlock.components.standins.sample_feed import build_zip_of_zips
from interlock.kit.publish import SnapshotDataset
from tests.rt_schedule import publish_bytes


def test_the_last_n_versions_are_kept_by_fingerprint(tmp_path: Path) -> None:
    """With keep_versions 3, four publishes leave the last three under versions/<name>/."""
    data = tmp_path / "data"
    fps = [
        publish_bytes(data, build_zip_of_zips(v), tmp_path, keep_versions=3) for v in (1, 2, 3, 4)
    ]
    dataset = SnapshotDataset(data, "gtfs_schedule", keep_versions=3)
    kept = sorted(p.name for p in dataset.versions.iterdir())
    assert kept == sorted(f"{fp}.sqlite" for fp in fps[1:])
    # The live file is one of them, as a hard link: no copy was made.
    assert dataset.version_path(fps[-1]).stat().st_ino == dataset.live.stat().st_ino
    old = ScheduleSource(dataset.version_path(fps[1])).current()
    assert old is not None and old.version == fps[1]


def test_two_versions_are_live_and_previous_only(tmp_path: Path) -> None:
    """The default (2) keeps what it always did: live and .previous, no versions folder."""
    data = tmp_path / "data"
    for v in (1, 2, 3):
        publish_bytes(data, build_zip_of_zips(v), tmp_path)
    assert not (data / "versions").exists()
    assert (data / "gtfs_schedule.previous.sqlite").exists()
