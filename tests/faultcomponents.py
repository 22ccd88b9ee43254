"""Components that misbehave in every way a component can, for the fault matrix.

Each is bounded in time: a thread that ignores its cancel signal still ends by
itself after ``settings.seconds``, so every test stops by itself.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from interlock.kit import ComponentContext
from interlock.outcome import Outcome
from tests.testcomponents import PROBE


class Cataclysm(BaseException):
    """A BaseException that is neither cancellation nor an interpreter exit."""


#: Threads the leaking component started, so tests can wait for them to end.
LEAKED: dict[str, threading.Event] = {}


class Misbehaves:
    """Does ``settings.kind`` (see :data:`KINDS`) every attempt."""

    settings_schema: ClassVar[dict[str, Any] | None] = None

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings

    async def run(self, ctx: ComponentContext) -> Any:
        PROBE.enter(self.name)
        try:
            return await KINDS[self.settings["kind"]](self, ctx)
        finally:
            PROBE.leave(self.name)

    async def own_timeout(self, ctx: ComponentContext) -> Outcome:
        raise aiohttp.ServerTimeoutError("Timeout on reading data from socket")

    async def exception_group(self, ctx: ComponentContext) -> Outcome:
        raise ExceptionGroup("two things broke", [ValueError("one"), KeyError("two")])

    async def keyboard_interrupt(self, ctx: ComponentContext) -> Outcome:
        raise KeyboardInterrupt

    async def system_exit(self, ctx: ComponentContext) -> Outcome:
        raise SystemExit(3)

    async def base_exception(self, ctx: ComponentContext) -> Outcome:
        raise Cataclysm("the sky fell")

    async def returns_none(self, ctx: ComponentContext) -> None:
        return None

    async def returns_wrong_type(self, ctx: ComponentContext) -> dict[str, int]:
        return {"records": 3}

    async def hangs(self, ctx: ComponentContext) -> Outcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def blocks_loop(self, ctx: ComponentContext) -> Outcome:
        time.sleep(float(self.settings.get("seconds", 0.6)))  # noqa: ASYNC251 - the fault
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.time_ns()}")

    async def leaks_thread(self, ctx: ComponentContext) -> Outcome:
        ended = LEAKED.setdefault(ctx.run_id, threading.Event())
        seconds = float(self.settings.get("seconds", 1.5))

        def ignore_cancel() -> None:
            try:
                time.sleep(seconds)  # never looks at ctx.cancel
            finally:
                ended.set()

        threads = int(self.settings.get("threads", 1))
        await asyncio.gather(*(ctx.to_thread(ignore_cancel) for _ in range(threads)))
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.time_ns()}")

    async def quick_thread(self, ctx: ComponentContext) -> Outcome:
        await ctx.to_thread(time.sleep, 0.01)
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.time_ns()}")

    async def thread_raises_system_exit(self, ctx: ComponentContext) -> Outcome:
        def leave() -> None:
            raise SystemExit(4)

        await ctx.to_thread(leave)
        raise AssertionError("unreachable")

    async def cleanup_raises_keyboard_interrupt(self, ctx: ComponentContext) -> Outcome:
        def interrupt() -> None:
            raise KeyboardInterrupt

        ctx.on_cleanup(interrupt)
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.time_ns()}")

    async def hangs_in_cleanup(self, ctx: ComponentContext) -> Outcome:
        ctx.on_cleanup(asyncio.Event().wait)
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.time_ns()}")

    async def cancelled_in_cleanup(self, ctx: ComponentContext) -> Outcome:
        gate = PROBE.gate(f"{self.name}-cleanup")

        async def slow_cleanup() -> None:
            PROBE.started_event(f"{self.name}-cleanup").set()
            await asyncio.wait_for(gate.wait(), 5)

        ctx.on_cleanup(slow_cleanup)
        return Outcome.published(records=1, fingerprint=f"{self.name}-{time.time_ns()}")


KINDS = {
    name: getattr(Misbehaves, name)
    for name in (
        "own_timeout",
        "exception_group",
        "keyboard_interrupt",
        "system_exit",
        "base_exception",
        "returns_none",
        "returns_wrong_type",
        "hangs",
        "blocks_loop",
        "leaks_thread",
        "cancelled_in_cleanup",
        "quick_thread",
        "hangs_in_cleanup",
        "thread_raises_system_exit",
        "cleanup_raises_keyboard_interrupt",
    )
}
