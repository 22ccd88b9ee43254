"""MobilityData's GTFS-realtime rules, one built feed that raises each and one near miss
that does not, and the catalogue accounted for rule by rule."""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.rows import feed_rows
from interlock.components.gtfs_realtime.rt_rules import (
    CATALOGUE,
    CROSS_FEED,
    NEEDS_SCHEDULE,
    NOT_RUN,
    counts,
    run_on_feed,
)
from tests.rt_rules_cases import (
    CLOCK,
    NOW,
    IdsOnly,
    View,
    arrival,
    both,
    clean,
    departure,
    empty_selector,
    header,
    ie,
    no_stops,
    second_vehicle,
    set_,
    stu,
    trip,
    tu,
    vp,
)

STU_REL = rt.TripUpdate.StopTimeUpdate
TRIP_REL = rt.TripDescriptor


def run(m: rt.FeedMessage, **options: Any) -> dict[str, int]:
    options.setdefault("schedule", View())
    options.setdefault("now", CLOCK)
    return counts(run_on_feed(m, **options))


def changed(change: Any) -> rt.FeedMessage:
    m = clean()
    change(m)
    return m


def noop(m: rt.FeedMessage) -> None:
    pass


# (rule, change that raises it, how many times, near miss that does not, run options)
CASES: list[tuple[str, Any, int, Any, dict[str, Any]]] = [
    ("E001", set_(header, timestamp=NOW * 1000), 1, set_(header, timestamp=1_104_537_600), {}),
    ("E001", set_(arrival(0), time=NOW * 1000), 1, set_(arrival(0), time=NOW + 1), {}),
    (
        "E002",
        both(
            set_(lambda m: stu(m, 0), stop_sequence=2), set_(lambda m: stu(m, 1), stop_sequence=1)
        ),
        1,
        set_(lambda m: stu(m, 1), stop_sequence=5),
        {"schedule": None},
    ),
    ("E003", set_(trip, trip_id="T9"), 1, set_(trip, trip_id="T9", schedule_relationship=1), {}),
    ("E004", set_(trip, route_id="R9"), 1, set_(trip, route_id="R2", trip_id="T2"), {}),
    ("E006", set_(trip, trip_id="FZ", start_date=None), 1, set_(trip, trip_id="FZ"), {}),
    ("E009", set_(lambda m: stu(m, 0), stop_sequence=None), 1, noop, {}),
    (
        "E011",
        set_(lambda m: stu(m, 1), stop_id="S9"),
        1,
        set_(lambda m: stu(m, 1), stop_id="S3"),
        {"schedule": IdsOnly(stop_ids=frozenset({"S1", "S3"}))},
    ),
    ("E012", set_(tu, timestamp=NOW + 5), 1, set_(tu, timestamp=NOW), {}),
    ("E013", set_(trip, trip_id="FZ"), 1, set_(trip, trip_id="FZ", schedule_relationship=2), {}),
    ("E015", set_(lambda m: stu(m, 1), stop_id="S3"), 1, set_(vp, stop_id="S2"), {}),
    (
        "E016",
        set_(trip, schedule_relationship=1),
        1,
        set_(trip, trip_id="T9", schedule_relationship=1),
        {},
    ),
    ("E017", noop, 1, noop, {"previous_timestamp": NOW}),
    ("E018", noop, 1, noop, {"previous_timestamp": NOW + 30}),
    (
        "E019",
        set_(trip, trip_id="F1", start_time="08:05:00"),
        1,
        set_(trip, trip_id="F1", start_time="08:10:00"),
        {},
    ),
    ("E020", set_(trip, start_time="8:00"), 1, set_(trip, start_time="8:00:00"), {}),
    ("E021", set_(trip, start_date="2025-02-01"), 1, set_(trip, start_date="20250231"), {}),
    ("E022", set_(arrival(1), time=NOW + 90), 1, set_(arrival(1), time=NOW + 91), {}),
    ("E023", set_(trip, start_time="08:01:00"), 1, noop, {}),
    ("E024", set_(trip, direction_id=1), 1, noop, {}),
    ("E025", set_(departure(0), time=NOW + 59), 1, set_(departure(0), time=NOW + 60), {}),
    (
        "E026",
        set_(lambda m: vp(m).position, latitude=95.0),
        1,
        set_(lambda m: vp(m).position, latitude=90.0),
        {},
    ),
    (
        "E027",
        set_(lambda m: vp(m).position, bearing=361.0),
        1,
        set_(lambda m: vp(m).position, bearing=360.0),
        {},
    ),
    ("E030", set_(ie, route_id="R2"), 1, set_(lambda m: ie(m).trip, trip_id="T9"), {}),
    ("E031", set_(lambda m: ie(m).trip, route_id="R2"), 1, set_(ie, route_id="R1"), {}),
    ("E032", lambda m: m.entity[2].alert.ClearField("informed_entity"), 1, noop, {}),
    (
        "E033",
        empty_selector,
        1,
        both(
            empty_selector, lambda m: setattr(m.entity[2].alert.informed_entity[1], "route_type", 0)
        ),
        {},
    ),
    ("E034", set_(ie, agency_id="A9"), 1, noop, {}),
    ("E035", set_(trip, route_id="R2"), 1, set_(trip, route_id="R2", trip_id="T2"), {}),
    ("E036", set_(lambda m: stu(m, 1), stop_sequence=1), 1, noop, {"schedule": None}),
    ("E037", set_(lambda m: stu(m, 1), stop_id="S1"), 1, noop, {}),
    (
        "E038",
        set_(header, gtfs_realtime_version="3.0"),
        1,
        set_(header, gtfs_realtime_version="1.0"),
        {},
    ),
    (
        "E039",
        lambda m: setattr(m.entity[0], "is_deleted", False),
        1,
        both(lambda m: setattr(m.entity[0], "is_deleted", False), set_(header, incrementality=1)),
        {},
    ),
    (
        "E040",
        set_(lambda m: stu(m, 1), stop_sequence=None, stop_id=None),
        1,
        set_(lambda m: stu(m, 1), stop_sequence=None),
        {"schedule": None},
    ),
    ("E041", no_stops, 1, both(no_stops, set_(trip, schedule_relationship=3)), {}),
    (
        "E042",
        set_(lambda m: stu(m, 1), schedule_relationship=2),
        2,
        set_(lambda m: stu(m, 1), schedule_relationship=2, arrival=None, departure=None),
        {},
    ),
    (
        "E043",
        set_(lambda m: stu(m, 1), arrival=None, departure=None),
        1,
        set_(lambda m: stu(m, 1), arrival=None, departure=None, schedule_relationship=1),
        {},
    ),
    (
        "E044",
        both(set_(arrival(1), time=None), set_(arrival(1), uncertainty=0)),
        1,
        set_(arrival(1), time=None, delay=30),
        {},
    ),
    ("E045", set_(lambda m: stu(m, 0), stop_id="S2"), 1, noop, {}),
    (
        "E046",
        both(set_(trip, trip_id="TN"), set_(arrival(1), time=None, delay=30)),
        1,
        set_(arrival(1), time=None, delay=30),
        {},
    ),
    (
        "E048",
        set_(header, timestamp=0),
        1,
        set_(header, timestamp=0, gtfs_realtime_version="1.0"),
        {},
    ),
    (
        "E049",
        set_(header, incrementality=None),
        1,
        set_(header, incrementality=None, gtfs_realtime_version="1.0"),
        {},
    ),
    ("E050", set_(header, timestamp=CLOCK + 61), 1, set_(header, timestamp=CLOCK + 60), {}),
    ("E051", set_(lambda m: stu(m, 1), stop_sequence=7), 1, noop, {}),
    ("E052", second_vehicle("V9"), 1, second_vehicle("V8"), {}),
    ("W001", set_(tu, timestamp=None), 1, noop, {}),
    ("W001", set_(header, timestamp=0, gtfs_realtime_version="1.0"), 1, noop, {}),
    ("W002", set_(lambda m: tu(m).vehicle, id=None), 1, noop, {}),
    ("W002", set_(lambda m: vp(m).vehicle, id=None), 1, noop, {}),
    (
        "W004",
        set_(lambda m: vp(m).position, speed=26.5),
        1,
        set_(lambda m: vp(m).position, speed=26.0),
        {},
    ),
    (
        "W005",
        both(set_(trip, trip_id="FZ"), set_(lambda m: tu(m).vehicle, id=None)),
        1,
        set_(trip, trip_id="FZ"),
        {},
    ),
    (
        "W006",
        set_(lambda m: vp(m).trip, trip_id=None),
        1,
        set_(lambda m: vp(m).trip, route_id=None),
        {},
    ),
    ("W007", noop, 1, noop, {"previous_timestamp": NOW - 36}),
    ("W008", noop, 1, noop, {"now": NOW + 66}),
    ("W009", set_(lambda m: stu(m, 1), schedule_relationship=None), 1, noop, {}),
    ("W009", set_(lambda m: vp(m).trip, schedule_relationship=None), 1, noop, {}),
]
#: Near misses that differ from the raising run in the options, not the feed.
NEAR_OPTIONS = {
    "E017": {"previous_timestamp": NOW, "changed": False},
    "E018": {"previous_timestamp": NOW},
    "E009": {},
    "W007": {"previous_timestamp": NOW - 35},
    "W008": {"now": NOW + 65},
}


def ids(case: tuple[str, Any, int, Any, dict[str, Any]]) -> str:
    return case[0]


def test_the_clean_feed_raises_nothing():
    """The built feed every case starts from breaks no rule against the full schedule."""
    assert run(clean()) == {}


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_each_rule_raises_on_its_case(case):
    """The change raises the rule exactly as often as it should."""
    code, change, times, _, options = case
    if code == "E009":
        change = both(set_(trip, trip_id="TM"), change)
    assert run(changed(change), **options).get(code) == times


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_each_rule_holds_on_its_near_miss(case):
    """A feed one step short of breaking the rule does not raise it."""
    code, _, _, near, options = case
    if code == "E009":
        near = set_(trip, trip_id="TM")
    options = {**options, **NEAR_OPTIONS.get(code, {})}
    assert code not in run(changed(near), **options)


def test_the_catalogue_is_every_rule_of_rules_md():
    """E001-E052 and W001-W009, with the severity the id says."""
    expected = {f"E{n:03d}" for n in range(1, 53)} | {f"W{n:03d}" for n in range(1, 10)}
    assert set(CATALOGUE) == expected
    assert all(CATALOGUE[c][0] == ("ERROR" if c[0] == "E" else "WARNING") for c in CATALOGUE)


def test_every_rule_is_tested_or_listed_as_not_run_with_a_reason():
    """Each catalogue id has a raising case here (or, comparing two feeds, in
    test_rt_pairs) or a reason in NOT_RUN, never both."""
    tested = {case[0] for case in CASES} | set(CROSS_FEED)
    assert tested.isdisjoint(NOT_RUN)
    assert tested | set(NOT_RUN) == set(CATALOGUE)
    assert all(len(reason) > 20 for reason in NOT_RUN.values())
    assert set(NEEDS_SCHEDULE) <= tested


def test_without_a_schedule_its_rules_are_skipped_with_the_reason():
    """No schedule: E003 and the others are not counted, each skipped with why."""
    m = changed(set_(trip, trip_id="T9"))
    report = run_on_feed(m, now=CLOCK, schedule=None)
    assert report["notices"] == []
    assert set(report["skipped"]) == set(NEEDS_SCHEDULE)
    assert "no schedule" in report["skipped"]["E003"]


def test_an_ids_only_index_skips_the_rules_needing_more_and_says_which():
    """With id sets alone E003 runs; E023 and E045 are skipped for want of stop times."""
    m = changed(set_(trip, trip_id="T9", start_time="99:00"))
    report = run_on_feed(m, now=CLOCK, schedule=IdsOnly())
    assert counts(report)["E003"] == 1
    assert "stop_times" in report["skipped"]["E045"]
    assert "E003" not in report["skipped"]


def test_samples_are_capped_at_five_and_the_count_is_exact():
    """Thirty stops without a stop_id or stop_sequence: E040 counted 30, shown 5."""
    m = clean()
    for _ in range(28):
        s = tu(m).stop_time_update.add()
        s.arrival.delay = 0
    report = run_on_feed(m, now=CLOCK, schedule=None)
    (e040,) = [n for n in report["notices"] if n["code"] == "E040"]
    assert e040["count"] == 28 and len(e040["samples"]) == 5
    assert e040["severity"] == "ERROR"
    assert e040["samples"][0] == {
        "entity_id": "tu1",
        "field": "trip_update.stop_time_update[2]",
        "value": None,
    }


def test_the_report_sums_errors_and_warnings():
    """error_count and warning_count add up the counts per severity."""
    m = changed(both(set_(tu, timestamp=None), set_(arrival(1), time=NOW + 90)))
    report = run_on_feed(m, now=CLOCK, schedule=View())
    assert (report["error_count"], report["warning_count"]) == (1, 1)
    assert re.fullmatch(r"E\d{3}", report["notices"][0]["code"])


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_the_writers_rows_give_the_same_counts_as_the_message(case):
    """Fed the rows the writer builds, each case counts as it does from the message alone."""
    code, change, _, near, options = case
    if code == "E009":
        change = both(set_(trip, trip_id="TM"), change)
    options = {"schedule": View(), "now": CLOCK, **options}
    for m in (changed(change), changed(near)):
        written = feed_rows(m, "endpoint", ()).tables["stop_time_updates"]
        assert counts(run_on_feed(m, stop_rows=written, **options)) == counts(
            run_on_feed(m, **options)
        )


class Failing(View):
    """A schedule whose stop times cannot be read."""

    def stop_times(self, trip_id: str) -> list[Any]:
        raise OSError("the schedule file went away")


def test_a_failing_rule_is_reported_and_does_not_raise():
    """The rules stop at the entity they fail on and say so; the caller carries on."""
    report = run_on_feed(clean(), now=CLOCK, schedule=Failing())
    assert report["broken"].startswith("entity 0 ('tu1'): OSError: the schedule file")
    assert "broken" not in run_on_feed(clean(), now=CLOCK, schedule=View())


class Counting(View):
    """A schedule that counts its stop-time queries (each is SQL in the real index)."""

    asked: int = 0

    def stop_times(self, trip_id: str) -> list[Any]:
        self.asked += 1
        return super().stop_times(trip_id)


def test_a_trips_stop_times_are_read_once_per_entity():
    """E023, the stop walk and the next entity on the same trip share one stop-times read."""
    schedule = Counting()
    run_on_feed(clean(), now=CLOCK, schedule=schedule)
    assert schedule.asked == 1  # not once for E023, again for the walk, again for the vehicle


@pytest.mark.parametrize(("ahead", "raised"), [(60.9, False), (61.0, True)])
def test_e050_counts_whole_seconds_ahead_as_the_validator_does(ahead, raised):
    """A header and a trip update 60.9 s ahead of the clock are within the 60 s; 61 s not."""
    m = changed(set_(tu, timestamp=NOW))
    assert run(m, now=NOW - ahead).get("E050", 0) == (2 if raised else 0)
