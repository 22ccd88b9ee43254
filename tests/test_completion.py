"""``interlock completion bash|zsh``: the generated script, run by a real bash, completes
subcommands, their options, option values and the config's component names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # where the `interlock` console script is installed


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env.update(PYTHONPATH=str(REPO), PATH=f"{BIN}:{env.get('PATH', '')}")
    return env


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bash script ``interlock completion bash`` prints, in a file."""
    out = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "completion", "bash"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    path = tmp_path_factory.mktemp("completion") / "interlock.bash"
    path.write_text(out)
    return path


def complete(script: Path, line: str, cwd: Path = REPO) -> list[str]:
    """What bash offers for the last word of ``line`` (a trailing space: a new word)."""
    words = line.split(" ")
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_interlock\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_subcommands_complete(script: Path) -> None:
    """The first word completes to the subcommands that start with it."""
    assert {"status", "standins"} <= set(complete(script, "interlock st"))
    assert "--version" in complete(script, "interlock --v")


def test_options_of_a_subcommand_complete(script: Path) -> None:
    """After a subcommand, a dash completes that subcommand's options."""
    assert complete(script, "interlock status --js") == ["--json"]
    assert "--grace" in complete(script, "interlock serve --")


def test_option_values_complete(script: Path) -> None:
    """An option with choices completes them; a path option completes files."""
    assert complete(script, "interlock serve --log-level w") == ["warning"]
    assert "pyproject.toml" in complete(script, "interlock check-config --config pypr")


def test_component_names_come_from_the_config(script: Path, tmp_path: Path) -> None:
    """Where a component is expected, the names in the --config file are offered."""
    config = tmp_path / "orchestration.json"
    config.write_text(json.dumps({"components": {"gtfs_schedule": {}, "gtfs_realtime": {}}}))
    offered = complete(script, f"interlock trigger --config {config} gtfs_")
    assert sorted(offered) == ["gtfs_realtime", "gtfs_schedule"]
    assert complete(script, f"interlock history --config {config} --component gtfs_s") == [
        "gtfs_schedule"
    ]


def test_zsh_script_loads_the_bash_one_through_bashcompinit() -> None:
    """The zsh script is bashcompinit and the same completion function."""
    out = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "completion", "zsh"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "bashcompinit" in out and "complete -F _interlock interlock" in out
