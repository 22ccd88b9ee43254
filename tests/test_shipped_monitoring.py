"""The shipped Prometheus rules and Grafana dashboard: valid, and about metrics that exist.

The metric names come from a real scrape of a real orchestrator, so a renamed metric
breaks this test rather than a dashboard panel in production. The orchestrator runs a
test component and ``gtfs_realtime`` polling the stand-in's feeds against a published
sample schedule, so the realtime series (feed headers, join rates) carry samples too.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from interlock.components.standins import StandinServer
from interlock.components.standins.gtfs_realtime import STANDIN_API_KEY, GtfsRealtimeSource
from interlock.components.standins.sample_feed import build_zip_of_zips
from interlock.config.model import Config
from tests.conftest import component
from tests.rt_schedule import publish_bytes
from tests.test_metrics import METRICS_ON, scrape

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "prometheus" / "interlock-rules.yml"
DASHBOARD = ROOT / "grafana" / "interlock.json"
PROMTOOL = shutil.which("promtool")
NO_PROMTOOL = "promtool not installed (Debian package 'prometheus'; .ci/run installs it as root)"

#: What a Grafana dashboard needs to import and draw these panels (a subset of its model).
DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "title", "type", "gridPos", "targets", "datasource"],
                "properties": {
                    "id": {"type": "integer"},
                    "title": {"type": "string", "minLength": 1},
                    "type": {"enum": ["timeseries", "stat", "gauge", "table", "bargauge"]},
                    "gridPos": {
                        "type": "object",
                        "required": ["x", "y", "w", "h"],
                        "properties": {
                            "x": {"type": "integer", "minimum": 0, "maximum": 23},
                            "w": {"type": "integer", "minimum": 1, "maximum": 24},
                        },
                    },
                    "targets": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["refId", "expr"],
                            "properties": {"expr": {"type": "string", "minLength": 1}},
                        },
                    },
                },
            },
        },
    },
}

PROMQL_WORDS = {"by", "without", "and", "or", "unless", "on", "ignoring", "bool", "offset"}
#: Series Prometheus itself makes (not the daemon's).
PROMETHEUS_SERIES = {"up"}


def exposed_names(text: str) -> set[str]:
    """Every sample name the scrape can carry, from its TYPE lines (even with no samples)."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if kind == "histogram":
                names.update(f"{name}{s}" for s in ("_bucket", "_sum", "_count"))
            elif kind == "summary":
                names.update((name, f"{name}_sum", f"{name}_count"))
            else:
                names.add(name)
    return names


def sampled_names(text: str) -> set[str]:
    """The sample names that carry at least one sample in the scrape."""
    return {
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: identifiers that are not functions or labels."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables
    found = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        if not m.group(2) and m.group(1) not in PROMQL_WORDS:
            found.add(m.group(1))
    return found


def rule_exprs(text: str) -> list[str]:
    """The ``expr`` of each rule (one line, or a ``|`` block) from the rules file."""
    out, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"(\s*)expr:\s*(.*)$", line)
        if not m:
            continue
        if m.group(2).strip() != "|":
            out.append(m.group(2))
            continue
        block = []
        for follow in lines[i + 1 :]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= len(m.group(1)):
                break
            block.append(follow.strip())
        out.append(" ".join(block))
    return out


@pytest.fixture
async def daemon_scrape(
    make_config: Callable[..., Config], open_orch: Callable[..., Any], tmp_path: Path
) -> str:
    """/metrics after one run of a test component and one realtime poll with joins."""
    publish_bytes(tmp_path / "data", build_zip_of_zips(1), tmp_path / "zips")
    feeds = {"metro": ("trip-updates",)}
    async with StandinServer([GtfsRealtimeSource(feeds=feeds)]) as server:
        source = server.source("gtfs_realtime")
        assert isinstance(source, GtfsRealtimeSource)
        realtime = {
            "frequency": "60s",
            "retries": 0,
            "settings": {
                "endpoints": {n: server.url(p) for n, p in source.endpoints().items()},
                "api_key": STANDIN_API_KEY,
                "max_feed_age_seconds": 10 * 365 * 86400,  # the sample feeds' stamps
            },
        }
        config = make_config(
            {"ok": component("Publishes"), "gtfs_realtime": realtime},
            performance_monitoring=METRICS_ON,
        )
        orch = await open_orch(config)
        result = await asyncio.wait_for(orch.scheduler.run_once(), 30)
        assert not result.failed
        return (await scrape(orch))[0]


@pytest.fixture
def daemon_names(daemon_scrape: str) -> set[str]:
    return exposed_names(daemon_scrape)


def test_the_expression_reader_finds_series_and_skips_functions_and_labels() -> None:
    """``metric_names`` keeps series names only, so the checks below mean something."""
    expr = (
        'histogram_quantile(0.95, sum by (component, le) (rate(a_bucket{x=~"$i"}[5m]))) '
        "/ on (component) b > bool 2 unless c"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c"}


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
async def test_promtool_accepts_the_alerting_rules() -> None:
    """``promtool check rules`` passes the shipped rules file."""
    assert PROMTOOL is not None
    proc = await asyncio.create_subprocess_exec(
        PROMTOOL,
        "check",
        "rules",
        str(RULES),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out.decode()


async def test_the_rules_alert_on_what_the_issue_asks_about_metrics_that_exist(
    daemon_names: set[str],
) -> None:
    """Failing, stale, quota and down alerts exist, over series the daemon exposes."""
    text = RULES.read_text()
    alerts = set(re.findall(r"^\s*- alert: (\w+)$", text, re.M))
    assert {
        "InterlockDown",
        "InterlockComponentFailing",
        "InterlockDataStale",
        "InterlockQuotaNearlyExhausted",
        "InterlockRealtimeJoinRateLow",
    } <= alerts
    used = set().union(*(metric_names(e) for e in rule_exprs(text)))
    assert used and used - PROMETHEUS_SERIES <= daemon_names, used - daemon_names


async def test_the_dashboard_loads_and_its_panels_query_only_exposed_metrics(
    daemon_names: set[str],
) -> None:
    """Valid JSON with the panels' shape; every expression names series a scrape carries."""
    doc = json.loads(DASHBOARD.read_text())
    jsonschema.validate(doc, DASHBOARD_SCHEMA)
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    used = set().union(*(metric_names(e) for e in exprs))
    assert used <= daemon_names, used - daemon_names
    wanted = {
        "interlock_component_runs_total",  # runs and failures
        "interlock_component_duration_seconds_bucket",
        "interlock_quota_left_calls",
        "interlock_feed_header_timestamp_seconds",
        "interlock_realtime_join_ratio",
    }
    assert wanted <= used


async def test_the_realtime_panels_and_alerts_draw_series_a_realtime_run_fills(
    daemon_scrape: str,
) -> None:
    """A realtime poll with joins fills the series the realtime panels and alerts query
    (a name merely declared by a TYPE line would draw an empty panel)."""
    sampled = sampled_names(daemon_scrape)
    realtime = {"interlock_feed_header_timestamp_seconds", "interlock_realtime_join_ratio"}
    assert realtime <= sampled, realtime - sampled
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    exprs += rule_exprs(RULES.read_text())
    assert sum("interlock_realtime_join_ratio" in e for e in exprs) >= 2  # a panel and an alert
