"""Tests for the loader's fast paths: str.split CSV blocks and the streamed order check."""

from __future__ import annotations

import csv
import io
import sqlite3
import zipfile
from pathlib import Path

import pytest

from interlock.components.gtfs_schedule.csvstream import BLOCK_CHARS, open_rows
from interlock.components.gtfs_schedule.loader import load_feed
from interlock.components.gtfs_schedule.notices import NoticeBook
from interlock.components.gtfs_schedule.order import CODE, check_stop_time_order

PLAIN = "".join(f"T{i},08:00:00,S{i % 7},{i}\r\n" for i in range(BLOCK_CHARS // 20))


def reference(data: bytes) -> list[list[str]]:
    """Rows as csv.reader reads them, header included and blank lines left out."""
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    return [row for row in csv.reader(text) if row]


def streamed(data: bytes) -> list[list[str]]:
    header, blocks = open_rows(io.BytesIO(data))
    assert header is not None
    return [header] + [list(row) for block in blocks for row in block]


@pytest.mark.parametrize(
    "text",
    [
        "a,b,c,d\n" + PLAIN,
        "a,b,c,d\n" + PLAIN.replace("\r\n", "\n") + "T,1,2,3",
        "a,b,c,d\r\r\nx,y\r\n\r\n" + PLAIN,
        "a,b,c,d\r" + PLAIN.replace("\r\n", "\r"),
        "\ufeffa,b,c,d\n" + PLAIN + 'Q,"08:00:00",S1,1\n' + PLAIN,
        "a,b,c,d\n" + PLAIN + 'Q,"line\nbreak",S1,"1"\r\n' + PLAIN,
        "a,b,c,d\n" + PLAIN + 'Q,"no end\n',
        '"a","b,c"\n' + PLAIN,
        "a,b,c,d\n" + PLAIN[: BLOCK_CHARS - 3] + '"x"\r' + PLAIN,
    ],
)
def test_blocks_match_csv_reader(text: str) -> None:
    """Split blocks, and csv once a block is not plain, give exactly csv.reader's rows."""
    data = text.encode()
    assert streamed(data) == reference(data)


def build_feed(path: Path, stop_times: str) -> Path:
    members = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Ag,http://a.example,UTC\n",
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,One,1,2\nS2,Two,1,2\n",
        "routes.txt": "route_id,agency_id,route_type\nR1,A,3\n",
        "trips.txt": "route_id,service_id,trip_id\nR1,C1,T1\nR1,C1,T2\nR1,C1,T3\n",
        "calendar_dates.txt": "service_id,date,exception_type\nC1,20250101,1\n",
        "stop_times.txt": stop_times,
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return path


ST_HEAD = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
IN_ORDER = (
    "T1,08:00:00,08:05:00,S1,1\nT1,08:01:00,,S2,2\nT1,08:03:00,08:03:00,S1,3\n"
    "T2,09:00:00,09:00:00,S1,1\nT2,,,S2,2\nT2,08:59:00,09:01:00,S1,5\n"
    ",07:00:00,07:00:00,S1,6\nT3,10:00:00,10:00:00,S1,1\nT3,09:00:00,09:00:00,S2,2\n"
)
OUT_OF_ORDER = IN_ORDER + "T1,07:00:00,07:00:00,S2,9\n"


@pytest.mark.parametrize("body", [IN_ORDER, OUT_OF_ORDER], ids=["streamed", "window"])
def test_order_check_matches_window_query(tmp_path: Path, body: str) -> None:
    """The order check's notices equal the window query's over the loaded table."""
    db = tmp_path / "feed.db"
    result = load_feed(build_feed(tmp_path / "feed.zip", ST_HEAD + body), db)
    book = NoticeBook()
    with sqlite3.connect(db) as conn:
        check_stop_time_order(conn, False, book)
    expected = book.report()
    notices = result.report["notices"]
    assert isinstance(notices, list)
    ours = [n for n in notices if n["code"] == CODE]
    assert ours == expected["notices"]
    assert result.report["counts"][CODE] == expected["counts"][CODE]  # type: ignore[index]
    assert len(ours) == (4 if body == IN_ORDER else 5)
