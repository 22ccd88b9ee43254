"""The channels a notification travels by: email over SMTP and Slack incoming webhooks.

A channel only sends; retries, backoff and rate limits belong to the notifier.
Email uses aiosmtplib: it is asyncio-native, so a slow relay costs a coroutine, not
a worker thread shared with components, and cancellation at shutdown is prompt.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import aiohttp
import aiosmtplib

from interlock.errors import NotificationError
from interlock.observe.notify.message import Message, render_html, render_slack, render_text

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


class Channel(Protocol):
    """Something that delivers a message or raises NotificationError."""

    name: str
    rate_limit_per_hour: int

    async def send(self, msg: Message) -> None: ...


class EmailChannel:
    """SMTP with STARTTLS, implicit TLS or neither; several recipients."""

    name = "email"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.host: str = settings["host"]
        self.security: str = settings.get("security", "starttls")
        self.port: int = int(settings.get("port", DEFAULT_PORTS[self.security]))
        self.username: str | None = settings.get("username")
        self.password: str | None = settings.get("password")
        self.sender: str = settings["from"]
        self.recipients: list[str] = list(settings["to"])
        self.timeout_s = float(settings.get("timeout_seconds", 30))
        self.rate_limit_per_hour = int(settings.get("rate_limit_per_hour", 20))
        self.tls_context: ssl.SSLContext | None = None
        if settings.get("ca_file"):
            self.tls_context = ssl.create_default_context(cafile=settings["ca_file"])

    def build(self, msg: Message) -> EmailMessage:
        """The email: a plain-text part and an HTML alternative."""
        mail = EmailMessage()
        mail["Subject"] = msg.subject
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain="interlock")
        mail.set_content(render_text(msg))
        mail.add_alternative(render_html(msg), subtype="html")
        return mail

    async def send(self, msg: Message) -> None:
        try:
            await aiosmtplib.send(
                self.build(msg),
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.security == "tls",
                start_tls=self.security == "starttls",
                tls_context=self.tls_context,
                timeout=self.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise NotificationError(
                f"email via {self.host}:{self.port} ({self.security}) failed: {exc}"
            ) from None


class SlackChannel:
    """A Slack incoming webhook, posted through the shared aiohttp session."""

    name = "slack"

    def __init__(
        self, settings: Mapping[str, Any], session: Callable[[], aiohttp.ClientSession]
    ) -> None:
        self.url: str = settings["webhook_url"]
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=float(settings.get("timeout_seconds", 15)))
        self.rate_limit_per_hour = int(settings.get("rate_limit_per_hour", 30))

    async def send(self, msg: Message) -> None:
        try:
            async with self.session().post(
                self.url, json=render_slack(msg), timeout=self.timeout
            ) as resp:
                if resp.status >= 300:
                    body = (await resp.text())[:200]
                    # The webhook URL is a secret: never put it in the message.
                    raise NotificationError(
                        f"Slack webhook answered {resp.status} {resp.reason}: {body}"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NotificationError(
                f"Slack webhook unreachable: {type(exc).__name__}: {exc}"
            ) from None
