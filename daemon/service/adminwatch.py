"""``watch`` on the admin socket: a connection turned into a live stream of events.

Each watcher has a bounded queue fed from one bus subscriber; one that falls
``WATCH_QUEUE`` events behind is cut off (told ``overflow``) rather than slowing the bus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from interlock import events as ev
from interlock.errors import AdminRequestError
from interlock.events import EventBus
from interlock.service.adminrequest import NAMES, check_arguments

WATCH_QUEUE = 1000

Write = Callable[[asyncio.StreamWriter, Mapping[str, Any]], Awaitable[None]]


def _end_stream(queue: asyncio.Queue[ev.Event | None]) -> None:
    """Put the end marker, dropping queued events if that is what makes room."""
    while queue.full():
        queue.get_nowait()
    queue.put_nowait(None)


def _error(code: str, message: str, request_id: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": False, "error": {"code": code, "message": message}}
    if request_id is not None:
        reply["id"] = request_id
    return reply


class Watchers:
    """The watch streams of one admin server, fed by a subscriber on ``bus``."""

    def __init__(self, bus: EventBus) -> None:
        self._queues: dict[asyncio.Queue[ev.Event | None], frozenset[str] | None] = {}
        self._ending = False
        bus.subscribe("admin_watch", self._fan_out, maxsize=WATCH_QUEUE * 10)

    def end_all(self) -> None:
        """End every stream (the server is closing)."""
        self._ending = True
        for queue in list(self._queues):
            _end_stream(queue)

    async def _fan_out(self, batch: Sequence[ev.Event]) -> None:
        for queue, wanted in list(self._queues.items()):
            for event in batch:
                if wanted is not None and event.name not in wanted:
                    continue
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:
                    # A watcher that cannot keep up is cut off rather than slowing the bus.
                    self._queues.pop(queue, None)
                    _end_stream(queue)
                    break

    async def stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: dict[str, Any],
        write: Write,
    ) -> None:
        """Answer a ``watch`` request, then send events until the client or the server ends."""
        names = request.get("events")
        known = set(ev._NAMES.values())
        try:
            check_arguments(request, {"events": NAMES})
            unknown = [n for n in names or () if n not in known]
            if unknown:
                raise AdminRequestError(
                    "invalid_argument", f"unknown event names {unknown[:5]!r} in 'events'"
                )
        except AdminRequestError as exc:
            message = f"{exc}; 'events' is a list of event names: {', '.join(sorted(known))}"
            await write(writer, _error("invalid_argument", message, request.get("id")))
            return
        queue: asyncio.Queue[ev.Event | None] = asyncio.Queue(WATCH_QUEUE)
        self._queues[queue] = frozenset(names) if names is not None else None
        reply: dict[str, Any] = {"ok": True, "result": {"watching": names or "all"}}
        if request.get("id") is not None:
            reply["id"] = request["id"]
        closed = asyncio.ensure_future(reader.read())  # EOF: the client went away
        try:
            await write(writer, reply)
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    return
                event = getter.result()
                if event is None:
                    if queue not in self._queues and not self._ending:
                        message = f"this watcher fell {WATCH_QUEUE} events behind and was cut off"
                        await write(writer, _error("overflow", message, None))
                    return
                await write(writer, event.to_dict(skip=frozenset({"memory"})))
        finally:
            self._queues.pop(queue, None)
            closed.cancel()
