"""A component's own worker threads: bounded, never shared, never holding up the process.

Each component gets one :class:`WorkerThreads` for its lifetime. A thread that ignores
its cancellation signal keeps only its own component's slot (the component shows as
``stopping`` until the thread ends); it never starves another component, and, being a
daemon thread, it never keeps the process alive after the daemon has decided to exit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Worker threads one component may run at once; more calls wait for a free one.
DEFAULT_LIMIT = 4


def _deliver(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class WorkerThreads:
    """At most ``limit`` daemon threads at a time for one component."""

    def __init__(self, name: str, limit: int = DEFAULT_LIMIT) -> None:
        self.name = name
        self.limit = limit
        self._free: asyncio.Semaphore | None = None

    async def start(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Start ``fn`` in a new thread once one of the ``limit`` places is free.

        Returns the future of its result at once (after the wait for a place); the
        place is given back when the thread really ends, not when its caller stops
        waiting.
        """
        if self._free is None:
            self._free = asyncio.Semaphore(self.limit)
        free = self._free
        await free.acquire()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def target() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting task, whatever it is
                error = exc
            finally:
                try:
                    loop.call_soon_threadsafe(_deliver, future, result, error)
                    loop.call_soon_threadsafe(free.release)
                except RuntimeError:
                    pass  # the loop is closed: the daemon has exited without this thread

        thread = threading.Thread(target=target, name=f"interlock worker {self.name}", daemon=True)
        try:
            thread.start()
        except BaseException:
            free.release()
            raise
        return future
