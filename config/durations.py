"""Durations written as the platform documents them: ``"24h"``, ``"30m"``, ``"90s"``, ``"1d"``
or a number of seconds. Used by ``quota_management.retry_after_quota``.
"""

from __future__ import annotations

import re
from typing import Any

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_FORM = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
FORMS = "write a duration such as '24h', '30m', '90s' or a number of seconds"


def duration_seconds(value: Any) -> float:
    """Seconds in ``value`` (a positive number or a string like '30m'); ValueError if not."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; {FORMS}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _FORM.fullmatch(str(value).strip())
        if match is None:
            raise ValueError(f"{value!r} is not a duration; {FORMS}")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not 0 < seconds <= 7 * 86400:
        raise ValueError(f"{value!r} is not between 1 second and 7 days; {FORMS}")
    return seconds
