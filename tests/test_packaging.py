"""How interlock installs: one top-level package, components offered by installed packages,
and a wheel that lives beside python-daemon (whose import name is ``daemon``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from interlock.config.loader import parse_config
from interlock.config.registry import ENTRY_POINT_GROUP, installed_components
from interlock.service.app import Orchestrator

REPO = Path(__file__).resolve().parents[1]


def _plugin_distribution(root: Path, *, name: str = "tick_plugin") -> Path:
    """An installed distribution on ``root`` offering one component through the entry points."""
    root.mkdir(parents=True)
    (root / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from interlock.kit import ComponentContext
            from interlock.outcome import Outcome


            class Tick:
                settings_schema = None

                def __init__(self, name, settings):
                    self.name = name

                async def run(self, ctx: ComponentContext) -> Outcome:
                    return Outcome.published(records=7, fingerprint="tick-1")
            """
        )
    )
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntick = {name}:Tick\n")
    return root


def test_an_installed_package_offers_a_component_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A component named after an entry point needs no 'class' in the config."""
    monkeypatch.syspath_prepend(str(_plugin_distribution(tmp_path / "site")))
    assert installed_components()["tick"] == "tick_plugin:Tick"
    doc = {"components": {"tick": {"frequency": "hourly"}}}
    config = parse_config(doc, "test", env={})
    assert config.components["tick"].class_path == "tick_plugin:Tick"
    assert config.components["tick"].enabled


async def test_an_entry_point_component_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler runs an entry-point component like any other and records its outcome."""
    monkeypatch.syspath_prepend(str(_plugin_distribution(tmp_path / "site")))
    doc = {
        "components": {"tick": {"frequency": "hourly"}},
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
    }
    config = parse_config(doc, "test", env={})
    async with Orchestrator(config, log_events=False) as orch:
        result = await orch.scheduler.run_once(None, trigger="test")
        assert orch.bus is not None and await orch.bus.flush()
        (row,) = await orch.store.history(component="tick", limit=5)
    assert result.outcomes["tick"].status.value == "succeeded"
    assert (row["status"], row["records"]) == ("succeeded", 7)


def test_class_may_name_an_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``"class": "tick"`` resolves through the entry points; an unknown name is a clear error."""
    monkeypatch.syspath_prepend(str(_plugin_distribution(tmp_path / "site")))
    doc = {"components": {"mine": {"class": "tick", "frequency": "hourly"}}}
    config = parse_config(doc, "test", env={})
    assert config.components["mine"].class_path == "tick"
    with pytest.raises(Exception) as raised:
        parse_config(
            {"components": {"mine": {"class": "tock", "frequency": "hourly"}}}, "test", env={}
        )
    message = str(raised.value)
    assert "'tock'" in message and ENTRY_POINT_GROUP in message and "tick" in message


def _build_wheel(out: Path) -> Path:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO)],
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    # Every folder that ships is declared: the build says nothing about a missing package.
    assert "absent from the `packages` configuration" not in built.stdout + built.stderr
    (wheel,) = out.glob("interlock-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_package(wheel: Path) -> None:
    """Everything in the wheel is under interlock/ (or its dist-info); the shipped files too."""
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"interlock"}
    for shipped in (
        "interlock/config/orchestration.json",
        "interlock/config/orchestration.schema.json",
        "interlock/config/demo.json",
        "interlock/observe/dashboard/static/index.html",
        "interlock/components/gtfs_schedule/loader.py",
    ):
        assert shipped in names
    # Every package in the source is in the wheel: none was forgotten in pyproject.toml.
    for root, prefix in (
        (REPO / "daemon", "interlock"),
        (REPO / "components", "interlock/components"),
        (REPO / "config", "interlock/config"),
    ):
        for init in root.rglob("__init__.py"):
            rel = init.relative_to(root).as_posix()
            assert f"{prefix}/{rel}" in names, f"{init} is not in the wheel"


@pytest.mark.slow
def test_the_wheel_installs_beside_python_daemon_and_runs_the_demo(
    wheel: Path, tmp_path: Path
) -> None:
    """A fresh venv with python-daemon and the wheel: both import, and the demo passes."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLOCK_", "PYTHON"))}
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "python-daemon", str(wheel)],
        check=True,
        timeout=600,
        env=env,
        capture_output=True,
    )
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    assert not (Path(site) / "components").exists()
    assert not (Path(site) / "interlock_config").exists()
    # python-daemon's own package, not ours, answers to `import daemon`.
    probe = subprocess.run(
        [str(py), "-c", "import daemon, daemon.daemon; print(daemon.DaemonContext.__module__)"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert probe.stdout.strip() == "daemon.daemon"
    demo = subprocess.run(
        [str(venv / "bin" / "interlock"), "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]


def test_every_declared_dependency_is_imported() -> None:
    """A main dependency that nothing imports is not declared (data-only ones say why)."""
    import ast
    import tomllib

    data_only = {"tzdata": "zoneinfo reads it where the system has no tz database"}
    import_name = {
        "gtfs-realtime-bindings": "google.transit",
        "prometheus-client": "prometheus_client",
    }
    doc = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = [
        req.split(">")[0].split("=")[0].split("[")[0].strip()
        for req in doc["project"]["dependencies"]
    ]
    imported: set[str] = set()
    for root in ("daemon", "components", "config"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imported.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    imported.add(node.module)
    unused = [
        dist
        for dist in declared
        if dist not in data_only
        and not any(
            m == name or m.startswith(name + ".")
            for m in imported
            for name in [import_name.get(dist, dist.replace("-", "_"))]
        )
    ]
    assert unused == []


@pytest.mark.slow
def test_the_wheel_is_typed(wheel: Path) -> None:
    """PEP 561: interlock/py.typed ships in the wheel."""
    assert "interlock/py.typed" in zipfile.ZipFile(wheel).namelist()


def test_the_demo_config_output_is_ignored_by_git() -> None:
    """`run --once --config config/demo.json` leaves nothing untracked in git."""
    proc = subprocess.run(
        ["git", "check-ignore", "-q", "config/demo-output/state/state.sqlite"],
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0


@pytest.mark.slow
def test_the_wheel_carries_the_declared_license(wheel: Path) -> None:
    """LICENSE is the Apache-2.0 text pyproject.toml declares, and it ships in the wheel."""
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    with zipfile.ZipFile(wheel) as zf:
        (licence,) = [n for n in zf.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert zf.read(licence).decode() == text
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        assert f"License-Expression: {declared}" in zf.read(meta).decode().splitlines()


def _source_copy(dest: Path) -> Path:
    """The files git knows in the working tree (tracked, and new ones not ignored), copied:
    a build writes its egg-info beside the sources, and never into this tree."""
    import shutil

    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = raw.decode()
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


@pytest.mark.slow
def test_the_sdist_carries_the_declared_license(tmp_path: Path) -> None:
    """The sdist, built as PyPA's ``python -m build --sdist`` does (an isolated environment
    with the setuptools pyproject.toml requires), holds LICENSE and declares its expression."""
    import tarfile
    import tomllib

    import build.env  # PyPA's build (the repository's build/ folder is setuptools' output)

    src = _source_copy(tmp_path / "src")
    with build.env.DefaultIsolatedEnv() as env:
        builder = build.ProjectBuilder.from_isolated_env(env, src)
        env.install(builder.build_system_requires)
        env.install(builder.get_requires_for_build("sdist"))
        sdist = Path(builder.build("sdist", tmp_path / "dist"))
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    with tarfile.open(sdist) as tf:
        (top,) = {n.split("/")[0] for n in tf.getnames()}
        licence = tf.extractfile(f"{top}/LICENSE")
        assert licence is not None and licence.read().decode() == (REPO / "LICENSE").read_text()
        meta = tf.extractfile(f"{top}/PKG-INFO")
        assert meta is not None
        lines = meta.read().decode().splitlines()
    assert f"License-Expression: {declared}" in lines
    assert "License-File: LICENSE" in lines
