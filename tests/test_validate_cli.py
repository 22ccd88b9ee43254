"""``interlock validate`` as a user runs it: a real subprocess on real feeds, files and URLs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

pytestmark = pytest.mark.timeout(60)


def interlock(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.cli", *args],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=cwd,
    )


async def ainterlock(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "interlock.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 50)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_a_clean_feed_exits_0_with_its_notice_table(shared_data: Path, tmp_path: Path) -> None:
    """Caltrain has no ERRORs: the table lists its warnings and the command exits 0.

    Run from an empty folder: no config and no state directory are needed.
    """
    done = interlock("validate", str(shared_data / "gtfs" / "caltrain-20160406.zip"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["CODE", "SEVERITY", "COUNT"]
    assert ["missing_recommended_file", "WARNING", "1"] in [line.split() for line in lines]
    assert lines[-1].endswith("no ERROR notices")
    assert list(tmp_path.iterdir()) == []


def test_a_broken_feed_exits_1_and_json_is_the_mobilitydata_report(shared_data: Path) -> None:
    """bad-gtfs has ERRORs: exit 1, and --json prints gtfs-validator's report shape."""
    done = interlock("validate", "--json", str(shared_data / "gtfs" / "bad-gtfs.zip"))
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    counts = {n["code"]: (n["severity"], n["totalNotices"]) for n in doc["notices"]}
    assert counts["missing_required_file"] == ("ERROR", 5)
    assert doc["summary"]["gtfsInput"].endswith("bad-gtfs.zip")


@pytest.mark.parametrize("kind", ["missing", "not_a_zip", "folder"])
def test_what_is_not_a_zip_exits_2_with_one_line(tmp_path: Path, kind: str) -> None:
    """A missing file, a text file or a folder: one line naming it, exit 2, no traceback."""
    target = tmp_path / "feed.zip"
    if kind == "not_a_zip":
        target.write_text("<html>not found</html>")
    elif kind == "folder":
        target.mkdir()
    done = interlock("validate", str(target))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and str(target) in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_date_is_a_usage_error(tmp_path: Path) -> None:
    """--date takes YYYY-MM-DD; anything else exits 2 naming the value."""
    done = interlock("validate", "--date", "2025-13-01", str(tmp_path / "x.zip"))
    assert done.returncode == 2 and "'2025-13-01'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
async def feed_server(shared_data: Path) -> AsyncIterator[str]:
    """An aiohttp stand-in on 127.0.0.1 serving a real feed, an error page and a big body."""
    body = (shared_data / "gtfs" / "caltrain-20160406.zip").read_bytes()

    async def feed(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/zip")

    async def page(_: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/gtfs.zip", feed)
    app.router.add_get("/page.zip", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await asyncio.wait_for(runner.cleanup(), 10)


async def test_a_url_is_downloaded_and_validated(feed_server: str) -> None:
    """An http URL is fetched (streamed) and validated; the report names the URL."""
    code, out, err = await ainterlock("validate", "--json", f"{feed_server}/gtfs.zip")
    assert code == 0, err
    assert json.loads(out)["summary"]["gtfsInput"] == f"{feed_server}/gtfs.zip"


async def test_a_url_serving_a_page_exits_2(feed_server: str) -> None:
    """A URL that answers with an HTML page is not a zip: exit 2, one line."""
    code, out, err = await ainterlock("validate", f"{feed_server}/page.zip")
    assert code == 2 and out == ""
    assert "not a zip" in err and err.count("\n") == 1


async def test_a_url_over_the_size_limit_exits_2(feed_server: str) -> None:
    """A body over --max-download-mb is abandoned: exit 2 naming the limit."""
    code, _, err = await ainterlock(
        "validate", "--max-download-mb", "0.01", f"{feed_server}/gtfs.zip"
    )
    assert code == 2 and "10485" in err and "Traceback" not in err
