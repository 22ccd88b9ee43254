"""The ``interlock`` command line, run as real subprocesses against configs under tmp_path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import component

REPO = Path(__file__).resolve().parents[1]
MELBOURNE = ZoneInfo("Australia/Melbourne")
COMPONENT_EVENTS = {
    "decision",
    "component_started",
    "component_succeeded",
    "component_failed",
    "component_skipped",
    "component_error",
}

pytestmark = pytest.mark.timeout(60)


def interlock(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run ``interlock ARGS`` from the repository root, without an inherited INTERLOCK_CONFIG."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("INTERLOCK_CONFIG", "CREDENTIALS_DIRECTORY", "PYTHONPATH")
    }
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "interlock.cli", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_config(directory: Path, components: dict[str, Any], **sections: Any) -> Path:
    """An orchestration.json in ``directory`` whose state and data live beside it."""
    runtime = {
        "state_dir": str(directory / "state"),
        "data_dir": str(directory / "data"),
        "retry_backoff_seconds": 0.01,
        "retry_backoff_max_seconds": 0.05,
    }
    runtime.update(sections.pop("runtime_settings", {}))
    path = directory / "orchestration.json"
    path.write_text(json.dumps({"components": components, "runtime_settings": runtime, **sections}))
    return path


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    """The process printed no Python traceback."""
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr


def log_lines(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """stdout parsed as JSON lines (fails if any line is not one JSON object)."""
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines and all(isinstance(line, dict) for line in lines)
    return lines


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its size and modification time."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


# --- check-config ----------------------------------------------------------------------


def test_check_config_accepts_the_shipped_config() -> None:
    """The shipped orchestration.json is valid: exit 0 and a one-line verdict."""
    proc = interlock("check-config", "config/orchestration.json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("config/orchestration.json: valid (5 components)")
    no_traceback(proc)


def test_check_config_notes_a_component_disabled_by_a_missing_secret(tmp_path: Path) -> None:
    """A missing secret keeps the config valid and says which component it disables and why."""
    path = write_config(
        tmp_path,
        {
            "ptv": component("Publishes", api_key="${INTERLOCK_TEST_UNSET_KEY}"),
            "other": component("Publishes"),
        },
    )
    proc = interlock("check-config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "valid (2 components)" in proc.stdout
    assert (
        "note: 'ptv' is disabled: missing secret: environment variable "
        "'INTERLOCK_TEST_UNSET_KEY' is not set"
    ) in proc.stdout
    assert "'other'" not in proc.stdout


BAD_CONFIGS = [
    pytest.param(None, ["file not found: "], id="missing file"),
    pytest.param(
        '{\n  "components": {\n    "a": 1,\n  }\n}\n',
        ["invalid JSON at line 3 column 11: a trailing comma"],
        id="invalid JSON",
    ),
    pytest.param(
        {"components": {"a": {**component("Publishes"), "frequncy": "1h"}}},
        ["$.components.a: unknown key 'frequncy' (did you mean 'frequency'?)"],
        id="unknown key",
    ),
    pytest.param(
        {"components": {"a": component("Publishes", deps=["gtfs_schedul"])}},
        ["$.components.a.dependencies", "unknown component 'gtfs_schedul'"],
        id="unknown dependency",
    ),
    pytest.param(
        {
            "components": {
                "a": component("Publishes", deps=["b"]),
                "b": component("Publishes", deps=["a"]),
            }
        },
        ["$.components: dependency cycle: a -> b -> a"],
        id="dependency cycle",
    ),
    pytest.param(
        {
            "components": {"a": component("Publishes")},
            "dependency_management": {"parallel_groups": {"x": ["a"], "y": ["a"]}},
        },
        ["component 'a' is in more than one group (x, y)"],
        id="two parallel groups",
    ),
    pytest.param(
        {
            "components": {"a": component("Publishes", timeout_minutes=90)},
            "runtime_settings": {"global_timeout_minutes": 60},
        },
        ["$.components.a.timeout_minutes: 90 is above the global timeout (60 minutes)"],
        id="timeout above global",
    ),
    pytest.param(
        {"components": {"a": component("Publishes", frequency="fortnightly")}},
        ["$.components.a.frequency: invalid frequency 'fortnightly'"],
        id="bad frequency",
    ),
    pytest.param(
        {
            "components": {"a": component("Publishes")},
            "runtime_settings": {"timezone": "Melbourne"},
        },
        ["$.runtime_settings.timezone: 'Melbourne' is not a known IANA time zone"],
        id="bad timezone",
    ),
    pytest.param(
        {
            "components": {
                "a": {**component("Publishes"), "class": "json.decoder:NoSuchThing"},
                "b": {**component("Publishes"), "class": "json:scanner"},
            }
        },
        ["$.components.a.class", "$.components.b.class"],
        id="class is not a component",
    ),
]


@pytest.mark.parametrize(("content", "fragments"), BAD_CONFIGS)
def test_check_config_rejects_a_bad_config_without_a_traceback(
    tmp_path: Path, content: Any, fragments: list[str]
) -> None:
    """Each kind of bad config exits 2 with its problems on stderr and no traceback."""
    path = tmp_path / "orchestration.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_text(json.dumps(content))
    proc = interlock("check-config", str(path))
    assert proc.returncode == 2
    no_traceback(proc)
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"interlock: configuration {str(path)!r} is invalid:\n")
    for fragment in fragments:
        assert fragment in proc.stderr, (fragment, proc.stderr)


def test_check_config_reports_a_component_module_that_fails_to_import(tmp_path: Path) -> None:
    """A plugin module whose own import fails is a config problem, not a traceback."""
    (tmp_path / "interlock_broken_cli_plugin.py").write_text("from json import nothing_here\n")
    path = write_config(
        tmp_path, {"a": {**component("Publishes"), "class": "interlock_broken_cli_plugin:Thing"}}
    )
    proc = interlock("check-config", str(path), env={"PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"})
    no_traceback(proc)
    assert proc.returncode == 2
    assert "$.components.a.class" in proc.stderr


# --- run --once ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One debug-level ``run --once`` of a, b (after a) and c (which fails)."""
    directory = tmp_path_factory.mktemp("ran")
    path = write_config(
        directory,
        {
            "a": component("Publishes", records=3),
            "b": component("Publishes", deps=["a"]),
            "c": component("Fails"),
        },
        runtime_settings={"timezone": "Australia/Melbourne"},
    )
    return path, interlock("run", "--once", "--config", str(path), "--log-level", "debug")


def test_run_once_exits_1_when_something_failed(ran) -> None:
    """A run in which one component failed exits 1, without a traceback on stderr."""
    _, proc = ran
    assert proc.returncode == 1, proc.stderr
    no_traceback(proc)


def test_run_logs_json_lines_with_run_id_and_component(ran) -> None:
    """Logs are one JSON object per line on stdout; every component line names run and component."""
    _, proc = ran
    lines = log_lines(proc)
    run_ids = {line["run_id"] for line in lines if line["event"] == "run_started"}
    assert len(run_ids) == 1
    component_lines = [line for line in lines if line["event"] in COMPONENT_EVENTS]
    assert {line["component"] for line in component_lines} == {"a", "b", "c"}
    for line in component_lines:
        assert line["run_id"] in run_ids, line
    events = [(line["event"], line.get("component")) for line in lines]
    assert ("component_succeeded", "a") in events
    assert ("component_succeeded", "b") in events
    assert ("component_failed", "c") in events
    assert events[-1] == ("run_finished", None)


def test_debug_log_level_traces_each_scheduling_decision(ran) -> None:
    """At --log-level debug every component's decision is logged with its reason."""
    _, proc = ran
    decisions = {
        line["component"]: (line["run"], line["detail"])
        for line in log_lines(proc)
        if line["event"] == "decision"
    }
    assert decisions == {
        "a": (True, "never run"),
        "b": (True, "never run"),
        "c": (True, "never run"),
    }


def test_history_json_lists_component_runs_newest_first(ran) -> None:
    """history --json is an array of component runs, newest first, with local ISO 8601 times."""
    path, _ = ran
    proc = interlock("history", "--json", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["component"]: r["status"] for r in rows} == {
        "a": "succeeded",
        "b": "succeeded",
        "c": "failed",
    }
    required = {
        "run_id",
        "component",
        "status",
        "reason",
        "started_at",
        "finished_at",
        "duration_s",
        "records",
        "error",
    }
    for row in rows:
        assert required <= set(row), row
        for key in ("started_at", "finished_at"):
            when = datetime.fromisoformat(row[key])
            assert when.utcoffset() == when.astimezone(MELBOURNE).utcoffset(), row[key]
    starts = [datetime.fromisoformat(r["started_at"]) for r in rows]
    assert starts == sorted(starts, reverse=True)
    assert rows.index(next(r for r in rows if r["component"] == "b")) < rows.index(
        next(r for r in rows if r["component"] == "a")
    )
    by_name = {r["component"]: r for r in rows}
    assert by_name["a"]["records"] == 3
    assert by_name["c"]["error"] == "source answered nonsense"
    assert len({r["run_id"] for r in rows}) == 1


def test_history_table_filters_by_component(ran) -> None:
    """history --component prints a table of that component's runs only."""
    path, _ = ran
    proc = interlock("history", "--component", "c", "--limit", "5", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split()[:4] == ["STARTED", "COMPONENT", "STATUS", "REASON"]
    assert len(rows) == 1
    assert rows[0].split()[2:4] == ["c", "failed"]
    # A failure with no reason of its own shows its error once, not as reason and error.
    assert rows[0].count("source answered nonsense") == 1
    # People read local time to the second: "2026-12-01 22:29:26", no T, no fraction.
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ", rows[0]), rows[0]


def test_plan_after_a_run_says_why_each_component_would_not_run(ran) -> None:
    """plan prints, per component, that it would be skipped as not yet due, and when it is due."""
    path, _ = ran
    proc = interlock("plan", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["COMPONENT", "ACTION", "REASON", "WHY", "CHANGE", "DETECTION"]
    assert [row.split()[:3] for row in rows] == [
        ["a", "skip", "not_due"],
        ["b", "skip", "not_due"],
        ["c", "skip", "not_due"],
    ]
    assert all("next due " in row and "(1h)" in row for row in rows)
    # People read the configured zone to the second: no ISO "T", no fraction, no offset.
    assert all(re.search(r"next due \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(1h\)", r) for r in rows)


def test_cli_force_run_all_wins_over_the_file(ran) -> None:
    """--force-run-all makes plan run everything although the file leaves it off."""
    path, _ = ran
    proc = interlock("plan", "--json", "--force-run-all", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert {r["component"]: (r["run"], r["detail"]) for r in json.loads(proc.stdout)} == {
        n: (True, "force_run_all") for n in ("a", "b", "c")
    }


def test_plan_after_a_run_changes_no_file(ran) -> None:
    """plan on an existing state database leaves every file in state_dir as it was."""
    path, _ = ran
    state_dir = path.parent / "state"
    before = snapshot(state_dir)
    proc = interlock("plan", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert snapshot(state_dir) == before


def test_run_once_exits_0_when_nothing_failed(tmp_path: Path) -> None:
    """A run in which every component succeeded exits 0 and records them."""
    path = write_config(
        tmp_path, {"a": component("Publishes"), "b": component("Publishes", deps=["a"])}
    )
    proc = interlock("run", "--once", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    finished = [(line["event"], line.get("component")) for line in log_lines(proc)]
    assert ("component_succeeded", "a") in finished and ("component_succeeded", "b") in finished
    assert not any(line["event"] == "decision" for line in log_lines(proc))  # info level
    assert (tmp_path / "state" / "state.sqlite").exists()


def test_run_once_exits_2_on_a_configuration_error(tmp_path: Path) -> None:
    """A bad config makes run exit 2 with the problem on stderr and nothing written."""
    path = write_config(tmp_path, {"a": component("Publishes", deps=["a"])})
    proc = interlock("run", "--once", "--config", str(path))
    assert proc.returncode == 2
    no_traceback(proc)
    assert "component 'a' depends on itself" in proc.stderr
    assert not (tmp_path / "state").exists()


def test_run_once_with_an_unknown_component_exits_2(tmp_path: Path) -> None:
    """Naming a component that is not configured exits 2 and lists the known ones."""
    path = write_config(tmp_path, {"a": component("Publishes"), "b": component("Publishes")})
    proc = interlock("run", "--once", "zz", "--config", str(path))
    assert proc.returncode == 2
    no_traceback(proc)
    assert "unknown component 'zz'; known: a, b" in proc.stderr


def test_run_once_named_component_runs_only_it(tmp_path: Path) -> None:
    """Naming b runs only b: its never-published upstream makes it skip, and a does not start."""
    path = write_config(
        tmp_path, {"a": component("Publishes"), "b": component("Publishes", deps=["a"])}
    )
    proc = interlock("run", "--once", "b", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = log_lines(proc)
    (started,) = [line for line in lines if line["event"] == "run_started"]
    assert started["components"] == ["b"]
    (skipped,) = [line for line in lines if line["event"] == "component_skipped"]
    assert (skipped["component"], skipped["reason"]) == ("b", "upstream_missing")
    assert not any(line["event"] == "component_started" for line in lines)


def test_run_once_with_deps_runs_the_upstream_too(tmp_path: Path) -> None:
    """--with-deps adds what the named component depends on, run in dependency order."""
    path = write_config(
        tmp_path,
        {
            "a": component("Publishes"),
            "b": component("Publishes", deps=["a"]),
            "c": component("Publishes"),
        },
    )
    proc = interlock("run", "--once", "b", "--with-deps", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    succeeded = [
        line["component"] for line in log_lines(proc) if line["event"] == "component_succeeded"
    ]
    assert succeeded == ["a", "b"]


def test_plan_json_on_a_fresh_install_writes_nothing(tmp_path: Path) -> None:
    """plan --json says per component whether it would run and why not, creating no state dir."""
    path = write_config(
        tmp_path,
        {
            "a": component("Publishes"),
            "off": component("Publishes", enabled=False),
            "ptv": component("Publishes", api_key="${INTERLOCK_TEST_UNSET_KEY}"),
        },
    )
    proc = interlock("plan", "--json", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    rows = {r["component"]: r for r in json.loads(proc.stdout)}
    assert (rows["a"]["run"], rows["a"]["reason"], rows["a"]["detail"]) == (True, None, "never run")
    assert (rows["off"]["run"], rows["off"]["reason"]) == (False, "disabled")
    assert rows["off"]["detail"] == "disabled in the configuration"
    assert (rows["ptv"]["run"], rows["ptv"]["reason"]) == (False, "disabled")
    assert rows["ptv"]["detail"].startswith("missing secret: environment variable")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orchestration.json"]


def test_run_once_dry_run_executes_and_writes_nothing(tmp_path: Path) -> None:
    """--dry-run prints what would run and leaves no state or data behind."""
    path = write_config(tmp_path, {"a": component("Publishes")})
    proc = interlock("run", "--once", "--dry-run", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    _header, row = proc.stdout.splitlines()
    assert row.split()[:2] == ["a", "run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orchestration.json"]


# --- --config precedence -----------------------------------------------------------------


def test_interlock_config_is_used_when_config_is_absent(tmp_path: Path) -> None:
    """Without --config the file named by $INTERLOCK_CONFIG is used (not ./config/...)."""
    path = write_config(tmp_path, {"only_here": component("Publishes")})
    proc = interlock("plan", "--json", env={"INTERLOCK_CONFIG": str(path)})
    assert proc.returncode == 0, proc.stderr
    assert [r["component"] for r in json.loads(proc.stdout)] == ["only_here"]


def test_config_flag_wins_over_interlock_config(tmp_path: Path) -> None:
    """--config is used even when $INTERLOCK_CONFIG names another (missing) file."""
    path = write_config(tmp_path, {"chosen": component("Publishes")})
    proc = interlock(
        "plan",
        "--json",
        "--config",
        str(path),
        env={"INTERLOCK_CONFIG": str(tmp_path / "missing.json")},
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["component"] for r in json.loads(proc.stdout)] == ["chosen"]


def test_plan_without_a_daemon_honours_a_saved_pause(tmp_path: Path) -> None:
    """A pause saved in the state database holds in plan when no daemon runs."""
    import asyncio

    from interlock.config.loader import load_config
    from interlock.service.app import Orchestrator

    path = write_config(tmp_path, {"a": component("Publishes"), "b": component("Publishes")})

    async def pause() -> None:
        async with Orchestrator(load_config(path), log_events=False) as orch:
            assert await orch.set_paused("a", True)

    asyncio.run(pause())
    proc = interlock("plan", "--json", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    rows = {r["component"]: r for r in json.loads(proc.stdout)}
    assert (rows["a"]["run"], rows["a"]["reason"]) == (False, "paused")
    assert rows["b"]["run"] is True


def test_version_prints_the_installed_version() -> None:
    """`interlock --version` answers without a subcommand and exits 0."""
    proc = interlock("--version")
    assert proc.returncode == 0, proc.stderr
    name, version = proc.stdout.split()
    assert name == "interlock" and version[0].isdigit()


def test_a_reader_that_goes_away_ends_the_output_quietly(tmp_path: Path) -> None:
    """`interlock plan --json | head -c 100`: no traceback, the SIGPIPE exit status."""
    path = write_config(tmp_path, {f"c{i:04}": component("Publishes") for i in range(1500)})
    env = {k: v for k, v in os.environ.items() if k != "INTERLOCK_CONFIG"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", "plan", "--json", "--config", str(path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(100)
    proc.stdout.close()  # the reader goes away with most of the output unread
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_naming_a_disabled_component_says_why_and_exits_1(tmp_path: Path) -> None:
    """`run --once NAME` for a disabled component is not a silent success."""
    path = write_config(tmp_path, {"a": component("Publishes", enabled=False)})
    proc = interlock("run", "--once", "a", "--config", str(path))
    assert proc.returncode == 1
    assert "'a' is disabled" in proc.stderr and "disabled in the configuration" in proc.stderr
    no_traceback(proc)


@pytest.mark.parametrize("command", ["history", "report"])
def test_a_state_dir_without_a_state_database_is_a_clear_error(
    command: str, tmp_path: Path
) -> None:
    """`history`/`report --state-dir /nonexistent` say so and exit 2, not an empty table."""
    proc = interlock(command, "--state-dir", str(tmp_path / "nowhere"))
    assert proc.returncode == 2, proc.stdout
    assert "no state database" in proc.stderr and "nowhere" in proc.stderr
    no_traceback(proc)


def test_since_may_be_written_with_a_leading_dash(tmp_path: Path) -> None:
    """`report --since -5d` is five days back, not an argparse error."""
    path = write_config(tmp_path, {"a": component("Publishes")})
    assert interlock("run", "--once", "--config", str(path)).returncode == 0
    proc = interlock("report", "--since", "-5d", "--json", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["components"]["a"]["runs"] == 1


def test_status_reads_a_state_dir_without_a_config(tmp_path: Path) -> None:
    """`status --state-dir DIR` shows the stored outcomes with no config at hand."""
    path = write_config(tmp_path, {"a": component("Publishes"), "b": component("Publishes")})
    assert interlock("run", "--once", "--config", str(path)).returncode == 0
    proc = interlock("status", "--state-dir", str(tmp_path / "state"), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {c["component"]: c for c in json.loads(proc.stdout)["components"]}
    assert {n: r["last_status"] for n, r in rows.items()} == {"a": "succeeded", "b": "succeeded"}
    table = interlock("status", "--state-dir", str(tmp_path / "state"))
    assert table.returncode == 0 and "succeeded" in table.stdout
    missing = interlock("status", "--state-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no state database" in missing.stderr
