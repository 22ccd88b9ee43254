"""config/examples/platform.json: every block the platform documents, together, checked
and planned by the real CLI."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

from tests.test_cli import interlock

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "examples" / "platform.json"
BLOCKS = (
    "components",
    "quota_management",
    "runtime_settings",
    "dependency_management",
    "performance_monitoring",
    "change_detection",
    "data_quality",
    "override_settings",
)


def test_the_example_holds_every_documented_block_and_is_packaged() -> None:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert set(BLOCKS) <= set(doc)
    assert doc["change_detection"]["methods"]["api_etag"]["cache_duration_hours"] == 24
    assert resources.files("interlock.config").joinpath("examples/platform.json").is_file()
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert '"examples/*.json"' in pyproject


def test_check_config_accepts_the_example() -> None:
    result = interlock("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "valid (5 components)" in result.stdout


def test_a_dry_run_of_the_example_prints_a_plan_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "platform.json"
    shutil.copy(EXAMPLE, config)
    result = interlock("run", "--once", "--dry-run", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "COMPONENT" in result.stdout and "ACTION" in result.stdout
    for name in ("gtfs_schedule", "gtfs_realtime", "datavic_temporal_patronage"):
        assert name in result.stdout
    # A dry run fetches nothing: no state database, no data folder beside the config.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["platform.json"]
