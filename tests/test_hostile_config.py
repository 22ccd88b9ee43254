"""Tests that hostile configuration values stop at check-config or start-up with exit 2."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock.components.datavic.component import SETTINGS_SCHEMA as DATAVIC_SETTINGS
from interlock.components.gtfs_schedule.component import SETTINGS_SCHEMA as GTFS_SETTINGS
from interlock.config.schema import schema
from tests.conftest import component
from tests.test_cli import interlock, no_traceback

pytestmark = pytest.mark.timeout(60)


def write(directory: Path, sections: dict[str, Any] | None = None, **runtime: Any) -> Path:
    """A config of one test component; ``runtime`` overrides runtime_settings."""
    doc: dict[str, Any] = {
        "components": {"a": component("Publishes", "1h")},
        "runtime_settings": {
            "state_dir": str(directory / "state"),
            "data_dir": str(directory / "data"),
            **runtime,
        },
        **(sections or {}),
    }
    path = directory / "orchestration.json"
    path.write_text(json.dumps(doc))
    return path


def numbers(node: Any, where: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema whose type is number or integer, with where it sits."""
    if isinstance(node, dict):
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if {"number", "integer"} & set(kinds):
            yield where, node
        for key, value in node.items():
            yield from numbers(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from numbers(value, f"{where}[{i}]")


@pytest.mark.parametrize(
    "tree",
    [schema(), GTFS_SETTINGS, DATAVIC_SETTINGS],
    ids=["orchestration.schema.json", "gtfs_schedule settings", "datavic settings"],
)
def test_every_number_in_the_schema_is_bounded(tree: dict[str, Any]) -> None:
    """Each number or integer has a minimum and a maximum, so nothing overflows later."""
    found = list(numbers(tree))
    assert found
    unbounded = [
        where
        for where, node in found
        if not ({"minimum", "exclusiveMinimum"} & node.keys())
        or not ({"maximum", "exclusiveMaximum"} & node.keys())
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('"history_retention_days": 1e20', "1e+20"),
        ('"global_timeout_minutes": 1' + "0" * 400, "global_timeout_minutes"),
        ('"retry_backoff_seconds": NaN', "NaN"),
        ('"retry_backoff_max_seconds": Infinity', "Infinity"),
    ],
)
def test_huge_or_non_finite_numbers_fail_check_config(
    tmp_path: Path, text: str, shown: str
) -> None:
    """A number too big to use (or NaN) exits 2 naming it, instead of failing at runtime."""
    path = write(tmp_path)
    doc = path.read_text().replace('"runtime_settings": {', '"runtime_settings": {' + text + ", ")
    path.write_text(doc)
    proc = interlock("check-config", str(path))
    no_traceback(proc)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert shown in proc.stderr


@pytest.mark.parametrize("listen", ["0.0.0.0", "example.com:80", ":99999", "127.0.0.1:99999"])
def test_bad_metrics_listen_fails_check_config(tmp_path: Path, listen: str) -> None:
    """metrics.listen that serve would refuse is refused by check-config too (exit 2)."""
    monitoring = {"metrics": {"enabled": True, "listen": listen}}
    path = write(tmp_path, {"performance_monitoring": monitoring})
    proc = interlock("check-config", str(path))
    no_traceback(proc)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "metrics.listen" in proc.stderr and repr(listen) in proc.stderr


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "[::1]:9464", "localhost:0"])
def test_good_metrics_listen_passes_check_config(tmp_path: Path, listen: str) -> None:
    """A loopback HOST:PORT (IPv4, IPv6 or localhost) is valid."""
    path = write(tmp_path, {"performance_monitoring": {"metrics": {"listen": listen}}})
    proc = interlock("check-config", str(path))
    assert proc.returncode == 0, proc.stderr


def _unwritable(tmp_path: Path) -> Path:
    """A directory this process cannot create files in (root ignores modes: use /proc)."""
    if os.geteuid() == 0:
        return Path("/proc/self")
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


STATE_DIRS = {
    "regular file": lambda tmp: (tmp / "afile").write_text("x") and tmp / "afile",
    "under /proc": lambda tmp: Path("/proc/interlock-state"),
    "not writable": _unwritable,
}


@pytest.fixture(params=sorted(STATE_DIRS))
def bad_state_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return STATE_DIRS[request.param](tmp_path)  # type: ignore[no-any-return]


@pytest.mark.parametrize("command", ["run", "serve"])
def test_unusable_state_dir_exits_2_with_a_message(
    tmp_path: Path, bad_state_dir: Path, command: str
) -> None:
    """run --once and serve exit 2 naming state_dir and what to do, with no traceback."""
    path = write(tmp_path, state_dir=str(bad_state_dir))
    with tempfile.TemporaryDirectory(prefix="il-") as short:
        args = ["run", "--once"] if command == "run" else ["serve", "--socket", f"{short}/s"]
        proc = interlock(*args, "--config", str(path))
    no_traceback(proc)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "runtime_settings.state_dir" in proc.stderr
    assert repr(str(bad_state_dir)) in proc.stderr
