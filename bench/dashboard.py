"""How long the dashboard's history endpoint takes over 30 days of five components.

Writes about 52,000 runs (tests/dashboard_history.py) into a fresh state database,
serves the dashboard on 127.0.0.1 and times GET /api/history with its cache
defeated. The floor, measured in the same run on the same database, is the least
work any 30-day view must do: one SQLite pass over those rows (COUNT and SUM).
The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402 - after the path set-up above

from interlock.config.dashboard import DashboardSettings  # noqa: E402
from interlock.config.loader import parse_config  # noqa: E402
from interlock.events import utcnow  # noqa: E402
from interlock.observe import logs  # noqa: E402
from interlock.observe.dashboard.server import Dashboard  # noqa: E402
from interlock.service.app import Orchestrator  # noqa: E402
from tests.dashboard_history import FIVE, write_history  # noqa: E402

REPEAT = 15


async def main() -> dict[str, Any]:
    logs.configure("warning", "json", stream=sys.stderr)
    root = Path(tempfile.mkdtemp(prefix="il-bench-dash-"))
    components = {n: {"class": "tests.testcomponents:Publishes", "frequency": "7d"} for n in FIVE}
    config = parse_config(
        {
            "components": components,
            "runtime_settings": {"state_dir": str(root / "state"), "data_dir": str(root / "data")},
        },
        str(root / "orchestration.json"),
    )
    async with Orchestrator(config, log_events=False) as orch:
        rows = await write_history(orch.store, utcnow())
        async with (
            Dashboard(orch, DashboardSettings(True, "127.0.0.1", 0)) as dash,
            aiohttp.ClientSession() as http,
        ):
            since = (utcnow() - timedelta(days=30)).isoformat()
            floor, measured = [], []
            for _ in range(REPEAT):
                began = time.perf_counter()
                async with dash.reader.db.execute(  # the SQLite reader's own connection
                    "SELECT COUNT(*), SUM(duration_s) FROM component_runs WHERE started_at >= ?",
                    (since,),
                ) as cur:
                    await cur.fetchall()
                floor.append(time.perf_counter() - began)
                dash.hub.version += 1  # defeat the cache: a component just finished
                began = time.perf_counter()
                async with http.get(dash.url + "api/history") as r:
                    body = await r.read()
                measured.append(time.perf_counter() - began)
    floor_ms = statistics.median(floor) * 1000
    endpoint_ms = statistics.median(measured) * 1000
    result = {
        "bench": "dashboard_history",
        "rows": rows,
        "components": len(FIVE),
        "response_bytes": len(body),
        "floor_ms": round(floor_ms, 2),
        "endpoint_ms": round(endpoint_ms, 2),
        "ratio": round(endpoint_ms / floor_ms, 2),
    }
    print(
        f"30 days, {rows} runs of {len(FIVE)} components: one SQLite pass {floor_ms:.1f} ms, "
        f"GET /api/history {endpoint_ms:.1f} ms ({result['ratio']}x), {len(body)} bytes"
    )
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
