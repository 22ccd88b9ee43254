"""The GTFS quality gate: ERRORs quarantine, WARNINGs publish, and the configured
``tolerate`` / ``escalate`` lists move single codes across that line."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from interlock.components.gtfs_schedule.loader import load_feed
from interlock.components.gtfs_schedule.notices import SEVERITIES
from interlock.config.loader import parse_config, shipped_config
from interlock.errors import ConfigError
from tests.gtfs_mutate import write_feed
from tests.test_gtfs_oracle import build_mode_zips

pytestmark = pytest.mark.timeout(60)

UNREACHABLE = "pathway_unreachable_location"
# Station P with platforms S1 and S2: S1 can be reached but not left, S2 not reached.
PATHWAY_FEED: dict[str, str | None] = {
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
    "S1,One,-37.1,144.1,0,P\nS2,Two,-37.2,144.2,0,P\nP,Par,-37.1,144.1,1,\n"
    "E,Ent,-37.1,144.1,2,P\n",
    "pathways.txt": "pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional\n"
    "W1,E,S1,1,0\n",
}
# The base feed has no feed_info.txt: the WARNING missing_recommended_file.
WARNING = "missing_recommended_file"


def config(tmp_path: Path, feed: Path, rules: dict[str, Any] | None = None) -> Any:
    data_quality: dict[str, Any] = {"quarantine_failed_data": True}
    if rules is not None:
        data_quality["rules"] = {"gtfs_schedule": rules}
    doc = {
        "components": {
            "gtfs_schedule": {
                "frequency": "daily",
                "retries": 0,
                "settings": {"source": {"path": str(feed)}},
            }
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
        "data_quality": data_quality,
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


async def run_once(
    open_orch: Any, cfg: Any, orch: Any = None
) -> tuple[str, str | None, dict[str, Any]]:
    if orch is None:
        orch = await open_orch(cfg)
    result = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
    await asyncio.wait_for(orch.bus.flush(), 10)
    hist = await orch.store.history(component="gtfs_schedule")
    settled = result.outcomes["gtfs_schedule"]
    return settled.status.value, settled.reason, hist[0]["quality"]


def live(tmp_path: Path) -> Path:
    return tmp_path / "data" / "gtfs_schedule.sqlite"


def quarantined(tmp_path: Path) -> list[Path]:
    root = tmp_path / "data" / "quarantine" / "gtfs_schedule"
    return sorted(root.iterdir()) if root.is_dir() else []


def test_pathway_feed_carries_only_that_error(tmp_path: Path) -> None:
    """The feed the gate tests use has pathway_unreachable_location as its only ERROR."""
    result = load_feed(write_feed(tmp_path, PATHWAY_FEED), tmp_path / "f.db")
    counts: Any = result.report["counts"]
    errors = {c: v["count"] for c, v in counts.items() if v["severity"] == "ERROR"}
    assert errors == {UNREACHABLE: 2}


async def test_an_error_quarantines_by_default_and_keeps_live_data(tmp_path, open_orch):
    """With no rules configured, one ERROR notice quarantines the feed; live data stays."""
    feed = write_feed(tmp_path, {})
    cfg = config(tmp_path, feed)
    orch = await open_orch(cfg)
    status, _, _ = await run_once(open_orch, cfg, orch)
    assert status == "succeeded"
    before = hashlib.sha256(live(tmp_path).read_bytes()).hexdigest()
    write_feed(tmp_path, PATHWAY_FEED)  # the source now serves a feed with an ERROR
    status, reason, quality = await run_once(open_orch, cfg, orch)
    assert status == "failed" and UNREACHABLE in (reason or "")
    assert quality["passed"] is False
    assert hashlib.sha256(live(tmp_path).read_bytes()).hexdigest() == before
    (folder,) = quarantined(tmp_path)
    assert len(list(folder.glob("*.zip"))) == 1


async def test_a_tolerated_error_publishes_and_is_marked_in_the_report(tmp_path, open_orch):
    """A feed whose only ERROR is tolerated publishes; the report still counts it."""
    feed = write_feed(tmp_path, PATHWAY_FEED)
    status, _, quality = await run_once(
        open_orch, config(tmp_path, feed, {"tolerate": [UNREACHABLE]})
    )
    assert status == "succeeded" and live(tmp_path).exists()
    assert quality["counts"][UNREACHABLE] == {"severity": "ERROR", "count": 2, "tolerated": True}
    assert quarantined(tmp_path) == []


async def test_warnings_publish_and_an_escalated_warning_blocks(tmp_path, open_orch):
    """A WARNING publishes; the same WARNING listed in escalate quarantines."""
    feed = write_feed(tmp_path, {})
    status, _, quality = await run_once(open_orch, config(tmp_path / "a", feed))
    assert status == "succeeded"
    code = WARNING
    assert quality["counts"][code] == {"severity": "WARNING", "count": 1}
    status, reason, quality = await run_once(
        open_orch, config(tmp_path / "b", feed, {"escalate": [code]})
    )
    assert status == "failed" and code in (reason or "")
    assert quality["counts"][code]["escalated"] is True
    assert len(quarantined(tmp_path / "b")) == 1 and not live(tmp_path / "b").exists()


def config_problems(tmp_path: Path, rules: dict[str, Any], where: str = "rules") -> str:
    section: dict[str, Any] = (
        {"rules": {"gtfs_schedule": rules}} if where == "rules" else {where: rules}
    )
    doc = {
        "components": {
            "gtfs_schedule": {"frequency": "daily", "settings": {"source": {"path": "x.zip"}}}
        },
        "runtime_settings": {"state_dir": str(tmp_path), "data_dir": str(tmp_path)},
        "data_quality": section,
    }
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "test.json")
    return str(info.value)


def test_an_unknown_code_is_a_config_error_with_did_you_mean(tmp_path: Path) -> None:
    """A misspelt code names its path, the value and the closest code of the catalogue."""
    text = config_problems(tmp_path, {"tolerate": ["pathway_unreachable_locaton"]})
    assert "$.data_quality.rules.gtfs_schedule.tolerate[0]" in text
    assert "'pathway_unreachable_locaton'" in text
    assert f"did you mean {UNREACHABLE!r}" in text


def test_every_catalogue_code_is_accepted_where_it_belongs(tmp_path: Path) -> None:
    """Every ERROR code of the catalogue may be tolerated and every other one escalated."""
    errors = sorted(c for c, s in SEVERITIES.items() if s == "ERROR")
    others = sorted(c for c, s in SEVERITIES.items() if s != "ERROR")
    doc = {
        "components": {
            "gtfs_schedule": {"frequency": "daily", "settings": {"source": {"path": "x.zip"}}}
        },
        "runtime_settings": {"state_dir": str(tmp_path), "data_dir": str(tmp_path)},
        "data_quality": {"rules": {"gtfs_schedule": {"tolerate": errors, "escalate": others}}},
    }
    cfg = parse_config(doc, "test.json")
    assert cfg.data_quality["rules"]["gtfs_schedule"]["tolerate"] == errors


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ({"tolerate": [WARNING]}, ["WARNING", "escalate"]),
        ({"escalate": [UNREACHABLE]}, ["ERROR", "already"]),
        ({"tolerate": [UNREACHABLE], "escalate": [UNREACHABLE]}, ["both"]),
    ],
)
def test_a_code_on_the_wrong_list_is_a_config_error(tmp_path, rules, words) -> None:
    """A WARNING cannot be tolerated, an ERROR not escalated, a code not be on both lists."""
    text = config_problems(tmp_path, rules)
    assert "$.data_quality.rules.gtfs_schedule" in text
    for word in words:
        assert word in text


def test_default_rules_codes_are_checked_too(tmp_path: Path) -> None:
    """The lists in default_rules are checked against the configured components' catalogues."""
    text = config_problems(tmp_path, {"escalate": ["unknown_colum"]}, "default_rules")
    assert "$.data_quality.default_rules.escalate[0]" in text and "'unknown_column'" in text


@pytest.mark.slow  # loads both real mode folders: about 10 s on a quiet machine
def test_production_tolerates_only_what_the_real_feed_carries(shared_data, tmp_path) -> None:
    """Each code the shipped config tolerates is raised by Victoria's real (partial) feed."""
    doc = json.loads(shipped_config("orchestration.json").read_text())
    tolerated = doc["data_quality"]["rules"]["gtfs_schedule"].get("tolerate", [])
    assert tolerated == [UNREACHABLE, "duplicate_key"]
    outer, _ = build_mode_zips(shared_data, tmp_path)
    counts: Any = load_feed(outer, tmp_path / "vic.db").report["counts"]
    assert {code: counts[code]["count"] for code in tolerated} == {
        UNREACHABLE: 85,
        "duplicate_key": 267,
    }
    # Every duplicate is a verbatim repeat: dropping it (first row kept) loses nothing.
    lines = (shared_data / "vic-gtfs-partial" / "1" / "trips.txt").read_text().splitlines()[1:]
    assert len(lines) - len(set(lines)) == 267
