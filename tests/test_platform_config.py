"""The platform's documented configuration forms (issue 14): each block loads and works."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from interlock.config.loader import parse_config, shipped_config
from interlock.errors import ConfigError, QuotaExhaustedError
from interlock.kit.quota import QuotaGuard, QuotaSettings
from tests.notify_servers import smtp
from tests.test_cli import interlock

__all__ = ["smtp"]  # the in-process SMTP server, a fixture

REPO = Path(__file__).resolve().parents[1]

COMPONENTS_BLOCK: dict[str, Any] = {
    "components": {
        "gtfs_schedule": {
            "enabled": True,
            "frequency": "weekly",
            "dependencies": [],
            "provides": ["stations", "routes", "stops"],
        },
        "gtfs_realtime": {
            "enabled": True,
            "frequency": "hourly",
            "dependencies": ["gtfs_schedule"],
            "provides": ["real_time_updates", "service_alerts"],
        },
    }
}


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    """``doc`` as a config file whose state lives under ``tmp_path``."""
    doc = {**doc, "runtime_settings": {**doc.get("runtime_settings", {}), "state_dir": "state"}}
    path = tmp_path / "platform.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def production_settings(name: str) -> Any:
    """The settings of ``name`` in the shipped orchestration.json."""
    doc = json.loads(shipped_config("orchestration.json").read_text(encoding="utf-8"))
    return doc["components"][name]["settings"]


def test_components_block_loads_with_the_production_sources() -> None:
    """A built-in with no settings gets its production settings; a missing secret disables it."""
    config = parse_config(COMPONENTS_BLOCK, "<platform>", env={})
    schedule, realtime = config.components["gtfs_schedule"], config.components["gtfs_realtime"]
    assert schedule.enabled and schedule.frequency.kind == "weekly"
    assert schedule.provides == ("stations", "routes", "stops")
    assert dict(schedule.settings) == production_settings("gtfs_schedule")
    assert realtime.dependencies == ("gtfs_schedule",)
    assert not realtime.enabled
    assert "opendata_api_key" in (realtime.disabled_reason or "")


def test_plan_on_the_components_block_shows_each_source(tmp_path: Path) -> None:
    """plan lists both components with their real sources, the realtime one disabled and why."""
    proc = interlock("plan", "--config", str(write(tmp_path, COMPONENTS_BLOCK)))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "CKAN https://opendata.transport.vic.gov.au/api/3/action/" in out
    assert "GTFS-realtime feeds at api.opendata.transport.vic.gov.au" in out
    realtime = next(line for line in out.splitlines() if line.startswith("gtfs_realtime"))
    assert "disabled" in realtime and "opendata_api_key" in realtime


def test_plan_json_carries_the_source(tmp_path: Path) -> None:
    """plan --json gives each built-in's source as a field."""
    proc = interlock("plan", "--json", "--config", str(write(tmp_path, COMPONENTS_BLOCK)))
    assert proc.returncode == 0, proc.stderr
    rows = {r["component"]: r for r in json.loads(proc.stdout)}
    assert rows["gtfs_schedule"]["source"].startswith("CKAN ")
    assert rows["gtfs_realtime"]["run"] is False


ALL_FIVE: dict[str, Any] = {
    "components": {
        name: {"frequency": "daily"}
        for name in (
            "gtfs_schedule",
            "gtfs_realtime",
            "ptv_timetable",
            "datavic_station_patronage",
            "datavic_temporal_patronage",
        )
    }
}

GROUPS_BLOCK: dict[str, Any] = {
    "runtime_settings": {"max_concurrent_components": 2},
    "dependency_management": {
        "parallel_groups": [
            ["gtfs_realtime", "ptv_timetable"],
            ["datavic_station_patronage", "datavic_temporal_patronage"],
        ]
    },
}


def test_parallel_groups_as_a_list_of_lists_load() -> None:
    """max_concurrent_components and a list of lists of groups are accepted as written."""
    config = parse_config({**ALL_FIVE, **GROUPS_BLOCK}, "<platform>", env={})
    assert config.runtime.max_concurrent == 2
    assert sorted(map(sorted, config.parallel_groups.values())) == [
        ["datavic_station_patronage", "datavic_temporal_patronage"],
        ["gtfs_realtime", "ptv_timetable"],
    ]


def test_listed_groups_decide_who_may_overlap() -> None:
    """Members of one listed group may overlap; members of different groups may not."""
    from interlock import graph

    config = parse_config({**ALL_FIVE, **GROUPS_BLOCK}, "<platform>", env={})
    member_of = {name: spec.groups for name, spec in config.components.items()}
    assert graph.may_overlap("ptv_timetable", ["gtfs_realtime"], member_of, config.grouping)
    assert not graph.may_overlap(
        "datavic_station_patronage", ["gtfs_realtime"], member_of, config.grouping
    )
    assert not graph.may_overlap("gtfs_schedule", ["gtfs_realtime"], member_of, config.grouping)


def test_a_listed_group_is_named_by_position_in_errors() -> None:
    """An unknown member of the second listed group is reported at parallel_groups[1]."""
    groups = [["gtfs_realtime"], ["ptv_timetabel"]]
    doc = {**ALL_FIVE, "dependency_management": {"parallel_groups": groups}}
    try:
        parse_config(doc, "<platform>", env={})
    except ConfigError as exc:
        problems = exc.problems
    else:
        raise AssertionError("an unknown group member was accepted")
    assert any(
        p.startswith("$.dependency_management.parallel_groups[1]: unknown component 'ptv_timet")
        and "did you mean 'ptv_timetable'" in p
        for p in problems
    ), problems


def test_default_endpoint_names_include_the_documented_ones() -> None:
    """The built-in realtime endpoints are named as the platform documents them."""
    config = parse_config(COMPONENTS_BLOCK, "<platform>", env={})
    endpoints = config.components["gtfs_realtime"].settings["endpoints"]
    assert {"metro_train_trip_updates", "metro_train_alerts"} <= set(endpoints)


def test_a_priority_endpoint_that_names_no_endpoint_is_an_error() -> None:
    """A misspelt priority endpoint is a config error with a did-you-mean."""
    quota = {"priority_endpoints": ["metro_train_trip_updates", "metro_train_alert"]}
    try:
        parse_config({**COMPONENTS_BLOCK, "quota_management": quota}, "<platform>", env={})
    except ConfigError as exc:
        problems = exc.problems
    else:
        raise AssertionError("an unknown priority endpoint was accepted")
    assert len(problems) == 1, problems
    assert problems[0].startswith("$.quota_management.priority_endpoints[1]: 'metro_train_alert'")
    assert "did you mean 'metro_train_alerts'" in problems[0]


MELBOURNE = ZoneInfo("Australia/Melbourne")
QUOTA_BLOCK: dict[str, Any] = {
    "quota_management": {
        "daily_limit": 1000,
        "retry_after_quota": "24h",
        "priority_endpoints": ["metro_train_trip_updates", "metro_train_alerts"],
    }
}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def quota_guard(clock: Clock, retry: Any) -> QuotaGuard:
    """A guard of two calls a day with priority endpoint 'p' and no rate wait."""
    section = {
        "daily_limit": 2,
        "retry_after_quota": retry,
        "priority_endpoints": ["p"],
        "rate_limit": {"calls": 100, "per_seconds": 60},
    }
    return QuotaGuard(section, MELBOURNE, clock=clock)


def test_the_quota_block_loads_with_a_duration() -> None:
    """The documented quota block loads; its duration is read as seconds."""
    config = parse_config({**COMPONENTS_BLOCK, **QUOTA_BLOCK}, "<platform>", env={})
    settings = QuotaSettings.from_config(config.quota)
    assert settings.quota_pause_s == 86400.0 and settings.retry_after_quota
    assert QuotaSettings.from_config({"retry_after_quota": "30m"}).quota_pause_s == 1800.0
    assert QuotaSettings.from_config({"retry_after_quota": 90}).quota_pause_s == 90.0
    assert QuotaSettings.from_config({"retry_after_quota": False}).quota_pause_s is None


def test_a_retry_after_quota_that_is_no_duration_is_an_error() -> None:
    """'2x' is refused with the forms a duration may take."""
    doc = {**COMPONENTS_BLOCK, "quota_management": {"retry_after_quota": "2x"}}
    try:
        parse_config(doc, "<platform>", env={})
    except ConfigError as exc:
        problems = exc.problems
    else:
        raise AssertionError("'2x' was accepted")
    assert [p for p in problems if "retry_after_quota" in p] == [
        "$.quota_management.retry_after_quota: '2x' is not a duration; write a duration such "
        "as '24h', '30m', '90s' or a number of seconds"
    ]


async def test_exhausted_quota_pauses_non_priority_endpoints_for_the_duration() -> None:
    """Once the API says its quota is spent, non-priority calls wait 30m (status says
    until when), then are tried again. (Our own count spent holds them to midnight:
    tests/test_quota_exact.py.)"""
    clock = Clock(datetime(2026, 3, 10, 9, 0, tzinfo=MELBOURNE).astimezone(UTC))
    guard = quota_guard(clock, "30m")
    guard.refused_by_server("a")
    with pytest.raises(QuotaExhaustedError) as refused:
        await asyncio.wait_for(guard.acquire("a"), 5)
    resume_at = clock.now + timedelta(minutes=30)
    assert refused.value.reset_at == resume_at
    assert guard.describe()["resume_at"] == resume_at.astimezone(MELBOURNE).isoformat()
    await asyncio.wait_for(guard.acquire("p"), 5)  # priority endpoints go on
    clock.now += timedelta(minutes=29)
    with pytest.raises(QuotaExhaustedError) as again:
        await asyncio.wait_for(guard.acquire("b"), 5)
    assert again.value.reset_at == resume_at  # a refusal during the pause does not extend it
    clock.now += timedelta(minutes=1)
    await asyncio.wait_for(guard.acquire("a"), 5)
    # That call spent the budget of 2 (with the priority one): held to midnight now.
    midnight = datetime(2026, 3, 11, 0, 0, tzinfo=MELBOURNE)
    assert guard.describe()["resume_at"] == midnight.isoformat()


async def test_the_midnight_reset_ends_a_longer_pause() -> None:
    """With 24h, a quota spent at 23:50 resumes at local midnight, whichever comes first."""
    clock = Clock(datetime(2026, 3, 10, 23, 50, tzinfo=MELBOURNE).astimezone(UTC))
    guard = quota_guard(clock, "24h")
    for _ in range(2):
        await asyncio.wait_for(guard.acquire("a"), 5)
    with pytest.raises(QuotaExhaustedError) as refused:
        await asyncio.wait_for(guard.acquire("a"), 5)
    assert refused.value.reset_at == datetime(2026, 3, 11, 0, 0, tzinfo=MELBOURNE)


async def test_true_keeps_refusing_until_the_reset() -> None:
    """retry_after_quota true keeps today's meaning: refused until the midnight reset."""
    clock = Clock(datetime(2026, 3, 10, 9, 0, tzinfo=MELBOURNE).astimezone(UTC))
    guard = quota_guard(clock, True)
    for _ in range(2):
        await asyncio.wait_for(guard.acquire("a"), 5)
    clock.now += timedelta(hours=14)
    with pytest.raises(QuotaExhaustedError) as refused:
        await asyncio.wait_for(guard.acquire("a"), 5)
    assert refused.value.reset_at == datetime(2026, 3, 11, 0, 0, tzinfo=MELBOURNE)
    assert guard.describe()["resume_at"] is None


def problems_of(doc: dict[str, Any]) -> list[str]:
    """The problems parse_config reports for ``doc`` (none: an AssertionError)."""
    try:
        parse_config(doc, "<platform>", env={})
    except ConfigError as exc:
        return list(exc.problems)
    raise AssertionError("the document was accepted")


def test_a_settings_typo_is_reported_with_top_level_errors_and_a_hint() -> None:
    """settings.sorce comes with the top-level typo, as an unknown key with a did-you-mean."""
    doc = {
        "components": {
            "gtfs_schedule": {"frequency": "weekly", "settings": {"sorce": {"url": "https://x/y"}}}
        },
        "runtime_settings": {"max_concurent_components": 2},
    }
    found = problems_of(doc)
    assert any(p.startswith("$.runtime_settings: unknown key 'max_concurent_") for p in found)
    assert any(
        p.startswith(
            "$.components.gtfs_schedule.settings: unknown key 'sorce' (did you mean 'source'?)"
        )
        for p in found
    ), found


def test_a_settings_typo_shows_even_while_a_secret_is_missing() -> None:
    """A component disabled for a missing secret still has its unknown keys reported."""
    settings = {
        "endpoints": {"metro_train_trip_updates": "https://example.org/metro/trip-updates"},
        "api_key": "${credential:opendata_api_key}",
        "rate_famly": "opendata",
    }
    doc = {"components": {"gtfs_realtime": {"frequency": "60s", "settings": settings}}}
    found = problems_of(doc)
    assert any(
        p.startswith("$.components.gtfs_realtime.settings: unknown key 'rate_famly'")
        and "did you mean 'rate_family'" in p
        for p in found
    ), found


OVERRIDES_BLOCK: dict[str, Any] = {
    "override_settings": {
        "force_run_all": False,
        "skip_frequency_check": False,
        "skip_dependency_check": False,
        "skip_change_detection": False,
        "skip_data_quality": False,
        "dry_run": False,
    }
}


def test_the_override_block_loads_as_written() -> None:
    """The documented override_settings, all false, are the defaults."""
    from interlock.config.model import Overrides

    config = parse_config({**COMPONENTS_BLOCK, **OVERRIDES_BLOCK}, "<platform>", env={})
    assert config.overrides == Overrides()


def test_force_run_all_in_the_file_runs_what_is_not_due() -> None:
    """force_run_all: true in the file makes plan run a component that just succeeded."""
    from interlock.core.scheduler import Scheduler
    from interlock.events import EventBus
    from interlock.store.abc import ComponentState

    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    done = ComponentState(
        name="gtfs_schedule", last_started_at=now, last_status="succeeded", last_success_at=now
    )
    for force, expected in ((False, False), (True, True)):
        overrides = {"override_settings": {**OVERRIDES_BLOCK["override_settings"]}}
        overrides["override_settings"]["force_run_all"] = force
        config = parse_config({**COMPONENTS_BLOCK, **overrides}, "<platform>", env={})
        plan = Scheduler(config, EventBus(), {"gtfs_schedule": done}).plan(now)
        decision = next(d for d in plan if d.component == "gtfs_schedule")
        assert decision.run is expected, decision


class JudgesQuality:
    """Publishes three records after judging them with the configured rules."""

    def __init__(self, name: str, settings: Any) -> None:
        self.name = name

    async def run(self, ctx: Any) -> Any:
        from interlock.outcome import Outcome, Status

        report: dict[str, Any] = {}
        ctx.judge_quality({"records": 3, "checked_cells": 10, "null_cells": 2}, report)
        return Outcome(status=Status.SUCCEEDED, records=3, fingerprint="f", quality=report)


QUALITY_BLOCK: dict[str, Any] = {
    "data_quality": {
        "validation_rules": {
            "record_count_min": 1,
            "null_percentage_max": 10,
            "duplicate_percentage_max": 5,
            "schema_validation": True,
        },
        "quarantine_failed_data": True,
        "quality_reports": True,
    }
}


def test_validation_rules_are_every_components_default_rules() -> None:
    """validation_rules apply to every component; a component's own rules go on top."""
    from interlock.kit import quality

    section = {**QUALITY_BLOCK["data_quality"], "rules": {"b": {"record_count_min": 1000}}}
    config = parse_config({**COMPONENTS_BLOCK, "data_quality": section}, "<platform>", env={})
    assert quality.rules_for(config.data_quality, "a")["null_percentage_max"] == 10
    assert quality.rules_for(config.data_quality, "b")["record_count_min"] == 1000


async def test_quality_reports_writes_each_runs_report_as_json(make_config, open_orch) -> None:
    """quality_reports: true leaves the run's report under data_dir/quality/<component>/."""
    entry = {"class": "tests.test_platform_config:JudgesQuality", "frequency": "1h"}
    config = make_config({"judged": entry}, **QUALITY_BLOCK)
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    files = list((config.runtime.data_dir / "quality" / "judged").glob("*.json"))
    assert len(files) == 1, files
    doc = json.loads(files[0].read_text(encoding="utf-8"))
    assert doc["component"] == "judged" and doc["status"] == "succeeded"
    rules = {r["rule"]: r for r in doc["quality"]["rules"]}
    assert rules["null_percentage_max"]["measured"] == 20.0
    assert rules["null_percentage_max"]["passed"] is False


async def test_without_quality_reports_no_file_is_written(make_config, open_orch) -> None:
    """quality_reports false (the default) keeps the report only in history."""
    entry = {"class": "tests.test_platform_config:JudgesQuality", "frequency": "1h"}
    section = {**QUALITY_BLOCK["data_quality"], "quality_reports": False}
    config = make_config({"judged": entry}, data_quality=section)
    orch = await open_orch(config)
    await asyncio.wait_for(orch.scheduler.run_once(), 10)
    assert not (config.runtime.data_dir / "quality").exists()


ALERTING_BLOCK: dict[str, Any] = {
    "performance_monitoring": {
        "alerting": {
            "enabled": True,
            "email_notifications": ["admin@example.com"],
            "slack_webhook": "https://hooks.slack.com/services/T0/B0/abcdef",
        },
        "thresholds": {
            "max_execution_time_minutes": 60,
            "max_memory_mb": 1024,
            "max_api_response_ms": 30000,
            "min_success_rate_percentage": 95,
        },
    }
}


def test_the_alerting_block_loads_and_warns_about_a_literal_webhook() -> None:
    """The documented alerting loads; the literal webhook works, with a warning."""
    env = {"SMTP_HOST": "smtp.example.org", "SMTP_PORT": "25"}
    config = parse_config({**COMPONENTS_BLOCK, **ALERTING_BLOCK}, "<platform>", env=env)
    alerting = config.monitoring["alerting"]
    assert alerting["email"]["to"] == ["admin@example.com"]
    assert (alerting["email"]["host"], alerting["email"]["port"]) == ("smtp.example.org", 25)
    assert alerting["slack"]["webhook_url"].startswith("https://hooks.slack.com/")
    assert config.monitoring["thresholds"]["min_success_rate_percentage"] == 95
    [warning] = config.warnings
    assert "slack_webhook" in warning and "${credential:slack_webhook_url}" in warning
    assert "abcdef" not in warning


def test_check_config_shows_the_webhook_warning(tmp_path: Path) -> None:
    """check-config exits 0 and prints the warning with the ${credential:...} form."""
    proc = interlock("check-config", str(write(tmp_path, {**COMPONENTS_BLOCK, **ALERTING_BLOCK})))
    assert proc.returncode == 0, proc.stderr
    assert "warning:" in proc.stdout and "${credential:slack_webhook_url}" in proc.stdout
    assert "abcdef" not in proc.stdout + proc.stderr


async def test_alert_email_goes_to_the_listed_recipients(smtp: Any) -> None:
    """With SMTP_* from the environment, the alert reaches each listed recipient."""
    from interlock.observe.notify.channels import EmailChannel
    from interlock.observe.notify.message import Message

    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_SECURITY": "none"}
    alerting = {"enabled": True, "email_notifications": ["admin@example.com", "ops@example.com"]}
    doc = {**COMPONENTS_BLOCK, "performance_monitoring": {"alerting": alerting}}
    config = parse_config(doc, "<platform>", env=env)
    channel = EmailChannel(config.monitoring["alerting"]["email"])
    message = Message(kind="failure", title="test alert", lines=(("Why", "a test"),), command="x")
    await asyncio.wait_for(channel.send(message), 10)
    await asyncio.wait_for(smtp.arrived.wait(), 10)
    assert smtp.envelopes[0].rcpt_tos == ["admin@example.com", "ops@example.com"]
