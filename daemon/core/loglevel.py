"""Whether debug logging is on, so hot paths build debug fields only when it is.

The logging setup lives in ``observe``, above the engine, so it tells the engine
here how to read its level; until it does, the level is INFO, the setup's default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable


def _default_level() -> int:
    return logging.INFO


_source: Callable[[], int] = _default_level


def read_level_from(source: Callable[[], int]) -> None:
    """Take the process's log level from ``source``, called each time it is asked."""
    global _source
    _source = source


def debug_enabled() -> bool:
    """Whether the process logs at debug level."""
    return _source() <= logging.DEBUG
