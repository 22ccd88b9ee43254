"""Every ERROR in MobilityData's notice catalogue (as gtfs-guru's notice_schema() lists
it) is either one interlock emits or listed here with the reason it never is: the
accounting is checked, so a catalogue that grows shows up as a failing test."""

from __future__ import annotations

import pytest

from interlock.components.gtfs_schedule.notices import SEVERITIES

gtfs_guru = pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

INTERNAL = "a system error of the validator's own run (an exception, a thread), not about the feed"
NOT_EMITTED: dict[str, str] = {
    "i_o_error": INTERNAL + "; interlock reports an unreadable zip as UnsafeArchiveError",
    "runtime_exception_in_loader_error": INTERNAL,
    "runtime_exception_in_validator_error": INTERNAL,
    "thread_execution_error": INTERNAL,
    "u_r_i_syntax_error": (
        "a system error for a malformed --url argument of the validator, not a feed value "
        "(feed URLs are invalid_url); interlock's source URLs fail as FetchError"
    ),
    "too_many_rows": (
        "raised past 1,000,000,000 rows in one file; the zip limits (max_member_mb) refuse "
        "a member that large first"
    ),
    "invalid_phone_number": (
        "only with a country code (--country_code); neither Java nor gtfs-guru checks "
        "phone numbers by default, and interlock runs with none"
    ),
    "google_ic_price_check": "an optional Google rule, only with gtfs-guru's --google-rules",
    "missing_prior_day_booking_field_value": (
        "deprecated: replaced by missing_prior_notice_last_day and "
        "missing_prior_notice_last_time, which interlock emits"
    ),
}


def _errors() -> set[str]:
    schema = gtfs_guru.notice_schema()
    return {code for code, spec in schema.items() if spec["severityLevel"] == "ERROR"}


def test_every_error_is_emitted_or_listed_with_a_reason() -> None:
    errors = _errors()
    emitted = {code for code, severity in SEVERITIES.items() if severity == "ERROR"}
    assert not emitted & set(NOT_EMITTED), "listed as not emitted, yet emitted"
    assert sorted(errors - emitted - set(NOT_EMITTED)) == []
    assert sorted(set(NOT_EMITTED) - errors) == [], "listed, yet not in the catalogue"
    assert all(reason for reason in NOT_EMITTED.values())


def test_what_we_emit_as_error_is_an_error_there() -> None:
    schema = gtfs_guru.notice_schema()
    ours = sorted(code for code, severity in SEVERITIES.items() if severity == "ERROR")
    assert [c for c in ours if schema.get(c, {}).get("severityLevel") != "ERROR"] == []
