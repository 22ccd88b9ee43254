"""The stop_time_update rules of :mod:`.rt_rules`, in one walk over a trip's updates.

One loop does what three of the validator's classes do: ``TimestampValidator``'s
times (E001, E022, E025), ``StopValidator``'s stop ids (E011, E015), and
``StopTimeUpdateValidator`` (E002, E009, E036, E037, E040-E046, E051), including its
walk along the trip's scheduled stop times and its stop at the first unknown
stop_sequence (E051), after which it checks nothing more of that trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.rt_rules_base import (
    MAX_POSIX,
    MIN_POSIX,
    Context,
)

CANCELED = rt.TripDescriptor.CANCELED
STU = "trip_update.stop_time_update"
_REL = {
    v.number: v.name for v in rt.TripUpdate.StopTimeUpdate.ScheduleRelationship.DESCRIPTOR.values
}


def _visits_twice(ctx: Context, trip_id: str, scheduled: Any) -> bool:
    known = ctx.multi_stop.get(trip_id)
    if known is None:
        ids = [s.stop_id for s in scheduled]
        known = ctx.multi_stop[trip_id] = len(set(ids)) < len(ids)
    return known


#: Where a ``stop_time_updates`` row (:mod:`.rows`) holds what the rules read:
#: stop_sequence (None when absent), stop_id (None when absent or empty), arrival time
#: and delay, departure time and delay (a time None when absent or 0, a delay None when
#: absent), and the schedule_relationship's name.
ROW = slice(4, 11)


def stop_rows(tu: rt.TripUpdate) -> list[tuple[Any, ...]]:
    """``tu``'s stop_time_updates as the writer's rows hold them (:data:`ROW`), for a
    caller that has no rows (the entity was not stored, or a tool)."""
    out: list[tuple[Any, ...]] = []
    for stu in tu.stop_time_update:
        arr, dep = stu.arrival, stu.departure
        has_arr, has_dep = stu.HasField("arrival"), stu.HasField("departure")
        out.append(
            (
                None,
                None,
                None,
                None,
                stu.stop_sequence if stu.HasField("stop_sequence") else None,
                stu.stop_id or None,
                (arr.time or None) if has_arr else None,
                arr.delay if has_arr and arr.HasField("delay") else None,
                (dep.time or None) if has_dep else None,
                dep.delay if has_dep and dep.HasField("delay") else None,
                _REL.get(stu.schedule_relationship),
            )
        )
    return out


def _event(stu: Any, name: str) -> tuple[bool, int | None]:
    """Whether ``stu`` has the ``name`` event, and its time (0 included) if it has one."""
    if not stu.HasField(name):
        return False, None
    event = getattr(stu, name)
    return True, (event.time if event.HasField("time") else None)


def trip_update(
    ctx: Context, eid: str, tu: rt.TripUpdate, trip_id: str, rows: Sequence[Any]
) -> None:
    """Every rule on ``tu``'s stop_time_updates (E041 when it has none).

    ``rows`` are their rows (:data:`ROW`), one per update in order: the values are
    read from there, and the message is asked only what the rows cannot say (whether
    a field is present at all), so the rules cost little beside writing the rows.
    """
    hit = ctx.hit
    if not rows:
        trip = tu.trip
        if not (trip.HasField("schedule_relationship") and trip.schedule_relationship == CANCELED):
            hit("E041", eid, STU, None)
        return
    updates = tu.stop_time_update
    scheduled = None
    if trip_id and ctx.stop_times is not None and ctx.trips is not None and trip_id in ctx.trips:
        scheduled = ctx.stop_times(trip_id) or None
    multi = scheduled is not None and _visits_twice(ctx, trip_id, scheduled)
    glen = len(scheduled) if scheduled is not None else 0
    g = 0  # where the walk along the scheduled stops has got to
    stops = ctx.stops
    location_type_of = ctx.location_type_of
    stations = ctx.stations  # the E015 stops as a set: no call per update
    if stations is not None:
        location_type_of = None
    check_stops = stops is not None or location_type_of is not None or stations is not None
    walking = True  # the StopTimeUpdateValidator part; off after an E051, as upstream
    e009 = unsorted = added = False
    w009 = False  # W009 once per trip: the first update without a schedule_relationship
    last_seq = -1  # E002: the stop_sequences (never negative), given or found by stop_id
    seqs = 0
    prev_seq: int | None = None
    prev_stop: str | None = None
    # The previous arrival and departure times (-1: none yet; times are never negative)
    # and the later of them: a time after that one passes E022 at once.
    prev_arr = prev_dep = latest = -1
    lo, hi = MIN_POSIX, MAX_POSIX
    for i, row in enumerate(rows):
        # The ROW columns, read one by one: a slice would allocate a tuple per update.
        seq = row[4]
        stop = row[5]
        arr_t = row[6]
        arr_d = row[7]
        dep_t = row[8]
        dep_d = row[9]
        rel = row[10]
        if not w009 and not updates[i].HasField("schedule_relationship"):
            hit("W009", eid, f"{STU}[{i}].schedule_relationship", None)
            w009 = True
        # No time in the row: the event is absent, or has a time of 0 (E001), or a delay.
        has_arr = True
        if arr_t is None:
            has_arr, arr_t = _event(updates[i], "arrival")
        has_dep = True
        if dep_t is None:
            has_dep, dep_t = _event(updates[i], "departure")
        if stop is not None and check_stops:
            if stops is not None and stop not in stops:
                hit("E011", eid, f"{STU}[{i}].stop_id", stop)
            if stations is not None:
                if stop in stations:
                    hit("E015", eid, f"{STU}[{i}].stop_id", stop)
            elif location_type_of is not None and location_type_of(stop) not in (None, 0):
                hit("E015", eid, f"{STU}[{i}].stop_id", stop)
        if arr_t is not None:
            if not lo <= arr_t <= hi:
                hit("E001", eid, f"{STU}[{i}].arrival.time", arr_t)
            if arr_t <= latest:
                _not_after(hit, eid, f"{STU}[{i}].arrival.time", arr_t, prev_arr, prev_dep)
        if dep_t is not None:
            if not lo <= dep_t <= hi:
                hit("E001", eid, f"{STU}[{i}].departure.time", dep_t)
            if dep_t <= latest:
                _not_after(hit, eid, f"{STU}[{i}].departure.time", dep_t, prev_dep, prev_arr)
            if arr_t is not None and dep_t < arr_t:
                hit("E025", eid, f"{STU}[{i}].departure.time", dep_t)
        if arr_t is not None:
            prev_arr = arr_t
        if dep_t is not None:
            prev_dep = dep_t
        latest = prev_arr if prev_arr > prev_dep else prev_dep
        if not walking:
            continue
        if multi and seq is None and not e009:
            hit("E009", eid, f"{STU}[{i}].stop_sequence", None)  # once per trip
            e009 = True
        if seq is not None:
            if seq == prev_seq:
                hit("E036", eid, f"{STU}[{i}].stop_sequence", seq)
            if seq <= last_seq:
                unsorted = True
            last_seq, seqs = seq, seqs + 1
        if stop is not None and stop == prev_stop:
            hit("E037", eid, f"{STU}[{i}].stop_id", stop)
        prev_seq, prev_stop = seq or 0, stop  # upstream compares an absent one as 0
        unknown = False
        if glen:
            assert scheduled is not None
            # E046 can apply only to an event without a time: most updates skip it.
            untimed = (has_arr and arr_t is None) or (has_dep and dep_t is None)
            events = (has_arr, arr_t, has_dep, dep_t) if untimed else None
            g, unknown, found = _walk(ctx, eid, i, seq, stop, scheduled, g, events)
            if found is not None:
                if found <= last_seq:
                    unsorted = True
                last_seq, seqs, added = found, seqs + 1, True
        if seq is None and stop is None and not updates[i].HasField("stop_id"):
            hit("E040", eid, f"{STU}[{i}]", None)
        if rel != "SCHEDULED" or arr_t is None or dep_t is None:
            # Only then can E042, E043 or E044 apply.
            if rel == "NO_DATA":
                if has_arr:
                    hit("E042", eid, f"{STU}[{i}].arrival", None)
                if has_dep:
                    hit("E042", eid, f"{STU}[{i}].departure", None)
            if not has_arr and not has_dep:
                if rel != "SKIPPED" and rel != "NO_DATA":
                    hit("E043", eid, f"{STU}[{i}]", None)
            elif rel != "SKIPPED":
                if has_arr and arr_t is None and arr_d is None:
                    hit("E044", eid, f"{STU}[{i}].arrival", None)
                if has_dep and dep_t is None and dep_d is None:
                    hit("E044", eid, f"{STU}[{i}].departure", None)
        if unknown:
            hit("E051", eid, f"{STU}[{i}].stop_sequence", seq)
            walking = False
    if unsorted or (added and seqs < len(rows)):
        hit("E002", eid, STU, None)


def _not_after(hit: Any, eid: str, field: str, t: int, same: int, other: int) -> None:
    """E022, once for each earlier time (of the same kind, then the other) ``t`` is not after."""
    if t <= same:
        hit("E022", eid, field, t)
    if t <= other:
        hit("E022", eid, field, t)


def _walk(
    ctx: Context,
    eid: str,
    i: int,
    seq: int | None,
    stop: str | None,
    scheduled: Sequence[Any],
    g: int,
    events: tuple[bool, int | None, bool, int | None] | None,
) -> tuple[int, bool, int | None]:
    """The validator's walk along the trip's scheduled stops, on from ``g``, for update ``i``.

    At the scheduled stop it matches (by stop_sequence, else by stop_id) it checks E045
    and E046. Returns where the walk got to, whether the stop_sequence is not in the
    schedule (E051), and the scheduled stop_sequence a stop_id-only update stands for.
    """
    glen = len(scheduled)
    while g < glen:
        st = scheduled[g]
        g += 1
        if seq is not None and st.stop_sequence == seq:
            if stop is not None and st.stop_id != stop:
                ctx.hit("E045", eid, f"{STU}[{i}].stop_id", stop)
            if events is not None:
                _no_time(ctx, eid, i, events, st)
            return g, False, None
        if seq is not None and g == glen:
            return g, True, None
        if seq is None and stop is not None and st.stop_id == stop:
            if events is not None:
                _no_time(ctx, eid, i, events, st)
            return g, False, st.stop_sequence
    return g, False, None


def _no_time(
    ctx: Context, eid: str, i: int, events: tuple[bool, int | None, bool, int | None], st: Any
) -> None:
    """E046: an update giving only a delay where the schedule has no time to add it to."""
    has_arr, arr_t, has_dep, dep_t = events
    if has_arr and arr_t is None and st.arrival_secs is None:
        ctx.hit("E046", eid, f"{STU}[{i}].arrival.time", None)
    if has_dep and dep_t is None and st.departure_secs is None:
        ctx.hit("E046", eid, f"{STU}[{i}].departure.time", None)
