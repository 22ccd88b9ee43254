"""What interlock leaves on disk: private raw and quarantine files, datasets at most 0640,
and a local source that is not a regular file with data refused before a byte is copied."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock.components.standins import StandinServer
from interlock.components.standins.gtfs_realtime import STANDIN_API_KEY, GtfsRealtimeSource
from interlock.components.standins.ptv import DEMO_API_KEY, DEMO_DEVID, PtvSource
from interlock.components.standins.sample_feed import build_zip_of_zips
from interlock.components.standins.source import Source
from interlock.config.loader import parse_config
from interlock.config.model import Config
from interlock.config.registry import BUILTINS

pytestmark = pytest.mark.timeout(60)

PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The umask of an operator's shell, not the unit's 0077: modes must not depend on it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def schedule(path: Path) -> dict[str, Any]:
    return {
        "class": BUILTINS["gtfs_schedule"],
        "frequency": "daily",
        "retries": 0,
        "settings": {"source": {"path": str(path)}},
    }


def make(tmp_path: Path, components: dict[str, Any]) -> Config:
    doc = {
        "components": components,
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
            "retry_backoff_seconds": 0.01,
            "retry_backoff_max_seconds": 0.05,
        },
        "data_quality": {"quarantine_failed_data": True, "default_rules": {"record_count_min": 1}},
        "quota_management": {"enabled": False},
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


async def test_files_are_private_whatever_the_umask(
    tmp_path: Path, open_orch: Callable[[Config], Any], permissive_umask: None
) -> None:
    """Under umask 022: raw and quarantine files 0600 in 0700 folders, every dataset <= 0640."""
    good, bad = tmp_path / "feed.zip", tmp_path / "corrupt.zip"
    good.write_bytes(build_zip_of_zips())
    bad.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 40)
    sources: list[Source] = [GtfsRealtimeSource(), PtvSource()]
    async with StandinServer(sources) as server:
        realtime = server.source("gtfs_realtime")
        assert isinstance(realtime, GtfsRealtimeSource)
        components = {
            "schedule": schedule(good),
            "schedule_bad": schedule(bad),
            "gtfs_realtime": {
                "frequency": "1h",
                "retries": 0,
                "settings": {
                    "endpoints": {n: server.url(p) for n, p in realtime.endpoints().items()},
                    "api_key": STANDIN_API_KEY,
                },
            },
            "ptv_timetable": {
                "frequency": "1h",
                "retries": 0,
                "settings": {
                    "base_url": server.url("/ptv"),
                    "devid": DEMO_DEVID,
                    "api_key": DEMO_API_KEY,
                    "departures": [{"route_type": 0, "stop_id": 1001, "max_results": 3}],
                },
            },
        }
        orch = await open_orch(make(tmp_path, components))
        result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
    statuses = {name: s.status.value for name, s in result.outcomes.items()}
    assert statuses == {
        "schedule": "succeeded",
        "schedule_bad": "failed",
        "gtfs_realtime": "succeeded",
        "ptv_timetable": "succeeded",
    }
    data = tmp_path / "data"
    private = [data / "raw", data / "quarantine"]
    assert any((data / "raw" / "gtfs_realtime").iterdir())
    assert any((data / "raw" / "schedule").iterdir())
    assert (data / "schedule.sqlite").is_file()
    (folder,) = (data / "quarantine" / "schedule_bad").iterdir()
    assert sorted(p.suffix for p in folder.iterdir()) == [".json", ".zip"]
    wrong = []
    for root in private:
        for path in [root, *root.rglob("*")]:
            want = PRIVATE_DIR if path.is_dir() else PRIVATE_FILE
            if mode(path) != want:
                wrong.append(f"{path}: {mode(path):04o}, want {want:04o}")
    for path in data.rglob("*"):
        outside = not any(path.is_relative_to(p) for p in private)
        if path.is_file() and outside and mode(path) & ~0o640:
            wrong.append(f"{path}: {mode(path):04o}, want at most 0640")
    assert wrong == [], "\n".join(wrong)


def special(folder: Path, kind: str) -> Path:
    """A path source that must be refused, made on the spot in ``folder``."""
    folder.mkdir()
    if kind == "environ":
        return Path("/proc/self/environ")
    if kind == "symlink to environ":
        link = folder / "innocent.zip"
        link.symlink_to("/proc/self/environ")
        return link
    if kind == "fifo":
        fifo = folder / "feed.zip"
        os.mkfifo(fifo)
        return fifo
    if kind == "directory":
        return folder
    if kind == "device":
        return Path("/dev/zero")
    assert kind == "not a zip"
    text = folder / "shadow"
    text.write_text("root:$6$not-a-real-hash:19000:0:99999:7:::\n")
    return text


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("environ", "is a kernel file"),
        ("symlink to environ", "is a kernel file"),
        ("fifo", "is a FIFO, not a regular file"),
        ("directory", "is a directory, not a regular file"),
        ("device", "is a character device, not a regular file"),
        ("not a zip", "is not a zip"),
    ],
)
async def test_a_path_source_that_is_not_a_zip_file_is_refused_uncopied(
    tmp_path: Path,
    open_orch: Callable[[Config], Any],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    why: str,
) -> None:
    """/proc/self/environ, a FIFO, a directory, a device, a text file: refused, nothing kept."""
    marker = "env-marker-Vb7Qz"
    monkeypatch.setenv("IL_TEST_MARKER", marker)
    source = special(tmp_path / "in", kind)
    orch = await open_orch(make(tmp_path / "run", {"schedule": schedule(source)}))
    result = await asyncio.wait_for(orch.scheduler.run_once(), 15)
    settled = result.outcomes["schedule"]
    assert settled.status.value == "failed"
    assert f"GTFS source file {str(source)!r}" in (settled.reason or "")
    assert why in (settled.reason or "") and "settings.source.path" in (settled.reason or "")
    data = tmp_path / "run" / "data"
    assert not (data / "raw").exists() and not (data / "quarantine").exists()
    kept = [p for p in data.rglob("*") if p.is_file()] if data.exists() else []
    assert not any(marker.encode() in p.read_bytes() for p in kept)
