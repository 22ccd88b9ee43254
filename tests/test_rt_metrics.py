"""The realtime rules' notices as a Prometheus counter, scraped from a real poll."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from interlock.config.loader import parse_config
from tests.test_gtfs_realtime import FAST, STANDIN_API_KEY, last_run, poll, server_with, source_of
from tests.test_metrics import METRICS_ON, PROMTOOL, samples, scrape

NAME = "interlock_realtime_rule_notices_total"


def _config(tmp_path: Path, server: Any) -> Any:
    source = source_of(server)
    endpoints = {n: server.url(p) for n, p in source.endpoints().items()}
    doc = {
        "components": {
            "gtfs_realtime": {
                "frequency": "60s",
                "retries": 0,
                "skip_when_upstream_unchanged": False,
                "settings": {"endpoints": endpoints, "api_key": STANDIN_API_KEY},
            }
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
        "quota_management": FAST,
        "performance_monitoring": METRICS_ON,
    }
    return parse_config(doc, str(tmp_path / "orchestration.json"))


async def test_rule_notices_are_counted_per_endpoint_rule_and_severity(tmp_path, open_orch):
    """Each stored feed's rule counts add to the counter; promtool accepts the scrape."""
    async with server_with() as server:
        orch = await open_orch(_config(tmp_path, server))
        assert (await poll(orch))[0] == "succeeded"
        run = await last_run(orch)
        source_of(server).advance()
        assert (await poll(orch))[0] == "succeeded"
        second = await last_run(orch)
        text = (await scrape(orch))[0]
    got = {k: v for k, v in samples(text).items() if k[0] == NAME}
    expected: dict[tuple[str, str, str], int] = {}
    for r in (run, second):
        for endpoint, doc in r["metrics"]["endpoints"].items():
            for rule, n in (doc.get("rt_rules") or {}).items():
                key = (endpoint, rule, "error" if rule[0] == "E" else "warning")
                expected[key] = expected.get(key, 0) + n
    assert expected, "the stand-in's feeds raise some rule"
    assert {
        (dict(k[1])["endpoint"], dict(k[1])["rule"], dict(k[1])["severity"]): v
        for k, v in got.items()
    } == expected
    assert all(dict(k[1])["component"] == "gtfs_realtime" for k in got)
    assert PROMTOOL is not None
    proc = await asyncio.create_subprocess_exec(
        PROMTOOL,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(text.encode()), 30)
    assert (proc.returncode, out.decode()) == (0, "")
