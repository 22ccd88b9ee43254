"""A read-only reader of another user opens every dataset, daemon or no daemon, and never
sees half of a publish or of a poll.

The reader is a real process run as ``nobody`` (in the data files' group, as an analyst
in the service group would be) with the system Python's ``sqlite3`` and ``mode=ro``:
it can write nothing beside the datasets, so a WAL file no process holds open (whose
``-shm`` the reader would have to create) fails there. Snapshots and the PTV dataset are
in rollback-journal mode; the realtime dataset is WAL while its writer holds it (readers
go through the group-readable -wal and -shm) and rollback-journal once released.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock.components.datavic.dataset import build
from interlock.components.datavic.parsers import _temporal_parsed
from interlock.components.gtfs_realtime.dataset import release_all, shared_connection
from interlock.components.ptv_timetable.storage import _connect as connect_ptv
from interlock.kit.publish import SnapshotDataset
from tests.test_dataset_schema import _stamp, build_gtfs

#: A Python the other user may run (the venv's may live under a private home).
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable

READER = r"""
import json, sqlite3, sys, time
path, sql, until, kinds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
seen, errors, reads = {}, [], 0
while True:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            row = tuple(conn.execute(sql).fetchone())
        finally:
            conn.close()
        seen[repr(row)] = seen.get(repr(row), 0) + 1
    except sqlite3.Error as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    reads += 1
    # At least `until` reads, and (within a bound) until `kinds` distinct answers came.
    if errors or (reads >= until and len(seen) >= kinds) or reads >= 100 * until:
        break
print(json.dumps({"seen": seen, "errors": errors, "reads": reads}))
"""


def as_nobody(group: int) -> dict[str, Any]:
    """Run as ``nobody``, in the data files' group (when we are root; else as ourselves)."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": [group]}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory another user can reach (tmp_path's parents are private to root)."""
    top = Path(tempfile.mkdtemp(prefix="interlock-readers-"))
    top.chmod(0o755)
    data = top / "data"
    data.mkdir()
    data.chmod(0o750)  # as the service's data_dir: the group may enter, no one else
    try:
        yield data
    finally:
        shutil.rmtree(top)


def read_as_nobody(path: Path, sql: str, reads: int = 1, kinds: int = 1) -> dict[str, Any]:
    """Run the reader as nobody; returns what it saw and any errors."""
    script = path.parent.parent / "reader.py"
    script.write_text(READER)
    script.chmod(0o644)
    done = subprocess.run(
        [PYTHON, str(script), str(path), sql, str(reads), str(kinds)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **as_nobody(path.parent.stat().st_gid),
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


POLL = r"""
import sys
from pathlib import Path
from interlock.components.gtfs_realtime.dataset import shared_connection
conn = shared_connection(Path(sys.argv[1]))
conn.execute("BEGIN IMMEDIATE")
conn.execute(
    "INSERT INTO feeds (endpoint, header_timestamp, fetched_at, age_s, sha256, size, "
    "entities, run_id) VALUES ('m', 1, 'x', 1.0, 'h', 1, 3, 'r')"
)
conn.execute("COMMIT")
"""


def _poll(db: Path, n: int) -> None:
    """One realtime poll's rows through the daemon's kept-open connection: a feed row and
    three trip updates, in one transaction."""
    conn = shared_connection(db)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO feeds (endpoint, header_timestamp, fetched_at, age_s, sha256, size, "
        "entities, run_id) VALUES ('m', ?, 'x', 1.0, 'h', 1, 3, 'r')",
        (n,),
    )
    for i in range(3):
        conn.execute(
            "INSERT INTO trip_updates (endpoint, header_timestamp, entity_id) VALUES ('m', ?, ?)",
            (n, str(i)),
        )
    conn.execute("COMMIT")


def test_every_dataset_opens_read_only_for_another_user_with_no_daemon(data_dir: Path) -> None:
    """With no process holding them, nobody opens every kind of dataset with mode=ro."""
    gtfs = build_gtfs(data_dir.parent / "gtfs-build.sqlite")
    live = SnapshotDataset(data_dir, "gtfs_schedule")
    staged = live.staging_path("r1")
    shutil.copy(gtfs, staged)
    live.publish(staged)
    # The realtime writer is a process of its own that exits, as the daemon does.
    poll = subprocess.run(
        [sys.executable, "-c", POLL, str(data_dir / "gtfs_realtime.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert poll.returncode == 0, poll.stderr
    connect_ptv(data_dir / "ptv_timetable.sqlite").close()
    patronage = SnapshotDataset(data_dir, "datavic_temporal_patronage")
    staged = patronage.staging_path("r1")
    build(staged, _temporal_parsed(False), [], {}, gtfs=None, join=False, cancel=threading.Event())
    _stamp(staged, "datavic_temporal_patronage")
    patronage.publish(staged)
    queries = {
        "datavic_temporal_patronage": "SELECT count(*) FROM monthly_patronage",
        "gtfs_schedule": "SELECT count(*) FROM stops",
        "gtfs_realtime": "SELECT count(*) FROM trip_updates",
        "ptv_timetable": "SELECT count(*) FROM polls",
    }
    for name, sql in queries.items():
        got = read_as_nobody(data_dir / f"{name}.sqlite", sql)
        assert got["errors"] == [], name
    assert not list(data_dir.glob("*-shm")) and not list(data_dir.glob("*-wal"))


def test_the_realtime_dataset_opens_for_another_user_while_the_daemon_holds_it(
    data_dir: Path,
) -> None:
    """While the writer keeps its connection (WAL), nobody reads through the -wal and -shm."""
    db = data_dir / "gtfs_realtime.sqlite"
    try:
        _poll(db, 1)
        assert (data_dir / "gtfs_realtime.sqlite-shm").exists()
        got = read_as_nobody(db, "SELECT count(*) FROM trip_updates")
        assert got["errors"] == [] and got["seen"] == {"(3,)": 1}
    finally:
        release_all()
    assert not (data_dir / "gtfs_realtime.sqlite-shm").exists()
    got = read_as_nobody(db, "SELECT count(*) FROM trip_updates")
    assert got["errors"] == [] and got["seen"] == {"(3,)": 1}


def test_a_reader_never_sees_half_a_publish(data_dir: Path) -> None:
    """While snapshots are swapped in again and again, every read sees one whole version."""
    built = {}
    for version in ("a", "b"):
        path = data_dir.parent / f"{version}.sqlite"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (version TEXT, n INTEGER)")
        rows = 50 if version == "a" else 70
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(version, i) for i in range(rows)])
        conn.commit()
        conn.close()
        _stamp(path, "x")
        built[version] = path
    live = SnapshotDataset(data_dir, "x")
    staged = live.staging_path("0")
    shutil.copy(built["a"], staged)
    live.publish(staged)
    stop = threading.Event()
    publishes = 0

    def publish_forever() -> None:
        nonlocal publishes
        while not stop.is_set() and publishes < 100_000:
            staged = live.staging_path(str(publishes))
            shutil.copy(built["b" if publishes % 2 == 0 else "a"], staged)
            live.publish(staged)
            publishes += 1
            stop.wait(0.001)  # a cadence, however fast: a writer that never pauses starves readers

    writer = threading.Thread(target=publish_forever)
    writer.start()
    try:
        got = read_as_nobody(
            live.live, "SELECT min(version), max(version), count(*) FROM t", reads=200, kinds=2
        )
    finally:
        stop.set()
        writer.join(timeout=30)
    assert got["errors"] == []
    assert set(got["seen"]) == {repr(("a", "a", 50)), repr(("b", "b", 70))}
    assert publishes >= 2


def test_a_reader_never_sees_half_a_poll(data_dir: Path) -> None:
    """While the realtime dataset takes poll after poll, every read sees whole polls only."""
    db = data_dir / "gtfs_realtime.sqlite"
    _poll(db, 0)
    stop = threading.Event()
    polls = 1

    def poll_forever() -> None:
        nonlocal polls
        while not stop.is_set() and polls < 100_000:
            _poll(db, polls)
            polls += 1
            stop.wait(0.001)  # as above: polls come at a cadence

    writer = threading.Thread(target=poll_forever)
    writer.start()
    try:
        got = read_as_nobody(
            db,
            "SELECT (SELECT count(*) FROM trip_updates) = 3 * (SELECT count(*) FROM feeds), "
            "(SELECT count(*) FROM feeds)",
            reads=100,
            kinds=3,
        )
    finally:
        stop.set()
        writer.join(timeout=30)
        release_all()
    assert got["errors"] == []
    whole = [
        json.loads(key.replace("(", "[").replace(",)", "]").replace(")", "]"))
        for key in got["seen"]
    ]
    assert len(whole) >= 3 and all(ok == 1 for ok, _ in whole), got["seen"]
