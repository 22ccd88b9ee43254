"""What deserves a notification: pure decisions over a small, persisted alert book.

The same failure of the same component is announced once, then summarised at most
once per dedup window ("failed 12 times since 09:00") until the component succeeds,
which announces its recovery. A breached threshold is announced once per window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Verdict = Literal["failure", "still_failing"] | None

_DIGITS = re.compile(r"\d+")
#: Breach keys (``component|metric``) kept until their ``threshold_recovered``.
UNTIL_RECOVERED = "|min_realtime_join_percentage"


def signature(error: str) -> str:
    """An error with its numbers blanked, so '503 after 120 bytes' and '... 64 bytes' match."""
    return _DIGITS.sub("#", error.strip().lower())[:200]


@dataclass
class Failing:
    """A component that is failing: since when, how often, and what it last said."""

    since: datetime
    failures: int
    last_error: str
    signature: str
    last_sent: datetime


@dataclass
class AlertBook:
    """Dedup state: failing components and recently announced threshold breaches."""

    failing: dict[str, Failing] = field(default_factory=dict)
    breaches: dict[str, datetime] = field(default_factory=dict)

    def on_failure(self, component: str, error: str, at: datetime, window: timedelta) -> Verdict:
        """Record a failure; say whether to announce it, summarise it, or stay quiet."""
        sig = signature(error)
        state = self.failing.get(component)
        if state is None:
            self.failing[component] = Failing(at, 1, error, sig, at)
            return "failure"
        state.failures += 1
        state.last_error = error
        if sig != state.signature:
            # A different failure is news, whatever the window says.
            state.signature = sig
            state.last_sent = at
            return "failure"
        if at - state.last_sent >= window:
            state.last_sent = at
            return "still_failing"
        return None

    def on_success(self, component: str) -> Failing | None:
        """Record a success; the failure streak it ends, if there was one."""
        return self.failing.pop(component, None)

    def on_breach(self, key: str, at: datetime, window: timedelta) -> bool:
        """Whether a threshold breach (``component|metric``) should be announced now."""
        last = self.breaches.get(key)
        if last is not None and (at - last < window or key.endswith(UNTIL_RECOVERED)):
            return False  # a breach kept until it recovers is open: said once already
        self.breaches[key] = at
        return True

    def prune(self, now: datetime, window: timedelta) -> None:
        """Forget breach announcements older than the window (the book stays small).

        A breach that lasts until it recovers (a feed not joining its schedule) is kept
        however old, so its recovery is still announced.
        """
        self.breaches = {
            k: v
            for k, v in self.breaches.items()
            if now - v < window or k.endswith(UNTIL_RECOVERED)
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "failing": {
                name: {
                    "since": f.since.isoformat(),
                    "failures": f.failures,
                    "last_error": f.last_error,
                    "signature": f.signature,
                    "last_sent": f.last_sent.isoformat(),
                }
                for name, f in self.failing.items()
            },
            "breaches": {k: v.isoformat() for k, v in self.breaches.items()},
        }

    def open_until_recovered(self) -> set[str]:
        """Components with a join breach announced and not yet recovered."""
        return {k[: -len(UNTIL_RECOVERED)] for k in self.breaches if k.endswith(UNTIL_RECOVERED)}

    @classmethod
    def from_json(cls, doc: Any) -> AlertBook:
        """The stored book; an unreadable one starts empty rather than failing startup."""
        book = cls()
        if not isinstance(doc, dict):
            return book
        try:
            for name, f in dict(doc.get("failing", {})).items():
                book.failing[str(name)] = Failing(
                    since=datetime.fromisoformat(f["since"]),
                    failures=int(f["failures"]),
                    last_error=str(f["last_error"]),
                    signature=str(f["signature"]),
                    last_sent=datetime.fromisoformat(f["last_sent"]),
                )
            for key, at in dict(doc.get("breaches", {})).items():
                book.breaches[str(key)] = datetime.fromisoformat(at)
        except (KeyError, TypeError, ValueError):
            return cls()
        return book


@dataclass
class RateLimiter:
    """At most ``per_hour`` messages in any rolling hour; counts what it held back."""

    per_hour: int
    sent: list[datetime] = field(default_factory=list)
    held_back: int = 0

    def allow(self, now: datetime) -> bool:
        hour_ago = now - timedelta(hours=1)
        self.sent = [t for t in self.sent if t > hour_ago]
        if len(self.sent) >= self.per_hour:
            self.held_back += 1
            return False
        self.sent.append(now)
        return True

    def take_held_back(self) -> int:
        count, self.held_back = self.held_back, 0
        return count
