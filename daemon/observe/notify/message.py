"""Notification messages: one structure, rendered as plain text, HTML and Slack blocks.

Written to be read on a phone: a short title, then what failed, why (the error's
first line), since when, the next attempt, and the command that shows more. Every
text is masked as the message is made: no channel ever carries a resolved secret.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from interlock.secrets import mask

Kind = Literal["failure", "still_failing", "recovery", "threshold", "run_summary", "quota"]

_ICON: dict[str, str] = {
    "failure": "\N{CROSS MARK}",
    "still_failing": "\N{CROSS MARK}",
    "recovery": "\N{WHITE HEAVY CHECK MARK}",
    "threshold": "\N{WARNING SIGN}",
    "run_summary": "\N{CLIPBOARD}",
    "quota": "\N{WARNING SIGN}",
}


@dataclass(frozen=True, kw_only=True)
class Message:
    """What one notification says, independent of the channel that carries it."""

    kind: Kind
    title: str
    lines: tuple[tuple[str, str], ...]  # (label, text): "Why", "Since", "Next attempt"...
    command: str
    component: str | None = None
    urgent: bool = False  # never held back by a rate limit (recoveries)
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        # The "Why" is an error from outside: an upstream's page may have quoted a key.
        object.__setattr__(self, "title", mask(self.title))
        object.__setattr__(self, "lines", tuple((k, mask(v)) for k, v in self.lines))
        object.__setattr__(self, "notes", tuple(mask(n) for n in self.notes))

    @property
    def subject(self) -> str:
        """The email subject: the title, with the first line of the reason if any."""
        why = dict(self.lines).get("Why")
        text = f"[interlock] {self.title}"
        return f"{text}: {why}"[:160] if why else text

    def with_note(self, note: str) -> Message:
        """A copy with one more footnote (e.g. messages held back by the rate limit)."""
        return Message(
            kind=self.kind,
            title=self.title,
            lines=self.lines,
            command=self.command,
            component=self.component,
            urgent=self.urgent,
            notes=(*self.notes, note),
        )


def render_text(msg: Message) -> str:
    """The plain-text body (emails' text part, Slack's notification fallback)."""
    out = [f"{_ICON[msg.kind]} {msg.title}", ""]
    out += [f"{label}: {text}" for label, text in msg.lines]
    out += ["", f"More: {msg.command}"]
    out += [f"({note})" for note in msg.notes]
    return "\n".join(out) + "\n"


def render_html(msg: Message) -> str:
    """A small HTML alternative for mail clients that prefer it."""
    rows = "".join(
        f"<tr><td><b>{html.escape(label)}</b></td><td>{html.escape(text)}</td></tr>"
        for label, text in msg.lines
    )
    notes = "".join(f"<p><i>{html.escape(n)}</i></p>" for n in msg.notes)
    return (
        f"<html><body><h3>{_ICON[msg.kind]} {html.escape(msg.title)}</h3>"
        f"<table>{rows}</table><p>More: <code>{html.escape(msg.command)}</code></p>{notes}"
        "</body></html>"
    )


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_slack(msg: Message) -> dict[str, Any]:
    """A Slack incoming-webhook payload using blocks, with a text fallback."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{_ICON[msg.kind]} {msg.title}"[:150]},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "\n".join(f"*{label}:* {_mrkdwn(text)}" for label, text in msg.lines)[
                    :3000
                ],
            },
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"More: `{_mrkdwn(msg.command)}`"}]
            + [{"type": "mrkdwn", "text": _mrkdwn(n)} for n in msg.notes],
        },
    ]
    return {"text": f"{msg.title}", "blocks": blocks}


def when(at: datetime, tz: ZoneInfo, now: datetime | None = None) -> str:
    """A time a person reads at a glance: ``09:00`` today, else ``Tue 14 May 09:00``."""
    local = at.astimezone(tz)
    if now is not None and local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M")
    return local.strftime("%a %d %b %H:%M")


def span(delta: timedelta) -> str:
    """``2 h 5 min``, ``40 s``."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
