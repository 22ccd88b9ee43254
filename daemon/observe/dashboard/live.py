"""The dashboard's event-bus subscriber: live state for the page and its SSE streams.

One bus subscriber fans each event out to every connected page (a bounded queue
each; a page that falls behind is cut off and reconnects) and keeps the little
state the page needs before the history writer has caught up: each component's
last outcome and last quality report, and a version that says history changed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from interlock import events as ev
from interlock.events import EventBus

from .queries import summarise_quality

log = structlog.get_logger("interlock.dashboard")

CLIENT_QUEUE = 500
#: Fields too large or too private for a browser.
_SKIP = frozenset({"memory", "quality", "inputs", "metrics"})

Message = bytes | None


def sse(data: Mapping[str, Any]) -> bytes:
    """One server-sent event carrying ``data`` as JSON."""
    return b"data: " + json.dumps(data, separators=(",", ":"), default=str).encode() + b"\n\n"


class LiveHub:
    """Fans bus events out to SSE clients and remembers the latest per component."""

    def __init__(self, bus: EventBus, *, client_queue: int = CLIENT_QUEUE) -> None:
        self.client_queue = client_queue
        self._clients: set[asyncio.Queue[Message]] = set()
        self.last: dict[str, dict[str, Any]] = {}
        self.quality: dict[str, dict[str, Any]] = {}
        self.version = 0
        self._closed = False
        bus.subscribe("dashboard", self._on_batch, maxsize=10_000)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def seed(
        self, last: Mapping[str, dict[str, Any]], quality: Mapping[str, dict[str, Any]]
    ) -> None:
        """Start from what the state database says (events since then win)."""
        for name, row in last.items():
            self.last.setdefault(name, row)
        for name, report in quality.items():
            self.quality.setdefault(name, report)

    def connect(self) -> asyncio.Queue[Message]:
        """A new client's queue (ends with ``None``)."""
        queue: asyncio.Queue[Message] = asyncio.Queue(self.client_queue)
        if self._closed:
            queue.put_nowait(None)
        else:
            self._clients.add(queue)
        return queue

    def disconnect(self, queue: asyncio.Queue[Message]) -> None:
        self._clients.discard(queue)

    def close(self) -> None:
        """End every stream. Idempotent."""
        self._closed = True
        for queue in list(self._clients):
            _end(queue)
        self._clients.clear()

    async def _on_batch(self, batch: Sequence[ev.Event]) -> None:
        messages = []
        for event in batch:
            self._absorb(event)
            messages.append(sse(event.to_dict(skip=_SKIP, drop_none=True)))
        for queue in list(self._clients):
            for message in messages:
                try:
                    queue.put_nowait(message)
                except asyncio.QueueFull:
                    # A page that cannot keep up is cut off; EventSource reconnects and reloads.
                    self._clients.discard(queue)
                    _end(queue)
                    log.warning("dashboard_client_cut_off", queued=self.client_queue)
                    break

    def _absorb(self, event: ev.Event) -> None:
        if isinstance(event, ev.ComponentFinished):
            self.version += 1
            self.last[event.component] = {
                "run_id": event.run_id,
                "status": event.status,
                "reason": event.reason,
                "error": event.error,
                "started_at": event.started_at.isoformat(),
                "finished_at": event.at.isoformat(),
                "duration_s": event.duration_s,
                "records": event.records,
                "attempts": event.attempts,
            }
            if event.quality:
                self.quality[event.component] = {
                    "run_id": event.run_id,
                    "status": event.status,
                    "finished_at": event.at.isoformat(),
                    "report": summarise_quality(event.quality),
                }
        elif isinstance(event, ev.ComponentSkipped):
            self.version += 1
            self.last[event.component] = {
                "run_id": event.run_id,
                "status": "skipped",
                "reason": event.reason,
                "error": event.detail,
                "started_at": event.at.isoformat(),
                "finished_at": event.at.isoformat(),
                "duration_s": 0.0,
                "records": 0,
                "attempts": 0,
            }


def _end(queue: asyncio.Queue[Message]) -> None:
    """Put the end marker, dropping queued messages if that is what makes room."""
    while queue.full():
        queue.get_nowait()
    queue.put_nowait(None)
