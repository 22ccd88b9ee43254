"""The realtime rules that need more of the schedule than its ids (E015, E024, E034 and
the frequency rules E006, E013, E019, W005), against a small schedule published as
``gtfs_schedule`` publishes it: one raising feed and one near miss each."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from interlock.components.gtfs_realtime.rt_rules import NEEDS_SCHEDULE, counts, run_on_feed
from interlock.components.gtfs_realtime.schedule_index import ScheduleIndex, ScheduleSource
from tests.rt_rules_cases import CLOCK, both, clean, ie, set_, stu, trip, tu, vp
from tests.rt_schedule import publish_zip

#: T1 (direction 1) calls at S1 then S2 from 08:00; ST is S1's station (location_type
#: 1); FZ runs every 10 min from 06:00 to 10:00 without exact times, F1 with them.
FILES = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n"
    "A1,Agency,http://a.example,Australia/Melbourne\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,A1,1,3\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
    "ST,Station,-37.8,144.9,1,\nS1,One,-37.8,144.9,0,ST\nS2,Two,-37.81,144.91,,\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
    "start_date,end_date\nC1,1,1,1,1,1,1,1,20250101,20251231\n",
    "trips.txt": "route_id,service_id,trip_id,direction_id,block_id\n"
    "R1,C1,T1,1,B1\nR1,C1,FZ,0,\nR1,C1,F1,,\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
    "T1,08:00:00,08:00:00,S1,1\nT1,08:05:00,08:05:00,S2,2\n"
    "FZ,06:00:00,06:00:00,S1,1\nFZ,06:05:00,06:05:00,S2,2\n"
    "F1,06:00:00,06:00:00,S1,1\nF1,06:05:00,06:05:00,S2,2\n",
    "frequencies.txt": "trip_id,start_time,end_time,headway_secs,exact_times\n"
    "FZ,06:00:00,10:00:00,600,0\nF1,06:00:00,10:00:00,600,1\n",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScheduleIndex]:
    tmp = tmp_path_factory.mktemp("schedule")
    path = tmp / "feed.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in FILES.items():
            zf.writestr(name, text)
    publish_zip(tmp / "data", path)
    source = ScheduleSource(tmp / "data" / "gtfs_schedule.sqlite")
    found = source.current()
    assert found is not None, source.reason
    yield found
    source.close()


def test_the_index_reads_location_types_directions_agencies_and_frequencies(index):
    """The parts these rules read come from the published tables."""
    assert (index.location_type_of("ST"), index.location_type_of("S1")) == (1, 0)
    assert index.location_type_of("S2") == 0  # empty is 0
    assert index.location_type_of("S9") is None
    assert (index.direction_of("T1"), index.direction_of("F1"), index.direction_of("X")) == (
        1,
        None,
        None,
    )
    assert index.block_of("T1") == "B1" and index.block_of("FZ") is None
    assert index.agency_ids == {"A1"}
    assert index.frequencies_of("FZ") == ((6 * 3600, 10 * 3600, 600, 0),)
    assert index.frequencies_of("F1") == ((6 * 3600, 10 * 3600, 600, 1),)
    assert index.frequencies_of("T1") == ()


def test_the_real_index_skips_no_rule_that_needs_the_schedule(index):
    """Every part NEEDS_SCHEDULE names is there, so nothing is skipped."""
    report = run_on_feed(clean(), now=CLOCK, schedule=index)
    assert report["skipped"] == {}
    assert set(NEEDS_SCHEDULE) >= {"E015", "E024", "E034", "E006", "E013", "E019", "W005"}


def _t1(m: Any) -> None:
    trip(m).direction_id = 1
    vp(m).trip.direction_id = 1


def _freq(trip_id: str, **values: Any) -> Any:
    """The trip update and the vehicle on ``trip_id`` (no alert trip)."""

    def change(m: Any) -> None:
        for t in (trip(m), vp(m).trip):
            t.trip_id = trip_id
            for name, value in values.items():
                if value is None:
                    t.ClearField(name)
                else:
                    setattr(t, name, value)
        tu(m).vehicle.id = "V1"

    return change


# (rule, change that raises it, how many times, near miss)
CASES: list[tuple[str, Any, int, Any]] = [
    ("E015", both(_t1, set_(lambda m: stu(m, 1), stop_id="ST")), 1, _t1),
    ("E015", both(_t1, set_(vp, stop_id="ST")), 1, both(_t1, set_(vp, stop_id="S2"))),
    ("E024", set_(trip, direction_id=1), 1, _t1),  # the vehicle's trip still says 0
    ("E034", both(_t1, set_(ie, agency_id="A9")), 1, _t1),
    (
        "E006",
        _freq("FZ", start_date=None, schedule_relationship=2),
        2,
        _freq("FZ", schedule_relationship=2),
    ),
    ("E013", _freq("FZ", schedule_relationship=0), 2, _freq("FZ", schedule_relationship=2)),
    (
        "W005",
        both(_freq("FZ", schedule_relationship=2), set_(lambda m: tu(m).vehicle, id=None)),
        1,
        _freq("FZ", schedule_relationship=2),
    ),
    ("E019", _freq("F1", start_time="08:05:00"), 2, _freq("F1", start_time="08:10:00")),
    ("E023", set_(trip, start_time="08:01:00"), 1, _freq("FZ", start_time="08:01:00")),
]


def _ids(case: tuple[str, Any, int, Any]) -> str:
    return case[0]


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_each_rule_raises_on_its_case_against_the_published_schedule(index, case):
    code, change, times, _ = case
    m = clean()
    change(m)
    assert counts(run_on_feed(m, now=CLOCK, schedule=index)).get(code, 0) == times


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_each_rule_holds_on_its_near_miss_against_the_published_schedule(index, case):
    code, _, _, near = case
    m = clean()
    near(m)
    assert code not in counts(run_on_feed(m, now=CLOCK, schedule=index))


def test_trip_facts_are_cached_and_bounded(index, monkeypatch):
    """A trip's direction and periods are read once, then kept (up to CACHED_TRIPS)."""
    from interlock.components.gtfs_realtime import schedule_index

    monkeypatch.setattr(schedule_index, "CACHED_TRIPS", 2)
    asked: list[str] = []
    real = index.query

    def query(sql: str, params: Any = ()) -> Any:
        asked.append(sql)
        return real(sql, params)

    monkeypatch.setattr(index, "query", query)
    index._trip_facts.clear()
    for trip_id in ("T1", "T1", "FZ", "F1", "T1"):
        index.direction_of(trip_id)
    # T1 (1 query), FZ (2: trips, frequencies), F1 (2), T1 again after eviction (1).
    assert len(asked) == 6
    assert len(index._trip_facts) == 2
