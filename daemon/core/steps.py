"""How long a component holds the event loop: each step of its coroutine, timed.

A coroutine runs in steps between awaits that suspend; while a step runs nothing
else does (the admin socket, the watchdog, other components). :func:`timed_steps`
drives a coroutine step by step and reports any step that held the loop longer
than a threshold, so a component that blocks the loop is named with the time it
took, at a cost of two clock reads per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")

#: A step longer than this is reported as blocking the event loop.
BLOCKED_LOOP_S = 0.5


class StepTimer:
    """The blocking seen in one component run: each long step reported, their total kept."""

    __slots__ = ("on_block", "threshold_s", "total_blocked_s")

    def __init__(
        self, on_block: Callable[[float], None], threshold_s: float = BLOCKED_LOOP_S
    ) -> None:
        self.on_block = on_block
        self.threshold_s = threshold_s
        self.total_blocked_s = 0.0

    def _took(self, seconds: float) -> None:
        if seconds >= self.threshold_s:
            self.total_blocked_s += seconds
            self.on_block(seconds)


class timed_steps:
    """Await ``coro``, timing each of its steps with ``timer`` (an awaitable, no extra task)."""

    __slots__ = ("coro", "timer")

    def __init__(self, coro: Coroutine[Any, Any, Any], timer: StepTimer) -> None:
        self.coro = coro
        self.timer = timer

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, timer = self.coro, self.timer
        clock = time.perf_counter
        send: Any = None
        throw: BaseException | None = None
        while True:
            t0 = clock()
            try:
                yielded = coro.send(send) if throw is None else coro.throw(throw)
            except StopIteration as stop:
                timer._took(clock() - t0)
                return stop.value
            except BaseException:
                timer._took(clock() - t0)
                raise
            timer._took(clock() - t0)
            try:
                send, throw = (yield yielded), None
            except BaseException as exc:  # cancellation and friends go to the component
                send, throw = None, exc
