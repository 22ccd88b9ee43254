"""Stand-ins for the notification channels: a real SMTP server (aiosmtpd) and a Slack webhook."""

from __future__ import annotations

import asyncio
import email
import ssl
import subprocess
from collections.abc import AsyncIterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class SmtpSink:
    """An in-process SMTP server on 127.0.0.1 that keeps what it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[tuple[str, str]] = []
        self.arrived = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.arrived.set()
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cret-pass")

    async def start(self, **smtp_kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="127.0.0.1", **smtp_kwargs), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def messages(self) -> list[Message]:
        return [email.message_from_bytes(e.original_content or b"") for e in self.envelopes]

    async def wait(self, count: int, limit_s: float = 10) -> list[Message]:
        async with asyncio.timeout(limit_s):
            while len(self.envelopes) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.messages()


class SlackStandin:
    """An aiohttp server answering like a Slack incoming webhook; can be 'down' on command."""

    path = "/services/T000/B000/not-a-real-secret"

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.refused = 0
        self.fail_next = 0
        self.arrived = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        if self.fail_next > 0:
            self.fail_next -= 1
            self.refused += 1
            self.arrived.set()
            return web.Response(status=500, text="internal_error")
        self.payloads.append(await request.json())
        self.arrived.set()
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(self.path, self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}{self.path}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait(self, count: int, limit_s: float = 10) -> list[dict[str, Any]]:
        async with asyncio.timeout(limit_s):
            while len(self.payloads) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.payloads


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandin]:
    hook = SlackStandin()
    await hook.start()
    yield hook
    await hook.stop()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
