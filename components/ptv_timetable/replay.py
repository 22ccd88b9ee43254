"""``interlock replay ptv_timetable``: the stored polls re-parsed from their archived bundles.

The polls to rebuild are the ``polls`` rows polled at or after ``--since`` (by default
the newest polls whose bundles are all still archived). In one transaction they are
deleted and each bundle is parsed and stored again as the poll did, with its original
time, run and request count: departures replaced by each changed poll, the rest
upserted with when it was first and last seen, runs pruned past keep_runs. When the
polls replayed go back to the first one, every table is emptied first, so the
dataset is rebuilt from the archive alone. A reader sees the old rows or the new.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from interlock.components.ptv_timetable.bundle import SUFFIX, Request, read_bundle
from interlock.components.ptv_timetable.model import Poll
from interlock.components.ptv_timetable.storage import connect, store_poll
from interlock.errors import ReplayError

#: (poll_id, run_id, polled_at, requests, changed, bundle_sha256) of one stored poll.
Stored = tuple[int, str, str, int, int, str | None]
DATA_TABLES = ("route_types", "routes", "stops", "directions", "runs", "departures", "disruptions")


def polls_to_replay(db: Path, raw: Path, since: datetime | None) -> tuple[list[Stored], bool]:
    """The polls to rebuild, oldest first, and whether they start at the first poll."""
    if not db.is_file():
        raise ReplayError(f"ptv_timetable has no dataset at {str(db)!r} to replay into")
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        every: list[Stored] = conn.execute(
            "SELECT poll_id, run_id, polled_at, requests, changed, bundle_sha256 FROM polls "
            "ORDER BY poll_id"
        ).fetchall()
    except sqlite3.OperationalError:  # before schema version 3: no poll names a bundle
        every = []
    finally:
        conn.close()
    floor = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if since else ""
    polls = [p for p in every if p[2] >= floor]
    missing = [p for p in polls if not p[5] or not (raw / f"{p[5]}{SUFFIX}").is_file()]
    if since is None and missing:  # the newest polls whose bundles are all archived
        last_gone = max(polls.index(p) for p in missing)
        if last_gone + 1 < len(polls):
            polls, missing = polls[last_gone + 1 :], []
    if missing:
        raise ReplayError(
            f"{len(missing)} of the {len(every) if since is None else len(polls)} stored PTV "
            f"polls{f' since {since}' if since else ''} have no bundle in the raw archive "
            f"{str(raw)!r} (the newest polled {missing[-1][2]}); raise the component's "
            "archive_keep, or give a later --since"
        )
    if not polls:
        raise ReplayError(
            f"ptv_timetable has no stored poll to replay{f' since {since}' if since else ''}"
        )
    return polls, bool(every) and polls[0] == every[0]


def parse_polls(
    raw: Path,
    polls: Sequence[Stored],
    collect: Callable[[list[Request], list[dict[str, Any]]], Poll],
) -> list[Poll]:
    """Each poll's archived answers parsed again, as the poll parsed them."""
    parsed = []
    for *_, sha in polls:
        assert sha is not None  # polls_to_replay keeps only archived polls
        parsed.append(collect(*read_bundle(raw / f"{sha}{SUFFIX}")))
    return parsed


def rebuild(
    db: Path,
    polls: Sequence[Stored],
    parsed: Sequence[Poll],
    from_scratch: bool,
    keep_runs: timedelta,
) -> str:
    """Store ``polls`` again as ``parsed`` in one transaction; the last one's fingerprint."""
    conn = connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM polls WHERE poll_id >= ?", (polls[0][0],))
            if from_scratch:
                for table in DATA_TABLES:
                    conn.execute(f"DELETE FROM {table}")
            row = conn.execute("SELECT fingerprint FROM polls ORDER BY poll_id DESC LIMIT 1")
            last = row.fetchone()
            previous: str | None = last[0] if last else None
            for (poll_id, run_id, polled_at, requests, changed, sha), poll in zip(
                polls, parsed, strict=True
            ):
                fingerprint = poll.fingerprint()
                store_poll(
                    conn,
                    poll,
                    poll_id,
                    run_id=run_id,
                    polled_at=datetime.strptime(polled_at, "%Y-%m-%dT%H:%M:%SZ").replace(
                        tzinfo=UTC
                    ),
                    requests=requests,
                    fingerprint=fingerprint,
                    # As the poll decided; a parser fix that changes what it saw stores it.
                    changed=bool(changed) or (previous is not None and fingerprint != previous),
                    keep_runs=keep_runs,
                    bundle_sha256=sha,
                )
                previous = fingerprint
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    assert previous is not None
    return previous
