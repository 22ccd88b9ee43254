"""``runtime_settings.state_store``: the setting, its secret DSN, and a daemon on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from interlock.config.loader import parse_config
from interlock.config.model import Config
from interlock.errors import ConfigError
from interlock.service.app import Orchestrator
from interlock.store.postgresql import PgStateStore
from interlock.store.sqlite import SqliteStateStore
from tests.conftest import component

pytestmark = pytest.mark.timeout(30)


def _config(tmp_path: Path, store: Any, env: dict[str, str] | None = None) -> Config:
    runtime: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "data_dir": str(tmp_path / "data"),
        "retry_backoff_seconds": 0.01,
    }
    if store is not None:
        runtime["state_store"] = store
    doc = {"components": {"a": component("Publishes")}, "runtime_settings": runtime}
    return parse_config(doc, str(tmp_path / "orchestration.json"), env or {})


def test_the_default_store_is_sqlite_in_the_state_dir(tmp_path: Path) -> None:
    """No state_store, or {"sqlite": {}}: the daemon's store is state.sqlite."""
    for setting in (None, {"sqlite": {}}):
        config = _config(tmp_path, setting)
        assert config.runtime.state_store.kind == "sqlite"
        store = Orchestrator(config, log_events=False).store
        assert isinstance(store, SqliteStateStore)
        assert store.path == tmp_path / "state" / "state.sqlite"


def test_a_postgresql_dsn_is_resolved_and_never_shown(tmp_path: Path) -> None:
    """The DSN comes from its placeholder and appears in no repr of the config or store."""
    dsn = "postgresql://interlock:pw-9f8e7d@db.internal/interlock"
    config = _config(tmp_path, {"postgresql": {"dsn": "${PG_DSN}"}}, {"PG_DSN": dsn})
    assert config.runtime.state_store.kind == "postgresql"
    assert config.runtime.state_store.dsn == dsn
    store = Orchestrator(config, log_events=False).store
    assert isinstance(store, PgStateStore)
    for text in (repr(config), repr(config.runtime), repr(store)):
        assert "pw-9f8e7d" not in text and "db.internal" not in text


def test_a_missing_dsn_credential_is_a_config_error_naming_it(tmp_path: Path) -> None:
    """No such credential: the error names the setting and the credential."""
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, {"postgresql": {"dsn": "${credential:pg_dsn}"}})
    text = str(caught.value)
    assert "$.runtime_settings.state_store.postgresql.dsn" in text and "'pg_dsn'" in text


def test_a_literal_password_in_the_dsn_is_warned_about_without_echoing_it(
    tmp_path: Path,
) -> None:
    """A DSN holding a password literally is accepted with a warning that does not show it."""
    config = _config(tmp_path, {"postgresql": {"dsn": "postgresql://u:s3cr3t-x@h/db"}})
    assert config.runtime.state_store.kind == "postgresql"
    assert len(config.warnings) == 1 and "s3cr3t-x" not in config.warnings[0]


@pytest.mark.parametrize(
    "setting", [{}, {"sqlite": {}, "postgresql": {"dsn": "x"}}, {"postgresql": {}}, {"mysql": {}}]
)
def test_a_wrong_state_store_is_refused(tmp_path: Path, setting: Any) -> None:
    """Exactly one of sqlite or postgresql, and postgresql needs its dsn."""
    with pytest.raises(ConfigError, match="state_store"):
        _config(tmp_path, setting)


async def test_a_daemon_on_postgresql_remembers_its_state_across_restarts(
    tmp_path: Path, pg_dsn: str
) -> None:
    """Run, restart: the state is in PostgreSQL (no state.sqlite), the quota shared there."""
    config = _config(tmp_path, {"postgresql": {"dsn": "${PG_DSN}"}}, {"PG_DSN": pg_dsn})
    async with asyncio.timeout(20):
        async with Orchestrator(config, log_events=False) as first:
            assert (await first.scheduler.run_once()).status == "succeeded"
            before = first.scheduler.states["a"]
            assert first.quota is not None and first.quota.shared is first.store
        async with Orchestrator(config, log_events=False) as second:
            after = second.scheduler.states["a"]
            rows = await second.store.history()
    assert after.fingerprint == before.fingerprint is not None
    assert [(r["component"], r["status"]) for r in rows] == [("a", "succeeded")]
    assert not (tmp_path / "state" / "state.sqlite").exists()


async def test_history_and_status_without_a_daemon_read_the_postgresql_store(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's offline history and status answer from PostgreSQL, not a state.sqlite."""
    import json

    from interlock.cli.main import main
    from interlock.cli.offline import offline_status

    monkeypatch.setenv("PG_DSN", pg_dsn)
    config = _config(tmp_path, {"postgresql": {"dsn": "${PG_DSN}"}}, {"PG_DSN": pg_dsn})
    async with asyncio.timeout(20), Orchestrator(config, log_events=False) as orch:
        assert (await orch.scheduler.run_once()).status == "succeeded"
    doc = {
        "components": {"a": component("Publishes")},
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
            "state_store": {"postgresql": {"dsn": "${PG_DSN}"}},
        },
    }
    path = tmp_path / "orchestration.json"
    path.write_text(json.dumps(doc))
    code = await asyncio.to_thread(main, ["history", "--config", str(path), "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and [(r["component"], r["status"]) for r in rows] == [("a", "succeeded")]
    status = await asyncio.to_thread(offline_status, config)
    assert [c["last_status"] for c in status["components"]] == ["succeeded"]
    assert pg_dsn not in json.dumps(status, default=str)
    assert not (tmp_path / "state" / "state.sqlite").exists()
