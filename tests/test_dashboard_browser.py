"""The dashboard as an operator uses it: ``interlock serve`` with 30 days of history, in Chromium.

The daemon runs as a real subprocess; headless Chromium (Debian's package) is
driven over the DevTools protocol. The page must show every component, draw its
charts, update live when a run the page started finishes, and render 30 days of
five components well under a second. A screenshot is kept in tests/artifacts/.
Where no Chromium is installed the test is skipped and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from interlock.events import utcnow
from interlock.observe.dashboard.auth import TOKEN_FILE
from interlock.store.sqlite import STATE_DB, SqliteStateStore
from tests.cdp import Browser, chromium_path
from tests.dashboard_history import FIVE, write_history

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
#: The budget the issue sets: "well under a second" for 30 days of five components.
RENDER_BUDGET_MS = 1000.0

pytestmark = pytest.mark.slow


def _require_browser() -> None:
    if chromium_path() is None:
        pytest.skip(
            "no Chromium on this machine: the dashboard browser test needs Debian's chromium "
            "and chromium-driver packages (apt-get install -y chromium chromium-driver; "
            ".ci/run installs them when it runs as root)"
        )


class ServeProcess:
    """``interlock serve`` in a subprocess; its JSON log lines are collected as they come."""

    def __init__(self, root: Path, config: Path) -> None:
        self.root = root
        self.config = config
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict[str, Any]] = []
        self.url: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLOCK_", "NOTIFY"))}
        env["PYTHONPATH"] = str(REPO)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "interlock.cli",
            "serve",
            "--config",
            str(self.config),
            "--socket",
            str(self.root / "admin.sock"),
            "--grace",
            "5",
            "--log-format",
            "json",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read(), name="serve log reader")
        return await asyncio.wait_for(asyncio.shield(self.url), 30)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": "unparsed", "text": raw.decode(errors="replace")}
            self.lines.append(line)
            if line.get("event") == "dashboard_listening" and not self.url.done():
                self.url.set_result(line["url"])
        if not self.url.done():
            self.url.set_exception(
                RuntimeError(f"interlock serve exited before the dashboard listened: {self.lines}")
            )

    async def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await asyncio.wait_for(self.proc.wait(), 10)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        return self.proc.returncode


@pytest.fixture
async def month_of_history() -> AsyncIterator[tuple[Path, Path]]:
    """A config for the five components and a state database holding 30 days of their runs."""
    _require_browser()  # before the 30 days are written: a skip should cost nothing
    root = Path(tempfile.mkdtemp(prefix="il-dash-"))  # short: the admin socket lives here
    try:
        state = root / "state"
        async with SqliteStateStore(state / STATE_DB) as store:
            rows = await asyncio.wait_for(write_history(store, utcnow()), 60)
        assert rows > 50_000
        components: dict[str, Any] = {
            name: {
                "class": "tests.testcomponents:Publishes",
                "frequency": "7d",  # none falls due by itself during the test
                "retries": 0,
                "settings": {"records": 5},
            }
            for name in FIVE
        }
        # The one the page triggers takes a moment, so "running" is visible before the end.
        components["gtfs_schedule"] |= {
            "class": "tests.testcomponents:Sleeps",
            "settings": {"seconds": 1.0},
        }
        config = root / "orchestration.json"
        config.write_text(
            json.dumps(
                {
                    "components": components,
                    "runtime_settings": {"state_dir": str(state), "data_dir": str(root / "data")},
                    "performance_monitoring": {
                        "dashboard": {
                            "enabled": True,
                            "listen": "127.0.0.1:0",
                            "actions_enabled": True,
                        }
                    },
                }
            )
        )
        yield root, config
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_the_dashboard_in_chromium_shows_charts_and_follows_a_run_live(
    month_of_history: tuple[Path, Path],
) -> None:
    """In a real browser the page lists all five components, draws their 30-day charts in
    well under a second, and a run started from its button shows up live without a reload."""
    root, config = month_of_history
    daemon = ServeProcess(root, config)
    try:
        url = await daemon.start()

        # The data endpoint on its own, uncached, over 30 days of five components.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            began = time.perf_counter()
            async with http.get(url + "api/history") as r:
                history = await r.json()
            endpoint_ms = (time.perf_counter() - began) * 1000
        assert set(history["trends"]) == set(FIVE)
        assert endpoint_ms < RENDER_BUDGET_MS / 2, endpoint_ms

        async with Browser.launch(width=1400, height=1000) as browser:
            page = await browser.new_page(url)
            await page.wait_for("document.body.dataset.ready === '1'", 20)
            timing = await page.evaluate("window.__dash")
            assert timing["readyMs"] < RENDER_BUDGET_MS, timing

            # Every component has a card and a row of trends with charts actually drawn.
            cards = await page.evaluate(
                "[...document.querySelectorAll('.card')].map(c => c.dataset.component)"
            )
            assert cards == list(FIVE)
            trends = await page.evaluate(
                "[...document.querySelectorAll('.trow')].map(r => r.dataset.trend)"
            )
            assert sorted(trends) == sorted(FIVE)
            drawn = await page.evaluate(
                "[...document.querySelectorAll('.trow[data-trend=gtfs_realtime] path.avg')]"
                ".map(p => p.getAttribute('d').split('L').length)"
            )
            assert drawn and min(drawn) > 100, drawn  # a line through ~168 hourly points
            errors = await page.evaluate("document.querySelectorAll('#errors tbody tr').length")
            assert errors > 0
            quality = await page.evaluate("document.querySelectorAll('.qcard').length")
            assert quality >= 1

            # The 30-day view redraws from the same data.
            await page.evaluate("document.querySelector('button[data-window=\"30d\"]').click()")
            points = await page.evaluate(
                "document.querySelector('.trow[data-trend=gtfs_realtime] path.avg')"
                ".getAttribute('d').split('L').length"
            )
            assert points == 30

            # Sign in as an operator does: the token from the state directory, into the form.
            # The page itself never held it, and shows no buttons until then.
            token = (root / "state" / TOKEN_FILE).read_text().strip()
            html = await page.evaluate("document.documentElement.outerHTML")
            assert token not in html and "data-act=" not in html
            await page.evaluate(
                f"document.getElementById('token').value = {json.dumps(token)};"
                "document.getElementById('signin').requestSubmit()"
            )
            await page.wait_for("!document.getElementById('session').hidden", 10)
            await page.wait_for("document.querySelector('button[data-act=trigger]') !== null", 10)

            # Live: start a run from the page and watch the card change without a reload.
            await page.wait_for("document.getElementById('live').classList.contains('on')", 10)
            await page.evaluate("window.__marker = 'same page'")
            card = ".card[data-component=gtfs_schedule]"
            before = await page.evaluate(f"document.querySelector('{card}').innerText")
            assert "2.4M" in before or "2.3M" in before or "2.5M" in before, before
            await page.evaluate(
                "document.querySelector('button[data-act=trigger][data-name=gtfs_schedule]')"
                ".click()"
            )
            await page.wait_for(f"document.querySelector('{card}').dataset.state === 'running'", 10)
            await page.wait_for(
                f"(() => {{ const c = document.querySelector('{card}');"
                " return c.dataset.state === 'idle' && /records\\s*1\\b/.test(c.innerText); })()",
                15,
            )
            feed = await page.evaluate("document.getElementById('feed').innerText")
            assert "component succeeded" in feed and "gtfs_schedule" in feed
            assert await page.evaluate("window.__marker") == "same page"  # no reload happened

            await page.evaluate("document.querySelector('button[data-window=\"7d\"]').click()")
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(ARTIFACTS / "dashboard.png")
            (ARTIFACTS / "dashboard-timing.json").write_text(
                json.dumps({"endpoint_ms": round(endpoint_ms, 1), **timing}, indent=2) + "\n"
            )
            assert not [c for c in browser.console if "Error" in c], browser.console
    finally:
        code = await daemon.stop()
    assert code == 0, daemon.lines[-20:]
