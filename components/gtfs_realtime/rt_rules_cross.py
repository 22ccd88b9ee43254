"""W003 and E047: a trip updates feed and its vehicle positions feed checked together.

The validator's ``CrossFeedDescriptorValidator`` compares the trip and vehicle ids of
every feed monitored for one schedule. Here the pairs are configured (the
component's ``pairs`` setting); each feed keeps only the ids these rules read, in a
:class:`CrossIds` filled as its entities are checked, and :func:`check_pair` runs the
rules once both feeds of a pair are in hand. The semantics are the validator's: it
merges both feeds' entities, so trip updates and vehicles are taken from either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from interlock.components.gtfs_realtime.rt_rules_base import RuleBook
from interlock.config.schema import did_you_mean
from interlock.errors import ConfigError

if TYPE_CHECKING:  # light to import: the component's settings read it at `plan`
    from google.transit import gtfs_realtime_pb2 as rt


def parse_pairs(component: str, endpoints: Mapping[str, str], raw: Any) -> list[tuple[str, str]]:
    """The ``pairs`` setting as (trip updates, vehicle positions) endpoint names.

    Each name must be one of ``endpoints``; a wrong one is a :class:`ConfigError`
    naming the place, the value, the endpoints allowed and the closest.
    """
    out: list[tuple[str, str]] = []
    names = sorted(endpoints)
    problems = []
    for i, pair in enumerate(raw or ()):
        for j, name in enumerate(pair):
            if name not in endpoints:
                problems.append(
                    f"components.{component}.settings.pairs[{i}][{j}]: {name!r} is not one of "
                    f"its endpoints{did_you_mean(name, names)}; allowed: {', '.join(names)}"
                )
        out.append((pair[0], pair[1]))
    if problems:
        raise ConfigError(f"components.{component}.settings.pairs", problems)
    return out


class CrossIds:
    """The trip and vehicle ids of one feed's trip updates and vehicles (last one wins)."""

    __slots__ = (
        "trip_updates",
        "trip_vehicle",
        "trips_alone",
        "vehicle_trip",
        "vehicles",
        "vehicles_alone",
        "vp_trip_vehicle",
        "vp_vehicle_trip",
    )

    def __init__(self) -> None:
        self.trip_vehicle: dict[str, str] = {}  # trip update: trip_id -> vehicle.id
        self.vehicle_trip: dict[str, str] = {}  # trip update: vehicle.id -> trip_id
        self.trips_alone: set[str] = set()  # trip updates without a vehicle.id
        self.trip_updates = 0
        self.vp_vehicle_trip: dict[str, str] = {}  # vehicle: vehicle.id -> trip_id
        self.vp_trip_vehicle: dict[str, str] = {}  # vehicle: trip_id -> vehicle.id
        self.vehicles_alone: set[str] = set()  # vehicles without a trip_id
        self.vehicles = 0

    def add(self, e: rt.FeedEntity) -> None:
        if e.HasField("trip_update") and e.trip_update.trip.HasField("trip_id"):
            tu = e.trip_update
            self.trip_updates += 1
            trip_id, vehicle_id = tu.trip.trip_id, tu.vehicle.id
            if vehicle_id:
                self.trip_vehicle[trip_id] = vehicle_id
                self.vehicle_trip[vehicle_id] = trip_id
            else:
                self.trips_alone.add(trip_id)
        if e.HasField("vehicle") and e.vehicle.vehicle.HasField("id"):
            v = e.vehicle
            self.vehicles += 1
            vehicle_id = v.vehicle.id
            trip_id = v.trip.trip_id if v.trip.HasField("trip_id") else ""
            if trip_id:
                self.vp_vehicle_trip[vehicle_id] = trip_id
                self.vp_trip_vehicle[trip_id] = vehicle_id
            else:
                self.vehicles_alone.add(vehicle_id)

    def merged(self, other: CrossIds) -> CrossIds:
        """Both feeds' ids, as the validator's combined feed message has them."""
        out = CrossIds()
        for name in ("trip_vehicle", "vehicle_trip", "vp_vehicle_trip", "vp_trip_vehicle"):
            setattr(out, name, {**getattr(self, name), **getattr(other, name)})
        out.trips_alone = self.trips_alone | other.trips_alone
        out.vehicles_alone = self.vehicles_alone | other.vehicles_alone
        out.trip_updates = self.trip_updates + other.trip_updates
        out.vehicles = self.vehicles + other.vehicles
        return out


def check_pair(
    trips: CrossIds, vehicles: CrossIds, block_of: Callable[[str], str | None] | None
) -> RuleBook:
    """W003 and E047 on a trip updates feed's and a vehicle positions feed's ids.

    ``block_of`` gives a scheduled trip's block_id (None when it has none or is not
    in the schedule): two different trips of the same block on one vehicle are not
    E047. Nothing is raised unless the pair has both trip updates and vehicles.
    """
    book = RuleBook()
    c = trips.merged(vehicles)
    if c.trip_updates == 0 or c.vehicles == 0:
        return book
    hit = book.hit
    for trip_id, vehicle_id in c.trip_vehicle.items():
        if trip_id not in c.vp_trip_vehicle:
            hit("W003", None, "trip_update.trip.trip_id", trip_id)
        if vehicle_id not in c.vp_vehicle_trip and vehicle_id not in c.vehicles_alone:
            hit("W003", None, "trip_update.vehicle.id", vehicle_id)
        theirs = c.vp_trip_vehicle.get(trip_id)
        if theirs and theirs != vehicle_id:
            hit("E047", None, "trip_update.vehicle.id", f"{trip_id}/{vehicle_id}")
    for vehicle_id, trip_id in c.vp_vehicle_trip.items():
        if vehicle_id not in c.vehicle_trip:
            hit("W003", None, "vehicle.vehicle.id", vehicle_id)
        if trip_id not in c.trip_vehicle and trip_id not in c.trips_alone:
            hit("W003", None, "vehicle.trip.trip_id", trip_id)
        theirs = c.vehicle_trip.get(vehicle_id)
        if theirs and theirs != trip_id and not _same_block(trip_id, theirs, block_of):
            hit("E047", None, "vehicle.trip.trip_id", f"{trip_id}/{vehicle_id}")
    for trip_id in c.trips_alone:
        if trip_id not in c.vp_trip_vehicle:
            hit("W003", None, "trip_update.trip.trip_id", trip_id)
    for vehicle_id in c.vehicles_alone:
        if vehicle_id not in c.vehicle_trip:
            hit("W003", None, "vehicle.vehicle.id", vehicle_id)
    return book


def _same_block(a: str, b: str, block_of: Callable[[str], str | None] | None) -> bool:
    if block_of is None:
        return False
    block = block_of(a)
    return block is not None and block == block_of(b)
