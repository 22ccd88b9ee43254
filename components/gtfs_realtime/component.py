"""The ``gtfs_realtime`` component: Transport Victoria's GTFS-realtime feeds into SQLite.

Each run polls every configured endpoint under the quota guard (daily budget,
rate per endpoint family), archives each payload by SHA-256, refuses bad payloads
per endpoint, and appends the feeds whose header timestamp advanced to
``<data_dir>/<name>.sqlite`` in one transaction. One bad endpoint does not fail the
run: the component fails only when every endpoint it polled failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Mapping
from datetime import UTC, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from interlock.components.gtfs_realtime.rt_rules_cross import parse_pairs
from interlock.components.gtfs_realtime.rulecounts import rule_totals
from interlock.components.gtfs_realtime.schedule_index import ScheduleIndex, ScheduleSource
from interlock.components.gtfs_realtime.tables import DATASET
from interlock.errors import FetchError, TransientError
from interlock.kit import ComponentContext, QuotaGuard, RawArchive
from interlock.kit.change import DECIDED, because
from interlock.kit.tables import Database
from interlock.outcome import Outcome, SkipReason

if TYPE_CHECKING:
    from interlock.components.gtfs_realtime.dataset import PollWriter
    from interlock.components.gtfs_realtime.poll import EndpointResult

# The decoder (protobuf), the poller and the dataset writer are imported where a run or
# an instance uses them: `plan`, `check-config` and `schema` need only the class.

MB = 1 << 20
#: The default ``max_download_mb``: the real Melbourne metro trip updates are 52 KB, the
#: largest Victorian feeds (bus trip updates) a few MB.
MAX_DOWNLOAD_MB = 32

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["endpoints"],
    "properties": {
        "endpoints": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[a-z0-9_]+$"},
            "additionalProperties": {"type": "string", "pattern": "^https?://"},
        },
        "api_key": {"type": "string", "minLength": 1},
        "api_key_header": {"type": "string", "minLength": 1},
        "rate_family": {"type": "string", "minLength": 1},
        "max_feed_age_seconds": {"type": "number", "exclusiveMinimum": 0},
        "max_future_seconds": {"type": "number", "minimum": 0},
        "max_download_mb": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "The largest feed downloaded, per endpoint (default 32; the real "
            "Melbourne metro trip updates are 52 KB, the largest Victorian feeds a few MB).",
        },
        "max_entities": {
            "type": "integer",
            "minimum": 1,
            "description": "The most entities a feed may have (default 50000; real feeds "
            "have hundreds to a few thousand). A feed with more is refused before decoding.",
        },
        "archive_keep": {"type": "integer", "minimum": 1},
        "concurrency": {"type": "integer", "minimum": 1},
        "retention_hours": {"type": "number", "minimum": 0},
        "pairs": {
            "type": "array",
            "items": {
                "type": "array",
                "prefixItems": [{"type": "string"}, {"type": "string"}],
                "items": False,
                "minItems": 2,
            },
            "description": "[trip updates endpoint, vehicle positions endpoint] pairs whose "
            "feeds are checked together each poll (rules W003 and E047).",
        },
        "schedule_component": {
            "type": "string",
            "pattern": "^[a-z0-9_]+$",
            "description": "The gtfs_schedule component whose published dataset "
            "(<data_dir>/<name>.sqlite) polls are checked against (default gtfs_schedule).",
        },
    },
}

#: How often, at most, old feeds are deleted (a prune walks every table).
PRUNE_EVERY_S = 3600.0


def _summary(results: list[EndpointResult], status: str) -> str:
    return ", ".join(f"{r.endpoint} ({r.reason})" for r in results if r.status == status)


class GtfsRealtimeComponent:
    """Polls GTFS-realtime endpoints; see the module docstring for what a run does."""

    settings_schema: ClassVar[dict[str, Any] | None] = SETTINGS_SCHEMA
    #: What ``interlock schema`` documents for this component's dataset.
    dataset_schema: ClassVar[Database] = DATASET
    replays: ClassVar[bool] = True  # `interlock replay` re-parses the archived polls

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        from interlock.components.gtfs_realtime.decode import MAX_ENTITIES, FeedLimits
        from interlock.components.gtfs_realtime.poll import PollSettings

        self.name = name
        self.endpoints: dict[str, str] = dict(settings["endpoints"])
        self.pairs = parse_pairs(name, self.endpoints, settings.get("pairs"))
        self._cross: dict[str, Any] = {}  # paired endpoint -> ids of its newest feed
        api_key: str | None = settings.get("api_key")
        key_header = settings.get("api_key_header", "KeyId")
        self.polling = PollSettings(
            component=name,
            family=settings.get("rate_family", name),
            headers={key_header: api_key} if api_key else {},
            max_bytes=int(settings.get("max_download_mb", MAX_DOWNLOAD_MB) * MB),
            limits=FeedLimits(
                max_age_s=float(settings.get("max_feed_age_seconds", 3600)),
                max_future_s=float(settings.get("max_future_seconds", 300)),
                max_entities=int(settings.get("max_entities", MAX_ENTITIES)),
            ),
            paired=frozenset(e for pair in self.pairs for e in pair),
        )
        self.archive_keep = int(settings.get("archive_keep", 500))
        self.concurrency = int(settings.get("concurrency", 8))
        # Every poll appends: without a horizon the dataset grows by millions of rows
        # a day. 0 keeps everything.
        self.retention_s = float(settings.get("retention_hours", 72)) * 3600.0
        self._pruned_at = 0.0
        self.schedule_component: str = settings.get("schedule_component", "gtfs_schedule")
        self._schedules: ScheduleSource | None = None

    async def run(self, ctx: ComponentContext) -> Outcome:
        """Poll every endpoint, store what advanced, and report each endpoint."""
        from interlock.components.gtfs_realtime.dataset import PollWriter, latest_timestamps
        from interlock.components.gtfs_realtime.poll import Poller
        from interlock.components.gtfs_realtime.replay import replay_polls

        if ctx.replay is not None:  # `interlock replay`: the stored polls, from the archive
            return await replay_polls(ctx, self.polling.limits, await self._schedule(ctx))
        guard: QuotaGuard | None = ctx.services.get("quota")
        if (
            guard is not None
            and guard.exhausted()
            and not any(guard.is_priority(e) for e in self.endpoints)
        ):
            usage = guard.today()
            tz = ctx.config.runtime.timezone
            if usage.resume_at is not None:
                resumes = "when the retry_after_quota pause ends"
                at = usage.resume_at.astimezone(tz)
            else:
                resumes, at = "at the reset", usage.reset_at.astimezone(tz)
            return Outcome.skipped(
                SkipReason.QUOTA_EXHAUSTED,
                f"daily API quota of {guard.settings.daily_limit} calls is used up and "
                f"none of the {len(self.endpoints)} endpoints is a priority endpoint; "
                f"polling resumes {resumes} ({at.isoformat()})",
            )
        db = ctx.data_dir / f"{self.name}.sqlite"
        latest = await ctx.to_thread(latest_timestamps, db)
        memory: dict[str, Any] = dict(ctx.previous.memory.get("endpoints", {}))
        staging = ctx.data_dir / ".staging" / f"{self.name}-{ctx.run_id}"
        staging.mkdir(parents=True, exist_ok=True)
        ctx.on_cleanup(lambda: _remove_tree(staging))
        archive = RawArchive(ctx.data_dir / "raw", keep=self.archive_keep)
        slots = asyncio.Semaphore(self.concurrency)
        writer = PollWriter(db)
        ctx.on_cleanup(writer.rollback)  # a no-op once the poll is committed
        schedule = await self._schedule(ctx)
        poller = Poller(
            self.polling,
            ctx,
            guard,
            staging=staging,
            archive=archive,
            latest=latest,
            memory=memory,
            writer=writer,
            schedule=schedule,
        )

        async def poll(endpoint: str) -> EndpointResult:
            async with slots:
                return await poller.poll(endpoint, self.endpoints[endpoint])

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(poll(e), name=f"poll {self.name}/{e}") for e in self.endpoints]
        results = [t.result() for t in tasks]
        if self.pairs:
            from interlock.components.gtfs_realtime.rt_rules import check_pairs

            block_of = getattr(schedule, "block_of", None)
            await ctx.to_thread(check_pairs, results, self.pairs, self._cross, block_of)
        await ctx.to_thread(_prune, archive, self.name)
        return await self._outcome(ctx, writer, results, memory, schedule)

    async def _schedule(self, ctx: ComponentContext) -> ScheduleIndex | None:
        """The index of the schedule version published now (None: none usable, logged)."""
        path = ctx.data_dir / f"{self.schedule_component}.sqlite"
        if self._schedules is None or self._schedules.path != path:
            self._schedules = ScheduleSource(path)
        index = await ctx.to_thread(self._schedules.current)
        if index is None:
            ctx.log.info("realtime_schedule_missing", reason=self._schedules.reason)
        return index

    async def _prune_old(self, ctx: ComponentContext) -> dict[str, int]:
        """Delete feeds older than ``retention_hours``, at most once an hour."""
        clock = ctx.clock()
        now = clock.timestamp()
        if not self.retention_s or now - self._pruned_at < PRUNE_EVERY_S:
            return {}
        self._pruned_at = now
        db = ctx.data_dir / f"{self.name}.sqlite"
        cutoff = (clock - timedelta(seconds=self.retention_s)).astimezone(UTC).isoformat()
        from interlock.components.gtfs_realtime.dataset import prune

        deleted = await ctx.to_thread(prune, db, cutoff)
        if deleted:
            ctx.log.info("realtime_pruned", retention_hours=self.retention_s / 3600, **deleted)
        return deleted

    async def _outcome(
        self,
        ctx: ComponentContext,
        writer: PollWriter,
        results: list[EndpointResult],
        memory: dict[str, Any],
        schedule: ScheduleIndex | None = None,
    ) -> Outcome:
        stored = [r for r in results if r.status == "stored"]
        failed = [r for r in results if r.status == "failed"]
        skipped = [r for r in results if r.status == "skipped"]
        backwards = [r for r in results if r.status == "backwards"]
        revised = [r for r in stored if r.revision]
        refused = [r for r in stored if r.refused]
        attempted = [r for r in results if r.status != "skipped"]
        for r in results:
            if r.status == "failed":
                ctx.log.warning("realtime_endpoint_failed", endpoint=r.endpoint, reason=r.reason)
        if not attempted:
            return Outcome.skipped(
                SkipReason.QUOTA_EXHAUSTED,
                f"every endpoint was skipped for the daily quota: {_summary(results, 'skipped')}",
            )
        if len(failed) == len(attempted):
            message = f"all {len(failed)} endpoints failed: {_summary(results, 'failed')}"
            if all(r.transient for r in failed):
                raise TransientError(message)
            raise FetchError(message)
        written = await ctx.to_thread(writer.commit)
        pruned = await self._prune_old(ctx)
        for r in results:
            if r.status in ("stored", "unchanged") and r.header_timestamp is not None:
                memory[r.endpoint] = {
                    "header_timestamp": r.header_timestamp,
                    "sha256": r.sha256,
                    "fetched_at": ctx.clock().isoformat(),
                }
        ctx.remember({"endpoints": memory})
        report: dict[str, Any] = {
            "endpoints": {r.endpoint: r.as_json() for r in results},
            "feed_age_s": {r.endpoint: round(r.age_s, 1) for r in results if r.age_s is not None},
            "failed": {r.endpoint: r.reason for r in failed},
            "skipped": {r.endpoint: r.reason for r in skipped},
            "rows": written,
            "pruned": pruned,
            "duplicate_entities": sum(r.duplicates for r in stored),
            "refused_entities": {
                r.endpoint: {
                    "count": r.refused,
                    "samples": [e.as_json() for e in r.refused_samples],
                }
                for r in refused
            },
            "schedule": self._schedule_report(schedule),
            "joins": {r.endpoint: r.joins for r in stored if r.joins},
            "flags": {r.endpoint: r.flags for r in results if r.flags},
            "rt_rules": {r.endpoint: r.rules for r in stored if r.rules},
            "passed": not failed and not refused and not backwards,
        }
        report.update(rule_totals(report["rt_rules"]), record_counts=dict(written))
        notes = []
        if failed:
            notes.append(
                f"{len(failed)} of {len(results)} endpoints failed: {_summary(results, 'failed')}"
            )
        if refused:
            notes.append("entities not stored: " + ", ".join(_refusals(r) for r in refused))
        if backwards:
            notes.append(", ".join(f"{r.endpoint} {r.reason}" for r in backwards))
        if revised:
            notes.append(", ".join(f"{r.endpoint} {r.reason}" for r in revised))
        if skipped:
            notes.append(f"{len(skipped)} skipped (quota_exhausted)")
        reason = "; ".join(notes) or None
        records = sum(v for k, v in written.items() if k != "feeds")
        ctx.log.info(
            "realtime_polled",
            stored=len(stored),
            unchanged=sum(r.status == "unchanged" for r in results),
            backwards=len(backwards),
            failed=len(failed),
            skipped=len(skipped),
            records=records,
        )
        metrics = {
            "endpoints": report["endpoints"],
            "feed_age_s": report["feed_age_s"],
            "joins": report["joins"],
        }
        if stored:
            fingerprint = hashlib.sha256(
                repr(sorted((e, m.get("header_timestamp")) for e, m in memory.items())).encode()
            ).hexdigest()
            return Outcome.published(
                records=records,
                fingerprint=fingerprint,
                quality=report,
                metrics=metrics,
                reason=reason,
            )
        why = (
            "no feed stored"
            if backwards
            else "no feed header timestamp advanced since the last poll"
        )
        # What decided: the same bytes as the last poll (file_hash), or a header not advanced.
        same = "same payload as the last poll"
        unchanged = [r for r in results if r.status == "unchanged"]
        deciders = {"file_hash" if r.reason == same else "header timestamp" for r in unchanged}
        by = "+".join(sorted(deciders)) or "header timestamp"
        ctx.remember({"endpoints": memory, DECIDED: by})
        metrics["change_detection"] = {"decided_by": by, "methods": list(REALTIME_CHANGE)}
        why = because(by, why)
        return Outcome.unchanged(
            fingerprint=ctx.previous.fingerprint,
            reason=f"{why}; {reason}" if reason else why,
            quality=report,
            metrics=metrics,
        )

    def _schedule_report(self, schedule: ScheduleIndex | None) -> dict[str, Any]:
        out: dict[str, Any] = {"component": self.schedule_component}
        if schedule is None:
            out["skipped"] = self._schedules.reason if self._schedules else None
        else:
            out.update(
                version=schedule.version,
                feed_version=schedule.feed_version,
                published_at=schedule.published_at,
            )
        return out


#: The change checks a poll makes, as ``plan`` shows them.
REALTIME_CHANGE = ("file_hash(sha256)", "header timestamp")


def _refusals(r: EndpointResult) -> str:
    first = r.refused_samples[0]
    return (
        f"{r.endpoint} {r.refused} of {r.entities} (first: entity {first.entity_id!r}, "
        f"{first.reason})"
    )


def _prune(archive: RawArchive, component: str) -> None:
    if (archive.root / component).is_dir():
        archive.prune(component)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
