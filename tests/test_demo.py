"""`interlock demo`, the README's main job, as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from interlock.kit.qualityshape import REPORT_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "interlock.cli"]

pytestmark = pytest.mark.timeout(120)


def test_demo_runs_the_pipeline_and_shows_change_detection(tmp_path):
    """The demo exits 0, loads the feed, then skips it unchanged, then publishes the new one."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    out = proc.stdout
    assert "gtfs_schedule: unchanged" in out and "304 Not Modified" in out
    # Realtime join rates against the demo schedule: most ids join, a few do not.
    assert "realtime ids found in the schedule in force" in out
    assert "metro_train_trip_updates" in out
    assert (tmp_path / "data" / "gtfs_schedule.sqlite").exists()

    history = subprocess.run(
        [
            sys.executable,
            "-m",
            "interlock.cli",
            "history",
            "--json",
            "--component",
            "gtfs_schedule",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert history.returncode == 0, history.stderr
    statuses = [row["status"] for row in json.loads(history.stdout)]
    assert statuses == ["succeeded", "unchanged", "succeeded"]

    # One quality-report shape for every component (the dashboard's card reads it).
    every = subprocess.run(
        [*CLI, "history", "--json", "--limit", "100", "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=ROOT,
        check=False,
    )
    rows = json.loads(every.stdout)
    reports = {r["component"]: r["quality"] for r in reversed(rows) if r["quality"]}
    assert set(reports) == {
        "gtfs_schedule",
        "gtfs_realtime",
        "ptv_timetable",
        "datavic_station_patronage",
        "datavic_temporal_patronage",
    }
    validator = jsonschema.Draft202012Validator(REPORT_SCHEMA)
    for row in rows:
        if row["quality"] is None:  # an unchanged run judges nothing
            assert row["status"] in ("unchanged", "skipped"), row
            continue
        errors = validator.iter_errors(row["quality"])
        problems = [f"{list(e.absolute_path)}: {e.message}" for e in errors]
        assert not problems, (row["component"], problems)
    assert reports["ptv_timetable"]["record_counts"]["departures"] > 0
    assert reports["gtfs_schedule"]["record_counts"]["stop_times"] > 0
