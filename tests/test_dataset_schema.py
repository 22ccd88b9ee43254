"""The documented schema matches the databases the code really builds, and docs/datasets.md
matches the documented schema.

Each database is created by the code that creates it in production (the state store's
writer, the realtime and PTV writers, the GTFS loader on a real zip of zips, the Data
Vic builder), then ``PRAGMA table_info`` of every table is compared with the declaration.
A column added to a CREATE statement without its declaration (or the reverse) fails here.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from interlock.cli.main import main
from interlock.cli.schema import databases, markdown
from interlock.components.datavic.dataset import build
from interlock.components.datavic.parsers import STATION_COLUMNS, Parsed, _temporal_parsed
from interlock.components.gtfs_realtime.dataset import connect as connect_realtime
from interlock.components.gtfs_schedule.component import _write_provenance
from interlock.components.gtfs_schedule.loader import load_feed
from interlock.components.ptv_timetable.storage import _connect as connect_ptv
from interlock.components.standins.sample_feed import build_zip_of_zips
from interlock.kit.publish import PublishStamp, write_stamp
from interlock.store.sqlite.schema import connect_writer
from interlock.store.tables import drift


@pytest.fixture(autouse=True)
def _forget_cli_logging() -> Iterator[None]:
    """main() points logging at this test's captured stderr; the next test must not use it."""
    yield
    structlog.reset_defaults()


REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "datasets.md"


def _stamp(db: Path, component: str) -> None:
    write_stamp(
        db,
        PublishStamp(
            component=component,
            run_id="r1",
            fingerprint="f",
            records=1,
            published_at=datetime(2026, 1, 1, tzinfo=UTC),
            memory={},
            inputs={},
        ),
    )


def _drift(path: Path, name: str, *, optional: tuple[str, ...] = ()) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return drift(conn, databases()[name], optional=optional)
    finally:
        conn.close()


def build_gtfs(path: Path) -> Path:
    """A gtfs_schedule dataset as the component publishes it, from the sample zip of zips."""
    feed = path.with_suffix(".zip")
    feed.write_bytes(build_zip_of_zips())
    load_feed(feed, path)
    info = {
        "url": "http://x",
        "sha256": "0" * 64,
        "fetched_at": "2026-01-01T00:00:00+00:00",
        "published_at": "2026-01-01T00:00:00+00:00",
        "run_id": "r1",
        "modes": ["1"],
    }
    _write_provenance(path, info, {"stops": 1})
    _stamp(path, "gtfs_schedule")
    return path


def test_the_state_database_matches_its_declaration(tmp_path: Path) -> None:
    """A state database the store creates has exactly the declared tables and columns."""

    async def create() -> None:
        db = await connect_writer(tmp_path / "state.sqlite")
        await db.close()

    asyncio.run(create())
    assert _drift(tmp_path / "state.sqlite", "state") == []


def test_the_realtime_dataset_matches_its_declaration(tmp_path: Path) -> None:
    """The realtime writer's file has exactly the declared tables and columns."""
    connect_realtime(tmp_path / "rt.sqlite").close()
    assert _drift(tmp_path / "rt.sqlite", "gtfs_realtime") == []


def test_the_ptv_dataset_matches_its_declaration(tmp_path: Path) -> None:
    """The PTV writer's file has exactly the declared tables and columns."""
    connect_ptv(tmp_path / "ptv.sqlite").close()
    assert _drift(tmp_path / "ptv.sqlite", "ptv_timetable") == []


def test_the_gtfs_schedule_dataset_matches_its_declaration(tmp_path: Path) -> None:
    """A loaded zip of zips, with provenance and stamp, has exactly the declared tables."""
    db = build_gtfs(tmp_path / "gtfs.sqlite")
    assert _drift(db, "gtfs_schedule") == []


def test_the_station_patronage_dataset_matches_its_declaration(tmp_path: Path) -> None:
    """A station snapshot (joined to GTFS) has exactly the declared tables and columns."""
    gtfs = build_gtfs(tmp_path / "gtfs.sqlite")
    parsed = Parsed(table="station_patronage", columns=STATION_COLUMNS, key=("fin_year", "stop_id"))
    row = ["FY23-24", 2023, "1071", "Flinders Street", -37.8, 144.9, *[1000] * 11, "r.csv"]
    parsed.rows.append(tuple(row))
    db = tmp_path / "st.sqlite"
    build(db, parsed, [{"id": "x"}], {"k": 1}, gtfs=gtfs, join=True, cancel=threading.Event())
    _stamp(db, "datavic_station_patronage")
    assert _drift(db, "datavic_station_patronage") == []


@pytest.mark.parametrize("long_layout", [True, False])
def test_the_temporal_patronage_dataset_matches_its_declaration(
    tmp_path: Path, long_layout: bool
) -> None:
    """Either layout of the temporal snapshot has exactly the declared columns."""
    db = tmp_path / "tp.sqlite"
    build(
        db, _temporal_parsed(long_layout), [], {}, gtfs=None, join=False, cancel=threading.Event()
    )
    _stamp(db, "datavic_temporal_patronage")
    assert _drift(db, "datavic_temporal_patronage") == []


def test_a_column_missing_from_the_declaration_is_reported(tmp_path: Path) -> None:
    """The check itself sees a column the declaration lacks (a guard on the guard)."""
    conn = connect_realtime(tmp_path / "rt.sqlite")
    conn.execute("ALTER TABLE feeds ADD COLUMN extra TEXT")
    conn.close()
    problems = _drift(tmp_path / "rt.sqlite", "gtfs_realtime")
    assert len(problems) == 1 and "'feeds'" in problems[0] and "extra" in problems[0]


def test_docs_datasets_md_is_the_rendered_schema() -> None:
    """docs/datasets.md is exactly what `interlock schema --markdown` prints.

    Regenerate it with ``interlock schema --markdown > docs/datasets.md``.
    """
    stale = "docs/datasets.md is stale: run `interlock schema --markdown > docs/datasets.md`"
    assert DOC.read_text() == markdown(databases()), stale


def test_schema_json_lists_every_dataset_with_typed_columns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`interlock schema --json` gives each database's tables with type, unit and nullability."""
    assert main(["schema", "--json"]) == 0
    found = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert set(found) >= {
        "gtfs_schedule",
        "gtfs_realtime",
        "ptv_timetable",
        "datavic_station_patronage",
        "datavic_temporal_patronage",
        "state",
    }
    column = found["gtfs_realtime"]["tables"][0]["columns"][1]
    assert column == {
        "name": "header_timestamp",
        "type": "INTEGER",
        "unit": "epoch seconds (UTC)",
        "nullable": False,
        "meaning": "The feed header's timestamp.",
    }


def test_schema_of_an_unknown_dataset_names_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A misspelt dataset exits 2 and lists the datasets there are, with no traceback."""
    assert main(["schema", "gtfs_schedul"]) == 2
    err = capsys.readouterr().err
    assert "'gtfs_schedul'" in err and "gtfs_schedule" in err and "Traceback" not in err
