"""Notifications: email and Slack channels fed by the event bus, with dedup and rate limits."""

from __future__ import annotations

from daemon.notify.notifier import Notifier, build_channels

__all__ = ["Notifier", "build_channels"]
