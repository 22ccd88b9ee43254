"""The interfaces the engine needs of what watches it: a resource sampler and its probes.

Implementations live in ``observe`` (``observe/monitor.py``) and satisfy these
structurally; the runner finds the sampler as ``services["monitor"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from interlock.kit.http import CallStats


class RunProbe(Protocol):
    """The measurements of one component run while it is in progress."""

    @property
    def calls(self) -> CallStats:
        """Where the run's API calls are recorded."""
        ...


ProbeT = TypeVar("ProbeT", bound=RunProbe)


class ResourceSampler(Protocol[ProbeT]):
    """Measures component runs: one probe per run, from its start to its finish."""

    def start(self, name: str) -> ProbeT:
        """Begin measuring a run of ``name``."""
        ...

    def finish(
        self, probe: ProbeT, *, records: int, attempts: int, extra: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Stop measuring; the run's metrics (the component's own ``extra`` first)."""
        ...
