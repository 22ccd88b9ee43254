"""Tests that hostile payloads (zip bombs, NUL bytes) are refused early or become notices."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from interlock.components.datavic.csvclean import read_table
from interlock.components.datavic.parsers import parse_temporal
from interlock.components.gtfs_schedule.csvstream import BLOCK_CHARS, open_rows
from interlock.components.gtfs_schedule.loader import load_feed
from interlock.components.gtfs_schedule.parallel import Tuning
from interlock.components.gtfs_schedule.zipsafe import Budget, SafeZip, ZipLimits
from interlock.components.standins import StandinServer
from interlock.components.standins.datavic import DatavicSource
from interlock.components.standins.datavic_data import temporal_csv
from interlock.config.loader import parse_config
from interlock.errors import FetchError, UnsafeArchiveError
from interlock.kit import quarantine
from interlock.kit.quarantine_retention import prune_quarantine
from tests.test_gtfs_unsafe import GOOD, make_zip

# Every member through worker processes, in small chunks.
PARALLEL = Tuning(workers=2, min_member_bytes=0, chunk_bytes=4096)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
_MiB = 1024 * 1024


def write_bomb(path: Path, mib: int) -> Path:
    """A zip whose one member is ``mib`` MiB of one stop_times row repeated (~1000:1)."""
    row = b"T1,08:00:00,08:00:00,S1,1\n"
    block = row * (_MiB // len(row))
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("stop_times.txt", "w", force_zip64=True) as member,
    ):
        member.write(b"trip_id,arrival_time,departure_time,stop_id,stop_sequence\n")
        for _ in range(mib):
            member.write(block)
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 256 MiB ratio bomb: big enough that the whole-member ratio lets ~64 MiB through."""
    return write_bomb(tmp_path_factory.mktemp("bomb") / "bomb.zip", 256)


def test_ratio_bomb_is_refused_within_a_few_mib(bomb: Path) -> None:
    """The ratio is judged on compressed bytes consumed so far: a bomb stops in a few MiB."""
    inflated = 0
    started = time.perf_counter()
    with (
        SafeZip(bomb, Budget(ZipLimits())) as zf,
        zf.open(zf.files[0]) as member,
        pytest.raises(UnsafeArchiveError, match="compression ratio"),
    ):
        while chunk := member.read(64 * 1024):
            inflated += len(chunk)
    assert inflated <= 4 * _MiB
    assert time.perf_counter() - started < 2.0


def test_ratio_bomb_fails_the_load_quickly(bomb: Path, tmp_path: Path) -> None:
    """load_feed refuses the bomb with its default limits and leaves no database."""
    started = time.perf_counter()
    with pytest.raises(UnsafeArchiveError, match=r"'stop_times.txt' has compression ratio"):
        load_feed(bomb, tmp_path / "f.db")
    assert time.perf_counter() - started < 3.0
    assert not (tmp_path / "f.db").exists()


@pytest.mark.parametrize("name", ["caltrain-20160406.zip", "sample-feed-1.zip"])
def test_real_feed_still_opens(name: str, tmp_path: Path) -> None:
    """Real published feeds read through the checked reader byte for byte."""
    path = DATA / "gtfs" / name
    with zipfile.ZipFile(path) as plain:
        expected = {i.filename: plain.read(i) for i in plain.infolist() if not i.is_dir()}
    with SafeZip(path, Budget(ZipLimits(ratio_min_bytes=1))) as zf:
        got = {}
        for info in zf.files:
            with zf.open(info) as member:
                got[info.filename] = member.read()
    assert got == expected
    result = load_feed(path, tmp_path / "f.db")
    assert result.total_records > 0


def test_member_longer_than_declared_is_refused(tmp_path: Path) -> None:
    """A member that inflates past its central-directory size is refused, not truncated."""
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("stops.txt", b"stop_id\n" + b"S1\n" * 1000)
    raw = bytearray(path.read_bytes())
    # Shrink the declared size in the central directory (offset 24 of its entry).
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with (
        SafeZip(path, Budget(ZipLimits())) as zf,
        zf.open(zf.files[0]) as member,
        pytest.raises(UnsafeArchiveError, match=r"'stops\.txt'"),
    ):
        member.read()


def test_nul_after_plain_blocks_is_a_csv_error() -> None:
    """The streamed reader raises csv.Error at a NUL, even one after many plain blocks."""
    plain = "".join(f"T{i},08:00:00,S{i % 7},{i}\r\n" for i in range(BLOCK_CHARS // 10))
    header, blocks = open_rows(io.BytesIO(("a,b,c,d\n" + plain + "x,\x00,y,z\n").encode()))
    assert header == ["a", "b", "c", "d"]
    with pytest.raises(csv.Error, match="NUL"):
        for block in blocks:
            list(block)


def nul_feed(path: Path, stops: str) -> Path:
    """The small valid feed of test_gtfs_unsafe with ``stops`` as its stops.txt."""
    members = dict(GOOD)
    members["stops.txt"] = stops
    return make_zip(path, members)


NUL_STOPS = [
    pytest.param("stop_id,stop_name,stop_lat,stop_lon\nS1,Metro\x00Train,1.0,2.0\n", id="plain"),
    pytest.param('stop_id,stop_name,stop_lat,stop_lon\nS1,"Metro\x00Train",1.0,2.0\n', id="quoted"),
    pytest.param("stop_id,stop_\x00name,stop_lat,stop_lon\nS1,One,1.0,2.0\n", id="header"),
]


@pytest.mark.parametrize("stops", NUL_STOPS)
@pytest.mark.parametrize("tuning", [Tuning(workers=0), PARALLEL], ids=["serial", "parallel"])
def test_gtfs_nul_is_an_error_notice_and_never_loaded(
    tmp_path: Path, stops: str, tuning: Tuning
) -> None:
    """A NUL in a GTFS value is csv_parsing_failed (ERROR) for its file; nothing of it loads."""
    src = nul_feed(tmp_path / "nul.zip", stops + "S2,Two,1.5,2.5\n")
    result = load_feed(src, tmp_path / "f.db", tuning=tuning)
    assert result.report["counts"]["csv_parsing_failed"] == {"severity": "ERROR", "count": 1}
    (notice,) = [n for n in result.report["notices"] if n["code"] == "csv_parsing_failed"]
    assert notice["file"] == "stops.txt" and "NUL" in str(notice["value"])
    assert "\x00" not in str(notice["value"])
    assert result.record_counts["stops"] == 0
    conn = sqlite3.connect(tmp_path / "f.db")
    try:
        nul = conn.execute("SELECT count(*) FROM stops WHERE instr(stop_name, char(0))")
        assert nul.fetchone() == (0,)
    finally:
        conn.close()


TEMPORAL_HEADER = b"\xef\xbb\xbfYear,Month,Month_name,Day_of_week,Day_type,Mode,Pax_daily\r\n"
NUL_TEMPORAL = (
    TEMPORAL_HEADER
    + b'2024,1,January,Monday,Normal Weekday,Metro\x00Train,"569,600"\r\n'
    + b'2024,1,January,Monday,Normal Weekday,Tram,"579,500"\r\n'
)


def test_datavic_nul_row_is_rejected_with_a_problem(tmp_path: Path) -> None:
    """A Data Vic row with a NUL is left out and counted as nul_character, never a new mode."""
    path = tmp_path / "t.csv"
    path.write_bytes(NUL_TEMPORAL)
    label = "resource 't'"
    parsed = parse_temporal(None, read_table(path, label=label), label, "t")
    assert [row[5] for row in parsed.rows] == ["Tram"]
    assert parsed.problems == {"nul_character": 1}
    assert parsed.examples == ["nul_character: resource 't' line 2: a value holds a NUL byte"]


def test_datavic_nul_in_header_refuses_the_file(tmp_path: Path) -> None:
    """A NUL in the header row refuses the whole file with a reason that names it."""
    path = tmp_path / "t.csv"
    path.write_bytes(b"Year,Mo\x00nth,Mode,Pax_daily\r\n2024,1,Tram,5\r\n")
    with pytest.raises(FetchError, match=r"header \(line 1\) holds a NUL byte"):
        read_table(path, label="resource 't'")


async def test_datavic_nul_row_fails_schema_validation_and_quarantines(
    tmp_path: Path, open_orch: Any
) -> None:
    """With schema_validation the NUL row fails the run: quarantined, the last good data kept."""
    name = "datavic_temporal_patronage"
    source = DatavicSource("temporal")
    async with StandinServer([source]) as server:
        settings = {
            "ckan_url": server.url("/ckan/api/3/action/"),
            "dataset": "monthly-average-patronage-by-day-type-and-by-mode",
            "allow_private_addresses": True,
        }
        doc = {
            "components": {name: {"frequency": "daily", "retries": 0, "settings": settings}},
            "runtime_settings": {"state_dir": str(tmp_path / "s"), "data_dir": str(tmp_path / "d")},
            "data_quality": {"default_rules": {"schema_validation": True}},
        }
        orch = await open_orch(parse_config(doc, str(tmp_path / "o.json")))
        first = await asyncio.wait_for(orch.scheduler.run_once([name]), 30)
        assert first.outcomes[name].status.value == "succeeded"
        live = tmp_path / "d" / f"{name}.sqlite"
        before = live.read_bytes()
        # A whole month's file (so no record-count rule fires) with one NUL in a mode.
        source.publish_bytes(temporal_csv(12, 1).replace(b"MetroTrain", b"Metro\x00Train", 1))
        result = await asyncio.wait_for(orch.scheduler.run_once([name]), 30)
    settled = result.outcomes[name]
    assert settled.status.value == "failed"
    assert settled.reason is not None and "schema_validation" in settled.reason
    assert "\x00" not in (settled.reason or "")
    assert live.read_bytes() == before
    (folder,) = (tmp_path / "d" / "quarantine" / name).iterdir()
    report = json.loads((folder / "report.json").read_text())
    assert report["report"]["problems"] == {"nul_character": 1}


def test_prune_quarantine_keeps_the_newest(tmp_path: Path) -> None:
    """N+3 quarantine folders pruned to N leave the newest N, and nothing else is touched."""
    made = [quarantine(tmp_path, "c", None, {}, f"bad {i}") for i in range(5 + 3)]
    note = tmp_path / "quarantine" / "c" / "README.txt"
    note.write_text("operator's notes")
    removed = prune_quarantine(tmp_path, "c", 5)
    assert removed == made[:3]
    assert sorted((tmp_path / "quarantine" / "c").iterdir()) == sorted([*made[3:], note])


async def test_component_keeps_quarantine_keep_folders(tmp_path: Path, open_orch: Any) -> None:
    """A source that keeps sending bad payloads leaves only data_quality.quarantine_keep folders."""
    keep = 2
    payload = tmp_path / "feed.zip"
    doc = {
        "components": {
            "gtfs_schedule": {
                "frequency": "daily",
                "retries": 0,
                "settings": {"source": {"path": str(payload)}},
            }
        },
        "runtime_settings": {"state_dir": str(tmp_path / "s"), "data_dir": str(tmp_path / "d")},
        "data_quality": {"quarantine_keep": keep},
    }
    orch = await open_orch(parse_config(doc, str(tmp_path / "o.json")))
    folder = tmp_path / "d" / "quarantine" / "gtfs_schedule"
    newest: list[str] = []
    whole = make_zip(tmp_path / "good.zip", GOOD).read_bytes()
    for i in range(keep + 3):
        payload.write_bytes(whole[: len(whole) // 2] + bytes([i]))  # a zip cut short
        result = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
        assert result.outcomes["gtfs_schedule"].status.value == "failed"
        newest.append(max(p.name for p in folder.iterdir()))
    assert sorted(p.name for p in folder.iterdir()) == newest[-keep:]
