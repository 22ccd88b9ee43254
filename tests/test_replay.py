"""``interlock replay``: a dataset rebuilt from the raw archive, with no network and no quota.

The original run fetches from the stand-ins; the replay runs after they have stopped
(their port is closed), through the real CLI and the state directory's lock.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import structlog

from interlock.cli.main import main
from interlock.components.standins import StandinServer
from interlock.components.standins.gtfs_realtime import PREFIX as RT
from interlock.components.standins.gtfs_realtime import STANDIN_API_KEY
from interlock.components.standins.ptv import DEMO_API_KEY, DEMO_DEVID
from interlock.config.loader import load_config
from interlock.service.app import Orchestrator
from interlock.store.lock import StateLock
from tests.test_datavic import CKAN, STATION

pytestmark = pytest.mark.timeout(60)

#: Tables whose rows name the run and its times: compared by what they fingerprint.
STAMPED = ("provenance", "_interlock_publish")
REPLAYABLE = ["gtfs_schedule", "datavic_station_patronage", "gtfs_realtime", "ptv_timetable"]
#: What a parser bug might have stored, per component: the replay must put it right.
DAMAGE = {
    "gtfs_schedule": "UPDATE stops SET stop_name = 'mis-parsed'",
    "datavic_station_patronage": "UPDATE station_patronage SET pax_annual = -1",
    "gtfs_realtime": "UPDATE trip_updates SET trip_id = 'mis-parsed'",
    "ptv_timetable": "UPDATE disruptions SET title = 'mis-parsed'; "
    "UPDATE departures SET platform_number = 'x'; DELETE FROM stops",
}
#: Departures from the PTV stand-in's generated network (as config/demo.json asks).
PTV_DEPARTURES = [
    {"route_type": 0, "stop_id": 1001, "max_results": 8},
    {"route_type": 1, "stop_id": 1001, "max_results": 8},
]


def config_file(tmp_path: Path, server: StandinServer) -> Path:
    """gtfs_schedule through the stand-in CKAN, station patronage joined to it."""
    gtfs = {
        "source": {"ckan": {"base_url": server.url(CKAN), "dataset": "gtfs-schedule"}},
        "allow_private_addresses": True,  # the stand-ins are on 127.0.0.1
    }
    station = {
        "ckan_url": server.url(CKAN),
        "dataset": STATION,
        "resources": "all",
        "allow_private_addresses": True,
    }
    doc = {
        "components": {
            "gtfs_schedule": {"frequency": "daily", "retries": 0, "settings": gtfs},
            "datavic_station_patronage": {
                "frequency": "weekly",
                "retries": 0,
                "dependencies": ["gtfs_schedule"],
                "settings": station,
            },
            "publishes": {"class": "tests.testcomponents:Publishes", "frequency": "daily"},
            "gtfs_realtime": {
                "frequency": "1m",
                "dependencies": ["gtfs_schedule"],
                "settings": {
                    "endpoints": {"metro_tu": server.url(f"{RT}/metro/trip-updates")},
                    "api_key": STANDIN_API_KEY,
                },
            },
            "ptv_timetable": {
                "frequency": "15m",
                "retries": 0,
                "settings": {
                    "base_url": server.url("/ptv"),
                    "devid": DEMO_DEVID,
                    "api_key": DEMO_API_KEY,
                    "departures": PTV_DEPARTURES,
                },
            },
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
    }
    path = tmp_path / "orchestration.json"
    path.write_text(json.dumps(doc))
    return path


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted (the stamped tables left out)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY 1")
            if r[0] not in STAMPED
        ]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    finally:
        conn.close()


def state(config_path: Path) -> sqlite3.Connection:
    db = config_path.parent / "state" / "state.sqlite"
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def quota_used(config_path: Path) -> Any:
    conn = state(config_path)
    try:
        return conn.execute("SELECT value FROM meta WHERE key LIKE 'quota%'").fetchall()
    finally:
        conn.close()


def runs(config_path: Path, name: str = "gtfs_schedule") -> list[tuple[str, str, int]]:
    conn = state(config_path)
    try:
        return conn.execute(
            "SELECT r.trigger, c.status, c.records FROM runs r JOIN component_runs c "
            "USING (run_id) WHERE c.component = ? ORDER BY r.started_at",
            (name,),
        ).fetchall()
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def _forget_cli_logging() -> Any:
    """main() points logging at this test's captured stderr; the next test must not use it."""
    yield
    structlog.reset_defaults()


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def original(tmp_path: Path) -> tuple[Path, int]:
    """A config whose components were run once against the stand-ins, now stopped.

    gtfs_realtime runs too: its poll spends quota, so the counter has something to keep.
    """

    async def first_run() -> tuple[Path, int]:
        async with StandinServer() as server:
            path = config_file(tmp_path, server)
            async with Orchestrator(load_config(path), log_events=False) as orch:
                result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
                assert not result.failed, result.outcomes
                assert orch.bus is not None
                await orch.bus.flush()
            port = urlsplit(server.base_url).port
            assert port is not None
            return path, port

    return asyncio.run(first_run())


@pytest.mark.parametrize("name", REPLAYABLE)
def test_replay_rebuilds_the_same_rows_with_no_network_and_no_quota(
    original: tuple[Path, int], name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows damaged after the original run are re-parsed right, the stand-ins' port closed:
    every table holds the original run's rows again."""
    path, port = original
    live = path.parent / "data" / f"{name}.sqlite"
    before = dump(live)
    conn = sqlite3.connect(live, isolation_level=None)
    for statement in DAMAGE[name].split("; "):
        assert conn.execute(statement).rowcount > 0
    conn.close()
    assert dump(live) != before
    stamp_before = live.stat().st_ino
    quota_before = quota_used(path)
    assert quota_before  # the realtime poll was counted
    assert port_closed(port)
    assert main(["replay", name, "--config", str(path), "--log-level", "error"]) == 0
    assert "replayed from the raw archive" in capsys.readouterr().out
    if name not in ("gtfs_realtime", "ptv_timetable"):  # snapshots are swapped in
        assert live.stat().st_ino != stamp_before
    trigger, status, records = runs(path, name)[-1]
    assert (trigger, status) == ("replay", "succeeded") and records > 0
    assert dump(live) == before
    assert quota_used(path) == quota_before


def test_replay_is_recorded_with_trigger_replay(original: tuple[Path, int]) -> None:
    """The replay's history row says trigger=replay and succeeded."""
    path, _ = original
    assert main(["replay", "gtfs_schedule", "--config", str(path), "--log-level", "error"]) == 0
    assert runs(path)[-1][:2] == ("replay", "succeeded")


def test_replay_refuses_while_a_daemon_holds_the_state_directory(
    original: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """With the state lock held elsewhere the replay says to stop the daemon, exit 2."""
    path, _ = original
    lock = StateLock(path.parent / "state")
    lock.acquire()
    try:
        assert main(["replay", "gtfs_schedule", "--config", str(path)]) == 2
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert "stop the daemon" in err and "Traceback" not in err


def test_replay_of_a_component_that_cannot_replay_is_refused(
    original: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """A component with no archive to rebuild from: exit 2, saying which can."""
    path, _ = original
    assert main(["replay", "publishes", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'publishes' cannot be replayed" in err and "gtfs_schedule" in err


def test_replay_without_the_archived_payload_fails_and_keeps_the_dataset(
    original: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """The payload pruned from the archive: exit 1 naming archive_keep; the live file stays."""
    path, _ = original
    data = path.parent / "data"
    for zipped in (data / "raw" / "gtfs_schedule").iterdir():
        zipped.unlink()
    inode = (data / "gtfs_schedule.sqlite").stat().st_ino
    assert main(["replay", "gtfs_schedule", "--config", str(path), "--log-level", "error"]) == 1
    assert "archive_keep" in capsys.readouterr().err
    assert (data / "gtfs_schedule.sqlite").stat().st_ino == inode


def test_replay_since_after_the_payload_was_archived_is_refused(
    original: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """--since later than the archived payload: exit 1, the archive time named."""
    path, _ = original
    args = ["replay", "gtfs_schedule", "--config", str(path), "--since", "2999-01-01"]
    assert main([*args, "--log-level", "error"]) == 1
    assert "before --since" in capsys.readouterr().err


def test_realtime_replay_since_names_polls_no_longer_archived(
    original: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """--since covering a poll whose payload was pruned: exit 1 naming archive_keep; no
    row changes. A --since after every poll: exit 1, nothing to replay."""
    path, _ = original
    live = path.parent / "data" / "gtfs_realtime.sqlite"
    before = dump(live)
    later = ["replay", "gtfs_realtime", "--config", str(path), "--since", "2999-01-01"]
    assert main([*later, "--log-level", "error"]) == 1
    assert "no stored poll to replay" in capsys.readouterr().err
    for pb in (path.parent / "data" / "raw" / "gtfs_realtime").iterdir():
        pb.unlink()
    args = ["replay", "gtfs_realtime", "--config", str(path), "--since", "2000-01-01"]
    assert main([*args, "--log-level", "error"]) == 1
    assert "archive_keep" in capsys.readouterr().err
    assert dump(live) == before


def test_ptv_replay_without_the_archived_bundles_fails_and_keeps_the_dataset(
    original: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """The poll's bundle pruned from the archive: exit 1 naming archive_keep; no row changes.
    A --since after every poll: exit 1, nothing to replay."""
    path, _ = original
    live = path.parent / "data" / "ptv_timetable.sqlite"
    before = dump(live)
    later = ["replay", "ptv_timetable", "--config", str(path), "--since", "2999-01-01"]
    assert main([*later, "--log-level", "error"]) == 1
    assert "no stored poll to replay" in capsys.readouterr().err
    for bundle in (path.parent / "data" / "raw" / "ptv_timetable").iterdir():
        bundle.unlink()
    assert main(["replay", "ptv_timetable", "--config", str(path), "--log-level", "error"]) == 1
    err = capsys.readouterr().err
    assert "archive_keep" in err and "Traceback" not in err
    assert dump(live) == before


def test_ptv_bundles_hold_every_answer_and_never_the_devid_or_key(
    original: tuple[Path, int],
) -> None:
    """Each poll names its bundle; the bundle holds one reply per request, and neither the
    devid nor the key nor a signature appears in its bytes (compressed or not)."""
    import zipfile

    path, _ = original
    data = path.parent / "data"
    conn = sqlite3.connect(f"file:{data / 'ptv_timetable.sqlite'}?mode=ro", uri=True)
    try:
        ((sha, requests),) = conn.execute("SELECT bundle_sha256, requests FROM polls").fetchall()
    finally:
        conn.close()
    bundle = data / "raw" / "ptv_timetable" / f"{sha}.zip"
    raw = bundle.read_bytes()
    with zipfile.ZipFile(bundle) as zf:
        members = b"".join(zf.read(n) for n in zf.namelist())
        manifest = json.loads(zf.read("requests.json"))
    assert len(manifest) == requests
    for blob in (raw, members):
        for secret in (DEMO_DEVID, DEMO_API_KEY, "signature"):
            assert secret.encode() not in blob


def test_ptv_replay_rebuilds_several_polls_and_keeps_a_repeated_bundle_once(
    tmp_path: Path,
) -> None:
    """Three polls, the second repeating the first's answers, the third a new version:
    every table is rebuilt from the bundles with each poll's time, run and changed flag;
    one file per distinct bundle. With the oldest bundle gone the default replays the
    newest polls only, and a --since covering it is refused."""
    from interlock.components.standins.ptv import PtvSource

    async def polls() -> Path:
        async with StandinServer([PtvSource()]) as server:
            settings = {
                "base_url": server.url("/ptv"),
                "devid": DEMO_DEVID,
                "api_key": DEMO_API_KEY,
                "departures": PTV_DEPARTURES,
            }
            doc = {
                "components": {
                    "ptv_timetable": {"frequency": "15m", "retries": 0, "settings": settings}
                },
                "runtime_settings": {
                    "state_dir": str(tmp_path / "state"),
                    "data_dir": str(tmp_path / "data"),
                },
            }
            path = tmp_path / "orchestration.json"
            path.write_text(json.dumps(doc))
            async with Orchestrator(load_config(path), log_events=False) as orch:
                for version in (1, 1, 2):
                    if version > 1:
                        server.publish("ptv_timetable", version)
                    result = await asyncio.wait_for(orch.scheduler.run_once(force=True), 30)
                    assert not result.failed, result.outcomes
        return path

    path = asyncio.run(polls())
    live = tmp_path / "data" / "ptv_timetable.sqlite"
    raw = tmp_path / "data" / "raw" / "ptv_timetable"
    before = dump(live)
    shas = [r[-1] for r in sorted(before["polls"])]  # bundle_sha256, by poll_id
    assert shas[0] == shas[1] != shas[2] and len(list(raw.iterdir())) == 2
    assert [r[6] for r in sorted(before["polls"])] == [1, 0, 1]  # changed
    conn = sqlite3.connect(live, isolation_level=None)
    conn.execute("UPDATE runs SET destination_name = 'mis-parsed'")
    conn.close()
    args = ["replay", "ptv_timetable", "--config", str(path), "--log-level", "error"]
    assert main(args) == 0
    assert dump(live) == before
    (raw / f"{shas[0]}.zip").unlink()  # pruned: the newest poll alone is replayed
    assert main(args) == 0
    assert dump(live) == before
    assert main([*args, "--since", "2000-01-01"]) == 1


def test_a_version_2_ptv_dataset_gains_bundle_sha256_and_its_old_polls_are_not_replayed(
    tmp_path: Path,
) -> None:
    """A file written before bundles migrates in place (the poll kept, its bundle NULL); a
    replay of it is refused naming archive_keep, since no archived answers stand behind it."""
    from interlock.components.ptv_timetable.replay import polls_to_replay
    from interlock.components.ptv_timetable.storage import connect
    from interlock.errors import ReplayError

    db = tmp_path / "ptv_timetable.sqlite"
    connect(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("ALTER TABLE polls DROP COLUMN bundle_sha256")
    conn.execute(
        "INSERT INTO polls (run_id, polled_at, requests, departures, disruptions, changed, "
        "fingerprint) VALUES ('r1', '2026-01-01T00:00:00Z', 6, 0, 0, 1, 'f')"
    )
    conn.execute("PRAGMA user_version=2")
    conn.close()
    connect(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (3,)
    assert conn.execute("SELECT run_id, bundle_sha256 FROM polls").fetchall() == [("r1", None)]
    conn.close()
    with pytest.raises(ReplayError, match="archive_keep"):
        polls_to_replay(db, tmp_path / "raw", None)
