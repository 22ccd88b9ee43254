"""report.json in MobilityData's shape: read with the same code as gtfs-guru's report,
it has the same structure and, for every code interlock implements, the same counts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from interlock.components.gtfs_schedule.notices import SEVERITIES
from interlock.components.gtfs_schedule.standalone import validate_file
from interlock.config.loader import parse_config
from tests.gtfs_mutate import ORACLE_DATE, write_feed
from tests.test_gtfs_gate import PATHWAY_FEED

pytestmark = pytest.mark.timeout(60)

SUMMARY_KEYS = {"validatorVersion", "validatedAt", "gtfsInput", "dateForValidation"}
NOTICE_KEYS = {"code", "severity", "totalNotices", "sampleNotices"}


def read_report(path: Path) -> dict[str, tuple[str, int]]:
    """code -> (severity, totalNotices) of a gtfs-validator report.json, checking its shape."""
    doc = json.loads(path.read_text())
    assert set(doc) >= {"summary", "notices"}
    assert set(doc["summary"]) >= SUMMARY_KEYS
    out: dict[str, tuple[str, int]] = {}
    for notice in doc["notices"]:
        assert set(notice) >= NOTICE_KEYS
        assert notice["severity"] in ("ERROR", "WARNING", "INFO")
        samples = notice["sampleNotices"]
        assert isinstance(samples, list) and all(isinstance(s, dict) for s in samples)
        assert 0 < len(samples) <= notice["totalNotices"]
        out[notice["code"]] = (notice["severity"], notice["totalNotices"])
    return out


def sample_keys(path: Path, code: str) -> set[str]:
    (notice,) = [n for n in json.loads(path.read_text())["notices"] if n["code"] == code]
    return set(notice["sampleNotices"][0])


@pytest.mark.parametrize("name", ["caltrain-20160406.zip", "sample-feed-1.zip", "bad-gtfs.zip"])
def test_ours_reads_as_gtfs_guru_does(shared_data: Path, tmp_path: Path, name: str) -> None:
    """The same reader gives the same codes, severities and counts from both reports."""
    gtfs_guru = pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")
    feed = shared_data / "gtfs" / name
    theirs_path = tmp_path / "theirs.json"
    gtfs_guru.validate(str(feed), date=ORACLE_DATE).save_json(str(theirs_path))
    ours_path = tmp_path / "ours.json"
    ours_path.write_text(json.dumps(validate_file(feed)))
    theirs = {c: v for c, v in read_report(theirs_path).items() if c in SEVERITIES}
    ours = read_report(ours_path)
    assert ours == theirs | {c: v for c, v in ours.items() if c not in SEVERITIES}
    assert {c for c, v in ours.items() if v[0] == "ERROR"} == {
        c for c, v in theirs.items() if v[0] == "ERROR"
    }


def test_sample_notices_use_gtfs_validator_field_names(shared_data, tmp_path) -> None:
    """A sample notice names its file and row as gtfs-validator's do."""
    gtfs_guru = pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")
    feed = shared_data / "gtfs" / "sample-feed-1.zip"
    theirs = tmp_path / "theirs.json"
    gtfs_guru.validate(str(feed), date=ORACLE_DATE).save_json(str(theirs))
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps(validate_file(feed)))
    both = {"filename", "csvRowNumber"}
    assert both <= sample_keys(ours, "invalid_row_length") & sample_keys(
        theirs, "invalid_row_length"
    )


def test_summary_describes_the_feed(shared_data: Path) -> None:
    """The summary names the input, the agencies and the service window."""
    doc = validate_file(shared_data / "gtfs" / "sample-feed-1.zip")
    summary = doc["summary"]
    assert summary["gtfsInput"].startswith("file://")
    assert summary["agencies"][0]["name"] == "Demo Transit Authority"
    assert summary["feedInfo"]["feedServiceWindowStart"] == "2007-01-01"
    assert "stop_times.txt" in summary["files"]


def run_config(tmp_path: Path, feed: Path) -> Any:
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
        "data_quality": {"quarantine_failed_data": True, "quality_reports": True},
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


async def run(open_orch: Any, tmp_path: Path, files: dict[str, str | None]) -> str:
    orch = await open_orch(run_config(tmp_path, write_feed(tmp_path, files)))
    result = await asyncio.wait_for(orch.scheduler.run_once(["gtfs_schedule"]), 30)
    await asyncio.wait_for(orch.bus.flush(), 10)
    return str(result.outcomes["gtfs_schedule"].status.value)


async def test_a_quarantined_feed_has_its_report_json(tmp_path, open_orch) -> None:
    """The quarantine folder holds the validator's report.json beside the payload."""
    assert await run(open_orch, tmp_path, PATHWAY_FEED) == "failed"
    (folder,) = (tmp_path / "data" / "quarantine" / "gtfs_schedule").iterdir()
    report = folder / "validator" / "report.json"
    assert read_report(report)["pathway_unreachable_location"] == ("ERROR", 2)
    assert report.stat().st_mode & 0o777 == 0o600


async def test_a_published_feed_has_its_report_json(tmp_path, open_orch) -> None:
    """Each published version's quality report has the validator's report beside it."""
    assert await run(open_orch, tmp_path, {}) == "succeeded"
    folder = tmp_path / "data" / "quality" / "gtfs_schedule"
    (quality,) = folder.glob("*[0-9a-f].json")
    (report,) = folder.glob("*.report.json")
    assert (
        report.name.removesuffix(".report.json").split("-", 1)[1] == quality.stem.split("-", 1)[1]
    )
    assert read_report(report)["missing_recommended_file"] == ("WARNING", 1)
