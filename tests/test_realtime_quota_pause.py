"""When retry_after_quota pauses every realtime endpoint, the skip names the pause's end."""

from __future__ import annotations

from tests.test_gtfs_realtime import FAST, last_run, make, poll, server_with


async def test_the_skip_names_the_end_of_the_retry_after_quota_pause(tmp_path, open_orch):
    """The first poll spends the 3 calls and is refused a fourth, which starts a 30m pause;
    the next poll is skipped, and its reason gives resume_at, not the midnight reset."""
    quota = {**FAST, "daily_limit": 3, "priority_endpoints": [], "retry_after_quota": "30m"}
    async with server_with() as server:
        orch = await open_orch(make(tmp_path, server, quota=quota))
        await poll(orch)
        status, reason = await poll(orch)
        hist = await last_run(orch)
        resume_at = orch.quota.describe()["resume_at"]
    assert (status, reason) == ("skipped", "quota_exhausted")
    assert resume_at is not None
    assert f"polling resumes when the retry_after_quota pause ends ({resume_at})" in hist["error"]
