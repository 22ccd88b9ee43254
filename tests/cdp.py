"""A small headless-Chromium driver for tests: the DevTools protocol over aiohttp's websocket.

``async with Browser.launch() as browser: page = await browser.new_page(url)`` then
``await page.evaluate(js)``, ``await page.wait_for(js, limit_s)`` and
``await page.screenshot(path)``. :func:`chromium_path` says whether a browser is
installed; tests skip with that reason when it is not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags Chromium needs as root on a machine with a closed network (see .ci/run).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


def chromium_path() -> str | None:
    """The Chromium (or Chrome) executable, or None when none is installed."""
    override = os.environ.get("INTERLOCK_CHROMIUM")
    if override:
        return override if Path(override).exists() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class CDPError(Exception):
    """The browser answered a DevTools command with an error."""


class Page:
    """One tab, attached through a flat DevTools session."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, session_id=self.session_id, **params)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` (awaited if it is a promise)."""
        reply = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in reply:
            raise CDPError(f"{expression!r} raised: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, limit_s: float, *, every: float = 0.05) -> Any:
        """Poll ``expression`` in the page until it is truthy; its value. TimeoutError after
        ``limit_s`` seconds (the page is polled: there is no event for "the DOM now says X")."""
        async with asyncio.timeout(limit_s):
            while True:
                value = await self.evaluate(expression)
                if value:
                    return value
                await asyncio.sleep(every)

    async def screenshot(self, path: Path) -> None:
        """A PNG of the whole page."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        reply = await self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )
        await asyncio.to_thread(_write, path, base64.b64decode(reply["data"]))


class Browser:
    """A headless Chromium process and its browser-level DevTools connection."""

    def __init__(self, proc: asyncio.subprocess.Process, profile: str) -> None:
        self.proc = proc
        self.profile = profile
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self.console: list[str] = []
        self._drain: asyncio.Task[None] | None = None

    @classmethod
    def launch(cls, *, width: int = 1400, height: int = 1000) -> _Launch:
        return _Launch(width, height)

    async def _connect(self, url: str) -> None:
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(url, max_msg_size=0)
        self._reader = asyncio.create_task(self._read(), name="cdp reader")

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif data.get("method") == "Runtime.consoleAPICalled":
                args = data["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", "")) for a in args))
            elif data.get("method") == "Runtime.exceptionThrown":
                self.console.append(str(data["params"]["exceptionDetails"]))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CDPError("the browser closed the DevTools connection"))

    async def send(
        self, method: str, *, session_id: str | None = None, limit_s: float = 15.0, **params: Any
    ) -> dict[str, Any]:
        assert self._ws is not None
        msg_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if session_id is not None:
            message["sessionId"] = session_id
        await self._ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, limit_s)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def new_page(self, url: str, *, limit_s: float = 15.0) -> Page:
        """Open ``url`` in a new tab and wait for its load event."""
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        page = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        await page.send("Page.navigate", url=url)
        await page.wait_for("document.readyState === 'complete'", limit_s)
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._ws is not None:
                await asyncio.wait_for(self.send("Browser.close", limit_s=5), 5)
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        for task in (self._reader, self._drain):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 10)
        shutil.rmtree(self.profile, ignore_errors=True)


class _Launch:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.browser: Browser | None = None

    async def __aenter__(self) -> Browser:
        exe = chromium_path()
        if exe is None:
            raise FileNotFoundError("no Chromium executable found")
        profile = tempfile.mkdtemp(prefix="interlock-chromium-")
        proc = await asyncio.create_subprocess_exec(
            exe,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        browser = Browser(proc, profile)
        try:
            assert proc.stderr is not None
            url = None
            async with asyncio.timeout(30):
                while url is None:
                    line = await proc.stderr.readline()
                    if not line:
                        raise CDPError("Chromium exited before it listened for DevTools")
                    found = _LISTENING.search(line)
                    if found:
                        url = found.group(1).decode()
            # Keep draining stderr so Chromium never blocks on a full pipe.
            browser._drain = asyncio.create_task(_drain(proc.stderr), name="chromium stderr")
            await browser._connect(url)
        except BaseException:
            await browser.close()
            raise
        self.browser = browser
        return browser

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.browser is not None:
            await self.browser.close()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
