"""The Data Vic patronage components: CKAN CSV datasets into snapshot SQLite files.

``datavic_station_patronage`` (annual station entries, joined to the GTFS
schedule's stops) and ``datavic_temporal_patronage`` (monthly patronage by mode
and day type). Each run resolves the dataset through CKAN, skips it when CKAN's
metadata or the downloads prove nothing changed, cleans the CSVs into typed
columns, applies the data-quality rules, and swaps the new file in atomically,
or quarantines the payload and keeps the last good data.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from interlock import events as ev
from interlock.components.datavic import ckan
from interlock.components.datavic.csvclean import Table, read_table
from interlock.components.datavic.dataset import build
from interlock.components.datavic.parsers import Parsed, parse_stations, parse_temporal
from interlock.components.datavic.tables import STATION_DATASET, TEMPORAL_DATASET
from interlock.errors import FetchError, ValidationFailedError
from interlock.kit import (
    ChangePolicy,
    ComponentContext,
    HttpClient,
    PublishStamp,
    RawArchive,
    SnapshotDataset,
    discard,
    quarantine,
)
from interlock.kit.change import DECIDED, because, decided, file_digest
from interlock.kit.quarantine_retention import prune_quarantine, quarantine_keep
from interlock.kit.tables import Database
from interlock.outcome import Outcome

MB = 1 << 20

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["ckan_url", "dataset"],
    "properties": {
        "ckan_url": {"type": "string", "pattern": "^https?://"},
        "dataset": {"type": "string", "minLength": 1},
        "resources": {
            "oneOf": [
                {"enum": ["latest", "all"]},
                {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "minItems": 1,
                    "uniqueItems": True,
                },
            ]
        },
        "max_download_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 10240},
        "archive_keep": {"type": "integer", "minimum": 1, "maximum": 1000},
        "gtfs_component": {"type": "string", "minLength": 1},
        # Resource URLs come from CKAN: public http(s) addresses only unless this is set.
        "allow_private_addresses": {"type": "boolean"},
    },
}


class _PatronageComponent:
    """The shared run; subclasses choose the parser and whether stations join to GTFS."""

    settings_schema: ClassVar[dict[str, Any] | None] = SETTINGS_SCHEMA
    joins_gtfs: ClassVar[bool] = False
    replays: ClassVar[bool] = True  # `interlock replay` rebuilds it from the archived CSVs

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings
        self.resources: str | list[str] = settings.get("resources", "latest")
        self.max_bytes = int(settings.get("max_download_mb", 100) * MB)
        self.gtfs_component = settings.get("gtfs_component", "gtfs_schedule")
        self.allow_private = bool(settings.get("allow_private_addresses", False))

    async def run(self, ctx: ComponentContext) -> Outcome:
        """Resolve, check for change, download, clean, validate, publish (or quarantine)."""
        policy = ChangePolicy.from_config(
            ctx.config.change_detection, skip=ctx.skip_change_detection
        )
        memory = dict(ctx.previous.memory)
        dataset = SnapshotDataset(ctx.data_dir, self.name)
        if not dataset.live.exists():
            policy = ChangePolicy.from_config(ctx.config.change_detection, skip=True)
        if ctx.replay is not None:  # `interlock replay`: the last publish's CSVs, archived
            raw = ctx.data_dir / "raw"
            files = [
                f | {"path": str(ctx.replay.payload(raw, self.name, f.get("sha256"), ".csv"))}
                for f in memory.get("files", {}).values()
            ]
            if not files:
                ctx.replay.payload(raw, self.name, None, ".csv")  # raises, saying why
            kept = {k: v for k, v in memory.items() if k != DECIDED}
            return await self._load_and_publish(ctx, dataset, files, kept, memory, policy)
        http: HttpClient = ctx.services["http"]
        package = await self._package(http)
        chosen = ckan.select(package, self.resources, self.settings["dataset"])
        meta = ckan.metadata(package, chosen)
        upstream = self._upstream(ctx)
        same_upstream = memory.get("upstream") == upstream
        if (
            policy.enabled
            and same_upstream
            and ckan.metadata_unchanged(
                memory.get("ckan"), meta, timestamps=policy.last_modified, hashes=policy.file_hash
            )
        ):
            # Timestamps are api_etag's part of the metadata, hashes file_hash's.
            on = (("api_etag", policy.last_modified), ("file_hash", policy.file_hash))
            by = "+".join(name for name, used in on if used) or "ckan_metadata"
            ctx.remember({**memory, DECIDED: by})
            return Outcome.unchanged(
                fingerprint=memory.get("fingerprint"),
                reason=because(
                    by, "CKAN metadata unchanged (last_modified, metadata_modified, hash, size)"
                ),
                metrics=decided(policy, by),
            )

        archive = RawArchive(
            ctx.data_dir / "raw",
            keep=int(self.settings.get("archive_keep", 3)) * max(1, len(chosen)),
        )
        files = [
            await self._download(ctx, http, archive, r, i, memory, policy)
            for i, r in enumerate(chosen)
        ]
        fingerprint = "+".join(f["sha256"] for f in files)
        if policy.algorithm != "sha256":
            digests = [
                await ctx.to_thread(file_digest, Path(f["path"]), policy.algorithm) for f in files
            ]
            fingerprint = "+".join(digests)
        info: dict[str, Any] = {
            "ckan": meta,
            "files": {f["id"]: f for f in files},
            "fingerprint": fingerprint,
            "upstream": upstream,
            "records": memory.get("records"),
        }
        if policy.file_hash and same_upstream and memory.get("fingerprint") == fingerprint:
            ctx.remember({**info, DECIDED: "file_hash"})
            return Outcome.unchanged(
                fingerprint=fingerprint,
                reason=f"payload {policy.algorithm.upper().replace('SHA', 'SHA-')} unchanged "
                "since the last publish (decided by file_hash)",
                metrics=decided(policy, f"file_hash ({policy.algorithm})"),
            )
        return await self._load_and_publish(ctx, dataset, files, info, memory, policy)

    async def _load_and_publish(
        self,
        ctx: ComponentContext,
        dataset: SnapshotDataset,
        files: list[dict[str, Any]],
        info: dict[str, Any],
        memory: dict[str, Any],
        policy: ChangePolicy,
    ) -> Outcome:
        try:
            parsed = await ctx.to_thread(self._parse, files)
        except (ValidationFailedError, FetchError) as exc:
            failure = getattr(exc, "report", None) or {"error": str(exc)}
            self._reject(ctx, files, failure, str(exc))
            raise
        stats = {
            "records": len(parsed.rows),
            "checked_cells": parsed.checked_cells,
            "null_cells": parsed.null_cells,
            "keyed_rows": len(parsed.rows),
            "duplicate_rows": parsed.duplicates(),
            "error_notices": sum(parsed.problems.values()),
        }
        report: dict[str, Any] = {
            "stats": stats,
            "table": parsed.table,
            "junk_rows_skipped": parsed.junk_rows,
            "values_not_rounded_to_50": parsed.not_rounded_to_50,
            "problems": dict(parsed.problems),
            "examples": parsed.examples,
            "resources": [f["name"] for f in files],
        }
        problems: list[str] = []
        if not parsed.rows:
            problems.append(
                f"no data rows in {', '.join(repr(f['name']) for f in files)} "
                f"({parsed.junk_rows} junk rows skipped)"
            )
        problems += ctx.judge_quality(stats, report, records=len(parsed.rows))
        if problems:
            report["passed"] = False
            message = "data quality failed: " + "; ".join(problems)
            if parsed.examples:
                message += f" (first: {parsed.examples[0]})"
            self._reject(ctx, files, report, message)
            raise ValidationFailedError(message, report=report)
        report["passed"] = True

        staged = dataset.staging_path(ctx.run_id)
        ctx.on_cleanup(lambda: discard(staged))
        gtfs = ctx.data_dir / f"{self.gtfs_component}.sqlite"
        provenance = {
            "dataset": self.settings["dataset"],
            "ckan_url": self.settings["ckan_url"],
            "metadata_modified": info["ckan"]["metadata_modified"],
            "fingerprint": info["fingerprint"],
            "published_at": datetime.now(UTC).isoformat(),
            "run_id": ctx.run_id,
        }
        join = await ctx.to_thread(
            build,
            staged,
            parsed,
            files,
            provenance,
            gtfs=gtfs if self.joins_gtfs else None,
            join=self.joins_gtfs,
            cancel=ctx.cancel,
        )
        if self.joins_gtfs:
            report["gtfs_join"] = join
        info["records"] = len(parsed.rows)
        stamp = PublishStamp.of(
            ctx, fingerprint=info["fingerprint"], records=len(parsed.rows), memory=info
        )
        await ctx.to_thread(dataset.stamp, staged, stamp)
        await ctx.to_thread(dataset.publish, staged)
        ctx.remember(info)
        ctx.log.info(
            "dataset_published",
            path=str(dataset.live),
            records=len(parsed.rows),
            resources=len(files),
            join_rate_percent=join.get("rate_percent"),
        )
        return Outcome.published(
            records=len(parsed.rows), fingerprint=info["fingerprint"], quality=report
        )

    def _upstream(self, ctx: ComponentContext) -> str | None:
        if not self.joins_gtfs:
            return None
        state = ctx.upstream.get(self.gtfs_component)
        return state.fingerprint if state is not None else None

    async def _package(self, http: HttpClient) -> dict[str, Any]:
        base = self.settings["ckan_url"].rstrip("/") + "/"
        dataset = self.settings["dataset"]
        doc = await http.get_json(f"{base}package_show?id={dataset}", endpoint="package_show")
        if not isinstance(doc, dict) or not doc.get("success"):
            raise FetchError(
                f"CKAN package_show for {dataset!r} at {base!r} did not succeed: {str(doc)[:200]}"
            )
        result = doc.get("result")
        if not isinstance(result, dict):
            raise FetchError(f"CKAN package_show for {dataset!r} returned no package")
        return result

    async def _download(
        self,
        ctx: ComponentContext,
        http: HttpClient,
        archive: RawArchive,
        resource: dict[str, Any],
        index: int,
        memory: dict[str, Any],
        policy: ChangePolicy,
    ) -> dict[str, Any]:
        rid = str(resource.get("id") or resource["url"])
        url = resource["url"]
        before = memory.get("files", {}).get(rid, {})
        kept = archive.path_for(self.name, before.get("sha256", "-"), ".csv")
        conditional = (
            before.get("url") == url
            and kept.exists()
            and policy.validators_fresh(before.get("fetched_at"))
        )
        staging = ctx.data_dir / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        download = staging / f"{self.name}-{ctx.run_id}-{index}.download"
        ctx.on_cleanup(lambda: download.unlink(missing_ok=True))
        result = await http.download(
            url,
            download,
            max_bytes=self.max_bytes,
            etag=before.get("etag") if conditional and policy.etag else None,
            last_modified=before.get("last_modified")
            if conditional and policy.last_modified
            else None,
            public_only=not self.allow_private,
        )
        entry = {
            "id": rid,
            "name": resource.get("name"),
            "url": url,
            "last_modified": resource.get("last_modified"),
            "size": result.size,
            "etag": result.etag,
        }
        if result.not_modified:
            return before | entry | {"size": before.get("size"), "path": str(kept), "http": 304}
        assert result.sha256 is not None and result.path is not None
        stored = await ctx.to_thread(archive.store, self.name, result.sha256, result.path, ".csv")
        fetched_at = datetime.now(UTC).isoformat()
        return entry | {
            "sha256": result.sha256,
            "path": str(stored),
            "http": 200,
            "fetched_at": fetched_at,
        }

    def _parse(self, files: list[dict[str, Any]]) -> Parsed:
        parsed: Parsed | None = None
        for f in files:
            label = f"resource {f['name']!r}"
            table = read_table(Path(f["path"]), label=label)
            rows_before = len(parsed.rows) if parsed else 0
            parsed = self.parse_table(parsed, table, label, str(f["name"]))
            f["rows"] = len(parsed.rows) - rows_before
            f["junk_rows"] = table.junk_rows
        assert parsed is not None
        return parsed

    def parse_table(self, parsed: Parsed | None, table: Table, label: str, name: str) -> Parsed:
        """Add one resource's rows to ``parsed`` (a subclass says how)."""
        raise NotImplementedError

    def _reject(
        self, ctx: ComponentContext, files: list[dict[str, Any]], report: dict[str, Any], why: str
    ) -> None:
        if not ctx.config.data_quality.get("quarantine_failed_data", True):
            return
        folder = quarantine(ctx.data_dir, self.name, None, report, why)
        for f in files:
            path = Path(f["path"])
            if path.exists():
                shutil.copy2(path, folder / f"{f['sha256'][:16]}.csv")
        prune_quarantine(ctx.data_dir, self.name, quarantine_keep(ctx.config.data_quality))
        ctx.emit(
            ev.ComponentQuarantined(
                run_id=ctx.run_id, component=self.name, path=str(folder), reason=why
            )
        )


class StationPatronageComponent(_PatronageComponent):
    """Annual metropolitan train station entries, joined to GTFS stops where ids allow."""

    joins_gtfs = True
    dataset_schema: ClassVar[Database] = STATION_DATASET

    def parse_table(self, parsed: Parsed | None, table: Table, label: str, name: str) -> Parsed:
        return parse_stations(parsed, table, label, name)


class TemporalPatronageComponent(_PatronageComponent):
    """Monthly patronage by mode and by day type."""

    dataset_schema: ClassVar[Database] = TEMPORAL_DATASET

    def parse_table(self, parsed: Parsed | None, table: Table, label: str, name: str) -> Parsed:
        return parse_temporal(parsed, table, label, name)
