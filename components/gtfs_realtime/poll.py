"""One endpoint's poll: a quota token, the download, the archive, the checks, the rows.

A 429 with ``Retry-After`` holds the endpoint family's tokens for that long and, with
``retry_after_quota``, is tried once more; every payload is archived (bad ones too)
so any poll can be replayed.
:class:`EndpointResult` says how the poll ended, whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interlock.components.gtfs_realtime.dataset import PollWriter
from interlock.components.gtfs_realtime.decode import FeedLimits, read_feed
from interlock.components.gtfs_realtime.rows import RefusedEntity, header_record
from interlock.components.gtfs_realtime.rt_rules import FeedRules, counts
from interlock.components.gtfs_realtime.schedule_index import ScheduleIndex
from interlock.errors import FeedRejectedError, FetchError, QuotaExhaustedError, TransientError
from interlock.kit import ComponentContext, HttpClient, QuotaGuard, RawArchive
from interlock.kit.files import PRIVATE_FILE, private_dir, restrict
from interlock.kit.quota import quota_reply


@dataclass
class EndpointResult:
    """How one endpoint's poll ended: stored, unchanged, backwards (E018), failed or skipped."""

    endpoint: str
    status: str
    reason: str | None = None
    header_timestamp: int | None = None
    age_s: float | None = None
    entities: int | None = None
    sha256: str | None = None
    size: int = 0
    waited_s: float = 0.0
    transient: bool = False
    records: int = 0
    duplicates: int = 0
    refused: int = 0
    refused_samples: list[RefusedEntity] = field(default_factory=list)
    #: The realtime rules' report on the stored feed (:func:`.rt_rules.report`).
    rules: dict[str, Any] | None = None
    #: E017 (stored as a new revision of its header timestamp) or E018 (went back).
    flags: list[str] = field(default_factory=list)
    revision: int = 0
    #: The schedule version the feed was checked against (None: no schedule, ``why``).
    schedule_version: str | None = None
    #: kind -> {"ids", "joined", "percent", "missing_samples"} against that schedule.
    joins: dict[str, Any] = field(default_factory=dict)
    derived_delays: int = 0
    #: The ids W003 and E047 read (:class:`.rt_rules_cross.CrossIds`), for a paired feed.
    cross: Any = None

    def as_json(self) -> dict[str, Any]:
        out = {
            "status": self.status,
            "reason": self.reason,
            "header_timestamp": self.header_timestamp,
            "age_s": None if self.age_s is None else round(self.age_s, 1),
            "entities": self.entities,
            "records": self.records,
            "refused_entities": self.refused or None,
            "sha256": self.sha256,
            "bytes": self.size,
            "quota_wait_s": round(self.waited_s, 3),
            "rt_rules": counts(self.rules) if self.rules and self.rules["notices"] else None,
            "flags": self.flags or None,
            "revision": self.revision or None,
            "schedule_version": self.schedule_version,
            "joins": self.joins or None,
            "derived_delays": self.derived_delays or None,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class PollSettings:
    """What polling any endpoint needs from the component's settings."""

    component: str
    family: str
    headers: Mapping[str, str]
    max_bytes: int
    limits: FeedLimits
    #: Endpoints of a ``pairs`` entry, whose feeds keep the ids W003 and E047 compare.
    paired: frozenset[str] = frozenset()


class Poller:
    """Polls the endpoints of one run; the run's staging folder, archive and writer are shared.

    Downloads run side by side (they stream to disk); reading, checking and writing a
    feed happen one feed at a time, so a poll holds at most one feed in memory.
    """

    def __init__(
        self,
        settings: PollSettings,
        ctx: ComponentContext,
        guard: QuotaGuard | None,
        *,
        staging: Path,
        archive: RawArchive,
        latest: Mapping[str, int],
        memory: Mapping[str, Any],
        writer: PollWriter,
        schedule: ScheduleIndex | None = None,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.guard = guard
        self.staging = staging
        self.archive = archive
        self.latest = latest
        self.memory = memory
        self.writer = writer
        #: The schedule version in force when the poll began (None: none usable).
        self.schedule = schedule
        self._one_feed = asyncio.Lock()

    async def poll(self, endpoint: str, url: str) -> EndpointResult:
        """Fetch ``endpoint`` from ``url`` under the quota; store its rows if it advanced.

        Whatever goes wrong is this endpoint's failure, recorded in its result: no
        exception but cancellation leaves here, so no endpoint takes the poll down.
        """
        try:
            return await self._poll(endpoint, url)
        except Exception as exc:
            self.ctx.log.error(
                "realtime_endpoint_error", endpoint=endpoint, error=type(exc).__name__
            )
            # A URL's query may carry a key: it is never quoted.
            text = _QUERY.sub("?...", _first_line(exc))
            return EndpointResult(endpoint, "failed", f"unexpected {type(exc).__name__}: {text}")

    async def _poll(self, endpoint: str, url: str) -> EndpointResult:
        ctx, guard, settings = self.ctx, self.guard, self.settings
        http: HttpClient = ctx.services["http"]
        headers = dict(settings.headers)
        dest = self.staging / f"{endpoint}.pb"
        waited = 0.0
        for attempt in (1, 2):
            try:
                if guard is not None:
                    waited += await guard.acquire(endpoint, family=settings.family)
            except QuotaExhaustedError:
                return EndpointResult(endpoint, "skipped", "quota_exhausted")
            try:
                fetched = await http.download(
                    url, dest, max_bytes=settings.max_bytes, headers=headers, endpoint=endpoint
                )
                break
            except (TransientError, FetchError) as exc:
                if guard is not None and quota_reply(exc) and not guard.is_priority(endpoint):
                    # The API's own quota is spent: pause for retry_after_quota, not retry.
                    guard.refused_by_server(endpoint)
                    return EndpointResult(endpoint, "skipped", "quota_exhausted")
                if not isinstance(exc, TransientError):
                    return EndpointResult(endpoint, "failed", _first_line(exc), waited_s=waited)
                retry = exc.retry_after is not None and guard is not None
                if retry and guard is not None:
                    guard.penalise(settings.family, exc.retry_after or 0.0)
                    if attempt == 1 and guard.settings.retry_after_quota:
                        continue
                return EndpointResult(
                    endpoint, "failed", _first_line(exc), waited_s=waited, transient=True
                )
        assert fetched.path is not None and fetched.sha256 is not None
        sha = fetched.sha256
        now = ctx.clock()  # the daemon's clock: freshness and retention agree
        base = EndpointResult(endpoint, "failed", sha256=sha, size=fetched.size, waited_s=waited)
        # Every payload is archived (bad ones too) so any poll can be replayed.
        kept = self.archive.path_for(settings.component, sha, ".pb")
        await ctx.to_thread(_archive, fetched.path, kept)
        previous = self.memory.get(endpoint, {})
        if previous.get("sha256") == sha and previous.get("header_timestamp"):
            # The same bytes as last time: nothing new, and no need to parse them.
            stamp = int(previous["header_timestamp"])
            base.header_timestamp, base.age_s = stamp, now.timestamp() - stamp
            if base.age_s > settings.limits.max_age_s:
                base.reason = (
                    f"the feed is stale: the same payload, stamped {base.age_s / 3600:.1f} h "
                    f"ago, over max_feed_age_seconds {settings.limits.max_age_s:g}"
                )
                return base
            base.status, base.reason = "unchanged", "same payload as the last poll"
            return base
        async with self._one_feed:
            data = await ctx.to_thread(_read, kept)
            try:
                frame = await ctx.to_thread(
                    read_feed,
                    data,
                    now=now.timestamp(),
                    limits=settings.limits,
                    content_type=fetched.content_type,
                )
            except FeedRejectedError as exc:
                base.reason = str(exc)
                return base
            assert frame.header is not None  # read_feed refuses a feed without one
            stamp = frame.header.timestamp
            base.header_timestamp, base.age_s = stamp, now.timestamp() - stamp
            base.entities = frame.count
            newest = self.latest.get(endpoint, 0)
            if stamp < newest:
                base.status, base.flags = "backwards", ["E018"]
                base.reason = (
                    f"E018: header timestamp {stamp} is {newest - stamp} s before the newest "
                    f"stored ({newest}); not stored"
                )
                return base
            record = header_record(
                frame.header,
                frame.count,
                endpoint,
                fetched_at=now.isoformat(),
                age_s=base.age_s,
                sha256=sha,
                size=len(data),
                run_id=ctx.run_id,
            )
            rules = FeedRules(
                frame.header,
                now=now.timestamp(),
                schedule=self.schedule,
                previous_timestamp=previous.get("header_timestamp"),
                cross=endpoint in settings.paired,
            )
            try:
                tally = await ctx.to_thread(
                    self.writer.add_feed,
                    data,
                    frame,
                    record,
                    cancel=ctx.cancel,
                    schedule=self.schedule,
                    visit=rules.entity,
                )
            except FeedRejectedError as exc:
                base.reason = str(exc)
                return base
        if tally is None:
            base.status = "unchanged"
            base.reason = f"header timestamp {stamp} has not advanced and its content is stored"
            return base
        base.status, base.records, base.duplicates = "stored", tally.records, tally.duplicates
        base.refused, base.refused_samples = tally.refused, tally.samples
        base.rules, base.cross = rules.report(), rules.cross
        base.revision, base.derived_delays = tally.revision, tally.derived_delays
        if tally.revision:
            base.flags = ["E017"]
            base.reason = (
                f"E017: the content changed under header timestamp {stamp}; stored as "
                f"revision {tally.revision}"
            )
        if self.schedule is not None:
            base.schedule_version = self.schedule.version
            base.joins = {kind: j.as_json() for kind, j in tally.joins.items()}
        return base


_QUERY = re.compile(r"\?\S*")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _archive(src: Path, target: Path) -> None:
    private_dir(target.parent, target.parent.parent)  # <data_dir>/raw/<component>: 0700
    if target.exists():
        src.unlink(missing_ok=True)
        os.utime(target)
    else:
        os.replace(src, target)
    restrict(target, PRIVATE_FILE)
