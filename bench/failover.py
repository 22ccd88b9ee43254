"""How long a standby takes to lead after the leader is killed with SIGKILL, over 10 kills.

Starts a throwaway PostgreSQL cluster (tests/pg.py), two real ``interlock serve``
processes on one database (``failover_seconds`` 2 unless given as the first argument),
and kills the leader mid-run ten times, restarting the killed one as the next standby.
Each figure is from SIGKILL to the standby's leader STATUS= (its orchestrator open,
the dead leader's run marked interrupted, what is due started). The floor is one
election on its own (connect, take the lock, fence, bump the epoch) in the same run.
The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from interlock.service.leader import PgElection  # noqa: E402 - after the path set-up above
from tests.pg import start_cluster, stop_cluster  # noqa: E402
from tests.test_failover import SharedDaemon  # noqa: E402

KILLS = 10
#: A component that is always mid-run: the kill lands while it runs.
COMPONENTS = {
    "feed": {
        "class": "tests.testcomponents:Sleeps",
        "frequency": "1h",
        "retries": 0,
        "settings": {"seconds": 600},
    }
}


async def _one_election(dsn: str) -> float:
    election = PgElection(dsn, 2.0)
    began = time.perf_counter()
    try:
        await asyncio.wait_for(election.try_lead(), 10)
        return time.perf_counter() - began
    finally:
        await election.aclose()


def main(failover_s: float) -> dict[str, Any]:
    cluster = start_cluster()
    root = Path(tempfile.mkdtemp(prefix="ilbf-", dir="/tmp"))
    daemons: list[SharedDaemon] = []
    try:
        floor = min(asyncio.run(_one_election(cluster.new_database())) for _ in range(5))
        dsn = cluster.new_database()
        for name in ("a", "b"):
            (root / name).mkdir()
            d = SharedDaemon(
                root / name, COMPONENTS, dsn=dsn, data=root / "data", failover_s=failover_s
            )
            daemons.append(d)
        leader, standby = daemons
        leader.start()
        standby.start()
        took: list[float] = []
        for _ in range(KILLS):
            assert leader.proc is not None
            leader.proc.send_signal(signal.SIGKILL)
            killed = time.perf_counter()
            leader.proc.wait(10)
            standby.wait_status("components", timeout=failover_s + 20)  # leading
            took.append(time.perf_counter() - killed)
            leader.close()
            (leader.root / "notify").unlink()
            fresh = SharedDaemon(
                leader.root, COMPONENTS, dsn=dsn, data=root / "data", failover_s=failover_s
            )
            daemons.append(fresh)
            leader, standby = standby, fresh.start()
        print(
            f"failover after SIGKILL over {KILLS} kills: median {statistics.median(took):.3f} s, "
            f"max {max(took):.3f} s (limit failover_seconds {failover_s:g} s; "
            f"floor, one election alone: {floor * 1e3:.1f} ms)"
        )
        return {
            "kills": KILLS,
            "failover_seconds": failover_s,
            "median_s": round(statistics.median(took), 3),
            "max_s": round(max(took), 3),
            "floor_election_ms": round(floor * 1e3, 2),
            "within_limit": max(took) < failover_s,
        }
    finally:
        for d in daemons:
            d.close()
        stop_cluster(cluster)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]) if len(sys.argv) > 1 else 2.0)))
