"""Built GTFS-realtime feeds for the rule tests: a clean feed, a schedule, and per rule
a change that raises it and a near miss that does not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from google.transit import gtfs_realtime_pb2 as rt

NOW = 1_738_392_840
#: The poll's clock in the cases: 20 s after the header.
CLOCK = NOW + 20
H = 3600
#: Trip TM's stops: it calls at S1 twice.
LOOP = ((1, "S1", 0), (2, "S2", 60), (3, "S1", 120))


class StopTime(NamedTuple):
    """A scheduled stop as the schedule index gives it."""

    stop_sequence: int
    stop_id: str | None
    arrival_secs: int | None
    departure_secs: int | None


@dataclass
class View:
    """A schedule with every part the rules read, as plain data."""

    trip_ids: frozenset[str] = frozenset({"T1", "T2", "TM", "TN", "FZ", "F1"})
    route_ids: frozenset[str] = frozenset({"R1", "R2"})
    stop_ids: frozenset[str] = frozenset({"S1", "S2", "S3"})
    agency_ids: frozenset[str] = frozenset({"A1"})
    routes: dict[str, str] = field(
        default_factory=lambda: {t: "R2" if t == "T2" else "R1" for t in View.trip_ids}
    )
    times: dict[str, list[StopTime]] = field(
        default_factory=lambda: {
            "T1": [StopTime(1, "S1", 8 * H, 8 * H + 30), StopTime(2, "S2", 8 * H + 60, None)],
            "TM": [StopTime(n, s, 8 * H + t, 8 * H + t) for n, s, t in LOOP],
            "TN": [StopTime(1, "S1", 8 * H, 8 * H), StopTime(2, "S2", None, None)],
        }
    )

    def route_of(self, trip_id: str) -> str | None:
        return self.routes.get(trip_id)

    def stop_times(self, trip_id: str) -> list[StopTime]:
        return self.times.get(trip_id, [])

    def direction_of(self, trip_id: str) -> int | None:
        return 0

    def location_type_of(self, stop_id: str) -> int | None:
        return {"S1": 0, "S2": 0, "S3": 1}.get(stop_id)

    def frequencies_of(self, trip_id: str) -> list[tuple[int, int, int, int]]:
        return {"FZ": [(6 * H, 10 * H, 600, 0)], "F1": [(6 * H, 10 * H, 600, 1)]}.get(trip_id, [])


@dataclass
class IdsOnly:
    """A schedule index that holds id sets only."""

    trip_ids: frozenset[str] = frozenset({"T1"})
    route_ids: frozenset[str] = frozenset({"R1"})
    stop_ids: frozenset[str] = frozenset({"S1", "S2"})


def _trip(trip: rt.TripDescriptor, trip_id: str = "T1") -> None:
    trip.trip_id, trip.route_id = trip_id, "R1"
    trip.start_time, trip.start_date = "08:00:00", "20250201"
    trip.direction_id = 0
    trip.schedule_relationship = rt.TripDescriptor.SCHEDULED


def clean() -> rt.FeedMessage:
    """A feed that raises nothing against :class:`View`: a trip update, a vehicle, an alert."""
    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.incrementality = rt.FeedHeader.FULL_DATASET
    m.header.timestamp = NOW
    e = m.entity.add()
    e.id = "tu1"
    tu = e.trip_update
    _trip(tu.trip)
    tu.vehicle.id = "V1"
    tu.timestamp = NOW - 10
    for seq, stop in ((1, "S1"), (2, "S2")):
        stu = tu.stop_time_update.add()
        stu.stop_sequence, stu.stop_id = seq, stop
        stu.arrival.time = NOW + seq * 60
        stu.departure.time = NOW + seq * 60 + 30
        stu.schedule_relationship = rt.TripUpdate.StopTimeUpdate.SCHEDULED
    e = m.entity.add()
    e.id = "vp1"
    vp = e.vehicle
    _trip(vp.trip)
    vp.vehicle.id = "V9"
    vp.timestamp = NOW - 5
    vp.position.latitude, vp.position.longitude = -37.8, 144.9
    vp.position.bearing, vp.position.speed = 90.0, 10.0
    vp.stop_id = "S1"
    e = m.entity.add()
    e.id = "al1"
    al = e.alert
    period = al.active_period.add()
    period.start, period.end = NOW - H, NOW + H
    ie = al.informed_entity.add()
    ie.agency_id, ie.route_id, ie.stop_id = "A1", "R1", "S1"
    ie.trip.trip_id, ie.trip.route_id = "T1", "R1"
    ie.trip.schedule_relationship = rt.TripDescriptor.SCHEDULED
    return m


Change = Callable[[rt.FeedMessage], Any]


def tu(m: rt.FeedMessage) -> rt.TripUpdate:
    return m.entity[0].trip_update


def stu(m: rt.FeedMessage, i: int = 0) -> rt.TripUpdate.StopTimeUpdate:
    return m.entity[0].trip_update.stop_time_update[i]


def vp(m: rt.FeedMessage) -> rt.VehiclePosition:
    return m.entity[1].vehicle


def ie(m: rt.FeedMessage) -> rt.EntitySelector:
    return m.entity[2].alert.informed_entity[0]


def set_(get: Callable[[rt.FeedMessage], Any], **values: Any) -> Change:
    def change(m: rt.FeedMessage) -> None:
        target = get(m)
        for name, value in values.items():
            if value is None:
                target.ClearField(name)
            else:
                setattr(target, name, value)

    return change


def both(*changes: Change) -> Change:
    def change(m: rt.FeedMessage) -> None:
        for c in changes:
            c(m)

    return change


def header(m: rt.FeedMessage) -> rt.FeedHeader:
    return m.header


def trip(m: rt.FeedMessage) -> rt.TripDescriptor:
    return tu(m).trip


def arrival(i: int) -> Callable[[rt.FeedMessage], Any]:
    return lambda m: stu(m, i).arrival


def departure(i: int) -> Callable[[rt.FeedMessage], Any]:
    return lambda m: stu(m, i).departure


def second_vehicle(vehicle_id: str) -> Change:
    def change(m: rt.FeedMessage) -> None:
        e = m.entity.add()
        e.id = "vp2"
        e.vehicle.vehicle.id = vehicle_id
        e.vehicle.timestamp = NOW

    return change


def no_stops(m: rt.FeedMessage) -> None:
    tu(m).ClearField("stop_time_update")


def empty_selector(m: rt.FeedMessage) -> None:
    m.entity[2].alert.informed_entity.add()
