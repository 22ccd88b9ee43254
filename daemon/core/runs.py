"""A run: its id, and the result it reports when it ends.

Apart from the scheduler, so the component runner can record into a run's result
without importing the scheduler that drives it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from interlock.core.decisions import Settled
from interlock.outcome import Status


@dataclass
class RunResult:
    """What one run did."""

    run_id: str
    status: str
    outcomes: dict[str, Settled] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Whether anything in the run failed, timed out or was cancelled."""
        bad = (Status.FAILED, Status.TIMED_OUT, Status.CANCELLED, Status.INTERRUPTED)
        return self.status != "succeeded" or any(s.status in bad for s in self.outcomes.values())


def new_run_id(now: datetime) -> str:
    """Sortable and unique: UTC time plus a little randomness."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
