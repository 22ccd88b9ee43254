"""Shared fixtures: configs built from dicts, an open orchestrator, the shared data folder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from interlock.config.loader import parse_config
from interlock.config.model import Config
from interlock.observe import logs
from interlock.service.app import Orchestrator
from tests.pg import pg_cluster, pg_dsn  # noqa: F401 - the PostgreSQL fixtures, shared
from tests.testcomponents import PROBE

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _reset_probe() -> None:
    PROBE.reset()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Logging is process-wide: a test that configures it (``main()`` in-process points it
    at that test's captured stream, closed afterwards) must not leave it to the next."""
    saved = structlog.get_config()
    state = (logs.current_level, logs._stream, logs._writer)
    yield
    if structlog.get_config() != saved or (logs.current_level, logs._stream) != state[:2]:
        if logs._writer is not state[2]:
            logs.stop(1.0)  # a writer thread the test started: flush it and let it go
        structlog.configure(**saved)
        logs.current_level, logs._stream, logs._writer = state


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


def component(
    kind: str, frequency: str = "1h", deps: list[str] | None = None, **settings: Any
) -> dict[str, Any]:
    """A component entry using a test component class."""
    entry: dict[str, Any] = {
        "class": f"tests.testcomponents:{kind}",
        "frequency": frequency,
        "dependencies": deps or [],
        "retries": 0,
    }
    extra = {
        k: settings.pop(k)
        for k in ("timeout_minutes", "retries", "skip_when_upstream_unchanged", "enabled")
        if k in settings
    }
    entry.update(extra)
    if settings:
        entry["settings"] = settings
    return entry


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    def make(components: dict[str, Any], **sections: Any) -> Config:
        runtime = {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
            "retry_backoff_seconds": 0.01,
            "retry_backoff_max_seconds": 0.05,
        }
        runtime.update(sections.pop("runtime_settings", {}))
        doc = {"components": components, "runtime_settings": runtime, **sections}
        return parse_config(doc, str(tmp_path / "orchestration.json"))

    return make


@pytest.fixture
async def open_orch() -> AsyncIterator[Callable[[Config], Any]]:
    opened: list[Orchestrator] = []

    async def opener(config: Config) -> Orchestrator:
        orch = Orchestrator(config, log_events=False)
        await orch.__aenter__()
        opened.append(orch)
        return orch

    yield opener
    for orch in opened:
        await asyncio.wait_for(orch.aclose(), 10)
