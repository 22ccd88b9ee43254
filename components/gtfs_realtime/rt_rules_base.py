"""What the checks of :mod:`.rt_rules` share: the book of hits and one feed's context."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

#: Sample entities kept per rule; the rest are only counted.
SAMPLES = 5
#: The validator's window of plausible POSIX seconds (2005-01-01 to 2033-02-10): a
#: time outside it is most likely in milliseconds (E001).
MIN_POSIX, MAX_POSIX = 1_104_537_600, 1_991_620_134


class RuleBook:
    """Counts per rule id and the first :data:`SAMPLES` (entity id, field, value) of each."""

    __slots__ = ("counts", "samples")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.samples: dict[str, list[tuple[str | None, str, Any]]] = {}

    def hit(self, code: str, entity_id: str | None, field: str, value: Any) -> None:
        n = self.counts.get(code, 0)
        self.counts[code] = n + 1
        if n < SAMPLES:
            self.samples.setdefault(code, []).append((entity_id, field, value))


class Context:
    """What the checks of one feed share: the book, the clock, the header, the schedule."""

    def __init__(self, book: RuleBook, header_timestamp: int, now: float) -> None:
        self.book = book
        self.hit = book.hit
        self.header_ts = header_timestamp
        self.now = now
        self.full_dataset = True
        self.vehicle_ids: set[str] = set()  # E052
        self.trips: Collection[str] | None = None
        self.routes: Collection[str] | None = None
        self.stops: Collection[str] | None = None
        self.route_of: Callable[[str], str | None] | None = None
        self.stop_times: Callable[[str], Any] | None = None
        self.direction_of: Callable[[str], int | None] | None = None
        self.agencies: Collection[str] | None = None
        self.location_type_of: Callable[[str], int | None] | None = None
        #: Stops whose location_type is not 0, where the schedule gives them as a set.
        self.stations: Collection[str] | None = None
        self.frequencies_of: Callable[[str], Any] | None = None
        self.multi_stop: dict[str, bool] = {}  # E009: trip_id -> visits a stop twice


def is_posix(t: int) -> bool:
    return MIN_POSIX <= t <= MAX_POSIX


def check_stop(ctx: Context, eid: str, stop_id: str, field: str, *, location: bool) -> None:
    """E011 (stop_id in stops.txt) and, for trip updates and vehicles, E015."""
    if ctx.stops is not None and stop_id not in ctx.stops:
        ctx.hit("E011", eid, field, stop_id)
    if location and ctx.location_type_of is not None:
        kind = ctx.location_type_of(stop_id)
        if kind is not None and kind != 0:
            ctx.hit("E015", eid, field, stop_id)
