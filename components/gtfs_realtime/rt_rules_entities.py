"""The header, trip descriptor, vehicle and alert rules of :mod:`.rt_rules`.

Each check reads the decoded message's fields directly and records a hit in the
poll's :class:`RuleBook` as (rule id, entity id, field, value). Semantics follow the
gtfs-realtime-validator's Java classes (``TimestampValidator``, ``HeaderValidator``,
``TripDescriptorValidator``, ``VehicleValidator``, ``StopValidator`` and the
frequency validators); where this differs it says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime import rt_rules_stops as stops
from interlock.components.gtfs_realtime.rt_rules_base import Context, check_stop, is_posix

MAX_AGE_S = 65  # W008
#: E050: ahead of the clock by more than 60 whole seconds (the validator truncates the
#: milliseconds, so 60.9 s ahead is still within it).
FUTURE_S = 61
REFRESH_S = 35  # W007
MAX_SPEED_MS = 26.0  # W004: about 60 mph
ADDED = rt.TripDescriptor.ADDED
UNSCHEDULED = rt.TripDescriptor.UNSCHEDULED
_TIME = re.compile(r"[0-2]?[0-9]:[0-5][0-9]:[0-5][0-9]")  # E020, up to 29 h as upstream


def _version(header: rt.FeedHeader) -> float | None:
    try:
        return float(header.gtfs_realtime_version)
    except ValueError:
        return None  # the validator logs this and treats the feed as below 2.0 for E049


def header(ctx: Context, h: rt.FeedHeader, previous: int | None, changed: bool) -> None:
    """E038, E048/W001, E001, W008, E050, E017, E018, W007 and E049 on the header."""
    hit = ctx.hit
    version = h.gtfs_realtime_version
    if h.HasField("gtfs_realtime_version") and version not in ("1.0", "2.0"):
        hit("E038", None, "header.gtfs_realtime_version", version)
    number = _version(h)
    if number is not None and number >= 2.0 and not h.HasField("incrementality"):
        hit("E049", None, "header.incrementality", None)
    ts = h.timestamp
    if ts == 0:
        # The validator counts an unparsable version as 2.0 or higher here.
        if number is None or number >= 2.0:
            hit("E048", None, "header.timestamp", None)
        else:
            hit("W001", None, "header.timestamp", None)
        return
    if not is_posix(ts):
        hit("E001", None, "header.timestamp", ts)
    else:
        age = ctx.now - ts
        if age > MAX_AGE_S:
            hit("W008", None, "header.timestamp", ts)
        if -age >= FUTURE_S:
            hit("E050", None, "header.timestamp", ts)
    if previous:
        if ts == previous:
            if changed:
                hit("E017", None, "header.timestamp", ts)
        elif ts < previous:
            hit("E018", None, "header.timestamp", ts)
        elif ts - previous > REFRESH_S:
            hit("W007", None, "header.timestamp", ts - previous)


def entity(ctx: Context, e: rt.FeedEntity, rows: Sequence[Any] | None) -> None:
    """Every per-entity rule on ``e``; ``rows`` are its stop_time_updates rows, if written."""
    eid = e.id
    if ctx.full_dataset and e.HasField("is_deleted"):
        ctx.hit("E039", eid, "is_deleted", e.is_deleted)
    if e.HasField("trip_update"):
        tu = e.trip_update
        trip = tu.trip
        _timestamp(ctx, eid, tu.timestamp, "trip_update.timestamp")
        if not tu.vehicle.id:
            ctx.hit("W002", eid, "trip_update.vehicle.id", None)
        trip_id = descriptor(ctx, eid, trip, "trip_update.trip")
        if ctx.frequencies_of is not None and trip_id:
            _frequency(ctx, eid, trip, trip_id, tu.vehicle.HasField("id"), "trip_update")
        if rows is None or len(rows) != len(tu.stop_time_update):
            rows = stops.stop_rows(tu)
        stops.trip_update(ctx, eid, tu, trip_id, rows)
    if e.HasField("vehicle"):
        _vehicle(ctx, eid, e.vehicle)
    if e.HasField("alert"):
        _alert(ctx, eid, e.alert)


def _timestamp(ctx: Context, eid: str, ts: int, field: str) -> None:
    """W001, E012, E001 and E050 on a trip update's or vehicle's timestamp."""
    if ts == 0:
        ctx.hit("W001", eid, field, None)
        return
    if ctx.header_ts and ts > ctx.header_ts:
        ctx.hit("E012", eid, field, ts)
    if not is_posix(ts):
        ctx.hit("E001", eid, field, ts)
    elif ts - ctx.now >= FUTURE_S:
        ctx.hit("E050", eid, field, ts)


def descriptor(ctx: Context, eid: str, trip: rt.TripDescriptor, where: str) -> str:
    """W006, E003, E016, E023, E020, E021, E004, E024, E035 and W009 on a trip descriptor
    of a trip update or vehicle; returns its trip_id ('' when it has none)."""
    hit = ctx.hit
    # A value other than the default is present: HasField only for defaults.
    trip_id = trip.trip_id
    has_trip_id = trip_id != "" or trip.HasField("trip_id")
    rel = trip.schedule_relationship
    has_rel = rel != 0 or trip.HasField("schedule_relationship")
    start_time = trip.start_time
    has_start = start_time != "" or trip.HasField("start_time")
    trips = ctx.trips
    if not has_trip_id:
        hit("W006", eid, f"{where}.trip_id", None)
    elif trip_id and trips is not None:
        if trip_id not in trips:
            if rel != ADDED:
                hit("E003", eid, f"{where}.trip_id", trip_id)
        else:
            if rel == ADDED:
                hit("E016", eid, f"{where}.trip_id", trip_id)
            if has_start and ctx.stop_times is not None:
                _first_arrival(ctx, eid, trip, trip_id, where)
    if has_start and not _valid(start_time, _TIMES, _valid_time):
        hit("E020", eid, f"{where}.start_time", start_time)
    start_date = trip.start_date
    if (start_date != "" or trip.HasField("start_date")) and not _valid(
        start_date, _DATES, _valid_date
    ):
        hit("E021", eid, f"{where}.start_date", start_date)
    route_id = trip.route_id
    if route_id and ctx.routes is not None and route_id not in ctx.routes:
        hit("E004", eid, f"{where}.route_id", route_id)
    direction_of = ctx.direction_of
    if direction_of is not None and trip.HasField("direction_id") and _known(ctx, trip_id):
        scheduled = direction_of(trip_id)
        if scheduled is None or scheduled != trip.direction_id:
            hit("E024", eid, f"{where}.direction_id", trip.direction_id)
    if ctx.route_of is not None:
        _trip_route(ctx, eid, trip, where)
    if not has_rel:
        hit("W009", eid, f"{where}.schedule_relationship", None)
    return trip_id if has_trip_id else ""


#: Format verdicts already reached (feeds repeat the same few dates and times).
_TIMES: dict[str, bool] = {}
_DATES: dict[str, bool] = {}
_KEEP = 4096


def _valid(value: str, seen: dict[str, bool], check: Callable[[str], bool]) -> bool:
    verdict = seen.get(value)
    if verdict is None:
        verdict = check(value)
        if len(seen) < _KEEP:
            seen[value] = verdict
    return verdict


def _trip_route(ctx: Context, eid: str, trip: rt.TripDescriptor, where: str) -> None:
    """E035: a trip_id given with a route_id must be of that route in the schedule."""
    if ctx.route_of is None or ctx.routes is None or ctx.trips is None:
        return
    if trip.HasField("trip_id") and trip.HasField("route_id"):
        route_id, trip_id = trip.route_id, trip.trip_id
        if route_id in ctx.routes and trip_id in ctx.trips and ctx.route_of(trip_id) != route_id:
            ctx.hit("E035", eid, f"{where}.route_id", route_id)


def _known(ctx: Context, trip_id: str) -> bool:
    return ctx.trips is not None and trip_id in ctx.trips


def _valid_time(value: str) -> bool:
    return len(value) in (7, 8) and _TIME.fullmatch(value) is not None


def _valid_date(value: str) -> bool:
    # Java's yyyyMMdd parse, which is lenient about the day (20250231 passes).
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        return False
    return 1 <= int(value[4:6]) <= 12 and 1 <= int(value[6:]) <= 31


def clock(secs: int | None) -> str | None:
    """GTFS seconds as ``HH:MM:SS`` (hours past 24 kept), None for None."""
    if secs is None:
        return None
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"


def _first_arrival(
    ctx: Context, eid: str, trip: rt.TripDescriptor, trip_id: str, where: str
) -> None:
    """E023 for a trip not in frequencies.txt: start_time is its first scheduled arrival."""
    if ctx.frequencies_of is not None and ctx.frequencies_of(trip_id):
        return
    assert ctx.stop_times is not None
    scheduled = ctx.stop_times(trip_id)
    if not scheduled:
        return
    if trip.start_time != clock(scheduled[0].arrival_secs):
        ctx.hit("E023", eid, f"{where}.start_time", trip.start_time)


def _frequency(
    ctx: Context, eid: str, trip: rt.TripDescriptor, trip_id: str, has_vehicle: bool, where: str
) -> None:
    """E006, E013, W005 (exact_times = 0) and E019 (exact_times = 1) on a trip."""
    assert ctx.frequencies_of is not None
    periods = ctx.frequencies_of(trip_id) or ()
    exact = [p for p in periods if p[3]]
    if periods and len(exact) < len(periods):
        hit = ctx.hit
        if not trip.HasField("start_date"):
            hit("E006", eid, f"{where}.trip.start_date", None)
        if not trip.HasField("start_time"):
            hit("E006", eid, f"{where}.trip.start_time", None)
        if trip.HasField("schedule_relationship") and trip.schedule_relationship != UNSCHEDULED:
            name = rt.TripDescriptor.ScheduleRelationship.Name(trip.schedule_relationship)
            hit("E013", eid, f"{where}.trip.schedule_relationship", name)
        if not has_vehicle:
            hit("W005", eid, f"{where}.vehicle.id", None)
    if exact:
        start = trip.start_time
        for first, end, headway, _ in exact:
            t = first
            while t < end and clock(t) != start:
                t += headway if headway > 0 else end
            if t < end:
                return
        ctx.hit("E019", eid, f"{where}.trip.start_time", start)


def _vehicle(ctx: Context, eid: str, v: rt.VehiclePosition) -> None:
    hit = ctx.hit
    _timestamp(ctx, eid, v.timestamp, "vehicle.timestamp")
    vehicle_id = v.vehicle.id
    if not vehicle_id:
        hit("W002", eid, "vehicle.vehicle.id", None)
    elif vehicle_id in ctx.vehicle_ids:
        hit("E052", eid, "vehicle.vehicle.id", vehicle_id)
    else:
        ctx.vehicle_ids.add(vehicle_id)
    if v.HasField("trip"):
        trip = v.trip
        trip_id = descriptor(ctx, eid, trip, "vehicle.trip")
        if ctx.frequencies_of is not None and trip_id:
            _frequency(ctx, eid, trip, trip_id, v.vehicle.HasField("id"), "vehicle")
    if v.HasField("position"):
        p = v.position
        if p.HasField("speed") and not 0.0 <= p.speed <= MAX_SPEED_MS:
            hit("W004", eid, "vehicle.position.speed", p.speed)
        if not p.HasField("latitude") or not p.HasField("longitude"):
            hit("E026", eid, "vehicle.position", None)
        elif not (-90.0 <= p.latitude <= 90.0 and -180.0 <= p.longitude <= 180.0):
            # NaN fails too; the Java comparisons let it through.
            hit("E026", eid, "vehicle.position", f"{p.latitude},{p.longitude}")
        if p.HasField("bearing") and not 0.0 <= p.bearing <= 360.0:
            hit("E027", eid, "vehicle.position.bearing", p.bearing)
    if v.HasField("stop_id"):
        check_stop(ctx, eid, v.stop_id, "vehicle.stop_id", location=True)


def _alert(ctx: Context, eid: str, a: rt.Alert) -> None:
    hit = ctx.hit
    for period in a.active_period:
        if period.HasField("start") and not is_posix(period.start):
            hit("E001", eid, "alert.active_period.start", period.start)
        if period.HasField("end") and not is_posix(period.end):
            hit("E001", eid, "alert.active_period.end", period.end)
    if not len(a.informed_entity):
        hit("E032", eid, "alert.informed_entity", None)
        return
    for ie in a.informed_entity:
        has_trip = ie.HasField("trip")
        trip = ie.trip
        if not (
            ie.HasField("agency_id")
            or ie.HasField("route_id")
            or ie.HasField("route_type")
            or ie.HasField("stop_id")
            or (has_trip and (trip.HasField("trip_id") or trip.HasField("route_id")))
        ):
            hit("E033", eid, "alert.informed_entity", None)
        agencies = ctx.agencies
        if ie.HasField("agency_id") and agencies is not None and ie.agency_id not in agencies:
            hit("E034", eid, "alert.informed_entity.agency_id", ie.agency_id)
        _trip_route(ctx, eid, trip, "alert.informed_entity.trip")
        if ie.HasField("route_id") and has_trip:
            route_id = ie.route_id
            route_of, tid = ctx.route_of, trip.trip_id
            known = route_of is not None and trip.HasField("trip_id") and _known(ctx, tid)
            if known and route_of is not None and route_of(tid) != route_id:
                hit("E030", eid, "alert.informed_entity.trip.trip_id", trip.trip_id)
            if trip.HasField("route_id") and trip.route_id != route_id:
                hit("E031", eid, "alert.informed_entity.trip.route_id", trip.route_id)
        if has_trip:
            if not trip.HasField("trip_id"):
                hit("W006", eid, "alert.informed_entity.trip.trip_id", None)
            if not trip.HasField("schedule_relationship"):
                hit("W009", eid, "alert.informed_entity.trip.schedule_relationship", None)
        if ie.HasField("stop_id"):
            check_stop(ctx, eid, ie.stop_id, "alert.informed_entity.stop_id", location=False)
