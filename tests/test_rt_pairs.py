"""W003 and E047: a trip updates feed and its vehicle positions feed checked together,
by the rules alone on built feeds and through a real poll of a configured pair."""

from __future__ import annotations

import time
from typing import Any

import pytest
from google.transit import gtfs_realtime_pb2 as rt

from interlock.components.gtfs_realtime.rt_rules_cross import CrossIds, check_pair
from interlock.errors import ConfigError
from tests.test_gtfs_realtime import last_run, make, poll, server_with, source_of
from tests.test_rt_rules_more import index

__all__ = ["index"]  # fixture: the small published schedule (T1 in block B1)


def feed(*entities: tuple[str, str | None, str | None]) -> rt.FeedMessage:
    """Entities of (kind 'tu' or 'vp', trip_id, vehicle id); None leaves a field out."""
    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int(time.time())
    for n, (kind, trip_id, vehicle_id) in enumerate(entities):
        e = m.entity.add()
        e.id = f"{kind}{n}"
        part = e.trip_update if kind == "tu" else e.vehicle
        if trip_id is not None:
            part.trip.trip_id = trip_id
        if vehicle_id is not None:
            part.vehicle.id = vehicle_id
        if kind == "tu":
            e.trip_update.stop_time_update.add().stop_sequence = 1
    return m


def ids(m: rt.FeedMessage) -> CrossIds:
    out = CrossIds()
    for e in m.entity:
        out.add(e)
    return out


def pair(tu: rt.FeedMessage, vp: rt.FeedMessage, block_of: Any = None) -> dict[str, int]:
    return check_pair(ids(tu), ids(vp), block_of).counts


TU = feed(("tu", "T1", "V1"), ("tu", "T2", "V2"))
VP = feed(("vp", "T1", "V1"), ("vp", "T2", "V2"))


def test_matching_feeds_raise_nothing():
    """Every trip and vehicle of one feed is in the other, paired alike."""
    assert pair(TU, VP) == {}


def test_w003_a_trip_or_vehicle_missing_from_the_other_feed():
    """T3 only in trip updates, V4 (on T4) only in vehicle positions: W003 for each id."""
    tu = feed(("tu", "T1", "V1"), ("tu", "T2", "V2"), ("tu", "T3", None))
    vp = feed(("vp", "T1", "V1"), ("vp", "T2", "V2"), ("vp", "T4", "V4"))
    assert pair(tu, vp) == {"W003": 3}  # T3; V4 and its trip T4


def test_w003_not_without_both_kinds():
    """With no vehicles at all the feeds cannot be compared (as the validator)."""
    assert pair(TU, feed()) == {}


def test_e047_the_same_trip_on_different_vehicles():
    """T1 is V1 in trip updates and V9 in vehicle positions: E047 (and W003s for ids)."""
    vp = feed(("vp", "T1", "V9"), ("vp", "T2", "V2"))
    got = pair(TU, vp)
    assert got["E047"] == 1


def test_e047_a_vehicle_on_another_trip_unless_both_are_one_block(index):
    """V1 is on T1 in trip updates, on FZ in vehicle positions: E047, as FZ has no block;
    two trips of the same block on one vehicle are no E047 (near miss)."""
    tu = feed(("tu", "T1", "V1"))
    vp = feed(("vp", "FZ", "V1"))
    assert pair(tu, vp, index.block_of)["E047"] == 1
    assert "E047" not in pair(tu, vp, {"T1": "B1", "FZ": "B1"}.get)


def test_a_pair_naming_an_unknown_endpoint_is_a_config_error_with_a_hint(tmp_path):
    from interlock.components.gtfs_realtime.component import GtfsRealtimeComponent

    endpoints = {"metro_trip_updates": "http://x", "metro_vehicle_positions": "http://y"}
    with pytest.raises(ConfigError) as err:
        GtfsRealtimeComponent(
            "gtfs_realtime",
            {"endpoints": endpoints, "pairs": [["metro_trip_updates", "metro_vehicle_position"]]},
        )
    (problem,) = err.value.problems
    assert "pairs[0][1]" in problem and "'metro_vehicle_position'" in problem
    assert "did you mean 'metro_vehicle_positions'" in problem


async def test_a_configured_pair_is_checked_together_in_each_poll(tmp_path, open_orch):
    """metro trip updates and vehicle positions paired: their W003 and E047 are in the
    trip updates endpoint's rules; without the pair they are not run."""
    tu = feed(("tu", "T1", "V1"), ("tu", "T3", None))
    vp = feed(("vp", "T1", "V9"))
    pairs = [["metro_trip_updates", "metro_vehicle_positions"]]
    only = ["metro_trip_updates", "metro_vehicle_positions"]
    async with server_with() as server:
        source = source_of(server)
        source.set_endpoint_bytes("metro", "trip-updates", tu.SerializeToString())
        source.set_endpoint_bytes("metro", "vehicle-positions", vp.SerializeToString())
        orch = await open_orch(make(tmp_path / "paired", server, only=only, pairs=pairs))
        assert (await poll(orch))[0] == "succeeded"
        rules = (await last_run(orch))["quality"]["rt_rules"]
        tu.header.timestamp += 1  # only the trip updates change: vehicles as last seen
        source.set_endpoint_bytes("metro", "trip-updates", tu.SerializeToString())
        assert (await poll(orch))[0] == "succeeded"
        again = (await last_run(orch))["quality"]["rt_rules"]
        orch2 = await open_orch(make(tmp_path / "alone", server, only=only))
        assert (await poll(orch2))[0] == "succeeded"
        alone = (await last_run(orch2))["quality"]["rt_rules"]
    got = {n["code"]: n["count"] for n in rules["metro_trip_updates"]["notices"]}
    # T3 not in vehicles, V1 not a vehicle there, V9 not in trip updates; T1 on V1 vs V9.
    assert got["W003"] == 3 and got["E047"] == 1
    assert not {"W003", "E047"} & {n["code"] for n in rules["metro_vehicle_positions"]["notices"]}
    assert set(again) == {"metro_trip_updates"}  # the vehicles were unchanged
    assert {n["code"]: n["count"] for n in again["metro_trip_updates"]["notices"]} == got
    for endpoint in alone.values():
        assert not {"W003", "E047"} & {n["code"] for n in endpoint["notices"]}
