"""``interlock replay gtfs_realtime``: the stored polls re-parsed from their archived payloads.

The polls to rebuild are the ``feeds`` rows fetched at or after ``--since`` (by default
the newest run of polls whose payloads are all still archived). In one transaction
their rows are deleted and each payload is decoded and stored again as the poll did,
with its original fetch time, age and run: a reader sees the old rows or the new ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from interlock.components.gtfs_realtime.dataset import PollWriter
from interlock.components.gtfs_realtime.decode import FeedLimits, read_feed
from interlock.components.gtfs_realtime.rows import TABLES, header_record
from interlock.components.gtfs_realtime.schedule_index import ScheduleIndex
from interlock.errors import FeedRejectedError, ReplayError
from interlock.outcome import Outcome

if TYPE_CHECKING:
    import threading

    from interlock.kit import ComponentContext

#: (endpoint, header_timestamp, fetched_at, age_s, sha256, run_id) of one stored poll.
Poll = tuple[str, int, str, float, str, str]


def polls_to_replay(db: Path, raw: Path, since: datetime | None) -> list[Poll]:
    """The stored polls to rebuild, oldest first; ReplayError when one is not archived."""
    if not db.is_file():
        raise ReplayError(f"gtfs_realtime has no dataset at {str(db)!r} to replay into")
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        polls: list[Poll] = conn.execute(
            "SELECT endpoint, header_timestamp, fetched_at, age_s, sha256, run_id FROM feeds "
            "WHERE fetched_at >= ? ORDER BY fetched_at, endpoint, revision",
            (since.isoformat() if since is not None else "",),
        ).fetchall()
    finally:
        conn.close()
    missing = [p for p in polls if not (raw / f"{p[4]}.pb").is_file()]
    if since is None and missing:  # the newest polls whose payloads are all archived
        last_gone = max(polls.index(p) for p in missing)
        polls, missing = polls[last_gone + 1 :], []
    if missing:
        raise ReplayError(
            f"{len(missing)} of the {len(polls)} polls since {since} are no longer in the "
            f"raw archive {str(raw)!r} (the oldest fetched {missing[0][2]}); raise "
            "archive_keep, or give a later --since"
        )
    if not polls:
        raise ReplayError(
            f"gtfs_realtime has no stored poll to replay{f' since {since}' if since else ''} "
            f"with its payload in {str(raw)!r}"
        )
    return polls


def rebuild(
    db: Path,
    raw: Path,
    polls: Sequence[Poll],
    limits: FeedLimits,
    schedule: ScheduleIndex | None,
    cancel: threading.Event,
) -> dict[str, int]:
    """Delete ``polls``' rows and store each again from its payload, in one transaction."""
    writer = PollWriter(db)
    conn = writer._begin()  # the transaction the re-stored polls are written in
    try:
        for endpoint, stamp, *_ in polls:
            for table in ("feeds", *TABLES, "feed_joins"):
                conn.execute(
                    f"DELETE FROM {table} WHERE endpoint = ? AND header_timestamp = ?",
                    (endpoint, stamp),
                )
        for endpoint, _, fetched_at, age_s, sha, run_id in polls:
            data = (raw / f"{sha}.pb").read_bytes()
            when = datetime.fromisoformat(fetched_at).timestamp()
            try:
                frame = read_feed(data, now=when, limits=limits)
            except FeedRejectedError as exc:
                raise ReplayError(
                    f"the archived poll of {endpoint!r} fetched {fetched_at} ({sha[:12]}...) "
                    f"is refused now: {exc}; nothing was replayed"
                ) from None
            assert frame.header is not None  # read_feed refuses a feed without one
            record = header_record(
                frame.header,
                frame.count,
                endpoint,
                fetched_at=fetched_at,
                age_s=age_s,
                sha256=sha,
                size=len(data),
                run_id=run_id,
            )
            writer.add_feed(data, frame, record, cancel=cancel, schedule=schedule)
        return writer.commit()
    except BaseException:
        writer.rollback()
        raise


async def replay_polls(
    ctx: ComponentContext, limits: FeedLimits, schedule: ScheduleIndex | None
) -> Outcome:
    """The replay run of the component in ``ctx``: no network, no quota; memory kept.

    ``schedule`` is the schedule version in force now, as a poll would join against.
    """
    assert ctx.replay is not None
    db = ctx.data_dir / f"{ctx.name}.sqlite"
    raw = ctx.data_dir / "raw" / ctx.name
    polls = await ctx.to_thread(polls_to_replay, db, raw, ctx.replay.since)
    written = await ctx.to_thread(rebuild, db, raw, polls, limits, schedule, ctx.cancel)
    records = sum(n for table, n in written.items() if table != "feeds")
    ctx.remember(dict(ctx.previous.memory))  # the endpoints' last polls are unchanged
    ctx.log.info("realtime_replayed", polls=len(polls), **written)
    return Outcome.published(
        records=records,
        fingerprint=polls[-1][4],
        quality={"passed": True, "replayed_polls": len(polls), "rows": written},
    )
