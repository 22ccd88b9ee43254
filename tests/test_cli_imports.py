"""The CLI's quick commands import only what they use: ``--help``, ``--version``, ``status``
(through the admin socket) and ``history`` (SQLite read directly) load none of the engine,
the async store, the HTTP stack, the logging setup or the config schema validator.

Each command runs in a fresh interpreter that reports its ``sys.modules`` afterwards;
timings are bench/cli.py's business, this is the part that can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import component
from tests.test_reload_rebuild import ConfigDaemon
from tests.test_service import REPO, Daemon, settle, short_dir  # noqa: F401 (fixture)

#: Modules a quick command must not import (a prefix matches its submodules too).
HEAVY = (
    "asyncio",
    "aiohttp",
    "yarl",
    "aiosqlite",
    "structlog",
    "jsonschema",
    "prometheus_client",
    "interlock.core",
    "interlock.kit",
    "interlock.observe",
    "interlock.service",
    "interlock.store.sqlite",
    "interlock.config.loader",
    "interlock.config.schema",
)

_PROBE = """
import json, sys
from interlock.cli.main import main
try:
    code = main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def imported(argv: list[str], tmp: Path) -> tuple[Any, list[str]]:
    """Run ``interlock ARGV`` in a fresh interpreter: (exit code, heavy modules it imported)."""
    report = tmp / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(report), *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.exists(), proc.stderr
    found = json.loads(report.read_text())
    heavy = [m for m in found["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    return found["code"], heavy


def doc(root: Path) -> dict[str, Any]:
    return {
        "components": {"a": component("Publishes")},
        "runtime_settings": {"admin_socket": "admin.sock"},
    }


@pytest.fixture(scope="module")
def serving() -> Iterator[ConfigDaemon]:
    """A daemon whose config names its admin socket, after its first run."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="ilk-", dir="/tmp"))
    d = ConfigDaemon(root, doc(root), use_config_socket=True)
    d.socket = root / "admin.sock"
    try:
        d.start()
        settle(d)
        yield d
    finally:
        d.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["status", "--help"], ["completion", "--list-components"]],
)
def test_help_and_version_import_nothing_heavy(argv: list[str], tmp_path: Path) -> None:
    """--help, --version and what shell completion asks at TAB time load only the parser."""
    code, heavy = imported(argv, tmp_path)
    assert code == 0
    assert heavy == [], " ".join(heavy)


def test_status_through_the_socket_imports_nothing_heavy(
    serving: ConfigDaemon, tmp_path: Path
) -> None:
    """status with a daemon serving the config asks it over the socket and loads nothing else."""
    code, heavy = imported(["status", "--config", str(serving.config)], tmp_path)
    assert code == 0
    assert heavy == [], " ".join(heavy)


def test_status_with_socket_imports_nothing_heavy(serving: ConfigDaemon, tmp_path: Path) -> None:
    """status --socket needs only json and a socket."""
    code, heavy = imported(["status", "--socket", str(serving.socket), "--json"], tmp_path)
    assert code == 0
    assert heavy == [], " ".join(heavy)


def test_history_through_the_socket_imports_nothing_heavy(
    serving: ConfigDaemon, tmp_path: Path
) -> None:
    """history with a daemon serving the config asks it and loads nothing else."""
    code, heavy = imported(["history", "--config", str(serving.config)], tmp_path)
    assert code == 0
    assert heavy == [], " ".join(heavy)


@pytest.fixture(scope="module")
def stopped() -> Iterator[Path]:
    """A config whose state database holds one finished run, with no daemon."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="ilk-", dir="/tmp"))
    d = ConfigDaemon(root, doc(root))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["PYTHONPATH"] = str(REPO)
    subprocess.run(
        [sys.executable, "-m", "interlock.cli", "run", "--once", "--config", str(d.config)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    d.notify.close()
    yield d.config
    shutil.rmtree(root, ignore_errors=True)


def test_history_from_the_database_imports_nothing_heavy(stopped: Path, tmp_path: Path) -> None:
    """history with no daemon reads state.sqlite with sqlite3, read-only."""
    code, heavy = imported(["history", "--config", str(stopped), "--json"], tmp_path)
    assert code == 0
    assert heavy == [], " ".join(heavy)


def test_plan_does_not_load_the_http_stack(stopped: Path, tmp_path: Path) -> None:
    """plan loads the config (its validator, the component classes) but never aiohttp."""
    code, heavy = imported(["plan", "--config", str(stopped)], tmp_path)
    assert code == 0
    assert [m for m in heavy if m.split(".")[0] in ("aiohttp", "prometheus_client")] == []


def test_plan_of_the_shipped_components_does_not_load_the_http_stack(tmp_path: Path) -> None:
    """plan on config/demo.json imports every built-in component, and still no aiohttp."""
    code, heavy = imported(["plan", "--config", str(REPO / "config" / "demo.json")], tmp_path)
    assert code == 0
    assert [m for m in heavy if m.split(".")[0] in ("aiohttp", "yarl")] == []


#: What a component's run uses and ``plan`` does not: the loaders, validators and
#: writers, the report code, the protobuf decoder. plan needs each class (its settings
#: schema, notice codes and dataset tables), imported without these.
RUN_ONLY = (
    "google.protobuf",
    "google.transit",
    "interlock.components.gtfs_schedule.loader",
    "interlock.components.gtfs_schedule.members",
    "interlock.components.gtfs_schedule.parallel",
    "interlock.components.gtfs_schedule.chunkworker",
    "interlock.components.gtfs_schedule.validate",
    "interlock.components.gtfs_schedule.writer",
    "interlock.components.gtfs_schedule.mdreport",
    "interlock.components.gtfs_realtime.dataset",
    "interlock.components.gtfs_realtime.batches",
    "interlock.components.gtfs_realtime.delays",
    "interlock.components.gtfs_realtime.decode",
    "interlock.components.gtfs_realtime.poll",
    "interlock.components.gtfs_realtime.replay",
    "interlock.components.ptv_timetable.client",
    "interlock.components.ptv_timetable.storage",
    "interlock.components.ptv_timetable.model",
)

_CLASSES = """
import json, sys
from interlock.config.registry import BUILTINS, load_component_class
for path in BUILTINS.values():
    cls = load_component_class(path)
    assert cls.settings_schema is not None and cls.dataset_schema is not None
json.dump(sorted(sys.modules), sys.stdout)
"""


def run_only(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == r or m.startswith(r + ".") for r in RUN_ONLY)]


def test_component_classes_import_without_what_their_runs_use() -> None:
    """Each built-in class, with its settings schema and dataset tables, loads none of
    its loader, writer, report or protobuf code: those are imported when a run needs them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-c", _CLASSES],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert run_only(json.loads(proc.stdout)) == []


@pytest.mark.parametrize(
    "config", ["config/demo.json", "config/orchestration.json", "config/examples/platform.json"]
)
def test_plan_of_the_shipped_configs_loads_no_run_code(config: str, tmp_path: Path) -> None:
    """plan on a shipped config checks every component's class and settings, and loads
    none of the code their runs use (the components import it where a run starts)."""
    report = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(report), "plan", "--config", str(REPO / config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.exists(), proc.stderr
    found = json.loads(report.read_text())
    assert found["code"] == 0, proc.stderr
    loaded = found["modules"]
    assert "interlock.components.gtfs_schedule.component" in loaded  # the classes were checked
    assert run_only(loaded) == []
