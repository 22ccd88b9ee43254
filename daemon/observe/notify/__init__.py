"""Notifications: email and Slack channels fed by the event bus, with dedup and rate limits.

An event-bus subscriber like the rest of ``observe``; it imports nothing above ``observe``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Notifier", "build_channels"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the channels pull in the SMTP client, which a daemon
    # without alerting (or `interlock report`, which only needs the policy) never needs.
    if name in __all__:
        from interlock.observe.notify import notifier

        return getattr(notifier, name)
    raise AttributeError(f"module 'interlock.observe.notify' has no attribute {name!r}")
