"""The ``gtfs_schedule`` component: Transport Victoria's GTFS schedule into SQLite.

Resolve the zip (directly, from a local file, or through CKAN), fetch it
conditionally, skip it when unchanged, load and validate it in a worker thread,
apply the data-quality rules, then swap the new dataset in atomically, or
quarantine the payload and keep the last good data.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from interlock import events as ev
from interlock.components.gtfs_schedule.notices import SEVERITIES
from interlock.components.gtfs_schedule.settings import MB, SETTINGS_SCHEMA, zip_limits
from interlock.components.gtfs_schedule.tables import DATASET
from interlock.components.gtfs_schedule.views import add_departures
from interlock.errors import FetchError, UnsafeArchiveError, ValidationFailedError
from interlock.kit import (
    ChangePolicy,
    ComponentContext,
    FetchResult,
    HttpClient,
    PublishStamp,
    RawArchive,
    SnapshotDataset,
    conditional_headers,
    discard,
    quarantine,
    same_payload,
)
from interlock.kit.change import DECIDED, decided, file_digest
from interlock.kit.files import copy_regular_file
from interlock.kit.quarantine_retention import prune_quarantine, quarantine_keep
from interlock.outcome import Outcome

if TYPE_CHECKING:
    from interlock.components.gtfs_schedule.loader import FeedLoadResult

# The loader, the validator and the report writer are imported where a run uses them:
# `plan`, `check-config` and `schema` need only the class (its settings and tables).

#: How a zip starts: a local file header, or the end record of an empty archive.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _validator_report(result: FeedLoadResult, db: Path, url: str | None) -> dict[str, Any]:
    from interlock.components.gtfs_schedule import mdreport

    return mdreport.document(
        result.report,
        gtfs_input=url or "",
        validated_at=datetime.now(UTC),
        record_counts=result.record_counts,
        db=db,
    )


def _write_provenance(db: Path, info: Mapping[str, Any], counts: Mapping[str, int]) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(f"PRAGMA user_version={DATASET.version}")
        add_departures(conn)  # service_days and the departures view
        conn.execute(
            "CREATE TABLE provenance (source_url TEXT, sha256 TEXT NOT NULL, size INTEGER, "
            "etag TEXT, last_modified TEXT, fetched_at TEXT NOT NULL, published_at TEXT NOT NULL, "
            "modes TEXT, record_counts TEXT NOT NULL, run_id TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO provenance VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                info.get("url"),
                info["sha256"],
                info.get("size"),
                info.get("etag"),
                info.get("last_modified"),
                info["fetched_at"],
                info["published_at"],
                json.dumps(info.get("modes")),
                json.dumps(dict(counts)),
                info["run_id"],
            ),
        )
        conn.commit()
    finally:
        conn.close()


class GtfsScheduleComponent:
    """Loads the GTFS schedule; see the module docstring for the path it takes."""

    settings_schema: ClassVar[dict[str, Any] | None] = SETTINGS_SCHEMA
    dataset_schema = DATASET  # what `interlock schema` documents
    #: code -> severity of every notice it reports: what data_quality's ``tolerate`` and
    #: ``escalate`` lists may name (the config checks them against it).
    notice_severities: ClassVar[Mapping[str, str]] = SEVERITIES
    replays: ClassVar[bool] = True  # `interlock replay` rebuilds it from the archived zip

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings
        self.max_bytes = int(settings.get("max_download_mb", 1024) * MB)
        self.modes = settings.get("modes")
        self.limits = zip_limits(settings)

    async def run(self, ctx: ComponentContext) -> Outcome:
        """Fetch, check for change, load, validate, publish (or quarantine)."""
        from interlock.components.gtfs_schedule import mdreport
        from interlock.components.gtfs_schedule.loader import load_feed

        policy = ChangePolicy.from_config(
            ctx.config.change_detection, skip=ctx.skip_change_detection
        )
        memory = dict(ctx.previous.memory)
        dataset = SnapshotDataset(
            ctx.data_dir, self.name, keep_versions=int(self.settings.get("keep_versions", 3))
        )
        have_live = dataset.live.exists()
        if not have_live:
            # Nothing to keep unchanged: a deleted or never-built dataset must be rebuilt.
            policy = ChangePolicy.from_config(ctx.config.change_detection, skip=True)
        staging = ctx.data_dir / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        download = staging / f"{self.name}-{ctx.run_id}.download"
        ctx.on_cleanup(lambda: download.unlink(missing_ok=True))

        # Where the time goes, for `interlock report` (seconds per phase).
        phases: dict[str, float] = {}
        mark = time.perf_counter()

        def lap(phase: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases[phase] = round(now - mark, 4)
            mark = now

        fetched = await self._fetch(ctx, download, memory, policy)
        lap("fetch")
        if fetched.not_modified:
            ctx.remember({**memory, DECIDED: "api_etag"})
            return Outcome.unchanged(
                fingerprint=memory.get("sha256"),
                reason="source answered 304 Not Modified (decided by api_etag)",
                metrics=decided(policy, "api_etag"),
            )
        assert fetched.sha256 is not None and fetched.path is not None
        info = {
            "url": fetched.url,
            "sha256": fetched.sha256,
            "size": fetched.size,
            "etag": fetched.etag,
            "last_modified": fetched.last_modified,
            "fetched_at": datetime.now(UTC).isoformat(),
            "run_id": ctx.run_id,
            "records": memory.get("records"),
        }
        digest: str | None = None
        if policy.algorithm != "sha256":
            digest = await ctx.to_thread(file_digest, fetched.path, policy.algorithm)
            info["digest"] = digest
        if same_payload(memory, fetched.sha256, policy, digest):
            ctx.remember({**info, DECIDED: "file_hash"})
            return Outcome.unchanged(
                fingerprint=fetched.sha256,
                reason=f"payload {policy.algorithm.upper().replace('SHA', 'SHA-')} unchanged "
                "since the last publish (decided by file_hash)",
                metrics=decided(policy, f"file_hash ({policy.algorithm})"),
            )

        archive = RawArchive(ctx.data_dir / "raw", keep=int(self.settings.get("archive_keep", 3)))
        payload = await ctx.to_thread(
            archive.store, self.name, fetched.sha256, fetched.path, ".zip"
        )
        lap("archive")
        staged = dataset.staging_path(ctx.run_id)
        ctx.on_cleanup(lambda: discard(staged))
        try:
            result: FeedLoadResult = await ctx.to_thread(
                load_feed, payload, staged, modes=self.modes, limits=self.limits, cancel=ctx.cancel
            )
        except UnsafeArchiveError as exc:
            self._reject(ctx, payload, {"error": str(exc)}, str(exc))
            raise
        lap("load")

        report = dict(result.report)
        report["stats"] = result.stats
        report["record_counts"] = result.record_counts
        problems = ctx.judge_quality(
            result.stats, report, records=result.total_records, errors_block=True
        )
        doc = None  # gtfs-validator's report.json: for a quarantine or a report file only
        if problems or ctx.config.data_quality.get("quality_reports"):
            doc = await ctx.to_thread(_validator_report, result, staged, fetched.url)
        if problems:
            message = "data quality failed: " + "; ".join(problems)
            self._reject(ctx, payload, report, message, doc)
            raise ValidationFailedError(message, report=report)

        lap("quality")
        info["modes"] = result.modes_loaded
        info["published_at"] = datetime.now(UTC).isoformat()
        info["records"] = result.total_records
        await ctx.to_thread(_write_provenance, staged, info, result.record_counts)
        stamp = PublishStamp.of(
            ctx, fingerprint=fetched.sha256, records=result.total_records, memory=info
        )
        await ctx.to_thread(dataset.stamp, staged, stamp)
        await ctx.to_thread(dataset.publish, staged)
        lap("publish")
        if doc is not None:
            await ctx.to_thread(mdreport.write_published, ctx.data_dir, self.name, ctx.run_id, doc)
        ctx.remember(info)
        ctx.log.info(
            "dataset_published",
            path=str(dataset.live),
            records=result.total_records,
            sha256=fetched.sha256,
            quality_errors=report.get("error_count"),
        )
        return Outcome.published(
            records=result.total_records,
            fingerprint=fetched.sha256,
            quality=report,
            metrics={"phases": phases},
        )

    def _reject(
        self,
        ctx: ComponentContext,
        payload: Path,
        report: dict[str, Any],
        reason: str,
        validator: Mapping[str, Any] | None = None,
    ) -> None:
        if not ctx.config.data_quality.get("quarantine_failed_data", True):
            return
        folder = quarantine(ctx.data_dir, self.name, payload, report, reason)
        if validator is not None:  # gtfs-validator's report.json, in a folder of its own
            from interlock.components.gtfs_schedule import mdreport

            mdreport.write(folder / "validator", ctx.data_dir / "quarantine", validator)
        prune_quarantine(ctx.data_dir, self.name, quarantine_keep(ctx.config.data_quality))
        ctx.emit(
            ev.ComponentQuarantined(
                run_id=ctx.run_id, component=self.name, path=str(folder), reason=reason
            )
        )

    async def _fetch(
        self, ctx: ComponentContext, download: Path, memory: dict[str, Any], policy: ChangePolicy
    ) -> FetchResult:
        if ctx.replay is not None:  # `interlock replay`: the last publish's zip, archived
            kept = ctx.replay.payload(ctx.data_dir / "raw", self.name, memory.get("sha256"), ".zip")
            result = await ctx.to_thread(self._from_path, kept, download)
            return replace(
                result,
                url=memory.get("url") or result.url,
                etag=memory.get("etag"),
                last_modified=memory.get("last_modified"),
            )
        source = self.settings["source"]
        if "path" in source:
            return await ctx.to_thread(self._from_path, Path(source["path"]), download)
        http: HttpClient = ctx.services["http"]
        url = source.get("url") or await self._resolve_ckan(ctx, http, source["ckan"])
        cond = conditional_headers(memory, policy) if memory.get("url") == url else {}
        result = await http.download(
            url,
            download,
            max_bytes=self.max_bytes,
            etag=cond.get("etag"),
            last_modified=cond.get("last_modified"),
            # A URL CKAN gave is data from outside; one configured here is the operator's.
            public_only="ckan" in source and not self.settings.get("allow_private_addresses"),
        )
        if not result.not_modified and result.path is not None:
            await ctx.to_thread(self._check_is_zip, result)
        return result

    @staticmethod
    def _check_is_zip(result: FetchResult) -> None:
        assert result.path is not None
        with open(result.path, "rb") as f:
            head = f.read(4)
        if head[:2] != b"PK":
            kind = result.content_type or "unknown content type"
            raise FetchError(
                f"GET {result.url} returned {kind} starting {head!r}, not a zip; the source "
                "may be serving an error page"
            )

    def _from_path(self, path: Path, download: Path) -> FetchResult:
        # Only a regular zip file is copied: never /proc/self/environ, a FIFO or a device.
        copy_regular_file(
            path,
            download,
            max_bytes=self.max_bytes,
            what="GTFS source file",
            hint="point settings.source.path at a GTFS zip",
            magic=ZIP_MAGIC,
            kind="zip",
        )
        return FetchResult(
            url=f"file://{path.resolve()}",
            status=200,
            path=download,
            sha256=_sha256_file(download),
            size=download.stat().st_size,
            etag=None,
            last_modified=None,
            content_type="application/zip",
            elapsed_s=0.0,
        )

    async def _resolve_ckan(
        self, ctx: ComponentContext, http: HttpClient, ckan: Mapping[str, Any]
    ) -> str:
        base = ckan["base_url"].rstrip("/") + "/"
        doc = await http.get_json(
            f"{base}package_show?id={ckan['dataset']}", endpoint="package_show"
        )
        if (
            not isinstance(doc, dict)
            or not doc.get("success")
            or not isinstance(doc.get("result"), dict)
        ):
            raise FetchError(
                f"CKAN package_show for {ckan['dataset']!r} at {base!r} did not succeed: "
                f"{str(doc)[:200]}"
            )
        resources = [r for r in doc["result"].get("resources", []) if isinstance(r, dict)]
        wanted = ckan.get("resource")
        if wanted:
            chosen = [r for r in resources if wanted in (r.get("name"), r.get("id"))]
        else:
            chosen = [
                r
                for r in resources
                if str(r.get("format", "")).upper() in ("ZIP", "GTFS")
                or str(r.get("url", "")).lower().endswith(".zip")
            ]
        if not chosen:
            names = ", ".join(repr(r.get("name")) for r in resources) or "none"
            raise FetchError(
                f"CKAN dataset {ckan['dataset']!r} has no "
                f"{'resource ' + repr(wanted) if wanted else 'zip resource'}; resources: {names}"
            )
        best = max(chosen, key=lambda r: str(r.get("last_modified") or r.get("created") or ""))
        url = best.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise FetchError(f"CKAN resource {best.get('name')!r} has no usable url: {url!r}")
        ctx.log.debug(
            "ckan_resolved",
            dataset=ckan["dataset"],
            url=url,
            last_modified=best.get("last_modified"),
        )
        return url
