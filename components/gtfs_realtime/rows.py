"""A decoded GTFS-realtime feed flattened into table rows, and the feed's own record.

:class:`RowBatch` turns entities into rows for the tables of :mod:`.dataset`, each
row starting with (endpoint, header timestamp, entity id); enum values are stored
by name. An entity holding a value that cannot be stored is refused whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.delays import DERIVED, FEED, DelayDeriver


def _names(enum: Any) -> dict[int, str]:
    return {v.number: v.name for v in enum.DESCRIPTOR.values}


_TRIP_REL = _names(rt.TripDescriptor.ScheduleRelationship)
_STOP_REL = _names(rt.TripUpdate.StopTimeUpdate.ScheduleRelationship)
_VEHICLE_STATUS = _names(rt.VehiclePosition.VehicleStopStatus)
_CONGESTION = _names(rt.VehiclePosition.CongestionLevel)
_OCCUPANCY = _names(rt.VehiclePosition.OccupancyStatus)
_CAUSE = _names(rt.Alert.Cause)
_EFFECT = _names(rt.Alert.Effect)
_SEVERITY = _names(rt.Alert.SeverityLevel)
_INCREMENTALITY = _names(rt.FeedHeader.Incrementality)
_TEXT_FIELDS = ("header_text", "description_text", "url", "tts_header_text", "tts_description_text")


#: The entity tables, in the order :class:`RowBatch` fills them.
TABLES = (
    "trip_updates",
    "stop_time_updates",
    "vehicle_positions",
    "alerts",
    "alert_informed_entities",
    "alert_texts",
)
#: Columns per row of each table (the tuples below), for the INSERT statements.
COLUMNS = {
    "feeds": 13,
    "trip_updates": 14,
    "stop_time_updates": 14,
    "vehicle_positions": 19,
    "alerts": 8,
    "alert_informed_entities": 11,
    "alert_texts": 7,
}
INSERT = {
    table: f"INSERT INTO {table} VALUES ({','.join('?' * n)})" for table, n in COLUMNS.items()
}
#: The largest integer SQLite stores: a uint64 time above it is past any real time.
INT64_MAX = (1 << 63) - 1

Row = tuple[Any, ...]


class EntityRefused(ValueError):
    """An entity holds a value that cannot be stored; ``str()`` says which."""


@dataclass
class RefusedEntity:
    """One entity that was not stored: its place in the feed, its id and why."""

    index: int
    entity_id: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "entity_id": self.entity_id, "reason": self.reason}


@dataclass
class FeedRows:
    """The rows of one endpoint's feed, table -> tuples, plus the feed's own record."""

    endpoint: str
    header_timestamp: int
    feed: tuple[Any, ...]
    tables: dict[str, list[Row]] = field(default_factory=dict)
    duplicates: int = 0
    refused: list[RefusedEntity] = field(default_factory=list)
    #: Distinct trip, route and stop ids the stored entities name (for join rates).
    ids: tuple[set[str], set[str], set[str]] = field(default_factory=lambda: (set(), set(), set()))

    @property
    def records(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


def _time(value: int, name: str) -> int | None:
    if value > INT64_MAX:
        raise EntityRefused(
            f"{name} {value} is past any real time (over 2^63-1, the largest integer stored)"
        )
    return value or None


class RowBatch:
    """The rows of some entities, per table; :meth:`mark` and :meth:`undo` drop a partial one."""

    def __init__(
        self,
        endpoint: str,
        header_timestamp: int,
        *,
        revision: int = 0,
        delays: DelayDeriver | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.ts = header_timestamp
        self.revision = revision
        self.delays = delays
        self.lists: tuple[list[Row], ...] = tuple([] for _ in TABLES)
        #: Distinct trip, route and stop ids the added entities name (for join rates).
        self.trip_ids: set[str] = set()
        self.route_ids: set[str] = set()
        self.stop_ids: set[str] = set()

    def __len__(self) -> int:
        return sum(map(len, self.lists))

    def tables(self) -> dict[str, list[Row]]:
        return dict(zip(TABLES, self.lists, strict=True))

    def mark(self) -> tuple[int, ...]:
        return tuple(map(len, self.lists))

    def undo(self, mark: tuple[int, ...]) -> None:
        for rows, n in zip(self.lists, mark, strict=True):
            del rows[n:]

    def clear(self) -> None:
        for rows in self.lists:
            rows.clear()

    def add(self, entity: rt.FeedEntity) -> None:
        """Append ``entity``'s rows; :class:`EntityRefused` (nothing appended) if one cannot be."""
        endpoint, ts, eid, rev = self.endpoint, self.ts, entity.id, self.revision
        tu_rows, stu_rows, vp_rows, al_rows, ie_rows, tx_rows = self.lists
        has_tu, has_vp = entity.HasField("trip_update"), entity.HasField("vehicle")
        # Checked before anything is appended, so a refused entity leaves no rows.
        tu_time = _time(entity.trip_update.timestamp, "trip_update.timestamp") if has_tu else None
        vp_time = _time(entity.vehicle.timestamp, "vehicle.timestamp") if has_vp else None
        if has_tu:
            tu = entity.trip_update
            trip = tu.trip
            veh = tu.vehicle
            tu_rows.append(
                (
                    endpoint,
                    ts,
                    eid,
                    trip.trip_id or None,
                    trip.route_id or None,
                    trip.direction_id if trip.HasField("direction_id") else None,
                    trip.start_time or None,
                    trip.start_date or None,
                    _TRIP_REL.get(trip.schedule_relationship),
                    veh.id or None,
                    veh.label or None,
                    tu_time,
                    tu.delay if tu.HasField("delay") else None,
                    rev,
                )
            )
            derive = self.delays.for_trip(trip.trip_id, trip.start_date) if self.delays else None
            for pos, stu in enumerate(tu.stop_time_update):
                arr = stu.arrival
                dep = stu.departure
                has_arr = stu.HasField("arrival")
                has_dep = stu.HasField("departure")
                seq = stu.stop_sequence if stu.HasField("stop_sequence") else None
                sid = stu.stop_id or None
                if sid is not None:
                    self.stop_ids.add(sid)
                arr_time = (arr.time or None) if has_arr else None
                dep_time = (dep.time or None) if has_dep else None
                arr_delay = arr.delay if has_arr and arr.HasField("delay") else None
                dep_delay = dep.delay if has_dep and dep.HasField("delay") else None
                delay = arr_delay if arr_delay is not None else dep_delay
                source = None if delay is None else FEED
                if delay is None and derive is not None and (arr_time or dep_time):
                    delay = derive(seq, sid, arr_time, dep_time)
                    source = None if delay is None else DERIVED
                stu_rows.append(
                    (
                        endpoint,
                        ts,
                        eid,
                        pos,
                        seq,
                        sid,
                        arr_time,
                        arr_delay,
                        dep_time,
                        dep_delay,
                        _STOP_REL.get(stu.schedule_relationship),
                        rev,
                        delay,
                        source,
                    )
                )
        if has_vp:
            vp = entity.vehicle
            has_pos = vp.HasField("position")
            p = vp.position
            vp_rows.append(
                (
                    endpoint,
                    ts,
                    eid,
                    vp.trip.trip_id or None,
                    vp.trip.route_id or None,
                    vp.trip.start_date or None,
                    vp.vehicle.id or None,
                    vp.vehicle.label or None,
                    p.latitude if has_pos else None,
                    p.longitude if has_pos else None,
                    p.bearing if has_pos and p.HasField("bearing") else None,
                    p.speed if has_pos and p.HasField("speed") else None,
                    vp.current_stop_sequence if vp.HasField("current_stop_sequence") else None,
                    vp.stop_id or None,
                    _VEHICLE_STATUS.get(vp.current_status)
                    if vp.HasField("current_status")
                    else None,
                    vp_time,
                    _CONGESTION.get(vp.congestion_level)
                    if vp.HasField("congestion_level")
                    else None,
                    _OCCUPANCY.get(vp.occupancy_status)
                    if vp.HasField("occupancy_status")
                    else None,
                    rev,
                )
            )
        if entity.HasField("alert"):
            al = entity.alert
            periods = [[p.start or None, p.end or None] for p in al.active_period]
            al_rows.append(
                (
                    endpoint,
                    ts,
                    eid,
                    _CAUSE.get(al.cause) if al.HasField("cause") else None,
                    _EFFECT.get(al.effect) if al.HasField("effect") else None,
                    _SEVERITY.get(al.severity_level) if al.HasField("severity_level") else None,
                    json.dumps(periods) if periods else None,
                    rev,
                )
            )
            for pos, ie in enumerate(al.informed_entity):
                ie_rows.append(
                    (
                        endpoint,
                        ts,
                        eid,
                        pos,
                        ie.agency_id or None,
                        ie.route_id or None,
                        ie.route_type if ie.HasField("route_type") else None,
                        ie.direction_id if ie.HasField("direction_id") else None,
                        ie.trip.trip_id or None,
                        ie.stop_id or None,
                        rev,
                    )
                )
            for name in _TEXT_FIELDS:
                if al.HasField(name):
                    for tr in getattr(al, name).translation:
                        tx_rows.append((endpoint, ts, eid, name, tr.language or None, tr.text, rev))
        self._note_ids(entity)

    def _note_ids(self, entity: rt.FeedEntity) -> None:
        trips, routes, stops = self.trip_ids, self.route_ids, self.stop_ids
        if entity.HasField("trip_update"):
            tu = entity.trip_update
            if tu.trip.trip_id:
                trips.add(tu.trip.trip_id)
            if tu.trip.route_id:
                routes.add(tu.trip.route_id)
        if entity.HasField("vehicle"):
            vp = entity.vehicle
            if vp.trip.trip_id:
                trips.add(vp.trip.trip_id)
            if vp.trip.route_id:
                routes.add(vp.trip.route_id)
            if vp.stop_id:
                stops.add(vp.stop_id)
        if entity.HasField("alert"):
            for ie in entity.alert.informed_entity:
                if ie.trip.trip_id:
                    trips.add(ie.trip.trip_id)
                if ie.route_id:
                    routes.add(ie.route_id)
                if ie.stop_id:
                    stops.add(ie.stop_id)


def feed_rows(
    msg: rt.FeedMessage,
    endpoint: str,
    feed: tuple[Any, ...],
    *,
    delays: DelayDeriver | None = None,
) -> FeedRows:
    """Flatten a decoded ``msg`` into rows, each starting with (endpoint, header_timestamp,
    entity_id); an entity that cannot be stored is left out and listed in ``refused``.
    With ``delays``, delays given only as times are derived from its schedule."""
    batch = RowBatch(endpoint, msg.header.timestamp, delays=delays)
    seen: set[str] = set()
    duplicates = 0
    refused: list[RefusedEntity] = []
    for index, entity in enumerate(msg.entity):
        eid = entity.id
        if eid in seen:
            duplicates += 1
        seen.add(eid)
        try:
            batch.add(entity)
        except EntityRefused as exc:
            refused.append(RefusedEntity(index, eid, str(exc)))
    ids = (batch.trip_ids, batch.route_ids, batch.stop_ids)
    return FeedRows(endpoint, batch.ts, feed, batch.tables(), duplicates, refused, ids)


def feed_record(
    msg: rt.FeedMessage,
    endpoint: str,
    *,
    fetched_at: str,
    age_s: float,
    sha256: str,
    size: int,
    run_id: str,
) -> tuple[Any, ...]:
    """The ``feeds`` row of one stored poll of ``endpoint``, from the decoded message."""
    return header_record(
        msg.header,
        len(msg.entity),
        endpoint,
        fetched_at=fetched_at,
        age_s=age_s,
        sha256=sha256,
        size=size,
        run_id=run_id,
    )


def header_record(
    h: rt.FeedHeader,
    entities: int,
    endpoint: str,
    *,
    fetched_at: str,
    age_s: float,
    sha256: str,
    size: int,
    run_id: str,
    revision: int = 0,
    schedule_version: str | None = None,
    flags: str | None = None,
) -> tuple[Any, ...]:
    """The ``feeds`` row of one stored poll of ``endpoint``: its header and entity count."""
    return (
        endpoint,
        h.timestamp,
        fetched_at,
        round(age_s, 3),
        sha256,
        size,
        entities,
        h.gtfs_realtime_version,
        _INCREMENTALITY.get(h.incrementality),
        run_id,
        revision,
        schedule_version,
        flags,
    )
