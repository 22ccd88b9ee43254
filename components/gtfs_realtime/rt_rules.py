"""MobilityData's GTFS-realtime validation rules, run on each poll as it is stored.

:class:`FeedRules` checks one feed: the header when it is made, then each entity as
the writer decodes it (:meth:`FeedRules.entity`), so no feed is decoded twice. Rule
ids, severities and semantics are those of MobilityData's gtfs-realtime-validator
(``RULES.md``, E001-E052 and W001-W009); rules that need the schedule run against a
:class:`ScheduleView` and are skipped, with the reason, when there is none.
:data:`NOT_RUN` says why the rest cannot run here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime import rt_rules_entities as checks
from interlock.components.gtfs_realtime.rt_rules_base import SAMPLES, Context, RuleBook
from interlock.components.gtfs_realtime.rt_rules_cross import CrossIds, check_pair

#: Rule id -> (severity, title), as the validator's ``ValidationRules`` declares them.
CATALOGUE: dict[str, tuple[str, str]] = {
    "W001": ("WARNING", "timestamp not populated"),
    "W002": ("WARNING", "vehicle_id not populated"),
    "W003": ("WARNING", "ID in one feed missing from the other"),
    "W004": ("WARNING", "vehicle speed is unrealistic"),
    "W005": ("WARNING", "Missing vehicle_id for frequency-based exact_times = 0"),
    "W006": ("WARNING", "trip missing trip_id"),
    "W007": ("WARNING", "Refresh interval is more than 35 seconds"),
    "W008": ("WARNING", "Header timestamp is older than 65 seconds"),
    "W009": ("WARNING", "schedule_relationship not populated"),
    "E001": ("ERROR", "Not in POSIX time"),
    "E002": ("ERROR", "stop_times_updates not strictly sorted"),
    "E003": ("ERROR", "GTFS-rt trip_id does not exist in GTFS data and is not ADDED"),
    "E004": ("ERROR", "GTFS-rt route_id does not exist in GTFS data"),
    "E005": ("ERROR", "stop_time_update has only delay and GTFS has no time for the stop"),
    "E006": ("ERROR", "Missing required trip field for frequency-based exact_times = 0"),
    "E007": ("ERROR", "Trips with same vehicle_id are not in the same block"),
    "E008": ("ERROR", "trip_id not provided for blocks with reoccurring stop_ids"),
    "E009": ("ERROR", "stop_sequence not provided for trip that visits a stop_id twice"),
    "E010": ("ERROR", "location_type not 0 in stops.txt"),
    "E011": ("ERROR", "GTFS-rt stop_id does not exist in GTFS data"),
    "E012": ("ERROR", "Header timestamp should be greater than or equal to all others"),
    "E013": ("ERROR", "Frequency type 0 trip schedule_relationship not UNSCHEDULED or empty"),
    "E014": ("ERROR", "Predictions for trips are out-of-order in the block"),
    "E015": ("ERROR", "stop_id referenced in GTFS-rt does not have location_type = 0"),
    "E016": ("ERROR", "trip_ids with schedule_relationship ADDED must not be in GTFS data"),
    "E017": ("ERROR", "GTFS-rt content changed but has the same header timestamp"),
    "E018": ("ERROR", "GTFS-rt header timestamp decreased between two sequential iterations"),
    "E019": ("ERROR", "Frequency type 1 trip start_time not a multiple of headway_secs"),
    "E020": ("ERROR", "Invalid start_time format"),
    "E021": ("ERROR", "Invalid start_date format"),
    "E022": ("ERROR", "Sequential stop_time_update times are not increasing"),
    "E023": ("ERROR", "trip start_time does not match first GTFS arrival_time"),
    "E024": ("ERROR", "trip direction_id does not match GTFS data"),
    "E025": ("ERROR", "stop_time_update departure time is before arrival time"),
    "E026": ("ERROR", "Invalid vehicle position"),
    "E027": ("ERROR", "Invalid vehicle bearing"),
    "E028": ("ERROR", "Vehicle position outside agency coverage area"),
    "E029": ("ERROR", "Vehicle position far from trip shape"),
    "E030": ("ERROR", "Alert trip_id does not belong to alert route_id in GTFS trips.txt"),
    "E031": ("ERROR", "Alert informed_entity.route_id does not match trip.route_id"),
    "E032": ("ERROR", "Alert does not have an informed_entity"),
    "E033": ("ERROR", "Alert informed_entity does not have any specifiers"),
    "E034": ("ERROR", "GTFS-rt agency_id does not exist in GTFS data"),
    "E035": ("ERROR", "GTFS-rt trip.trip_id does not belong to trip.route_id in trips.txt"),
    "E036": ("ERROR", "Sequential stop_time_updates have the same stop_sequence"),
    "E037": ("ERROR", "Sequential stop_time_updates have the same stop_id"),
    "E038": ("ERROR", "Invalid header.gtfs_realtime_version"),
    "E039": ("ERROR", "FULL_DATASET feeds should not include entity.is_deleted"),
    "E040": ("ERROR", "stop_time_update doesn't contain stop_id or stop_sequence"),
    "E041": ("ERROR", "trip doesn't have any stop_time_updates"),
    "E042": ("ERROR", "arrival or departure provided for NO_DATA stop_time_update"),
    "E043": ("ERROR", "stop_time_update doesn't have arrival or departure"),
    "E044": ("ERROR", "stop_time_update arrival/departure doesn't have delay or time"),
    "E045": ("ERROR", "stop_time_update stop_sequence and stop_id do not match GTFS"),
    "E046": ("ERROR", "stop_time_update without time has no arrival/departure_time in GTFS"),
    "E047": ("ERROR", "VehiclePosition and TripUpdate ID pairing mismatch"),
    "E048": ("ERROR", "header timestamp not populated"),
    "E049": ("ERROR", "header incrementality not populated"),
    "E050": ("ERROR", "timestamp is in the future"),
    "E051": ("ERROR", "GTFS-rt stop_sequence not found in GTFS data"),
    "E052": ("ERROR", "vehicle.id is not unique"),
}

#: Rules that never run here, and why.
NOT_RUN: dict[str, str] = {
    "E005": "not implemented by the validator either (a TODO there); E046 checks it",
    "E007": "needs GTFS block_id per trip, which the schedule index does not hold "
    "(and a TODO in the validator)",
    "E008": "needs GTFS blocks, which the schedule index does not hold (a TODO in the validator)",
    "E014": "needs the order of trips in GTFS blocks (a TODO in the validator)",
    "E010": "a rule on stops.txt alone: the validator does not run it on realtime, "
    "and the schedule's own validation covers stops.txt",
    "E028": "needs the agency's coverage area from shapes.txt or stop coordinates, "
    "which the schedule index does not hold",
    "E029": "needs each trip's shape from shapes.txt, which the schedule index does not hold",
}

#: Rules that compare a trip updates feed with its vehicle positions feed: they run
#: only on the endpoints the ``pairs`` setting pairs (:mod:`.rt_rules_cross`).
CROSS_FEED = ("W003", "E047")

#: Rules that need the schedule, and the part of it each reads beyond the id sets.
NEEDS_SCHEDULE: dict[str, str | None] = {
    "E003": None,
    "E004": None,
    "E011": None,
    "E016": None,
    "E015": "location_type_of",
    "E024": "direction_of",
    "E030": "route_of",
    "E035": "route_of",
    "E034": "agency_ids",
    "E009": "stop_times",
    "E023": "stop_times",
    "E045": "stop_times",
    "E046": "stop_times",
    "E051": "stop_times",
    "E006": "frequencies_of",
    "E013": "frequencies_of",
    "W005": "frequencies_of",
    "E019": "frequencies_of",
}


class ScheduleView(Protocol):
    """The published schedule a poll is checked against: its id sets.

    Rules that need more read it only if the view has it (``route_of(trip_id)``,
    ``stop_times(trip_id)`` of items with ``stop_sequence``, ``stop_id``,
    ``arrival_secs``, ``departure_secs``; ``direction_of``, ``agency_ids``,
    ``location_type_of``, ``frequencies_of``): without it they are skipped.
    """

    @property
    def trip_ids(self) -> Collection[str]: ...

    @property
    def route_ids(self) -> Collection[str]: ...

    @property
    def stop_ids(self) -> Collection[str]: ...


class FeedRules:
    """The rules run on one feed: made with its header, fed its entities, then reported.

    ``previous_timestamp`` is the header timestamp of the endpoint's previous poll
    (None on the first) and ``changed`` whether this payload differs from it, for
    E017, E018 and W007. ``now`` is the poll's clock (POSIX seconds).
    """

    def __init__(
        self,
        header: rt.FeedHeader,
        *,
        now: float,
        schedule: ScheduleView | None = None,
        no_schedule: str | None = None,
        previous_timestamp: int | None = None,
        changed: bool = True,
        cross: bool = False,
    ) -> None:
        self.book = RuleBook()
        #: The ids W003 and E047 read, kept when the feed is one of a pair (``cross``).
        self.cross = CrossIds() if cross else None
        self.skipped: dict[str, str] = {}
        self.broken: str | None = None
        self.ctx = Context(self.book, header.timestamp, now)
        self.ctx.full_dataset = header.incrementality == rt.FeedHeader.FULL_DATASET
        self._schedule(schedule, no_schedule)
        checks.header(self.ctx, header, previous_timestamp, changed)

    def _schedule(self, schedule: ScheduleView | None, why: str | None) -> None:
        ctx = self.ctx
        if schedule is None:
            reason = why or "no schedule is published to check against"
            self.skipped = dict.fromkeys(NEEDS_SCHEDULE, reason)
            return
        ctx.trips, ctx.routes, ctx.stops = schedule.trip_ids, schedule.route_ids, schedule.stop_ids
        ctx.route_of = getattr(schedule, "route_of", None)
        ctx.stop_times = _last_trip(getattr(schedule, "stop_times", None))
        ctx.direction_of = getattr(schedule, "direction_of", None)
        ctx.agencies = getattr(schedule, "agency_ids", None)
        ctx.location_type_of = getattr(schedule, "location_type_of", None)
        ctx.stations = getattr(schedule, "stations", None)
        ctx.frequencies_of = getattr(schedule, "frequencies_of", None)
        for code, part in NEEDS_SCHEDULE.items():
            if part is not None and getattr(schedule, part, None) is None:
                self.skipped[code] = f"the schedule index has no {part}"

    def entity(
        self, index: int, entity: rt.FeedEntity, stop_rows: Sequence[Any] | None = None
    ) -> None:
        """Check one decoded entity (``index`` is its place in the feed, unused).

        ``stop_rows`` are the ``stop_time_updates`` rows written for it, one per update
        (:data:`.rt_rules_stops.ROW`): the rules read the values from them rather than
        from the message again. Without them (or when they do not match) they are built.
        """
        if self.broken is not None:
            return
        try:
            if self.cross is not None:
                self.cross.add(entity)
            checks.entity(self.ctx, entity, stop_rows)
        except Exception as exc:  # a defect of the rules must not cost the feed its rows
            self.broken = f"entity {index} ({entity.id!r}): {type(exc).__name__}: {exc}"

    def report(self) -> dict[str, Any]:
        """The rules that fired (code, severity, count, samples) and those skipped; with
        ``broken`` when the rules themselves failed on an entity (and stopped there)."""
        out = report(self.book, self.skipped)
        if self.broken is not None:
            out["broken"] = self.broken
        return out


def _last_trip(read: Callable[[str], Any] | None) -> Callable[[str], Any] | None:
    """``read`` (a query per trip) asked once for a trip the entity's rules ask twice."""
    if read is None:
        return None
    last: list[Any] = [None, None]

    def stop_times(trip_id: str) -> Any:
        if last[0] != trip_id:
            last[0], last[1] = trip_id, read(trip_id)
        return last[1]

    return stop_times


def report(book: RuleBook, skipped: dict[str, str]) -> dict[str, Any]:
    """``book`` as the poll's quality report shows it, in rule id order."""
    notices = []
    for code in sorted(book.counts):
        severity, title = CATALOGUE[code]
        notices.append(
            {
                "code": code,
                "severity": severity,
                "title": title,
                "count": book.counts[code],
                "samples": [
                    {"entity_id": eid, "field": field, "value": value}
                    for eid, field, value in book.samples.get(code, ())
                ],
            }
        )
    return {
        "notices": notices,
        "error_count": sum(n["count"] for n in notices if n["severity"] == "ERROR"),
        "warning_count": sum(n["count"] for n in notices if n["severity"] == "WARNING"),
        "skipped": dict(sorted(skipped.items())),
    }


def add_book(result: dict[str, Any], book: RuleBook, skipped: dict[str, str]) -> dict[str, Any]:
    """``result`` (a :func:`report`) with the notices of ``book`` and ``skipped`` added."""
    merged = RuleBook()
    for n in result["notices"]:
        merged.counts[n["code"]] = n["count"]
        merged.samples[n["code"]] = [(s["entity_id"], s["field"], s["value"]) for s in n["samples"]]
    for code, n in book.counts.items():
        merged.counts[code] = merged.counts.get(code, 0) + n
        kept = merged.samples.setdefault(code, [])
        kept.extend(book.samples.get(code, [])[: max(0, SAMPLES - len(kept))])
    out = report(merged, {**result["skipped"], **skipped})
    if "broken" in result:
        out["broken"] = result["broken"]
    return out


def run_on_feed(
    msg: rt.FeedMessage,
    *,
    now: float,
    schedule: ScheduleView | None = None,
    previous_timestamp: int | None = None,
    changed: bool = True,
    stop_rows: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Every rule on a whole decoded ``msg``: the report.

    ``stop_rows`` are the ``stop_time_updates`` rows of ``msg`` in entity order, as
    :func:`.rows.feed_rows` makes them, when they are at hand.
    """
    rules = FeedRules(
        msg.header,
        now=now,
        schedule=schedule,
        previous_timestamp=previous_timestamp,
        changed=changed,
    )
    at = 0
    for index, entity in enumerate(msg.entity):
        mine = None
        if stop_rows is not None and entity.HasField("trip_update"):
            n = len(entity.trip_update.stop_time_update)
            if n and at < len(stop_rows) and stop_rows[at][2] == entity.id:
                mine = stop_rows[at : at + n]
                at += n
        rules.entity(index, entity, mine)
    return rules.report()


def counts(result: dict[str, Any]) -> dict[str, int]:
    """rule id -> count, from a :func:`report`."""
    notices: Sequence[dict[str, Any]] = result["notices"]
    return {n["code"]: n["count"] for n in notices}


def check_pairs(
    results: Sequence[Any],
    pairs: Sequence[tuple[str, str]],
    kept: dict[str, CrossIds],
    block_of: Callable[[str], str | None] | None,
) -> None:
    """W003 and E047 on each ``(trip updates, vehicle positions)`` pair of a poll.

    ``results`` are the poll's endpoint results (``endpoint``, ``status``, ``rules``,
    ``cross``); ``kept`` holds each paired endpoint's ids from its newest decoded feed,
    so a feed unchanged this poll is compared as last seen. The notices go into the
    report of the pair's trip updates endpoint when it was stored this poll, else of
    its vehicle positions endpoint; a pair neither of whose feeds was stored adds none.
    """
    by = {r.endpoint: r for r in results}
    for r in results:
        if r.cross is not None:
            kept[r.endpoint] = r.cross
    for pair in pairs:
        stored = [by[e] for e in pair if e in by and by[e].status == "stored" and by[e].rules]
        if not stored:
            continue
        target = stored[0]
        missing = [e for e in pair if e not in kept]
        if missing:
            why = (
                f"the paired feed {missing[0]!r} has not been decoded since the daemon "
                "started (unchanged, failed or not polled yet)"
            )
            target.rules = add_book(target.rules, RuleBook(), dict.fromkeys(CROSS_FEED, why))
        else:
            book = check_pair(kept[pair[0]], kept[pair[1]], block_of)
            target.rules = add_book(target.rules, book, {})
