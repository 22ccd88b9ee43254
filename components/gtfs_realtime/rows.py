"""A decoded GTFS-realtime feed flattened into table rows, and the feed's own record.

:func:`feed_rows` turns each entity into rows for the tables of :mod:`.dataset`, each
row starting with (endpoint, header timestamp, entity id); enum values are stored
by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from google.transit import gtfs_realtime_pb2 as rt


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


@dataclass
class FeedRows:
    """The rows of one endpoint's feed, table -> tuples, plus the feed's own record."""

    endpoint: str
    header_timestamp: int
    feed: tuple[Any, ...]
    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    duplicates: int = 0

    @property
    def records(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


def feed_rows(msg: rt.FeedMessage, endpoint: str, feed: tuple[Any, ...]) -> FeedRows:
    """Flatten ``msg`` into rows, each starting with (endpoint, header_timestamp, entity_id)."""
    ts = msg.header.timestamp
    tu_rows: list[tuple[Any, ...]] = []
    stu_rows: list[tuple[Any, ...]] = []
    vp_rows: list[tuple[Any, ...]] = []
    al_rows: list[tuple[Any, ...]] = []
    ie_rows: list[tuple[Any, ...]] = []
    tx_rows: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    duplicates = 0
    for entity in msg.entity:
        eid = entity.id
        if eid in seen:
            duplicates += 1
        seen.add(eid)
        if entity.HasField("trip_update"):
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
                    tu.timestamp or None,
                    tu.delay if tu.HasField("delay") else None,
                )
            )
            for pos, stu in enumerate(tu.stop_time_update):
                arr = stu.arrival
                dep = stu.departure
                has_arr = stu.HasField("arrival")
                has_dep = stu.HasField("departure")
                stu_rows.append(
                    (
                        endpoint,
                        ts,
                        eid,
                        pos,
                        stu.stop_sequence if stu.HasField("stop_sequence") else None,
                        stu.stop_id or None,
                        (arr.time or None) if has_arr else None,
                        arr.delay if has_arr and arr.HasField("delay") else None,
                        (dep.time or None) if has_dep else None,
                        dep.delay if has_dep and dep.HasField("delay") else None,
                        _STOP_REL.get(stu.schedule_relationship),
                    )
                )
        if entity.HasField("vehicle"):
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
                    vp.timestamp or None,
                    _CONGESTION.get(vp.congestion_level)
                    if vp.HasField("congestion_level")
                    else None,
                    _OCCUPANCY.get(vp.occupancy_status)
                    if vp.HasField("occupancy_status")
                    else None,
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
                    )
                )
            for name in _TEXT_FIELDS:
                if al.HasField(name):
                    for tr in getattr(al, name).translation:
                        tx_rows.append((endpoint, ts, eid, name, tr.language or None, tr.text))
    tables = {
        "trip_updates": tu_rows,
        "stop_time_updates": stu_rows,
        "vehicle_positions": vp_rows,
        "alerts": al_rows,
        "alert_informed_entities": ie_rows,
        "alert_texts": tx_rows,
    }
    return FeedRows(endpoint, ts, feed, tables, duplicates)


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
    """The ``feeds`` row of one stored poll of ``endpoint``."""
    h = msg.header
    return (
        endpoint,
        h.timestamp,
        fetched_at,
        round(age_s, 3),
        sha256,
        size,
        len(msg.entity),
        h.gtfs_realtime_version,
        _INCREMENTALITY.get(h.incrementality),
        run_id,
    )
