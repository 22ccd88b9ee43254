"""Publish stamps inside snapshot datasets, and the start-up reconciliation that reads them:
a publish that happened is never forgotten, and never re-downloaded as new."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from interlock.components.datavic.component import SETTINGS_SCHEMA as DATAVIC_SETTINGS
from interlock.components.standins import StandinServer
from interlock.config.loader import parse_config
from interlock.config.model import Config
from interlock.kit.publish import PublishStamp, SnapshotDataset, read_stamp, write_stamp
from interlock.service.app import Orchestrator
from interlock.service.reconcile import reconciled, unrecorded
from interlock.store.abc import ComponentState

pytestmark = pytest.mark.timeout(60)

CKAN = "/ckan/api/3/action/"
TEMPORAL = "monthly-average-patronage-by-day-type-and-by-mode"
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)

#: Each snapshot component, and the reason its run gives when the source is unchanged.
SNAPSHOTS = {
    "gtfs_schedule": "source answered 304 Not Modified (decided by api_etag)",
    "datavic_temporal_patronage": (
        "CKAN metadata unchanged (last_modified, metadata_modified, hash, size)"
        " (decided by api_etag+file_hash)"
    ),
}


def make(tmp_path: Path, server: StandinServer, name: str) -> Config:
    if name == "gtfs_schedule":
        source = {"url": server.url("/gtfs/schedule/google_transit.zip")}
        entry: dict[str, Any] = {"frequency": "daily", "settings": {"source": source}}
    else:
        settings = {"ckan_url": server.url(CKAN), "dataset": TEMPORAL, "resources": "all"}
        if "allow_private_addresses" in DATAVIC_SETTINGS["properties"]:
            # The stand-in CKAN's resources are on 127.0.0.1 (the hostile-inputs work
            # refuses private addresses from CKAN unless told).
            settings["allow_private_addresses"] = True
        entry = {"frequency": "weekly", "settings": settings}
    doc = {
        "components": {name: {"retries": 0, **entry}},
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


def forget_everything(state_dir: Path) -> None:
    """A state database that never heard of any run (lost, or never written)."""
    for path in state_dir.glob("state.sqlite*"):
        path.unlink()


async def publish_once(config: Config, name: str) -> tuple[ComponentState, dict[str, Any]]:
    """One real run that publishes; the state and history row it leaves."""
    async with Orchestrator(config, log_events=False) as orch:
        result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
        assert result.outcomes[name].status.value == "succeeded"
        assert orch.bus is not None and await orch.bus.flush()
        state = (await orch.store.component_states())[name]
        (row,) = await orch.store.history(component=name)
    return state, row


@pytest.mark.parametrize("name", sorted(SNAPSHOTS))
async def test_a_publish_carries_what_its_outcome_reports(tmp_path, name):
    """The live dataset's stamp holds the run, fingerprint, records and memory the state got."""
    async with StandinServer() as server:
        config = make(tmp_path, server, name)
        state, row = await publish_once(config, name)
    stamp = read_stamp(tmp_path / "data" / f"{name}.sqlite")
    assert stamp is not None
    assert (stamp.component, stamp.run_id) == (name, row["run_id"])
    assert (stamp.fingerprint, stamp.records) == (state.fingerprint, state.records)
    assert stamp.memory == state.memory and stamp.inputs == state.inputs
    assert state.published_at is not None and stamp.published_at <= state.published_at


@pytest.mark.parametrize("name", sorted(SNAPSHOTS))
async def test_a_publish_the_state_never_heard_of_is_reconciled(tmp_path, open_orch, name):
    """A stamped dataset and a state database that never saw its run: start-up rebuilds the
    state from the stamp, history shows the run succeeded, and the next run is unchanged."""
    async with StandinServer() as server:
        config = make(tmp_path, server, name)
        published, row = await publish_once(config, name)
        forget_everything(tmp_path / "state")
        with capture_logs() as logs:
            orch = await open_orch(config)
        state = (await orch.store.component_states())[name]
        history = await orch.store.history(component=name)
        again = await asyncio.wait_for(orch.scheduler.run_once([name]), 30)
    assert (state.fingerprint, state.records) == (published.fingerprint, published.records)
    assert state.memory == published.memory
    assert (state.last_status, state.last_success_at) == ("succeeded", state.published_at)
    assert [(h["run_id"], h["status"], h["records"]) for h in history] == [
        (row["run_id"], "succeeded", row["records"])
    ]
    assert history[0]["reason"].startswith("reconciled at start-up")
    (line,) = [e for e in logs if e["event"] == "state_reconciled"]
    assert (line["component"], line["run_id"]) == (name, row["run_id"])
    assert line["fingerprint"] == published.fingerprint
    settled = again.outcomes[name]
    assert (settled.status.value, settled.reason) == ("unchanged", SNAPSHOTS[name])


async def test_a_recorded_publish_is_not_reconciled_again(tmp_path, open_orch):
    """A restart after a clean run leaves its state and history exactly as they were."""
    async with StandinServer() as server:
        config = make(tmp_path, server, "gtfs_schedule")
        published, row = await publish_once(config, "gtfs_schedule")
        with capture_logs() as logs:
            orch = await open_orch(config)
        state = (await orch.store.component_states())["gtfs_schedule"]
        history = await orch.store.history()
    assert state == published
    assert history == [row]
    assert not [e for e in logs if e["event"] == "state_reconciled"]


async def test_an_unreadable_dataset_does_not_stop_the_start(tmp_path, open_orch):
    """A live file that is not SQLite is logged and left alone; the daemon starts."""
    async with StandinServer() as server:
        config = make(tmp_path, server, "gtfs_schedule")
    (tmp_path / "data").mkdir()
    live = tmp_path / "data" / "gtfs_schedule.sqlite"
    live.write_bytes(b"not a database, " * 64)
    with capture_logs() as logs:
        orch = await open_orch(config)
    assert await orch.store.component_states() == {}
    (line,) = [e for e in logs if e["event"] == "publish_stamp_unreadable"]
    assert line["component"] == "gtfs_schedule" and "cannot read the publish stamp" in line["error"]
    assert live.read_bytes() == b"not a database, " * 64


def stamp_at(at: datetime, **fields: Any) -> PublishStamp:
    base: dict[str, Any] = {
        "component": "c",
        "run_id": "r2",
        "fingerprint": "f2",
        "records": 7,
        "published_at": at,
        "memory": {"etag": '"v2"'},
        "inputs": {"up": "u1"},
    }
    return PublishStamp(**(base | fields))


@pytest.mark.parametrize(
    ("published_at", "expected"),
    [
        (None, True),  # the state never saw a publish
        (T0 - timedelta(days=1), True),  # the state knows only an older publish
        (T0, False),  # the stamped publish was recorded (same clock reading)
        (T0 + timedelta(seconds=1), False),  # recorded after the swap, as outcomes are
        (T0 + timedelta(days=2), False),  # an operator rolled back: the stamp is older
    ],
)
def test_which_stamps_the_state_never_heard_of(published_at, expected):
    """A stamp is unrecorded only when the state's last publish is older than it."""
    state = ComponentState(name="c", fingerprint="f1", published_at=published_at)
    assert unrecorded(stamp_at(T0), state) is expected


def test_no_state_at_all_is_unrecorded():
    """A component the state database has no row for takes its dataset's stamp."""
    assert unrecorded(stamp_at(T0), None) is True


def test_the_interrupted_run_keeps_its_start():
    """The reconciled run starts when its interrupted row says, and finishes at its publish."""
    row = {"run_id": "r2", "started_at": (T0 - timedelta(seconds=30)).isoformat(), "attempts": 2}
    event = reconciled(stamp_at(T0), row)
    assert (event.started_at, event.at, event.duration_s) == (T0 - timedelta(seconds=30), T0, 30)
    assert (event.status, event.attempts, event.records) == ("succeeded", 2, 7)
    assert (event.fingerprint, event.memory, event.inputs) == ("f2", {"etag": '"v2"'}, {"up": "u1"})


def test_another_runs_row_lends_no_start():
    """A newest row of another run (the kill came before the start was written) is ignored."""
    row = {"run_id": "r1", "started_at": (T0 - timedelta(days=1)).isoformat(), "attempts": 3}
    event = reconciled(stamp_at(T0), row)
    assert (event.started_at, event.duration_s, event.attempts) == (T0, 0.0, 1)


def test_a_stamp_reads_back_as_written(tmp_path):
    """write_stamp then read_stamp gives the same stamp; a file without one gives None."""
    db = tmp_path / "d.sqlite"
    dataset = SnapshotDataset(tmp_path, "d")
    sqlite3.connect(db).close()
    assert dataset.read_stamp() is None
    stamp = stamp_at(T0)
    write_stamp(db, stamp)
    write_stamp(db, stamp)  # a second stamp replaces the first
    assert dataset.read_stamp() == stamp
