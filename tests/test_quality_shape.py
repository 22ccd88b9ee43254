"""The one quality-report shape: what :func:`shape` fills and what the schema refuses."""

from __future__ import annotations

import jsonschema
import pytest

from interlock.kit.qualityshape import REPORT_SCHEMA, shape

VALIDATOR = jsonschema.Draft202012Validator(REPORT_SCHEMA)


def test_table_counts_filed_as_counts_move_to_record_counts() -> None:
    """PTV used to file rows per table under ``counts``, where the dashboard reads notice
    codes (the card showed "departures x -"): they are record counts."""
    old = {"counts": {"departures": 120, "runs": 30}, "passed": True}
    assert not VALIDATOR.is_valid(old)
    report = shape(old)
    assert report is not None and VALIDATOR.is_valid(report)
    assert report["record_counts"] == {"departures": 120, "runs": 30}
    assert report["counts"] == {} and report["error_count"] == 0


def test_notice_counts_stay_and_give_the_totals() -> None:
    counts = {
        "duplicate_key": {"severity": "ERROR", "count": 2, "tolerated": True},
        "unused_shape": {"severity": "WARNING", "count": 5},
        "feed_expiration_date30_days": {"severity": "INFO", "count": 1},
    }
    report = shape({"counts": counts})
    assert report is not None and VALIDATOR.is_valid(report)
    assert report["counts"] == counts
    assert (report["error_count"], report["warning_count"], report["info_count"]) == (2, 5, 1)
    assert report["passed"] is None and report["notices"] == [] and report["rules"] == []


@pytest.mark.parametrize(
    "bad",
    [
        {"counts": {"x": {"severity": "FATAL", "count": 1}}},
        {"record_counts": {"stops": -1}},
        {"notices": [{"file": "stops.txt"}]},
    ],
)
def test_the_schema_refuses_what_a_reader_could_not_use(bad: dict[str, object]) -> None:
    report = {**(shape({}) or {}), **bad}
    assert not VALIDATOR.is_valid(report)


def test_no_report_stays_none() -> None:
    assert shape(None) is None


def test_realtime_rule_results_add_up_per_rule_across_endpoints() -> None:
    """The realtime poll's per-endpoint rule results become the report's counts."""
    from interlock.components.gtfs_realtime.rulecounts import rule_totals

    sample = {"entity_id": "e1", "field": "trip.trip_id", "value": "T9"}
    per_endpoint = {
        "metro_train_trip_updates": {
            "notices": [{"code": "E003", "severity": "ERROR", "count": 3, "samples": [sample]}]
        },
        "metro_bus_trip_updates": {
            "notices": [
                {"code": "E003", "severity": "ERROR", "count": 2, "samples": []},
                {"code": "W001", "severity": "WARNING", "count": 1, "samples": []},
            ]
        },
    }
    totals = rule_totals(per_endpoint)
    report = shape(totals)
    assert report is not None and VALIDATOR.is_valid(report)
    assert report["counts"] == {
        "E003": {"severity": "ERROR", "count": 5},
        "W001": {"severity": "WARNING", "count": 1},
    }
    assert (report["error_count"], report["warning_count"]) == (5, 1)
    assert report["notices"] == [
        {"code": "E003", "severity": "ERROR", "endpoint": "metro_train_trip_updates", **sample}
    ]


def test_a_report_of_the_wrong_types_still_comes_out_in_the_shape() -> None:
    """A third-party component's junk (counts a string, notices a number) never reaches a
    reader as such: the report is valid, the junk dropped."""
    report = shape({"counts": "12 errors", "notices": 3, "rules": {}, "passed": "yes"})
    assert report is not None and VALIDATOR.is_valid(report)
    assert report["counts"] == {} and report["notices"] == [] and report["passed"] is None
